"""How a cluster trains: each strategy is a few generator processes.

``STRATEGIES`` maps a scenario's ``strategy.kind`` to its options dataclass, its
``start(job) -> Process`` (the process whose end ends training) and the learners
(``model.kind``) it can train.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models import GRADIENT_MODELS
from . import (admm, allreduce, asynchronous, cascade, ddp, federated, fedbuff, gossip, hist_tree,
               hybrid, local_fusion, local_sgd, pipeline_parallel, sync, tensor_parallel,
               voting_tree)
from .checkpoints import Checkpoints
from .job import Job, Shard, Shards
from .monitor import Monitor
from .stats import Stats

__all__ = ["STRATEGIES", "StrategySpec", "smaller_lr", "one_step", "Job", "Monitor", "Shard", "Shards", "Stats", "Checkpoints"]


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: its settings, its start, and what it can and cannot do.

    A rule is a function of the whole ``Scenario`` that raises ``ValueError`` naming
    the dotted keys that do not go together; the scenario runs ``model_rules`` once it
    knows that the strategy trains the model, and ``rules`` after its own rules of the
    cluster and the scheduling (``simdml._rules.RULES`` gives the order).
    """

    options: type   # frozen kw_only dataclass of the strategy's own settings
    start: object   # start(job) -> Process
    summary: str
    survives_faults: bool = True  # False: crashes and lost messages would corrupt its math
    models: tuple[str, ...] = GRADIENT_MODELS  # the model kinds it can train
    checkpoints: bool = False     # its server checkpoints and restarts (faults.checkpoint_every)
    model_rules: tuple = ()       # rules of its options against the model
    rules: tuple = ()             # rules of its options against the cluster
    stall_hint: str | None = None  # what to set when a lost message stalls it for good
    divergence_hint: object = None  # fn(scenario) -> str: what to change when it diverges;
                                    # None: strategy.lr is not what makes its steps
    optimizer_steps: object = None  # fn(options) -> steps of [optimizer] per update (the
                                    # schedule's clock); None: it has no [optimizer]
    optimizer_lr: object = None   # fn(options) -> the [optimizer]'s lr; None: strategy.lr
    timing_only: bool = False     # it runs on shapes (math = false): no step reads a value


def smaller_lr(s) -> str:
    """The hint of every strategy whose steps are strategy.lr times a gradient."""
    return "try a smaller strategy.lr"


def one_step(options) -> int:
    """The optimizer steps once per update of the global model."""
    return 1


