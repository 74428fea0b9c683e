"""The README describes the artifact format well enough to read it without nncv."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nncv import make_pipeline
from nncv.persistence import save

from .conftest import SMALL

DOC = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def reader():
    text = DOC.read_text()
    block = re.search(
        r"<!-- reader:start -->\n```python\n(.*?)```\n<!-- reader:end -->", text, re.S
    )
    assert block, "the reader example is missing from README.md"
    namespace: dict = {}
    exec(compile(block[1], str(DOC), "exec"), namespace)  # noqa: S102 - our own document
    return namespace


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_documented_reader_predicts_like_nncv(tmp_path, X, reader, dtype, rtol, n_classes):
    y = np.array(["a", "b", "c"])[np.arange(len(X)) % n_classes]
    pipe = make_pipeline("standard", **{**SMALL, "hidden_layer_sizes": (6, 4)}, dtype=dtype)
    pipe.fit(X, y)
    folder = save(pipe, tmp_path / "model")
    ours = reader["predict_proba"](folder, X)
    np.testing.assert_allclose(ours, pipe.predict_proba(X), rtol=rtol, atol=0)


def test_the_documented_reader_rejects_an_edited_manifest(tmp_path, X, reader, classifier):
    folder = save(classifier, tmp_path / "model")
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text.replace('"relu"', '"tanh"'))
    with pytest.raises(AssertionError, match="manifest.json"):
        reader["read_artifact"](folder)
