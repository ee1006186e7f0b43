"""Regenerate the example outputs of the commands' page (docs/commands.md) from today's code.

    python -m npdvae.cli.readme_examples            # run the examples, rewrite docs/commands.md
    python -m npdvae.cli.readme_examples --list     # the commands it would run

Each example in docs/commands.md is a fenced block whose first line is ``$ COMMAND``;
the lines after it, up to the closing fence, are what the command printed.
This script runs the listed commands in order, in a temporary folder (so
their run folders land there, and relative paths in the output read as in
the page), and replaces each block's output with what they print now. Run
it after any change that moves a number; MNIST is found as npdvae finds it
($NPDVAE_DATA_DIR or the default data directory) and shown to the examples as
``datasets/mnist`` beside their run folders, as a checkout keeps it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from npdvae.data.files import ENV_VAR, find_file, get_spec

README = Path(__file__).resolve().parents[1] / "docs" / "commands.md"   # the page the examples live on

# the examples to regenerate, in the order they must run (evaluate needs the trained run)
COMMANDS = (
    "npdvae train --dataset mnist --noise 0.05 --k 5",
    "npdvae evaluate runs/mnist-elbo-k5-noise0.05-seed0 --examples 1000",
)


def run_example(command: str, folder: Path) -> str:
    """What ``command`` prints (stdout, then stderr's lines that are not progress), run in ``folder``."""
    args = [sys.executable, "-m", "npdvae.cli", *command.split()[1:]]
    result = subprocess.run(args, cwd=folder, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(README.parents[1])})
    if result.returncode != 0:
        raise SystemExit(f"{command} failed with exit {result.returncode}:\n{result.stderr}")
    return result.stdout.rstrip("\n")


def replace_block(text: str, command: str, output: str) -> str:
    pattern = re.compile(r"(```\n\$ " + re.escape(command) + r"\n)(.*?)(\n```)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{README.name} has no example block starting with '$ {command}'")
    return pattern.sub(lambda m: m.group(1) + output + m.group(3), text, count=1)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--list"]:
        print("\n".join(COMMANDS))
        return
    text = README.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        # the data where a checkout keeps it, datasets/ beside the run folders, so that the output
        # names the folder a newcomer sees (datasets/mnist), not this machine's
        spec = get_spec("mnist")
        source = find_file(spec, spec.files[0])
        if source is None:
            raise SystemExit("MNIST is not found where npdvae looks: fetch it first (npdvae datasets fetch mnist)")
        (Path(tmp) / "datasets").mkdir()
        (Path(tmp) / "datasets" / "mnist").symlink_to(source.parent.resolve(), target_is_directory=True)
        os.environ[ENV_VAR] = "datasets"
        for command in COMMANDS:
            print(f"running: {command}", file=sys.stderr)
            text = replace_block(text, command, run_example(command, Path(tmp)))
    README.write_text(text)
    print(f"rewrote {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