STRATEGIES: dict[str, StrategySpec] = {
    "sync": StrategySpec(sync.SyncOptions, sync.start,
                         "synchronous parameter server (exact full-batch gradient descent); "
                         "wait_for = k uses the first k of n gradients",
                         checkpoints=True, rules=(sync.wait_for_at_most_workers,),
                         stall_hint="set strategy.round_timeout so that a round can close "
                                    "without it", divergence_hint=smaller_lr,
                         timing_only=True, optimizer_steps=one_step),
    "async": StrategySpec(asynchronous.AsyncOptions, asynchronous.start,
                          "asynchronous parameter server: every push updates at once",
                          divergence_hint=smaller_lr, timing_only=True, optimizer_steps=one_step),
    "ssp": StrategySpec(asynchronous.SSPOptions, asynchronous.start,
                        "stale-synchronous parallel: at most `staleness` pushes ahead",
                        divergence_hint=smaller_lr, timing_only=True, optimizer_steps=one_step),
    "allreduce": StrategySpec(allreduce.AllReduceOptions, allreduce.start,
                              "all-reduce of gradients (the ring, or `collective`), no server",
                              survives_faults=False, divergence_hint=smaller_lr,
                              rules=(allreduce.group_size_divides_the_workers,),
                              timing_only=True, optimizer_steps=one_step),
    "ddp": StrategySpec(ddp.DDPOptions, ddp.start,
                        "distributed data parallel: layer-by-layer backward, gradient buckets "
                        "all-reduced on the ring as soon as they are ready",
                        survives_faults=False, models=ddp.MODELS, divergence_hint=smaller_lr,
                        rules=(allreduce.group_size_divides_the_workers,
                               ddp.zero_halves_fit_the_workers),
                        timing_only=True, optimizer_steps=one_step),
    "pipeline": StrategySpec(pipeline_parallel.PipelineOptions, hybrid.start_pipeline,
                             "pipeline parallelism: the layers in stages, one per worker; "
                             "micro-batches through them (gpipe or 1f1b), a flush, a step",
                             survives_faults=False, models=pipeline_parallel.MODELS,
                             model_rules=(pipeline_parallel.stages_fit_the_layers,),
                             divergence_hint=smaller_lr, timing_only=True, optimizer_steps=one_step),
    "tensor": StrategySpec(tensor_parallel.TensorOptions, hybrid.start_tensor,
                           "tensor parallelism: every layer pair split Megatron-style over "
                           "the workers, its partial sums all-reduced",
                           survives_faults=False, models=tensor_parallel.MODELS,
                           model_rules=(tensor_parallel.pairs_fit_the_workers,),
                           rules=(allreduce.group_size_divides_the_workers,),
                           divergence_hint=smaller_lr, timing_only=True, optimizer_steps=one_step),
    "hybrid": StrategySpec(hybrid.HybridOptions, hybrid.start,
                           "3D parallelism: data_parallel x tensor_parallel x "
                           "pipeline_parallel workers, every factorisation the same model",
                           survives_faults=False, models=hybrid.MODELS,
                           model_rules=(hybrid.factors_fit,),
                           rules=(hybrid.group_size_fits_the_factors,),
                           divergence_hint=smaller_lr, timing_only=True, optimizer_steps=one_step),
    "gossip": StrategySpec(gossip.GossipOptions, gossip.start,
                           "decentralized SGD (D-PSGD): a local step, then an average with the "
                           "neighbours on a graph; no server",
                           survives_faults=False, rules=(gossip.graph_fits_the_workers,),
                           divergence_hint=smaller_lr, optimizer_steps=one_step),
    "local_sgd": StrategySpec(local_sgd.LocalSGDOptions, local_sgd.start,
                              "local SGD / federated averaging: local_steps, then an average",
                              divergence_hint=local_sgd.divergence_hint,
                              timing_only=True, optimizer_steps=local_sgd.local_steps),
    "fedavg": StrategySpec(federated.FedAvgOptions, fedbuff.start,
                           "federated averaging: sampled clients, local epochs, a server "
                           "optimizer on the average model's change (FedProx with mu)",
                           survives_faults=False, rules=(federated.clients_fit,),
                           divergence_hint=smaller_lr, optimizer_steps=one_step,
                           optimizer_lr=federated.server_lr),
    "cascade_svm": StrategySpec(cascade.CascadeOptions, cascade.start,
                                "cascade SVM: support vectors merge up a binary tree, the top "
                                "is fed back until it stops changing",
                                survives_faults=False, models=("kernel_svm",)),
    "admm_svm": StrategySpec(admm.ADMMOptions, admm.start,
                             "consensus ADMM for the linear SVM: local proximal solves, "
                             "a global average, until the residuals are small",
                             survives_faults=False, models=("svm",)),
    "local_fusion": StrategySpec(local_fusion.LocalFusionOptions, local_fusion.start,
                                 "local models, one per shard, fused by a rule (best, vote, "
                                 "soft, average)",
                                 survives_faults=False, models=local_fusion.MODELS,
                                 model_rules=(local_fusion.average_needs_parameter_vectors,
                                              local_fusion.local_fits_end_within_the_wall_time),
                                 divergence_hint=local_fusion.divergence_hint),
    "hist_tree": StrategySpec(hist_tree.HistTreeOptions, hist_tree.start,
                              "data-parallel histogram tree: workers build class histograms "
                              "per level, the server sums them and splits (exact)",
                              survives_faults=False, models=("tree",)),
    "voting_tree": StrategySpec(voting_tree.VotingTreeOptions, voting_tree.start,
                                "voting-parallel tree: workers vote for their top_k features, "
                                "only the 2 top_k most voted send histograms",
                                survives_faults=False, models=("tree",)),
}
