"""The table of operations: every kernel is its definition's twin, chosen in one place, and the
math a student reads stands without Numba, h5py, the data or the run folder.

Each twin is held to its definition's numbers by the tests beside the definition
(tests/nn/, tests/vae/, tests/training/test_optim.py), in float32 and float64."""

import ast
import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from npdvae.training.operations import Operations, operations

PACKAGE = Path(__file__).resolve().parents[2] / "npdvae"
OPERATIONS = [field.name for field in dataclasses.fields(Operations) if field.name != "kernels"]


def _parameters(function):
    return list(inspect.signature(getattr(function, "py_func", function)).parameters)


@pytest.mark.parametrize("name", OPERATIONS)
def test_each_kernel_takes_its_definitions_arguments(name):
    kernel, definition = getattr(operations(True), name), getattr(operations(False), name)
    assert _parameters(kernel) == _parameters(definition)
    assert definition.__module__.split(".")[1] in ("nn", "vae", "training"), definition.__module__
    assert kernel is definition or kernel.__module__.startswith("npdvae.kernels."), kernel.__module__


def test_the_tables_say_which_they_are_and_are_built_once():
    assert operations(True).kernels and not operations(False).kernels
    assert operations(True) is operations(True)


def test_only_the_table_imports_the_kernels():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        if "kernels" in path.relative_to(PACKAGE).parts or path.name == "operations.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name == "npdvae.kernels" or name.startswith("npdvae.kernels.") for name in names):
                importers.append(str(path.relative_to(PACKAGE)))
    assert importers == [], importers


def test_the_training_step_reads_without_numba_h5py_the_data_or_the_run_folder():
    code = ("import sys, npdvae.training.step\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('npdvae', 'numba', 'h5py')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.startswith(("numba", "h5py"))], loaded
    allowed = ("npdvae.nn", "npdvae.vae", "npdvae.training.step", "npdvae.training.optim")
    assert all(m in ("npdvae", "npdvae.training") or m.startswith(allowed) for m in loaded), loaded
