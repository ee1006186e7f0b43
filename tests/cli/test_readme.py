"""The examples of the README and of docs/commands.md against today's code."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from npdvae.cli.common import settings_line
from npdvae.cli.readme_examples import COMMANDS, README as COMMANDS_PAGE, replace_block
from npdvae.training.config import TrainConfig


ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_the_train_examples_settings_line_is_what_train_prints_today():
    block = re.search(r"```\n\$ npdvae train --dataset mnist --noise 0\.05 --k 5\n(.*?)\n```", COMMANDS_PAGE.read_text(), re.S)
    lines = block.group(1).splitlines()
    assert lines[1] == settings_line(TrainConfig(dataset="mnist", noise=0.05, k=5))


def test_every_regenerated_example_has_its_block():
    text = COMMANDS_PAGE.read_text()
    for command in COMMANDS:
        assert replace_block(text, command, "OUTPUT") != text


def test_the_reading_tour_gives_each_files_line_count():
    text = README.read_text()
    tour = text[text.index("<!-- reading tour"):]
    rows = re.findall(r"^\| \d+ \| `([^`]+)` \| (\d+) \|", tour[:tour.index("\n\n")], re.M)
    assert len(rows) >= 10
    for path, count in rows:
        lines = sum(1 for _ in open(README.parent / path))
        assert lines == int(count), f"README's reading tour gives {path} {count} lines; it has {lines}: update the row"
    total = re.search(r"\((\d+) lines in all", text[text.index("## Reading the code"):]).group(1)
    assert int(total) == sum(int(count) for _, count in rows)


@pytest.mark.parametrize("page", [README, ROOT / "results" / "README.md"], ids=["README", "results"])
def test_a_page_shows_what_results_reproduced_prints(page):
    printed = subprocess.run([sys.executable, str(ROOT / "results" / "reproduced.py")], capture_output=True,
                             text=True, check=True).stdout.strip()
    text = page.read_text()
    block = text[text.index("<!-- reproduced"):text.index("<!-- end reproduced -->")]
    assert block.split("\n", 1)[1].strip() == printed
