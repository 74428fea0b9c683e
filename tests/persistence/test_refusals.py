"""Tampered, truncated, foreign or unsupported artifacts give a clear ArtifactError — and
loading never runs code."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format
from sklearn.compose import ColumnTransformer
from sklearn.impute import KNNImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    OneHotEncoder,
    StandardScaler,
)

from nncv import NNClassifier, make_pipeline
from nncv.exceptions import ArtifactError, NncvError
from nncv.persistence import inspect, load, save

from .conftest import SMALL, npz_entries, read_manifest, resign, rewrite_npz, write_manifest


@pytest.fixture
def artifact(tmp_path, X):
    """A directory artifact of a scaler + classifier pipeline, and the fitted pipeline."""
    pipe = make_pipeline("standard", **SMALL).fit(X, np.arange(len(X)) % 3)
    return save(pipe, tmp_path / "model"), pipe


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def directory_entries(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


class Marker:
    """Unpickling this creates the file ``path``: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def object_npy(marker: Path) -> bytes:
    """A .npy holding an object array whose pickle would create ``marker`` if loaded."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(
        buffer, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    buffer.write(pickle.dumps([Marker(marker)]))
    return buffer.getvalue()


# --------------------------------------------------------------------------- changed arrays
def test_a_changed_byte_in_any_array_is_refused_naming_it(tmp_path, artifact):
    path, _ = artifact
    keys = sorted(inspect(path)["arrays"])
    assert len(keys) >= 5
    for key in keys:
        copy = tmp_path / f"copy-{key}"
        shutil.copytree(path, copy)
        entries = npz_entries(copy)
        data = bytearray(entries[f"{key}.npy"])
        data[-1] ^= 0x01  # the last byte of the array data; the zip CRC is recomputed
        entries[f"{key}.npy"] = bytes(data)
        rewrite_npz(copy, entries)
        with pytest.raises(ArtifactError, match=f"array '{key}' does not match its SHA-256"):
            load(copy)
        resign(copy)  # even when SHA256SUMS is recomputed
        with pytest.raises(ArtifactError, match=f"array '{key}' does not match its SHA-256"):
            load(copy)


@pytest.mark.parametrize(
    "target", ["model/arrays.npz", "model/manifest.json", "model/SHA256SUMS", "model.nncv"]
)
def test_flipping_any_byte_gives_an_artifact_error_never_another_exception(
    tmp_path, X, artifact, target
):
    path, pipe = artifact
    save(pipe, tmp_path / "model.nncv")
    victim = tmp_path / target
    artifact_path = victim if victim.suffix == ".nncv" else path
    original = victim.read_bytes()
    positions = np.random.default_rng(0).choice(len(original), size=80, replace=False)
    refused = 0
    for position in [0, len(original) - 1, *positions]:
        data = bytearray(original)
        data[position] ^= 0xFF
        victim.write_bytes(bytes(data))
        try:
            loaded = load(artifact_path)
        except ArtifactError:
            refused += 1
            continue
        # Only the outer zip's own bookkeeping (local header fields that zipfile ignores) is
        # not covered by a checksum; such a flip must leave the model exactly as it was.
        assert victim.suffix == ".nncv", f"a flip at byte {position} of {target} went unseen"
        assert np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert refused >= 0.9 * len(positions)
    victim.write_bytes(original)
    load(artifact_path)  # the untouched artifact still loads


# --------------------------------------------------------------------------- edited manifest
def test_an_edited_manifest_is_refused(artifact):
    path, _ = artifact
    text = (path / "manifest.json").read_text()
    assert '"activation": "relu"' in text
    (path / "manifest.json").write_text(
        text.replace('"activation": "relu"', '"activation": "tanh"')
    )
    with pytest.raises(ArtifactError, match="manifest.json does not match its SHA-256"):
        load(path)
    with pytest.raises(ArtifactError, match="manifest.json does not match its SHA-256"):
        inspect(path)


def network_node(manifest: dict) -> dict:
    return manifest["root"]["params"]["steps"][1]["tuple"][1]["estimator"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda m: network_node(m)["state"]["network"].update(n_inputs=9),
            "layer_shapes .* does not match the network",
        ),
        (lambda m: network_node(m)["state"].pop("network"), "state.network must be"),
        (lambda m: network_node(m)["state"].update(n_features_in=7), "input width 4"),
        (lambda m: network_node(m)["state"]["params"].update(dtype="x"), "state is inconsistent"),
        (
            lambda m: network_node(m)["state"]["params"].update(dtype="float64"),
            "the network computes in float32|parameters say dtype=.float64. but the saved "
            "network has .float32.",
        ),
        (lambda m: network_node(m)["arrays"].update(extra="nowhere"), "arrays.npz lacks"),
        (lambda m: next(iter(m["arrays"].values())).update(shape=[2, 2]), "declares"),
        (lambda m: next(iter(m["arrays"].values())).update(dtype="|O"), "malformed"),
        (lambda m: m["root"]["params"].update(memory={"pickle": "x"}), "unknown value encoding"),
        (lambda m: m["root"]["params"].update(bogus=1), "does not accept these params"),
        (lambda m: m["root"]["attributes"].update(transform=1), "not a learnt attribute"),
        (lambda m: m["root"]["attributes"].update(__class__=1), "not a learnt attribute"),
        (lambda m: m["root"].update(type=7), "needs a 'type' string"),
        (lambda m: m.pop("arrays"), "lacks its 'arrays' table"),
        (lambda m: m.update(format="zip"), "does not describe"),
        (lambda m: m.update(format_version="1"), "invalid format_version"),
    ],
)
def test_an_edited_and_resigned_manifest_that_no_longer_fits_is_refused(artifact, edit, message):
    path, _ = artifact
    manifest = read_manifest(path)
    edit(manifest)
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match=message):
        load(path)


def test_invalid_json_and_duplicate_keys_are_refused(artifact):
    path, _ = artifact
    (path / "manifest.json").write_text('{"format": "nncv-artifact", "format": "x"}')
    resign(path)
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load(path)
    (path / "manifest.json").write_text('{"format": NaN}')
    resign(path)
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load(path)


# --------------------------------------------------------------------------- truncation
def test_a_truncated_zip_artifact_is_refused_at_every_length(tmp_path, artifact):
    _, pipe = artifact
    whole = save(pipe, tmp_path / "model.nncv").read_bytes()
    victim = tmp_path / "cut.nncv"
    for length in [0, 1, 10, *np.linspace(22, len(whole) - 1, 40).astype(int)]:
        victim.write_bytes(whole[:length])
        with pytest.raises(ArtifactError):
            load(victim)


@pytest.mark.parametrize("name", ["arrays.npz", "manifest.json", "SHA256SUMS"])
def test_a_truncated_file_in_a_directory_artifact_is_refused(artifact, name):
    path, _ = artifact
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):
        load(path)


@pytest.mark.parametrize("name", ["arrays.npz", "manifest.json", "SHA256SUMS"])
def test_a_missing_file_is_named(artifact, name):
    path, _ = artifact
    (path / name).unlink()
    with pytest.raises(ArtifactError, match=f"{name} is missing"):
        load(path)


def test_nothing_there_or_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="nothing exists there"):
        load(tmp_path / "absent.nncv")
    (tmp_path / "notes.nncv").write_text("hello")
    with pytest.raises(ArtifactError, match="not a readable .nncv zip"):
        load(tmp_path / "notes.nncv")
    with pytest.raises(ArtifactError, match="is missing"):
        load(tmp_path)


def test_a_malformed_sha256sums_is_refused(artifact):
    path, _ = artifact
    (path / "SHA256SUMS").write_text("0" * 64 + "  ../../etc/passwd\n")
    with pytest.raises(ArtifactError, match="SHA256SUMS is malformed"):
        load(path)


# --------------------------------------------------------------------------- zip paths
@pytest.mark.parametrize(
    "name", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "C:/evil.txt", "a\\..\\evil"]
)
def test_zip_entries_that_climb_or_are_absolute_are_refused(tmp_path, artifact, name):
    path, _ = artifact
    entries = {**directory_entries(path), name: b"owned"}
    with pytest.raises(ArtifactError, match="unsafe path"):
        load(zip_of(tmp_path / "evil.nncv", entries))
    with pytest.raises(ArtifactError, match="unsafe path"):
        inspect(tmp_path / "evil.nncv")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_npz_entries_that_climb_are_refused(artifact):
    path, _ = artifact
    entries = npz_entries(path)
    entries["../escape.npy"] = next(iter(entries.values()))
    rewrite_npz(path, entries)
    resign(path)
    with pytest.raises(ArtifactError, match="unsafe path"):
        load(path)


def test_unexpected_entries_are_refused(tmp_path, artifact):
    path, _ = artifact
    with pytest.raises(ArtifactError, match="unexpected entry 'run.py'"):
        load(zip_of(tmp_path / "extra.nncv", {**directory_entries(path), "run.py": b"1"}))
    entries = npz_entries(path)
    entries["extra.npy"] = next(iter(entries.values()))
    rewrite_npz(path, entries)
    resign(path)
    with pytest.raises(ArtifactError, match="'extra', which manifest.json does not list"):
        load(path)


def test_compressed_entries_are_refused_so_no_zip_bomb_gets_through(tmp_path, artifact):
    path, _ = artifact
    bomb = tmp_path / "bomb.nncv"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in directory_entries(path).items():
            zf.writestr(name, data)
    with pytest.raises(ArtifactError, match="is compressed"):
        load(bomb)
    entries = npz_entries(path)
    with zipfile.ZipFile(path / "arrays.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    resign(path)
    with pytest.raises(ArtifactError, match="is compressed"):
        load(path)


# --------------------------------------------------------------------------- foreign types
@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen", "nncv.load"])
def test_a_manifest_naming_an_unknown_type_is_refused(tmp_path, artifact, name):
    path, _ = artifact
    marker = tmp_path / "marker"
    manifest = read_manifest(path)
    manifest["root"]["params"]["steps"][0]["tuple"][1]["estimator"] = {
        "type": name,
        "params": {"command": f"touch {marker}"},
        "attributes": {},
    }
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match=f"unknown type '{name}'") as error:
        load(path)
    assert "root.params.steps" in str(error.value)
    assert not marker.exists()


def test_an_object_array_in_the_npz_is_refused_without_unpickling(tmp_path, artifact):
    path, _ = artifact
    marker = tmp_path / "unpickled"
    with pytest.raises(FileNotFoundError):  # the payload is live: unpickling it would act
        pickle.loads(pickle.dumps(Marker(tmp_path / "missing-dir" / "x")))
    entries = npz_entries(path)
    key = sorted(entries)[0]
    entries[key] = object_npy(marker)
    rewrite_npz(path, entries)
    resign(path)
    with pytest.raises(ArtifactError, match="holds an object array"):
        load(path)
    assert not marker.exists()


def test_a_newer_format_version_is_refused(artifact):
    path, _ = artifact
    manifest = read_manifest(path)
    manifest["format_version"] = 2
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match="format version 2, newer .* upgrade nncv"):
        load(path)
    with pytest.raises(ArtifactError, match="format version 2"):
        inspect(path)


def test_arrays_no_object_uses_are_refused(artifact):
    path, _ = artifact
    manifest = read_manifest(path)
    entries = npz_entries(path)
    key = sorted(manifest["arrays"])[0]
    manifest["arrays"]["stowaway"] = manifest["arrays"][key]
    entries["stowaway.npy"] = entries[f"{key}.npy"]
    rewrite_npz(path, entries)
    write_manifest(path, manifest)
    with pytest.raises(ArtifactError, match=r"no object uses: \['stowaway'\]"):
        load(path)


def test_artifact_error_is_an_nncv_error():
    assert issubclass(ArtifactError, NncvError)


# --------------------------------------------------------------------------- saving refusals
def test_saving_an_unfitted_estimator_names_it(tmp_path):
    with pytest.raises(ArtifactError, match="NNClassifier: this NNClassifier is not fitted"):
        save(NNClassifier(), tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_saving_a_pipeline_with_an_unfitted_step_names_the_step(tmp_path, X):
    scale = StandardScaler().fit(X)
    pipe = Pipeline([("scale", scale), ("net", NNClassifier())])
    with pytest.raises(ArtifactError, match="step 'net': this NNClassifier is not fitted"):
        save(pipe, tmp_path / "model.nncv")
    with pytest.raises(ArtifactError, match="step 'scale': this StandardScaler is not fitted"):
        save(make_pipeline("standard"), tmp_path / "model.nncv")
    assert list(tmp_path.iterdir()) == []


class HomemadeScaler(StandardScaler):
    pass


def fitted_pipeline(X, y, steps):
    return Pipeline([*steps, ("net", NNClassifier(**SMALL))]).fit(X, y)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda X, y: fitted_pipeline(X, y, [("impute", KNNImputer())]),
            "step 'impute': sklearn.impute._knn.KNNImputer is not supported",
        ),
        (
            lambda X, y: fitted_pipeline(X, y, [("mine", HomemadeScaler())]),
            "step 'mine': .*HomemadeScaler is not supported",
        ),
        (
            lambda X, y: Pipeline([("s", StandardScaler()), ("clf", LogisticRegression())]).fit(
                X, y
            ),
            "step 'clf': .*LogisticRegression is not supported",
        ),
        (
            lambda X, y: fitted_pipeline(
                X, y, [("cols", ColumnTransformer([("bin", Binarizer(), [0, 1])]))]
            ),
            "step 'cols' → transformer 'bin': .*Binarizer is not supported",
        ),
        (
            lambda X, y: fitted_pipeline(X, y, [("log", FunctionTransformer(np.abs))]),
            "step 'log': a FunctionTransformer with a function cannot be saved",
        ),
        (
            lambda X, y: fitted_pipeline(
                X.astype(int),
                y,
                [("hot", OneHotEncoder(feature_name_combiner=lambda f, c: f"{f}{c}"))],
            ),
            "step 'hot': parameter 'feature_name_combiner' of OneHotEncoder holds a callable",
        ),
        (lambda X, y: LogisticRegression().fit(X, y), "LogisticRegression is not supported"),
    ],
)
def test_saving_an_unsupported_step_names_it(tmp_path, X, make, message):
    obj = make(X, np.arange(len(X)) % 2)
    with pytest.raises(ArtifactError, match=message):
        save(obj, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_saving_over_a_directory_that_is_not_an_artifact_is_refused(tmp_path, classifier):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ArtifactError, match="holds no nncv artifact"):
        save(classifier, tmp_path)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    with pytest.raises(ArtifactError, match="does not exist"):
        save(classifier, tmp_path / "missing" / "model.nncv")
    with pytest.raises(ArtifactError, match="a file of that name exists"):
        save(classifier, tmp_path / "thesis.tex")


def test_manifest_json_stays_valid_strict_json(artifact):
    path, _ = artifact
    json.loads(
        (path / "manifest.json").read_text(),
        parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)),
    )
