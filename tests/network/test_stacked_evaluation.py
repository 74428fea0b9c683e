"""Networks scored in stacked passes give, bit for bit, what each gives scored alone."""

from __future__ import annotations

import numpy as np
import pytest

from nncv.exceptions import ConfigurationError
from nncv.network import Network, metrics, stacked_evaluation
from nncv.network.losses import mean_loss
from nncv.network.stacked_evaluation import StackedEvaluator

# Unequal row counts (two groups, one of them of a single network), some not multiples of 4:
# BLAS matrix-vector products change their last bits with the number of rows.
SIZES = (27, 27, 26, 27, 31)


def _networks(dtype, **kwargs):
    networks = [Network(6, [9], 4, dtype=dtype, **kwargs) for _ in SIZES]
    for seed, network in enumerate(networks):
        network.initialize(np.random.default_rng(seed))
        rng = np.random.default_rng(100 + seed)
        network.parameters[...] += rng.normal(scale=0.3, size=network.parameters.shape)
        if network.running_statistics.size:
            network.running_statistics[...] = rng.uniform(0.5, 2.0, network.running_statistics.size)
    return networks


def _data(n_outputs, kind, weighted, target_dtype=np.float64):
    rng = np.random.default_rng(7)
    data = []
    for n_rows in SIZES:
        inputs = rng.normal(size=(n_rows, 6))
        if kind == "one-hot":
            targets = np.eye(n_outputs)[rng.integers(0, n_outputs, n_rows)]
        elif kind == "multilabel":
            targets = (rng.random((n_rows, n_outputs)) < 0.4).astype(float)
        else:
            targets = rng.normal(size=(n_rows, n_outputs))
        weights = rng.uniform(0.2, 2.0, n_rows) if weighted else None
        data.append((inputs, targets.astype(target_dtype), weights))
    return data


def _alone(network, inputs, targets, weights, score):
    outputs = network.predict(inputs)
    loss = mean_loss(network.loss.per_sample(outputs, targets), weights)
    return loss, score(outputs, targets, weights)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("loss", "kind", "score", "kwargs"),
    [
        ("softmax_cross_entropy", "one-hot", metrics.accuracy, {}),
        ("softmax_cross_entropy", "one-hot", metrics.accuracy, {"batch_norm": True}),
        ("sigmoid_cross_entropy", "multilabel", metrics.accuracy, {"dropout": 0.3}),
        ("mse", "real", metrics.r2, {}),
    ],
    ids=["softmax", "batch-norm", "multilabel-dropout", "regression"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_stacked_scores_equal_each_network_alone(dtype, loss, kind, score, kwargs, weighted):
    networks = _networks(dtype, loss=loss, **kwargs)
    data = _data(4, kind, weighted)
    evaluator = StackedEvaluator(networks[0], data, score)
    expected = {f: _alone(networks[f], *data[f], score) for f in range(len(SIZES))}
    assert evaluator.evaluate(networks) == expected
    # a subset (folds that stopped early are left out), and again: buffers are reused
    assert evaluator.evaluate(networks, [1, 2, 4]) == {f: expected[f] for f in (1, 2, 4)}
    assert evaluator.evaluate(networks) == expected


def test_targets_of_their_own_dtype_and_no_score():
    networks = _networks(np.float32)
    data = _data(4, "one-hot", False, np.float32)
    data[1] = (data[1][0], data[1][1].astype(np.float64), None)  # another group
    evaluator = StackedEvaluator(networks[0], data)
    for fold, (loss, score) in evaluator.evaluate(networks).items():
        assert loss == _alone(networks[fold], *data[fold], metrics.accuracy)[0]
        assert np.isnan(score)


def test_rows_that_cannot_be_stacked_are_refused():
    networks = _networks(np.float64)
    data = _data(4, "one-hot", False)
    with pytest.raises(ConfigurationError, match="fold 2's rows"):
        StackedEvaluator(networks[0], [*data[:2], (data[2][0].ravel(), data[2][1], None)])
    with pytest.raises(ConfigurationError, match="fold 0 has rows of shape"):
        StackedEvaluator(networks[0], [(data[0][0][:, :5], data[0][1], None)])


@pytest.mark.parametrize("budget", [1, 27 * 9 * 8 * 2])  # one network a pass; two
def test_large_groups_are_scored_a_few_networks_a_pass(budget, monkeypatch):
    networks = _networks(np.float64)
    data = _data(4, "one-hot", True)
    evaluator = StackedEvaluator(networks[0], data, metrics.accuracy)
    expected = evaluator.evaluate(networks)
    monkeypatch.setattr(stacked_evaluation, "EVALUATION_BYTES", budget)
    assert evaluator._pass_size(27) == (1 if budget == 1 else 2)
    assert evaluator.evaluate(networks) == expected
    assert sorted(evaluator._stacks) == ([1, 3] if budget == 1 else [1, 2, 3])
