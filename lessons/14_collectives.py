# %% [markdown]
# # Lesson 14 — Which all-reduce, and on which network?
#
# ## Question
#
# Data parallelism sums a gradient over every worker each step: an **all-reduce**. There
# are many ways to do it. A ring passes p pieces round; a tree reduces to one node and
# broadcasts back; recursive doubling swaps whole vectors with partners at distance 1,
# 2, 4, ...; Rabenseifner halves, then doubles; a hierarchical all-reduce works inside
# each rack first. Which is fastest depends on the size of the vector and the number of
# nodes -- where are the crossovers? And on a real network of racks, whose uplinks carry
# less than all their hosts at once (**oversubscription**), does the answer change?
#
# ## Setup
#
# The collectives of `simdml.collectives`, run by themselves: p nodes, each with a
# vector of n bytes, free compute. Timing only: the vectors are `Phantom`s (shapes, no
# values; `math = false` runs on the same code), so a 134 MB vector on 64 nodes allocates
# nothing. Every message is simulated.
#
# (a, b) p = 16 and 64 nodes on the default network (every NIC on one switch), latency
# alpha = 10 µs, bandwidth 1/beta = 1.25 GB/s (10 Gbit/s). With free compute the
# simulated times are the alpha-beta costs of Thakur, Rabenseifner & Gropp (2005):
#
#     ring                2 (p - 1) alpha + 2 (p - 1) / p n beta
#     tree                2 log2(p) (alpha + n beta)            (reduce, then broadcast)
#     recursive doubling  log2(p) (alpha + n beta)
#     Rabenseifner        2 log2(p) alpha + 2 (p - 1) / p n beta
#     hierarchical, g     2 (g - 1)(alpha + n / g beta) + 2 (p/g - 1)(alpha + n / p beta)
#
# (c) 16 workers in 4 racks of 4 (`network.topology = "racks"`, `hosts_per_rack = 4`),
# each rack's uplink to the core switch carrying 4 x 1.25 GB/s / k: k = 1 (full
# bisection) and k = 4 (oversubscribed 4:1). Every message is routed over its links,
# each a queue (`simdml.topology`): contention is not a formula, it emerges. With no
# latency the flat ring takes 2 (p - 1)(n / p) beta max(1, k / h) and the hierarchical
# all-reduce 2 (h - 1)(n / h) beta + 2 (R - 1)(n / p) beta max(1, k) (h hosts a rack, R
# racks): the ring, in index order, has only one neighbour pair per rack boundary, so
# it puts one chunk a step on each uplink; the hierarchical all-reduce's h rings across
# the racks put h.


# %%
"""Lesson 14 — Which all-reduce, and on which network?"""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from simdml import Cluster, Network, Simulator, plots
from simdml.collectives import Group, allreduce, allreduce_time
from simdml.phantom import Phantom
from simdml.topology import build_topology

ALPHA = 1e-5                            # s per message
BANDWIDTH = 1.25e9                      # bytes/s (10 Gbit/s)
NODES = (16, 64)                        # (a), (b)
ALGORITHMS = ("ring", "tree", "recursive_doubling", "rabenseifner", "hierarchical")
GROUP = 4                               # the hierarchical all-reduce's groups (a rack)
HOSTS, RACKS = 4, 4                     # (c): 16 workers
OVERSUBSCRIPTION = (1, 4)               # (c): k
ELEMENTS = [64 * 4 ** k for k in range(10)]   # 512 B .. 134 MB of float64: p divides them
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "14_collectives.png"
COLORS = {"ring": "#1d3557", "tree": "#2a9d8f", "recursive_doubling": "#e9c46a",
          "rabenseifner": "#e76f51", "hierarchical": "#8e44ad"}
NAMES = {"ring": "ring", "tree": "tree", "recursive_doubling": "recursive doubling",
         "rabenseifner": "Rabenseifner", "hierarchical": f"hierarchical (groups of {GROUP})"}


# %%
def simulate(name: str, p: int, elements: int, topology: str = "switch", latency=ALPHA,
             **links) -> float:
    """The simulated time (s) of one all-reduce of ``elements`` float64 on ``p`` nodes."""
    sim = Simulator()
    names = ["server", *(f"worker{i}" for i in range(p))]     # node 0 idles
    topo = build_topology(topology, names, latency=latency, bandwidth=BANDWIDTH, **links)
    cluster = Cluster(sim, Network(latency=latency, bandwidth=BANDWIDTH, topology=topo),
                      record_spans=False)
    nodes = [cluster.add_node(n) for n in names][1:]
    group = Group(nodes)

    def member(i):
        yield from allreduce(name, group, i, Phantom(elements), size=GROUP)
    for i, node in enumerate(nodes):
        node.start(member, i)
    sim.run()
    return sim.now


def formula(name: str, p: int, nbytes: int) -> float:
    """Thakur et al.'s cost (``simdml.collectives.allreduce_time``)."""
    return allreduce_time(name, p, nbytes, ALPHA, BANDWIDTH, size=GROUP)


def sizes(quick: bool) -> list[int]:
    return ELEMENTS[::3] if quick else ELEMENTS


