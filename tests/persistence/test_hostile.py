"""Hostile artifacts (issue 14, section 1), crafted with every checksum recomputed: loading
never runs code, never exhausts the machine, never returns a model that predicts wrongly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nncv import NNClassifier, make_pipeline
from nncv.exceptions import ArtifactError
from nncv.persistence import inspect, load, save
from nncv.persistence._npz import describe, write_npz

from .conftest import SMALL, read_manifest, resign, write_manifest


def read_arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def replace_arrays(
    directory: Path, manifest: dict, changed: dict | None = None, **named: np.ndarray
) -> None:
    """Put ``changed`` (key → array; in ``named`` ``__`` stands for ``.``) in arrays.npz,
    describe every array in the manifest, re-sign."""
    arrays = read_arrays(directory)
    arrays.update(changed or {})
    arrays.update({key.replace("__", "."): value for key, value in named.items()})
    (directory / "arrays.npz").write_bytes(write_npz(arrays))
    manifest["arrays"] = {key: describe(value) for key, value in arrays.items()}
    write_manifest(directory, manifest)


def net_node(manifest: dict) -> dict:
    return manifest["root"]["params"]["steps"][1]["tuple"][1]["estimator"]


@pytest.fixture
def pipe_artifact(tmp_path, X):
    pipe = make_pipeline("standard", **SMALL).fit(X, np.arange(len(X)) % 3)
    return save(pipe, tmp_path / "model"), pipe


# --------------------------------------------------------------------------- code must not run
def test_a_pipeline_memory_directory_is_refused(tmp_path, pipe_artifact):
    """A planted joblib cache would be unpickled when the loaded pipeline is refit."""
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    manifest["root"]["params"]["memory"] = str(tmp_path / "planted-cache")
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match="'memory' of Pipeline .* may only hold None"):
        load(path)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"numpy_type": "float64"}, "holds a dtype"),  # a callable where a string option goes
        ("$(touch /tmp/x)", "is not a str among|must be a str among|parameter"),
    ],
)
def test_a_scaler_param_outside_its_constraints_is_refused(pipe_artifact, value, message):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    scaler = manifest["root"]["params"]["steps"][0]["tuple"][1]["estimator"]
    scaler["params"]["with_mean"] = value
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match=message):
        load(path)


# --------------------------------------------------------------------------- wrong shapes
@pytest.mark.parametrize("width", [1, 10])
@pytest.mark.parametrize("name", ["mean_", "scale_", "var_"])
def test_a_scaler_array_of_the_wrong_width_is_refused_naming_it(pipe_artifact, width, name):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    replace_arrays(path, manifest, **{f"steps__0__1__{name}": np.ones(width)})
    with pytest.raises(ArtifactError, match=f"'{name}' has shape \\({width},\\).*must be \\(4,\\)"):
        load(path)


def test_classes_cut_short_for_a_ten_output_network_are_refused(tmp_path, X):
    y = np.arange(len(X)) % 10
    path = save(NNClassifier(**SMALL).fit(X, y), tmp_path / "ten")
    manifest = read_manifest(path)
    replace_arrays(path, manifest, classes=np.arange(5))
    with pytest.raises(ArtifactError, match="'classes' has shape \\(5,\\).*implies \\(10,\\)"):
        load(path)


def test_string_classes_cut_short_are_refused(tmp_path, X):
    y = np.array(["a", "b", "c"])[np.arange(len(X)) % 3]
    path = save(NNClassifier(**SMALL).fit(X, y), tmp_path / "strings")
    manifest = read_manifest(path)
    manifest["root"]["state"]["classes"] = ["a", "b"]
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match="state.classes holds 2 labels"):
        load(path)


def test_edited_layer_shapes_are_refused(pipe_artifact):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    net_node(manifest)["state"]["layer_shapes"] = [[4, 6], [6, 3]]
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match="layer_shapes .* does not match the network"):
        load(path)


@pytest.mark.parametrize(
    "name, value",
    [
        ("hidden_layer_sizes", {"tuple": [7]}),
        ("activation", "tanh"),
        ("dtype", "float64"),
    ],
)
def test_params_describing_another_network_are_refused(pipe_artifact, name, value):
    """A refit or partial_fit of the loaded model would silently build that other network."""
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    net_node(manifest)["state"]["params"][name] = value
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match=f"parameters say {name}="):
        load(path)


@pytest.mark.parametrize(
    "key, array",
    [
        ("network.parameters", np.zeros(44, np.float32)),
        ("network.parameters", np.zeros(43, np.float64)),
        ("optimizer.squared_gradient_sum_0", np.zeros(7, np.float32)),
        ("history.loss", np.zeros(2)),
        ("history.val_score", np.zeros((3, 1))),
    ],
)
def test_a_state_array_of_the_wrong_size_or_dtype_is_refused_naming_it(pipe_artifact, key, array):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    replace_arrays(path, manifest, **{f"steps__1__1__{key}".replace(".", "__"): array})
    with pytest.raises(ArtifactError, match=f"state array '{key}' has"):
        load(path)


def test_optimizer_moments_of_another_optimizer_are_refused(pipe_artifact):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    node = net_node(manifest)
    key = node["arrays"].pop("optimizer.gradient_sum_0")
    node["arrays"]["optimizer.velocity_0"] = key
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match="optimizer arrays .*velocity_0.* Adam optimizer keeps"):
        load(path)


def test_a_scaler_that_feeds_the_network_too_few_columns_is_refused(pipe_artifact):
    """Consistent scaler (3 columns) in front of a network taking 4: refused at load."""
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    scaler = manifest["root"]["params"]["steps"][0]["tuple"][1]["estimator"]
    scaler["attributes"]["n_features_in_"] = 3
    replace_arrays(
        path,
        manifest,
        steps__0__1__mean_=np.zeros(3),
        steps__0__1__scale_=np.ones(3),
        steps__0__1__var_=np.ones(3),
    )
    with pytest.raises(ArtifactError, match="step 'net' takes 4 features, but step 'scale'"):
        load(path)


# --------------------------------------------------------------------------- resource exhaustion
@pytest.mark.parametrize("width", [3_000_000, 10**9])
def test_a_huge_declared_network_is_refused_before_allocating_it(pipe_artifact, width):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    state = net_node(manifest)["state"]
    state["network"]["hidden_layer_sizes"] = [width]
    state["layer_shapes"] = [[4, width], [width, 3]]
    state["params"]["hidden_layer_sizes"] = {"tuple": [width]}
    write_manifest(path, manifest)
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError, match="'network.parameters' has shape \\(43,\\)"):
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def run_load_in_child(path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``load(path)`` in a child limited to 2 GiB of memory; returns its outcome."""
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
        from nncv import ArtifactError
        from nncv.persistence import load
        try:
            load({str(path)!r})
        except ArtifactError as error:
            print("REFUSED", error)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


