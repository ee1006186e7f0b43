"""``npdvae --import MODULE``: import the user's own code before a command runs, so that what it
registers (a corruption of one's own, ``npdvae.register_corruption``) is known to the command
line as it is to a Python session."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import click


def import_user_code(spec: str) -> str:
    """Import ``spec``, a module name (found from the working folder too, as ``python -m``
    finds it) or the path of a Python file (imported under its file's stem, the name a run
    then records as its corruption's module); the module's name."""
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        name = path.stem
        if name in sys.modules:
            return name
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return name
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    importlib.import_module(spec)
    return spec


def import_option_callback(ctx, param, values):
    """Import each --import in turn; one that fails is a usage error naming it, in one line."""
    for spec in values:
        try:
            import_user_code(spec)
        except Exception as err:   # the user's code may raise anything: it is reported, not shown as a traceback
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise click.BadParameter(f"{spec}: cannot import it ({type(err).__name__}{': ' + first if first else ''})",
                                     ctx=ctx, param=param) from None
    return values
