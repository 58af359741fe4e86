"""Secure aggregation (``strategy.secure_aggregation``, Bonawitz et al. 2017): the
arithmetic (Shamir, key agreement, masks that cancel); in a run, the aggregate is FedAvg's
(fixed point) with and without dropouts; the server holds only masked inputs and never
both secrets of one client; the bytes are the protocol's, O(n) per client; bad settings
are refused by name.
"""
import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run, secagg
import simdml.strategies.secure_aggregation as protocol

BASE = {"data.dataset": "synthetic", "data.n_samples": 400, "data.partition": "size_skew",
        "cluster.workers": 6, "stop.rounds": 5, "strategy.kind": "fedavg",
        "strategy.local_epochs": 2}
SECURE = {**BASE, "strategy.secure_aggregation": True}


def test_any_t_shares_rebuild_the_secret_and_fewer_do_not():
    rng = np.random.default_rng(0)
    secret = secagg.seed_of(rng)
    shares = secagg.share(secret, 7, 4, rng)
    for pick in ((0, 1, 2, 3), (6, 4, 2, 0), (1, 3, 5, 6)):
        assert secagg.reconstruct({i + 1: shares[i] for i in pick}) == secret
    assert secagg.reconstruct({i + 1: shares[i] for i in (0, 1, 2)}) != secret


def test_agreed_keys_match_and_pairwise_masks_cancel():
    rng = np.random.default_rng(1)
    (a, pa), (b, pb) = secagg.keypair(rng), secagg.keypair(rng)
    assert secagg.agree(a, pb) == secagg.agree(b, pa)
    x = np.array([1.5, -2.25, 1e-3])
    m = secagg.mask(secagg.agree(a, pb), 3)
    total = (secagg.encode(x) + m) + (secagg.encode(-x / 2) - m)
    np.testing.assert_allclose(secagg.decode(total), x / 2, atol=2**-23)
    assert secagg.xor_share(7, secagg.xor_share(7, (11, 13))) == (11, 13)


def test_the_secure_aggregate_is_fedavg_s_to_fixed_point():
    plain, secure = run(Scenario().replace(**BASE)), run(Scenario().replace(**SECURE))
    np.testing.assert_allclose(secure.model.params_, plain.model.params_, rtol=0, atol=1e-7)
    assert secure.summary["sim_time"] > plain.summary["sim_time"]   # four rounds of messages


def _watch_inputs_and_sums(monkeypatch):
    """Record every client's input ``(n_u, w_u)`` by (round, client) and every round's
    ``(version, server_round's result)``, as the run makes them."""
    import simdml.strategies.federated as federated
    inputs, sums = {}, []
    real_train, real_round = federated._train, protocol.server_round

    def train(job, node, fed, task):
        params = yield from real_train(job, node, fed, task)
        if params is not None:
            inputs[(task.version, task.client)] = (job.shards[task.client].n_rows, params)
        return params

    def watched(job, fed, version, *args):
        out = yield from real_round(job, fed, version, *args)
        sums.append((version, out))
        return out
    monkeypatch.setattr(federated, "_train", train)
    monkeypatch.setattr(protocol, "server_round", watched)
    return inputs, sums


def test_dropouts_below_the_threshold_are_recovered_from_the_shares(monkeypatch):
    """Up to half the participants leave while training (after sharing their keys): in
    every round the server unmasks, the sum it gets is exactly the plain sum of the
    survivors' inputs (to fixed point), their mask keys rebuilt from the others' shares;
    a round with fewer survivors than the threshold t = floor(n / 2) + 1 is abandoned."""
    inputs, sums = _watch_inputs_and_sums(monkeypatch)
    r = run(Scenario().replace(**{**SECURE, "clients.dropout": 0.3, "clients.deadline": 10.0,
                                  "cluster.workers": 8, "stop.rounds": 6}))
    done = [(v, out) for v, out in sums if out is not None]
    assert len(done) == 6 and sum(h["dropped"] for h in r.history) > 3
    for version, (kept, weighted, rows) in done:
        assert rows == sum(inputs[(version, c)][0] for c in kept)
        expected = sum(n * p for n, p in (inputs[(version, c)] for c in kept))
        np.testing.assert_allclose(weighted, expected, rtol=0, atol=1e-5)
    failed = [v for v, out in sums if out is None]
    assert r.summary.get("rounds_without_reports", 0) == len(failed) > 0


