"""The model files committed under results/EXPERIMENT/models/ (or results/EXPERIMENT/GRID/models/,
for an experiment of several grids) give back the figures of their table.

Each model is scored on the real test set as the tables score it (npdvae.training.loop.split_bound
on the test split), and must match its own recorded evaluation and its table's cell (the mean
over the cell's published seeds, when every seed of the cell is published) to the printed
precision, two decimals."""

import csv
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from npdvae.training.config import TrainConfig
from npdvae.run_folder.model_card import card_path, model_card
from npdvae.run_folder.model_file import load_model_file
from npdvae.experiments.grids import ROW_SETTINGS
from npdvae.run_folder.runs import load_trained, prepare_dataset
from npdvae.training.loop import split_bound
from tests.data.conftest import require_dataset

RESULTS = Path(__file__).resolve().parents[2] / "results"
MODELS = sorted(RESULTS.glob("**/models/*.h5"))
IDS = [str(p.relative_to(RESULTS)).replace("/models/", "/") for p in MODELS]


def _cell(config: TrainConfig):
    """(model, layers, column) of the table row and column a model's configuration belongs to."""
    rows = [row for row, settings in ROW_SETTINGS.items()
            if all(getattr(config, key) == value for key, value in settings.items())
            and (config.encoder == "gru") == ("GRU" in row)]
    assert len(rows) == 1, f"no single table row for {config}"
    return rows[0], str(config.encoder_layers), f"{config.noise * 100:g}"


def _tables_beside(models_folder: Path) -> list[Path]:
    """The tables a models/ folder belongs to: table.csv, or a restricted grid's table-*.csv."""
    return sorted(models_folder.parent.glob("table*.csv"))


def test_every_published_model_has_a_table():
    if not MODELS:
        pytest.skip("no model files are committed under results/**/models/ yet")
    for path in MODELS:
        assert _tables_beside(path.parent), f"{path} has no table*.csv beside its models/"


@pytest.mark.parametrize("path", MODELS, ids=IDS)
def test_a_published_model_gives_back_its_recorded_test_bound(path):
    model_file = load_model_file(path)
    config, model, params = load_trained(path)
    assert model_file.evaluation is not None, f"{path} was published without its evaluation"
    data_dir = require_dataset(config.dataset)
    dataset = prepare_dataset(config, data_dir)
    bound = split_bound(model, params, dataset, config, split="test")
    assert round(bound, 2) == round(model_file.evaluation["test_bound"], 2)
    assert model_file.evaluation["test_examples"] == dataset.num_examples("test")


@pytest.mark.parametrize("table", sorted({t for p in MODELS for t in _tables_beside(p.parent)}),
                         ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_tables_cells_are_the_means_of_their_published_models(table):
    recorded = defaultdict(list)
    for path in table.parent.glob("models/*.h5"):
        model_file = load_model_file(path)
        recorded[_cell(TrainConfig.from_dict(model_file.config))].append(model_file.evaluation)
    checked = 0
    for row in csv.DictReader(open(table)):
        cell = (row["model"], row["layers"], row["column"])
        evaluations = recorded.get(cell, [])
        if len(evaluations) != int(row["seeds"]):
            continue   # a cell whose seeds are not all published is not checked against its mean
        sign = 1 if table.parent.name.startswith("table2") else -1   # tables 1 and 3 print -bound
        mean = statistics.fmean(sign * e["test_bound"] for e in evaluations)
        assert f"{mean:.2f}" == f"{float(row['bound_mean']):.2f}", cell
        checked += 1
    assert checked, f"no cell of {table} has all its seeds published"


@pytest.mark.parametrize("path", MODELS, ids=IDS)
def test_a_published_model_has_the_card_its_file_gives(path):
    card = card_path(path)
    assert card.is_file(), f"{path} has no model card: python results/model_cards.py writes it"
    assert card.read_text() == model_card(load_model_file(path), path.name), \
        f"{card} is not its model file's card: python results/model_cards.py writes it again"
