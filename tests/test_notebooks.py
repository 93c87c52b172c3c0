"""The walkthroughs in notebooks/: one per study, each a jupytext percent-format `.py` paired with
an `.ipynb` (stored without outputs). Fast: every study has one, the pair is in sync, the code
parses. Slow: each notebook runs top to bottom in a fresh kernel (nbclient), so none rots."""

import ast
import pathlib

import pytest

jupytext = pytest.importorskip("jupytext")

from experiments import reproduce  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _study_names() -> list[str]:
  return sorted(make.__name__ for make in reproduce.STUDIES)  # `_study` names each maker


def _cells(notebook) -> list[tuple[str, str]]:
  return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_every_study_has_a_notebook():
  have = {p.stem for p in NOTEBOOKS.glob("*.py")}
  missing = sorted(set(_study_names()) - have)
  assert not missing, f"studies without a notebook in notebooks/: {missing}"


@pytest.mark.parametrize("name", _study_names())
def test_notebook_pair_is_in_sync_and_parses(name):
  script, paired = NOTEBOOKS / f"{name}.py", NOTEBOOKS / f"{name}.ipynb"
  assert paired.exists(), f"{paired.name} missing: run `jupytext --sync notebooks/{name}.py`"
  from_script, from_ipynb = jupytext.read(script), jupytext.read(paired)
  assert _cells(from_script) == _cells(from_ipynb), (
      f"{name}: .py and .ipynb differ; run `jupytext --sync notebooks/{name}.py`")
  assert not any(c.get("outputs") for c in from_ipynb.cells if c.cell_type == "code"), (
      f"{paired.name} stores outputs; clear them (the test runs the notebook)")
  code = "\n".join(c.source for c in from_script.cells if c.cell_type == "code")
  ast.parse("\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!"))))
  assert from_script.cells[0].cell_type == "markdown"


@pytest.mark.slow
@pytest.mark.parametrize("name", _study_names())
def test_notebook_runs_top_to_bottom(name, tmp_path):
  import nbclient
  import nbformat
  notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
  assert not errors