def on_the_switch(p: int, quick: bool = False) -> dict:
    """(a, b) Every algorithm at every size on p nodes: simulated and formula (printed)."""
    rows = {(a, e): (simulate(a, p, e), formula(a, p, 8 * e))
            for a in ALGORITHMS for e in sizes(quick)}
    print(f"({'a' if p == NODES[0] else 'b'}) p = {p}, one switch: time in ms, simulated "
          f"(formula)")
    print(f"{'bytes':>11} " + " ".join(f"{NAMES[a].split(' (')[0]:>20}" for a in ALGORITHMS))
    for e in sizes(quick):
        print(f"{8 * e:>11,} " + " ".join(
            f"{1e3 * rows[(a, e)][0]:>9.3f} ({1e3 * rows[(a, e)][1]:>8.3f})" for a in ALGORITHMS))
    best = [min(ALGORITHMS, key=lambda a: rows[(a, e)][0]) for e in sizes(quick)]
    print("fastest: " + ", ".join(f"{8 * e:,} B {NAMES[b].split(' (')[0]}"
                                  for e, b in zip(sizes(quick), best)))
    n_star = crossover(p)
    below = [simulate(a, p, int(n_star / 16)) for a in ("ring", "recursive_doubling")]
    above = [simulate(a, p, int(n_star / 4)) for a in ("ring", "recursive_doubling")]
    print(f"ring = recursive doubling at n* = {n_star:,.0f} B by the formulas; simulated at "
          f"n*/2: ring {1e3 * below[0]:.3f} ms, recursive doubling {1e3 * below[1]:.3f} ms; "
          f"at 2 n*: ring {1e3 * above[0]:.3f} ms, recursive doubling {1e3 * above[1]:.3f} ms")
    return {"rows": rows, "best": best, "crossover": n_star, "below": below, "above": above}


def crossover(p: int) -> float:
    """The size (bytes) where the ring's cost equals recursive doubling's:
    2 (p - 1) alpha + 2 (p - 1) / p n beta = log2(p) (alpha + n beta)."""
    log = np.log2(p)
    return (2 * (p - 1) - log) * ALPHA * BANDWIDTH / (log - 2 * (p - 1) / p)


def on_racks(quick: bool = False) -> dict:
    """(c) The ring, the hierarchical all-reduce, Rabenseifner and the tree on 4 racks
    of 4 at k = 1 and 4; and the bandwidth-only formulas, checked with no latency."""
    p, algorithms = HOSTS * RACKS, ("ring", "hierarchical", "rabenseifner", "tree")
    rows = {}
    for k in OVERSUBSCRIPTION:
        racks = {"hosts_per_rack": HOSTS, "oversubscription": k}
        for a in algorithms:
            for e in sizes(quick):
                rows[(k, a, e)] = simulate(a, p, e, "racks", **racks)
    big = ELEMENTS[-1]
    check = {}
    for k in OVERSUBSCRIPTION:
        racks = {"hosts_per_rack": HOSTS, "oversubscription": k}
        n = 8 * big
        check[k] = {
            "ring": (simulate("ring", p, big, "racks", latency=0.0, **racks),
                     2 * (p - 1) * n / p / BANDWIDTH * max(1, k / HOSTS)),
            "hierarchical": (simulate("hierarchical", p, big, "racks", latency=0.0, **racks),
                             2 * (HOSTS - 1) * n / HOSTS / BANDWIDTH
                             + 2 * (RACKS - 1) * n / p / BANDWIDTH * max(1, k))}
    print(f"(c) {RACKS} racks of {HOSTS}, uplinks {HOSTS} x 1.25 GB/s / k: time in ms")
    print(f"{'bytes':>11} | " + " | ".join(
        " ".join(f"{a[:5]:>8}" for a in algorithms) + f"  (k = {k})" for k in OVERSUBSCRIPTION))
    for e in sizes(quick):
        print(f"{8 * e:>11,} | " + " | ".join(
            " ".join(f"{1e3 * rows[(k, a, e)]:>8.3f}" for a in algorithms) + "        "
            for k in OVERSUBSCRIPTION))
    crossover = {}
    for k in OVERSUBSCRIPTION:
        wins = [e for e in sizes(quick) if rows[(k, "hierarchical", e)] < rows[(k, "ring", e)]]
        crossover[k] = 8 * max(wins) if wins else None
        upto = ("at every size shown" if crossover[k] == 8 * sizes(quick)[-1]
                else f"up to {crossover[k]:,} B")
        print(f"k = {k}: hierarchical beats the ring {upto}; "
              f"no latency, {8 * big:,} B: ring {1e3 * check[k]['ring'][0]:.3f} ms "
              f"(formula {1e3 * check[k]['ring'][1]:.3f}), hierarchical "
              f"{1e3 * check[k]['hierarchical'][0]:.3f} ms "
              f"(formula {1e3 * check[k]['hierarchical'][1]:.3f})")
    return {"rows": rows, "check": check, "crossover": crossover, "algorithms": algorithms}


