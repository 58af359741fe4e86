"""simdml: an educational discrete-event simulator of distributed machine learning.

The math is real, the time is simulated: a virtual cluster runs real numpy training on
in-process data shards while a simulated clock says how long it would have taken.

>>> import simdml
>>> result = simdml.run("iris_sync")                     # doctest: +SKIP
>>> result.summary["final_accuracy"]                     # doctest: +SKIP
"""
from .cluster import Cluster, Crash, Node
from .network import Network
from .engine import Deadlock, Interrupt, Simulator
from .experiment import DataSplit, Result, prepare_data, run
from .scenario import Scenario, ScenarioError, bundled_scenarios, load_scenario
from .sections import (ClusterConfig, CrashConfig, DataConfig, FaultsConfig, ImbalanceConfig,
                       LinkConfig, ModelConfig, NetworkConfig, OptimizerConfig,
                       PartitionConfig, SchedulingConfig, StopConfig, StrategyConfig)
from .optim import Optimizer, Schedule, State
from .sweep import Comparison, SweepResult, compare, sweep
from .trace import Trace

from ._version import __version__

__all__ = ["Simulator", "Interrupt", "Deadlock", "Cluster", "Node", "Network", "Crash",
           "Scenario", "ScenarioError", "load_scenario", "bundled_scenarios", "run", "Result",
           "prepare_data", "DataSplit", "ClusterConfig", "NetworkConfig", "LinkConfig",
           "FaultsConfig", "CrashConfig", "PartitionConfig", "DataConfig", "ImbalanceConfig",
           "ModelConfig", "StrategyConfig", "OptimizerConfig", "SchedulingConfig", "StopConfig",
           "Optimizer", "Schedule", "State",
           "Trace", "compare", "Comparison", "sweep", "SweepResult", "__version__"]
