"""The README's examples against today's code."""

import re

from npdvae.cli.common import settings_line
from npdvae.cli.readme_examples import COMMANDS, README, replace_block
from npdvae.training.config import TrainConfig


def test_the_quick_start_settings_line_is_what_train_prints_today():
    block = re.search(r"```\n\$ npdvae train --dataset mnist --noise 0\.05 --k 5\n(.*?)\n```", README.read_text(), re.S)
    lines = block.group(1).splitlines()
    assert lines[1] == settings_line(TrainConfig(dataset="mnist", noise=0.05, k=5))


def test_every_regenerated_example_has_its_block():
    text = README.read_text()
    for command in COMMANDS:
        assert replace_block(text, command, "OUTPUT") != text


def test_the_reading_tour_gives_each_files_line_count():
    text = README.read_text()
    tour = text[text.index("<!-- reading tour"):]
    rows = re.findall(r"^\| \d+ \| `([^`]+)` \| (\d+) \|", tour[:tour.index("\n\n")], re.M)
    assert len(rows) >= 10
    for path, count in rows:
        assert sum(1 for _ in open(README.parent / path)) == int(count), path
    total = re.search(r"\((\d+) lines in all", text[text.index("## Reading the code"):]).group(1)
    assert int(total) == sum(int(count) for _, count in rows)
