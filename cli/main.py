"""The ``npdvae`` command line: parses options, calls the library (``npdvae``), prints.

One module per command; none computes anything the library does not offer as a function.
"""

from __future__ import annotations

import os
import signal
import sys

import click

from .bench import bench
from .datasets import datasets
from .evaluate import evaluate, export
from .gaps import gaps
from .gaps_compare import gaps_compare
from .imports import import_option_callback
from .pictures import plot, reconstruct, sample
from .reproduce import reproduce
from .runs import runs
from .snr import snr
from .train import train


class _Commands(click.Group):
    """The command group, ending an interrupt outside the polled loops in one line (exit 130),
    and a closed standard output quietly (exit 141)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # stdout was closed (``| head``): what was saved stays saved; end quietly, as a pipe's writer does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(128 + signal.SIGPIPE)
        except KeyboardInterrupt:
            pass
        except SystemError as err:   # a KeyboardInterrupt raised while a Numba kernel returned
            if not isinstance(err.__context__, KeyboardInterrupt):
                raise
        click.echo("\ninterrupted", err=True)
        ctx.exit(130)


def _print_version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from npdvae.run_folder.provenance import provenance
    record = provenance()
    git = record["git"]
    commit = f", git {git['commit'][:12]}{' (with local changes)' if git['dirty'] else ''}" if git else ""
    blas = ", ".join(f"{b['internal_api']} {b['version']}" for b in record["blas"]) or "unknown"
    libraries = ", ".join(f"{name} {version}" for name, version in record["libraries"].items())
    click.echo(f"npdvae {record['npdvae']}{commit}\n{libraries}, BLAS {blas}, Python {record['python']}")
    ctx.exit()


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="The version, the git commit when run from a checkout, and the numerical libraries.")
@click.option("--import", "imports", multiple=True, metavar="MODULE|FILE.py", expose_value=False,
              callback=import_option_callback,
              help="Import this module, or this Python file, before the command: code of one's own that it "
                   "registers (a corruption, npdvae.register_corruption) is then known to every command. "
                   "Repeatable.")
def main():
    """Denoising variational autoencoders (DVAE, DIWAE) with hand-written gradients."""
    # past RLIMIT_FSIZE a write must fail with EFBIG (and be reported), not kill the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


for command in (train, evaluate, export, gaps, gaps_compare, snr, sample, reconstruct, plot, runs, datasets, reproduce,
                bench):
    main.add_command(command)

if __name__ == "__main__":
    main()