def test_a_fifo_arrays_npz_is_refused_without_blocking(pipe_artifact):
    path, _ = pipe_artifact
    (path / "arrays.npz").unlink()
    os.mkfifo(path / "arrays.npz")
    outcome = run_load_in_child(path, timeout=60)  # blocked forever before the fix
    assert "REFUSED" in outcome.stdout and "not a regular file" in outcome.stdout, outcome


@pytest.mark.parametrize("name", ["arrays.npz", "manifest.json"])
def test_a_symlink_to_dev_zero_is_refused(pipe_artifact, name):
    path, _ = pipe_artifact
    (path / name).unlink()
    (path / name).symlink_to("/dev/zero")
    outcome = run_load_in_child(path)
    assert "REFUSED" in outcome.stdout and "symbolic link" in outcome.stdout, outcome


def test_a_symlink_to_a_valid_file_is_refused_too(tmp_path, pipe_artifact):
    path, _ = pipe_artifact
    (path / "arrays.npz").rename(tmp_path / "elsewhere.npz")
    (path / "arrays.npz").symlink_to(tmp_path / "elsewhere.npz")
    with pytest.raises(ArtifactError, match="symbolic link"):
        load(path)


def test_an_arrays_npz_larger_than_the_manifest_implies_is_not_read(pipe_artifact):
    """A sparse 16 GiB arrays.npz (no disk used) is refused after reading a bounded prefix."""
    path, _ = pipe_artifact
    with open(path / "arrays.npz", "r+b") as handle:
        handle.truncate(16 * 2**30)
    resign_sums_only = (path / "SHA256SUMS").read_text()  # the sums stay: the size is refused
    outcome = run_load_in_child(path)
    assert "REFUSED" in outcome.stdout and "larger than" in outcome.stdout, outcome
    assert (path / "SHA256SUMS").read_text() == resign_sums_only


