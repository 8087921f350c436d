"""notebooks/explore.ipynb runs from top to bottom against the real-package mirror.

The notebook is stored without outputs. nbclient executes it in a kernel of this interpreter
with the plugin's `composer` configuration, so it builds with the session's private caches.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from os_image_composer import Composer

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "explore.ipynb"

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="building an image needs root"),
]


def test_notebook_stored_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source
            assert cell.execution_count is None, cell.source


def test_notebook_executes(composer: Composer, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    assert composer.config.file is not None
    monkeypatch.setenv("OIC_NOTEBOOK_CONFIG", str(composer.config.file))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 3, "expected the cache sizes, dependency graph and timeline plots"
    html = [output for output in outputs if "text/html" in output.get("data", {})]
    assert any("<td>compose</td>" in output.data["text/html"] for output in html)