def test_clients_that_leave_before_revealing_are_summed_and_unmasked_by_the_others(
        monkeypatch):
    """``clients.unmask_dropout``: a client leaves after sending its masked input. Its
    input is in the sum, which is exactly the plain sum of every input of ``U3`` (to fixed
    point): the others' shares of its ``b_u`` unmask it. A round where fewer than ``t``
    clients reveal is abandoned (``unmask_failures``); the leavers are counted."""
    inputs, sums = _watch_inputs_and_sums(monkeypatch)
    revealed, real_reveal = [], protocol.Reveal

    class Watched(real_reveal):
        def __new__(cls, worker, version, b, s):
            revealed.append(len(sums))                     # the round it belongs to
            return real_reveal.__new__(cls, worker, version, b, s)
    monkeypatch.setattr(protocol, "Reveal", Watched)
    r = run(Scenario().replace(**{**SECURE, "clients.unmask_dropout": 0.4,
                                  "clients.deadline": 10.0, "cluster.workers": 8,
                                  "stop.rounds": 6}))
    done = [(i, v, out) for i, (v, out) in enumerate(sums) if out is not None]
    assert len(done) == 6
    left = 0
    for i, version, (kept, weighted, rows) in done:
        assert len(kept) == 8                                  # every input is summed
        gone = 8 - revealed.count(i)
        assert 0 <= gone <= 3                                  # t = 5 revealed
        left += gone
        expected = sum(n * p for n, p in (inputs[(version, c)] for c in kept))
        np.testing.assert_allclose(weighted, expected, rtol=0, atol=1e-5)
    assert left > 0
    failed = [v for v, out in sums if out is None]
    assert r.summary.get("unmask_failures", 0) == len(failed) > 0
    assert r.summary["unmask_dropouts"] == 8 * len(sums) - len(revealed)


def test_the_server_holds_only_masked_inputs_and_never_both_secrets(monkeypatch):
    """What the server received, decoded, is noise of the ring's size (|y| ~ 2^39 after
    the fixed point), not an input (|n_u w_u| < 10^4); and what it asks a client to reveal
    is b for those in, s_sk for those out: never both for one."""
    held, asked = [], []
    real_round, real_reveal = protocol.server_round, protocol.Reveal

    def watched(job, fed, *args):
        out = yield from real_round(job, fed, *args)
        held.append(dict(fed.last_received))
        return out

    class Watched(real_reveal):
        def __new__(cls, worker, version, b, s):
            asked.append((set(b), set(s)))
            return real_reveal.__new__(cls, worker, version, b, s)
    monkeypatch.setattr(protocol, "server_round", watched)
    monkeypatch.setattr(protocol, "Reveal", Watched)
    run(Scenario().replace(**{**SECURE, "clients.dropout": 0.3, "clients.deadline": 10.0,
                              "cluster.workers": 8}))
    assert held and asked
    for inputs in held:
        for words in inputs.values():
            assert np.median(np.abs(secagg.decode(words))) > 1e6
    assert all(not (b & s) for b, s in asked)


def test_a_round_s_bytes_are_the_protocol_s_linear_in_the_clients_per_client():
    """n clients, d parameters, no dropout: per client Keys 48 B, KeyList 8 + 40 n,
    Shares 16 + 40 (n - 1), Forward 8 + 40 (n - 1), Masked 16 + 8 (d + 1), Unmask
    8 (1 + n), Reveal 16 + 24 n; beside the task (16 + 8 d) it is O(n) a client."""
    for n in (4, 8):
        changes = {"cluster.workers": n, "data.partition": "iid", "stop.rounds": 3}
        plain = run(Scenario().replace(**{**BASE, **changes}))
        secure = run(Scenario().replace(**{**SECURE, **changes}))
        d = secure.model.params_.size
        task = 16 + 8 * d
        report = 16 + 8 * d
        per_client = (48 + (8 + 40 * n) + (16 + 40 * (n - 1)) + (8 + 40 * (n - 1))
                      + (16 + 8 * (d + 1)) + 8 * (1 + n) + (16 + 24 * n))
        assert plain.summary["bytes_sent"] == 3 * n * (task + report)
        assert secure.summary["bytes_sent"] == 3 * n * (task + per_client)


@pytest.mark.parametrize("changes, match", [
    ({"strategy.mode": "buffered"}, "strategy.mode"),
    ({"strategy.algorithm": "scaffold"}, "strategy.algorithm"),
    ({"aggregation.rule": "median"}, "aggregation.rule"),
    ({"privacy.clip": 1.0}, "\\[privacy\\]"),
    ({"clients.unmask_dropout": 0.1}, "needs a finite clients.deadline"),
    ({"strategy.secure_aggregation": False, "clients.unmask_dropout": 0.1,
      "clients.deadline": 5.0}, "set strategy.secure_aggregation"),
    ({"clients.unmask_dropout": 1.5}, "clients.unmask_dropout"),
])
def test_a_secure_aggregation_that_cannot_be_is_refused_by_name(changes, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario().replace(**{**SECURE, **changes})