def test_a_zip_entry_larger_than_the_manifest_implies_is_not_read(tmp_path, X):
    import zipfile

    model = NNClassifier(**SMALL).fit(X, np.arange(len(X)) % 2)
    path = save(model, tmp_path / "model.nncv")
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    files["arrays.npz"] += b"\0" * 300_000  # trailing bytes the manifest does not account for
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    for name, data in files.items():
        (unpacked / name).write_bytes(data)
    resign(unpacked)
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("SHA256SUMS", "manifest.json", "arrays.npz"):
            zf.writestr(name, (unpacked / name).read_bytes())
    with pytest.raises(ArtifactError, match="larger than the .* bytes its artifact can need"):
        load(path)


@pytest.mark.parametrize("depth", [600, 800, 950])
def test_a_deeply_nested_manifest_is_refused_by_inspect_and_load(pipe_artifact, depth):
    path, _ = pipe_artifact
    manifest = read_manifest(path)
    manifest["summary"]["padding"] = "PADDING"
    nested = "[" * depth + "0" + "]" * depth
    text = json.dumps(manifest).replace('"PADDING"', nested)
    (path / "manifest.json").write_text(text)
    resign(path)
    for reader in (inspect, load):
        with pytest.raises(ArtifactError, match="nests more than 100 levels"):
            reader(path)


@pytest.mark.parametrize("flags", [[True], [False]])
def test_batch_norm_statistics_must_fit_the_batch_norm_layers(tmp_path, X, flags):
    """Running statistics of the wrong size, or for layers without batch norm, are refused."""
    model = NNClassifier(**{**SMALL, "batch_norm": True}).fit(X, np.arange(len(X)) % 3)
    path = save(model, tmp_path / "bn")
    manifest = read_manifest(path)
    if flags == [True]:
        replace_arrays(path, manifest, {"network.running_statistics": np.zeros(7, np.float32)})
        message = "'network.running_statistics' has shape \\(7,\\).*implies \\(10,\\)"
    else:  # the description says no batch norm: its parameters and statistics do not fit
        manifest["root"]["state"]["network"]["batch_norm"] = flags
        write_manifest(path, manifest)
        message = "state array 'network.parameters' has shape \\(53,\\).*implies \\(43,\\)"
    with pytest.raises(ArtifactError, match=message):
        load(path)


@pytest.mark.parametrize(
    "columns, message",
    [
        ([0, 9], "selects columns \\[0, 9\\] of 4 features"),
        ([0, 1, 2], "takes 2 features, but its columns select 3"),
    ],
)
def test_column_transformer_columns_must_fit_its_input(tmp_path, X, columns, message):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import StandardScaler

    transformer = ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="drop")
    path = save(transformer.fit(X), tmp_path / "ct")
    manifest = read_manifest(path)
    fitted = manifest["root"]["attributes"]["transformers_"]
    fitted[0]["tuple"][2] = columns
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match=message):
        load(path)
