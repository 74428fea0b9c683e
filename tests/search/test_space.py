"""SearchSpace: the default ranges, edits in Python and TOML, Optuna suggestions, refusals."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nncv.exceptions import NncvError, SearchError
from nncv.search import Categorical, Float, Int, SearchSpace


def test_default_space_is_the_issue_s_ranges():
    space = SearchSpace.default()
    assert space["learning_rate"] == Float(1e-4, 1e-1, log=True)
    for name in ("decay", "l2", "l1"):
        assert space[name] == Float(1e-7, 1e-2, log=True, or_zero=True)
    assert space["dropout"] == Float(0.0, 0.6)
    assert space["hidden_size"] == Int(16, 512, log=True)
    assert "optimizer" not in space and "batch_size" not in space and "n_layers" not in space
    full = SearchSpace.default(optimizer=True, batch_size=True, n_layers=True)
    assert set(full["optimizer"].choices) == {"adam", "sgd", "rmsprop", "adagrad"}
    assert full["batch_size"].choices == (32, 64, 128, 256)
    assert full["n_layers"] == Int(1, 3)


def test_edits_return_new_spaces_and_leave_the_original():
    space = SearchSpace.default()
    narrowed = space.with_range("learning_rate", low=1e-3, high=1e-2)
    widened = space.with_range("hidden_size", high=1024)
    extended = space.set(activation=Categorical(["relu", "tanh"]))
    dropped = space.drop("l1", "decay")
    assert narrowed["learning_rate"] == Float(1e-3, 1e-2, log=True)
    assert widened["hidden_size"] == Int(16, 1024, log=True)
    assert extended["activation"].choices == ("relu", "tanh")
    assert list(dropped) == ["learning_rate", "l2", "dropout", "hidden_size"]
    assert space == SearchSpace.default()


def test_toml_round_trip_and_hand_written_file(tmp_path):
    space = SearchSpace.default(optimizer=True, batch_size=True, n_layers=True).set(
        activation=Categorical(["relu", "tanh"]), nesterov=Categorical([True, False])
    )
    assert SearchSpace.from_toml(space.to_toml(tmp_path / "space.toml")) == space
    path = tmp_path / "mine.toml"
    path.write_text(
        """
        [learning_rate]
        type = "float"
        low = 1e-3
        high = 0.3
        log = true

        [l2]
        type = "float"
        low = 1e-6
        high = 1e-3
        log = true
        or_zero = true

        [hidden_size]
        type = "int"
        low = 32
        high = 64
        step = 32
        """
    )
    loaded = SearchSpace.from_toml(path)
    assert loaded == SearchSpace(
        learning_rate=Float(1e-3, 0.3, log=True),
        l2=Float(1e-6, 1e-3, log=True, or_zero=True),
        hidden_size=Int(32, 64, step=32),
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Float(1e-1, 1e-4, log=True), "low=0.1 > high=0.0001"),
        (lambda: Int(8, 4), "low=8 > high=4"),
        (lambda: Float(0.0, 1.0, log=True), "low must be > 0"),
        (lambda: Int(0, 4, log=True), "low must be >= 1"),
        (lambda: Categorical([]), "non-empty"),
        (lambda: Float(float("nan"), 1.0), "finite number"),
        (lambda: Int(1.5, 4), "must be an integer"),
    ],
)
def test_invalid_ranges_are_refused_with_the_name(make, message):
    with pytest.raises(SearchError, match="bad_param") as info:
        SearchSpace(bad_param=make())
    assert message in str(info.value)
    assert isinstance(info.value, NncvError)


def test_with_range_low_above_high_is_refused():
    with pytest.raises(SearchError, match="learning_rate has low=0.5 > high=0.1"):
        SearchSpace.default().with_range("learning_rate", low=0.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[lr]\ntype = "float"\nlow = 1.0\nhigh = 0.5\n', "lr has low=1.0 > high=0.5"),
        ('[lr]\ntype = "flaot"\nlow = 1.0\nhigh = 2.0\n', "did you mean 'float'"),
        ('[lr]\ntype = "float"\nlow = 1.0\nhihg = 2.0\n', "did you mean 'high'"),
        ('[lr]\ntype = "float"\nlow = 1.0\n', "lr (float)"),
        ("[lr\n", "not valid"),
    ],
)
def test_bad_toml_names_the_problem(tmp_path, text, message):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SearchError) as info:
        SearchSpace.from_toml(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_toml_file_is_a_search_error(tmp_path):
    with pytest.raises(SearchError, match="cannot read search space"):
        SearchSpace.from_toml(tmp_path / "absent.toml")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(KeyError, match="did you mean 'dropout'"):
        SearchSpace.default().drop("dropuot")


def test_n_layers_needs_hidden_size():
    with pytest.raises(SearchError, match="n_layers needs hidden_size"):
        SearchSpace(n_layers=Int(1, 3))


def test_suggest_assembles_hidden_layer_sizes_and_zero_switches():
    space = SearchSpace.default(n_layers=True)
    trial = optuna.trial.FixedTrial(
        {
            "learning_rate": 0.01,
            "decay_enabled": False,
            "l2_enabled": True,
            "l2": 1e-4,
            "l1_enabled": False,
            "dropout": 0.2,
            "hidden_size": 64,
            "n_layers": 2,
        }
    )
    params = space.suggest(trial)
    assert params == {
        "learning_rate": 0.01,
        "decay": 0.0,
        "l2": 1e-4,
        "l1": 0.0,
        "dropout": 0.2,
        "hidden_layer_sizes": (64, 64),
    }
    # Without n_layers the estimator's own depth is kept.
    one_layer = SearchSpace(hidden_size=Int(16, 512, log=True))
    assert one_layer.suggest(optuna.trial.FixedTrial({"hidden_size": 32}), hidden_layers=3) == {
        "hidden_layer_sizes": (32, 32, 32)
    }


def test_trial_params_enqueue_exactly_the_values():
    space = SearchSpace.default()
    values = {"learning_rate": 0.02, "decay": 0.0, "l2": 3e-5, "l1": 0.0, "dropout": 0.1}
    values["hidden_size"] = 40
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(space.trial_params(**values))
    seen = {}

    def objective(trial):
        seen.update(space.suggest(trial))
        return 0.0

    study.optimize(objective, n_trials=1)
    expected = {k: v for k, v in values.items() if k != "hidden_size"}
    assert seen == {**expected, "hidden_layer_sizes": (40,)}


def test_the_sampler_draws_inside_the_ranges():
    space = SearchSpace.default(optimizer=True, n_layers=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = []
    study.optimize(lambda t: draws.append(space.suggest(t)) or 0.0, n_trials=60)
    zero_l2 = sum(d["l2"] == 0 for d in draws)
    assert 0 < zero_l2 < 60  # both "off" and "on" are explored
    for d in draws:
        assert 1e-4 <= d["learning_rate"] <= 1e-1
        assert d["l2"] == 0 or 1e-7 <= d["l2"] <= 1e-2
        assert 0 <= d["dropout"] <= 0.6
        assert 1 <= len(d["hidden_layer_sizes"]) <= 3
        assert all(16 <= h <= 512 for h in d["hidden_layer_sizes"])


def test_fingerprint_follows_any_change():
    space = SearchSpace.default()
    assert space.fingerprint() == SearchSpace.default().fingerprint()
    assert space.fingerprint() != space.with_range("dropout", high=0.5).fingerprint()
    assert space.fingerprint() != space.drop("l1").fingerprint()


@given(
    low=st.floats(1e-9, 1e3, allow_nan=False),
    factor=st.floats(1.0, 1e6),
    log=st.booleans(),
    or_zero=st.booleans(),
    choices=st.lists(
        st.one_of(st.text(max_size=5), st.integers(-5, 5)), min_size=1, max_size=4, unique=True
    ),
)
def test_toml_round_trip_property(low, factor, log, or_zero, choices):
    # Mixed int/str choices only; bool/int mixes collide as Python dict keys anyway.
    space = SearchSpace(
        rate=Float(low, low * factor, log=log, or_zero=or_zero),
        width=Int(1, 1 + int(factor) % 1000),
        pick=Categorical(choices),
    )
    assert SearchSpace.from_toml_string(space.to_toml_string()) == space


# ------------------------------------------------ other spellings of a range (issue 15, 5)
def test_optuna_distributions_are_accepted():
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    space = SearchSpace(
        learning_rate=FloatDistribution(1e-4, 1e-1, log=True),
        dropout=FloatDistribution(0.0, 0.5),
        hidden_size=IntDistribution(16, 128, step=16),
        n_layers=IntDistribution(1, 4, log=True),
        activation=CategoricalDistribution(["relu", "tanh"]),
    )
    assert space == SearchSpace(
        learning_rate=Float(1e-4, 1e-1, log=True),
        dropout=Float(0.0, 0.5),
        hidden_size=Int(16, 128, step=16),
        n_layers=Int(1, 4, log=True),
        activation=Categorical(("relu", "tanh")),
    )
    # the study sees the same distributions as it would from Optuna directly
    study = optuna.create_study()
    trial = study.ask()
    space.suggest(trial)
    assert trial.distributions["learning_rate"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert trial.distributions["hidden_size"] == IntDistribution(16, 128, step=16)


def test_optuna_float_with_step_refused_by_name():
    from optuna.distributions import FloatDistribution

    with pytest.raises(SearchError, match="dropout is a FloatDistribution with step=0.1"):
        SearchSpace(dropout=FloatDistribution(0.0, 0.5, step=0.1))


def test_plain_dicts_tuples_and_lists_are_accepted():
    expected = SearchSpace.default(optimizer=True)
    assert SearchSpace(expected.to_dict()) == expected  # to_dict's own layout, by keyword too
    assert SearchSpace(**expected.to_dict()) == expected
    space = SearchSpace(
        {
            "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
            "l2": {"low": 1e-7, "high": 1e-2, "log": True, "or_zero": True},
            "hidden_size": {"low": 16, "high": 512, "log": True},
            "optimizer": {"choices": ["adam", "sgd"]},
            "dropout": (0.0, 0.5),
            "batch_size": [32, 64],
            "n_layers": (1, 3),
        }
    )
    assert space == SearchSpace(
        learning_rate=Float(1e-4, 1e-1, log=True),
        l2=Float(1e-7, 1e-2, log=True, or_zero=True),
        hidden_size=Int(16, 512, log=True),
        optimizer=Categorical(("adam", "sgd")),
        dropout=Float(0.0, 0.5),
        batch_size=Categorical((32, 64)),
        n_layers=Int(1, 3),
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ({"low": 1e-4, "hihg": 1e-1}, "has no setting 'hihg'"),
        ({"type": "float", "low": 1.0}, "missing"),
        ((0.1, "a"), "must be a Float, Int or Categorical range"),
        ((0.5, 0.1), "low=0.5 > high=0.1"),
        ({1, 2}, "must be a Float, Int or Categorical range"),
    ],
)
def test_bad_plain_forms_named(value, message):
    with pytest.raises(SearchError, match="bad_param") as info:
        SearchSpace(bad_param=value)
    assert message in str(info.value)
