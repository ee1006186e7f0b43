"""The README and the pages under docs/ point only at what exists: every relative link, every
`path` of the checkout they name, and every `path:function` (or `path:Class.method`) is
defined there."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("npdvae/", "cli/", "tests/", "results/", "docs/", "datasets/")
NAMED = re.compile(r"`((?:" + "|".join(map(re.escape, TOP)) + r")[\w./-]*)(?::([\w.]+))?`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _defined(path: Path, dotted: str) -> bool:
    """Whether ``dotted`` (a function, a class, or Class.member) is defined at the top of ``path``."""
    scope = ast.parse(path.read_text()).body
    for part in dotted.split("."):
        found = None
        for node in scope:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == part:
                found = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == part for t in targets):
                    found = node
        if found is None:
            return False
        scope = getattr(found, "body", [])
    return True


def _references(page: Path):
    text = page.read_text()
    for match in NAMED.finditer(text):
        yield match.group(1), match.group(2)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_path_and_function_a_page_names_exists(page):
    missing = []
    for path, name in _references(page):
        target = ROOT / path.rstrip("/")
        if "*" in path or "<" in path or any(re.fullmatch(r"[A-Z_]+", part) for part in path.split("/")):
            continue   # a pattern or a placeholder (results/EXPERIMENT/), not a path
        if not target.exists():
            missing.append(path)
        elif name and not (target.suffix == ".py" and _defined(target, name)):
            missing.append(f"{path}:{name}")
    assert not missing, f"{page.name} names what does not exist: {missing}"


@pytest.mark.parametrize("page", [*PAGES, ROOT / "results" / "README.md"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_holds_a_control_character(page):
    # a LaTeX command written through a non-raw Python string loses its backslash to an escape:
    # \theta becomes a tab and "heta", \frac a form feed, \beta a backspace
    found = [(number, repr(line)) for number, line in enumerate(page.read_text().split("\n"), 1)
             if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line) or "\t" in line]
    assert not found, f"{page.name} has control characters on lines {found}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_of_a_page_leads_somewhere(page):
    broken = [link for link in LINK.findall(page.read_text())
              if "://" not in link and not link.startswith("mailto:") and not (page.parent / link).exists()]
    assert not broken, f"{page.name} links to what does not exist: {broken}"


def test_the_checks_catch_a_missing_function(tmp_path):
    assert _defined(ROOT / "npdvae/vae/bounds.py", "iwae_bound")
    assert _defined(ROOT / "npdvae/vae/model.py", "DVAEModel.backward")
    assert not _defined(ROOT / "npdvae/vae/bounds.py", "dvae_bound_forward")


def _options(command) -> set[str]:
    """Every option spelling of a click command, or of a group's subcommands."""
    import click
    commands = list(command.commands.values()) if isinstance(command, click.Group) else [command]
    return {opt for cmd in commands for param in cmd.params for opt in (*param.opts, *param.secondary_opts)} \
        | {"--help", "-h"}


def test_every_option_docs_commands_names_is_an_option_of_its_command():
    from npdvae.cli.main import main
    text = (ROOT / "docs" / "commands.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 8
    unknown = []
    for section in sections:
        heading = section.splitlines()[0]
        names = re.findall(r"`npdvae ([\w-]+)", heading)
        assert names and all(name in main.commands for name in names), heading
        known = set().union(*(_options(main.commands[name]) for name in names),
                            {opt for param in main.params for opt in param.opts})   # npdvae --version
        for option in set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", section)):
            if option not in known:
                unknown.append(f"{heading}: {option}")
    assert not unknown, unknown


def test_the_corruption_example_runs_as_written_and_the_command_line_lists_it(tmp_path):
    """docs/corruptions.md: a block-masking corruption defined in user code, trained for an epoch,
    scored with denoising_bound, listed by `npdvae runs` under its own name; and a process
    that has not registered it says so in one line instead of training under another."""
    import os
    import subprocess
    import sys

    from tests.data.conftest import require_dataset

    data = require_dataset("mnist")
    text = (ROOT / "docs" / "corruptions.md").read_text()
    (tmp_path / "example.py").write_text(re.search(r"```python\n(.*?)```", text, re.S).group(1))
    env = {**os.environ, "NPDVAE_DATA_DIR": str(data), "OPENBLAS_NUM_THREADS": "1"}

    def run(*command):
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)

    done = run(sys.executable, "example.py")
    assert done.returncode == 0, done.stderr
    name, bound = done.stdout.splitlines()[-2:]
    assert name == "DVAE (K=1), 1 hidden layer, block-mask (size=7)" and -400 < float(bound) < 0
    listed = run(sys.executable, "-m", "npdvae.cli", "runs", "runs/block-mask")
    assert listed.returncode == 0 and "block-mask (size=7)" in listed.stdout and "block-mask size=7" in listed.stdout
    resumed = run(sys.executable, "-m", "npdvae.cli", "train", "--resume", "--epochs", "2", "--out", "runs/block-mask")
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr
    assert "no corruption called 'block-mask' is registered in this process" in resumed.stderr
    # from Python, once registered again, the run continues like any other
    (tmp_path / "more.py").write_text(
        (tmp_path / "example.py").read_text().replace("epochs=1,", "epochs=2,")
        + "print(run.opened, run.resumed_at, len(run.history))\n")
    more = run(sys.executable, "more.py")
    assert more.returncode == 0, more.stderr
    assert more.stdout.splitlines()[-1] == "resumed 1 2"
