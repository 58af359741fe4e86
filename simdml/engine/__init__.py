"""The simulation kernel: a virtual clock, an event queue and generator processes.

Pure standard library. A *process* is a plain generator function that ``yield``\\ s
events; the simulator resumes it when the event fires, sending the event's value back in.
Simultaneous events are ordered by (time, priority, insertion order), so a run is
deterministic: below, both processes wake at t=2, and "slow" goes first because its
timeout was created first (at t=0). The kernel draws no random numbers.

>>> sim = Simulator()
>>> def clock(sim, name, tick):
...     while sim.now < 3:
...         print(name, sim.now)
...         yield sim.timeout(tick)
>>> _ = sim.process(clock(sim, "fast", 1.0))
>>> _ = sim.process(clock(sim, "slow", 2.0))
>>> sim.run()
fast 0.0
slow 0.0
fast 1.0
slow 2.0
fast 2.0

References
----------
The event/process design follows SimPy (https://simpy.readthedocs.io): processes are
generators, a process is itself an event, and the queue key is
``(time, priority, sequence number)``.

The kernel is three modules: ``events`` (events, timeouts, processes, conditions),
``store`` (mailboxes) and ``simulator`` (the clock, the queue and the loop); they share
their underscored attributes with each other, and nothing outside the kernel does.
Package-private API: the cluster's message path (:mod:`simdml.cluster`) uses
``Simulator._fire_at`` and ``Store._deliver``, made for it.
"""
from .events import (NORMAL, PENDING, URGENT, Condition, Deadlock, Event, Interrupt, Process,
                     Timeout)
from .simulator import GC_OLDEST_THRESHOLD, Simulator
from .store import Store, StoreGet

__all__ = [
    "Simulator", "Event", "Timeout", "Process", "Condition", "Store", "StoreGet",
    "Interrupt", "Deadlock", "URGENT", "NORMAL", "PENDING", "GC_OLDEST_THRESHOLD",
]