# %%
def figure(switch: dict, racks: dict, quick: bool = False) -> Figure:
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    axes = fig.subplots(1, 3)
    x = np.array([8 * e for e in sizes(quick)])
    for ax, p in zip(axes[:2], NODES):
        rows = switch[p]["rows"]
        for a in ALGORITHMS:
            ax.plot(x, [1e3 * rows[(a, e)][1] for e in sizes(quick)], color=COLORS[a], lw=1.2,
                    alpha=0.6)
            ax.plot(x, [1e3 * rows[(a, e)][0] for e in sizes(quick)], "o", color=COLORS[a],
                    ms=4, label=NAMES[a])
        ax.set_title(f"({'ab'[NODES.index(p)]}) {p} nodes on one switch: "
                     f"simulated (dots), formula (lines)", fontsize=10)
    for k, style in zip(OVERSUBSCRIPTION, ("--", "-")):
        for a in racks["algorithms"]:
            axes[2].plot(x, [1e3 * racks["rows"][(k, a, e)] for e in sizes(quick)], style,
                         color=COLORS[a], marker="o", ms=3,
                         label=f"{NAMES[a].split(' (')[0]}, k = {k}")
    axes[2].set_title(f"(c) {RACKS} racks of {HOSTS}: uplink oversubscribed k:1", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("vector size (bytes)")
        ax.set_ylabel("all-reduce time (ms)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=7, ncol=2)
    fig.suptitle("All-reduce time vs vector size: latency-bound on the left of each panel, "
                 f"bandwidth-bound on the right (alpha = {ALPHA * 1e6:g} µs, 1.25 GB/s)")
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    switch = {p: on_the_switch(p, quick) for p in NODES}
    racks = on_racks(quick)
    path = plots.save(figure(switch, racks, quick), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"switch": switch, "racks": racks}


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    numbers = main(quick=QUICK)


# %% [markdown]
# ## What the figure shows
#
# **(a, b) One switch.** Every dot sits on its line: with free compute each algorithm's
# simulated time is its formula (the tables print both). Small vectors are
# latency-bound: recursive doubling takes log2 p steps and wins (0.04 ms on 16 nodes,
# where the ring needs 2 (p - 1) = 30 steps, 0.3 ms). Large vectors are bandwidth-bound:
# the ring and Rabenseifner send 2 (p - 1) / p n bytes a node, the least possible, while
# recursive doubling and the tree move the whole vector at every one of their log2 p
# steps, 2 to 6 times longer at 134 MB. Rabenseifner has both virtues (2 log2 p latency
# terms, the ring's bytes): it is the fastest from 32 kB up. The ring overtakes recursive
# doubling at the size n* where their formulas meet; the lines printed under each table
# give n* and show the order flip in the simulation between n*/2 and 2 n*. More nodes
# mean more ring steps: n* grows from about 150 kB on 16 nodes to about 370 kB on 64. The
# hierarchical all-reduce on one switch sends the ring's bytes in fewer steps (12 instead
# of 30 on 16 nodes): it beats the flat ring at every size, by its latencies.
#
# **(c) Racks.** With full bisection (k = 1, dashed) nothing is contended and the racks
# only add latency. At k = 4 (solid) Rabenseifner, whose first halving sends half of
# every host's vector to a partner in another rack, pushes 4 large pieces through each
# uplink at once and slows down more than 3x on large vectors. The tree is not slowed: at
# each of its levels one message per rack crosses. Nor is the flat ring: in index order
# each uplink carries one chunk a step, and with h = 4 hosts sharing an uplink of
# 4 x 1.25 / 4 GB/s that chunk still goes at full speed (max(1, k / h) = 1). The
# hierarchical all-reduce wins the small and middle sizes by latency (12 steps instead of
# 30) but at k = 4 loses the large ones: its 4 rings across the racks share the uplink
# (max(1, k) = 4). The printed crossover is the largest size where it still wins; the
# no-latency check prints both bandwidth formulas beside the simulation.
#
# A rack-aware ring is already hierarchical in its bytes. What a hierarchical algorithm
# buys on racks is latency -- and, on machines whose links inside a group are far faster
# than those between groups (NVLink inside a server, Ethernet between them), bandwidth
# too: then the links inside the group carry most of the bytes (exercise 3).


# %%
if __name__ == "__main__":
    fig = figure(*[numbers[k] for k in ("switch", "racks")], quick=QUICK)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. From the formulas, find the vector size at which the ring becomes faster than
#    recursive doubling on p nodes. Check it against table (a) and (b). How does it
#    grow with p?
# 2. In (c), put the ring in a bad order: with `topology = "links"` build 4 racks whose
#    hosts are workers {0, 4, 8, 12}, {1, 5, 9, 13}, ... (every ring step now crosses a
#    rack). How much slower is the ring at k = 4? Does the hierarchical all-reduce now win
#    the large vectors?
# 3. Give the links inside a rack 10x the bandwidth of the uplinks' share
#    (`topology = "links"`, your own `bandwidth` per cable). Which algorithm wins the
#    large vectors now, and why?
# 4. Rabenseifner's first step sends half of every vector across the racks. Which
#    renumbering of the hosts would keep its large steps inside the racks?
