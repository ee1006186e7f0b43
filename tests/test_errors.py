"""Every exception the library raises keeps its type and message across a process boundary
(a grid's task runs in another process or on a Dask worker and its error is pickled back)."""

import importlib
import inspect
import pickle
import pkgutil

import pytest

import npdvae

EXAMPLES = {   # classes whose constructor takes more than a message
    "RunWriteError": lambda cls: cls("/runs/x/last.h5", OSError(28, "No space left on device")),
    "ChecksumError": lambda cls: cls("/data/f.gz", "ab" * 32, "cd" * 32, moved_to="/data/f.gz.bad"),
    "GridStopped": lambda cls: cls(3, 8),
    "TrainingInterrupted": lambda cls: cls(2, 5, 6),
    "ConfigError": lambda cls: cls("noise", "noise must be in [0, 1), got 2"),
    "DataUnavailableError": lambda cls: cls("could not get f.gz for mnist", ["http://m/f.gz: HTTP 404 Not Found"]),
}


def library_exceptions():
    found = {}
    for module in pkgutil.walk_packages(npdvae.__path__, "npdvae."):
        if module.name.startswith("npdvae.cli"):
            continue
        for name, value in vars(importlib.import_module(module.name)).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__.startswith("npdvae."):
                found[value.__qualname__] = value
    return found


def test_the_library_has_the_exceptions_this_test_knows():
    assert {"RunWriteError", "ChecksumError", "GridStopped", "ConfigError", "CheckpointError"} <= set(library_exceptions())


@pytest.mark.parametrize("name", sorted(library_exceptions()))
def test_an_exception_pickles_to_an_equal_one(name):
    cls = library_exceptions()[name]
    error = EXAMPLES.get(name, lambda cls: cls(f"{name}: something named went wrong"))(cls)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls and str(again) == str(error) and again.args == error.args
    assert vars(again) == vars(error)
