import json

import numpy as np
import pytest

from npdvae.run_folder.checkpoint import CheckpointError, load_checkpoint
from npdvae.training.config import TrainConfig
from npdvae.run_folder.runs import RunDirectoryError, open_run, read_metrics
from npdvae.training.loop import NonFiniteBoundError, Trainer, split_bound, warm_up_kernels
from tests.synthetic import synthetic_dataset


def small_config(**overrides):
    values = dict(dataset="mnist", bound="iwae", noise=0.1, k=3, m=2, latent=3, hidden=8, epochs=4,
                  batch_size=50, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def strip_time(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    data = synthetic_dataset()
    straight = open_run(small_config(), tmp_path / "straight", data)
    straight.run()
    first = open_run(small_config(epochs=2), tmp_path / "resumed", data)
    first.run()
    resumed = open_run(small_config(epochs=4), tmp_path / "resumed", data, resume=True)
    assert resumed.epoch == 2
    resumed.run()
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name], err_msg=name)
        np.testing.assert_array_equal(resumed.adam.m[name], straight.adam.m[name])
    assert strip_time(resumed.history) == strip_time(straight.history)
    assert strip_time(read_metrics(tmp_path / "resumed")) == strip_time(read_metrics(tmp_path / "straight"))


def test_training_improves_the_validation_bound(tmp_path):
    data = synthetic_dataset()
    config = small_config(epochs=15)
    trainer = open_run(config, tmp_path / "run", data)
    before = split_bound(trainer.model, trainer.params, data, config)
    history = trainer.run()
    assert history[-1]["valid_bound"] > before + 3, (before, history[-1])


def test_new_run_refuses_an_existing_non_empty_directory(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirectoryError, match="already exists"):
        open_run(small_config(), tmp_path / "run", synthetic_dataset())
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep me"


def test_resume_with_another_configuration_names_the_differences(tmp_path):
    data = synthetic_dataset()
    open_run(small_config(epochs=1), tmp_path / "run", data).run()
    with pytest.raises(CheckpointError, match=r"noise: checkpoint has 0.1, requested 0.2; k: checkpoint has 3, requested 5"):
        open_run(small_config(k=5, noise=0.2), tmp_path / "run", data, resume=True)
    open_run(small_config(epochs=2, lr=1e-4), tmp_path / "run", data, resume=True).run()  # allowed changes


def test_non_finite_bound_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    data = synthetic_dataset()
    trainer = open_run(small_config(epochs=3), tmp_path / "run", data)
    original = trainer.model.bound_and_gradients
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        result = original(*args, **kwargs)
        if calls["n"] > 8:  # in the second epoch (6 minibatches per epoch)
            result.per_example[0] = np.nan
        return result

    monkeypatch.setattr(trainer.model, "bound_and_gradients", poisoned)
    with pytest.raises(NonFiniteBoundError, match="epoch 2"):
        trainer.run()
    checkpoint = load_checkpoint(tmp_path / "run" / "last.h5")
    assert checkpoint.epoch == 1
    assert all(np.all(np.isfinite(v)) for v in checkpoint.params.values())


def test_a_non_finite_gradient_stops_training_without_an_update(tmp_path, monkeypatch):
    data = synthetic_dataset()
    trainer = open_run(small_config(epochs=2), tmp_path / "run", data)
    assert all(p.base is trainer.adam._flat_params for p in trainer.params.values())  # Adam's one-pass path
    original = trainer.model.bound_and_gradients
    before = {}

    def poisoned(*args, **kwargs):
        result = original(*args, **kwargs)  # a finite bound, but one infinite gradient entry
        result.grads["decoder.hidden0.W"][0, 0] = np.inf
        before.update({name: p.copy() for name, p in trainer.params.items()})
        return result

    monkeypatch.setattr(trainer.model, "bound_and_gradients", poisoned)
    with pytest.raises(NonFiniteBoundError, match="epoch 1.*decoder.hidden0.W"):
        trainer.run()
    for name, value in trainer.params.items():
        np.testing.assert_array_equal(value, before[name])


def test_early_stopping_waits_patience_epochs_after_the_best(tmp_path, monkeypatch):
    scores = iter([-10.0, -9.0, -9.5, -9.7, -8.0, -7.0])
    monkeypatch.setattr("npdvae.training.loop.split_bound", lambda *a, **k: next(scores))
    trainer = open_run(small_config(epochs=6, patience=2), tmp_path / "run", synthetic_dataset())
    history = trainer.run()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]   # best at 2, then 2 epochs without improvement
    assert load_checkpoint(tmp_path / "run" / "best.h5").epoch == 2


def test_batch_size_larger_than_the_training_set_is_refused():
    with pytest.raises(ValueError, match="batch_size 500 is larger than the training set"):
        Trainer(small_config(batch_size=500), synthetic_dataset(n_train=300))


@pytest.mark.parametrize("field, value, message", [
    ("noise", 1.0, "noise must be in"), ("noise", -0.5, "noise must be"), ("k", 0, "k must be >= 1"),
    ("m", 0, "m must be >= 1"), ("bound", "vae", "bound must be one of"), ("dataset", "cifar", "dataset must be"),
    ("lr", 0.0, "lr must be a finite number > 0"), ("lr", float("inf"), "lr must be a finite"),
        ("seed", -1, "seed must be an integer in"), ("k", "5", "k must be an integer"),
        ("hidden", 100000, "hidden must be smaller"), ("k", 10**20, "k must be smaller")])
def test_bad_configuration_names_the_setting(field, value, message):
    with pytest.raises(ValueError, match=message):
        small_config(**{field: value})


def test_model_names_follow_the_papers_tables():
    assert small_config(bound="iwae", k=5, noise=0.05, m=1).model_name == "DIWAE (K=5), 1 hidden layer, noise 5%"
    assert small_config(bound="elbo", k=1, noise=0.0, m=1, encoder_layers=2).model_name == "VAE (K=1), 2 hidden layers"
    assert TrainConfig(dataset="frey-face", noise=0.025).model_name == "DVAE (K=1), 1 hidden layer, noise sigma 0.025"
    assert small_config(bound="iwae", k=5, noise=0.05, m=1, encoder_gradient="dreg").model_name == \
        "DIWAE (K=5), 1 hidden layer, noise 5%, DReG"


def test_config_json_records_every_setting(tmp_path):
    config = small_config()
    trainer = open_run(config, tmp_path / "run", synthetic_dataset())
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded.pop("provenance")["npdvae"]   # the code that created the run (tests/run_folder/test_provenance.py)
    assert recorded == {**config.to_dict(), "run_id": trainer.run_id}


def test_staged_schedule_changes_rate_at_the_stage_boundaries():
    from npdvae.training.schedule import staged_lr
    # stage i lasts 3^i epochs: epochs 0 | 1-3 | 4-12 | 13-39 | ... | 1093-3279
    boundaries = {0: 0, 1: 1, 3: 1, 4: 2, 12: 2, 13: 3, 39: 3, 40: 4, 1092: 6, 1093: 7, 3279: 7, 5000: 7}
    for epoch, stage in boundaries.items():
        assert staged_lr(epoch) == pytest.approx(1e-3 * 10 ** (-stage / 7)), epoch


def test_staged_schedule_is_what_training_uses(tmp_path):
    trainer = open_run(small_config(epochs=5, schedule="staged"), tmp_path / "run", synthetic_dataset())
    history = trainer.run()
    assert [h["lr"] for h in history] == pytest.approx([1e-3] + [1e-3 * 10 ** (-1 / 7)] * 3 + [1e-3 * 10 ** (-2 / 7)])


def test_released_schedule_starts_stage_k_at_epoch_3_to_the_k_minus_1():
    from npdvae.training.schedule import released_decay_constant, released_staged_lr
    assert released_decay_constant(5000) == pytest.approx(7.1218, abs=1e-4)   # log(2500) / log(3)
    assert released_decay_constant(5001) == released_decay_constant(5000)      # the script's division floors
    c = released_decay_constant(5000)
    # stage k from epoch 3^k - 1: epochs 0-1 | 2-7 | 8-25 | 26-79 | ... | 2186-4999
    boundaries = {0: 0, 1: 0, 2: 1, 7: 1, 8: 2, 25: 2, 26: 3, 2185: 6, 2186: 7, 4999: 7}
    for epoch, stage in boundaries.items():
        assert released_staged_lr(epoch, 5000) == pytest.approx(1e-3 * 10 ** (-stage / c)), epoch
    with pytest.raises(ValueError, match="at least 6 epochs"):
        released_staged_lr(0, 5)
    # at the paper's 3280 epochs (its docstring's comparison): the last rate 9.1e-5 against staged's 1e-4
    from npdvae.training.schedule import staged_lr
    assert released_staged_lr(3279, 3280) == pytest.approx(9.14e-5, rel=1e-3) and staged_lr(3279) == pytest.approx(1e-4)
    starts = [e for e in range(1, 3280) if released_staged_lr(e, 3280) != released_staged_lr(e - 1, 3280)]
    assert starts == [2, 8, 26, 80, 242, 728, 2186]


def test_released_schedule_optimizer_and_selection_are_what_training_uses(tmp_path):
    from npdvae.training.adam_released import AdamReleased
    from npdvae.training.schedule import released_staged_lr
    from npdvae.training.selection import best_record, is_selectable
    config = small_config(epochs=8, schedule="released", optimizer="adam-released", select_every=3, select_after=0.4)
    trainer = open_run(config, tmp_path / "run", synthetic_dataset())
    assert isinstance(trainer.adam, AdamReleased)
    history = trainer.run()
    assert [h["lr"] for h in history] == pytest.approx([released_staged_lr(e, 8) for e in range(8)])
    # only epoch 7 (0-based 6: a multiple of 3 past 0.4 x 8 = 3.2) and the last, 8, may be kept
    kept = [h["epoch"] for h in history if h["best"]]
    assert kept and set(kept) <= {7, 8} and all(is_selectable(e, 8, 3, 0.4) for e in kept)
    best = best_record(history)
    assert load_checkpoint(tmp_path / "run" / "best.h5").epoch == best["epoch"]
    from npdvae.training.selection import mark_best   # how a model file's curves get their marks back
    unmarked = [{k: v for k, v in h.items() if k != "best"} for h in history]
    assert [h["best"] for h in mark_best(unmarked, 8, 3, 0.4)] == [h["best"] for h in history]
    assert best["valid_bound"] == max(h["valid_bound"] for h in history if h["epoch"] in (7, 8))


def test_clipping_bounds_the_global_norm():
    from npdvae.training.optim import clip_by_global_norm
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(sum((g ** 2).sum() for g in grads.values())) == pytest.approx(1.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    assert clip_by_global_norm(grads, 10.0) == pytest.approx(1.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])  # under the limit: unchanged


def test_gru_encoder_trains_end_to_end(tmp_path):
    config = small_config(encoder="gru", epochs=3, clip_grad_norm=100.0)
    assert config.model_name == "DIWAE (GRU) (K=3), noise 10%, M=2"
    history = open_run(config, tmp_path / "run", synthetic_dataset()).run()
    assert history[-1]["valid_bound"] > history[0]["valid_bound"]


def test_reference_path_trains_to_the_same_numbers_as_the_kernels(tmp_path):
    """``kernels=False`` swaps every Numba kernel (model, Adam, corruption) for
    its NumPy reference; on the same seed the two runs see the same noise and
    differ only by float32 rounding."""
    data = synthetic_dataset()
    fast = Trainer(small_config(epochs=2), data)
    slow = Trainer(small_config(epochs=2, kernels=False), data)
    assert fast.model.ops.kernels and not slow.model.ops.kernels
    assert fast.adam._update is fast.model.ops.adam_update and fast.corruption._fill is fast.model.ops.salt_and_pepper_from_uniforms
    assert slow.adam._update is slow.model.ops.adam_update and slow.corruption._fill is slow.model.ops.salt_and_pepper_from_uniforms
    for _ in range(2):
        np.testing.assert_allclose(slow.train_epoch(), fast.train_epoch(), rtol=1e-6)
    # measured: 4e-7 of each array's largest entry after 12 steps (another seed: 2.0)
    for name in fast.params:
        scale = np.abs(fast.params[name]).max()
        np.testing.assert_allclose(slow.params[name], fast.params[name], rtol=0, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("stop_at", [0, 1, 5, 6, 13])
def test_a_stop_at_any_minibatch_then_resume_equals_the_uninterrupted_run(tmp_path, stop_at):
    from npdvae.training.loop import TrainingInterrupted
    data = synthetic_dataset()          # 300 examples, batch 50: 6 minibatches an epoch
    straight = open_run(small_config(), tmp_path / "straight", data)
    straight.run()
    stopped = open_run(small_config(), tmp_path / "stopped", data)
    polls = iter(range(10 ** 6))
    stopped.stop_requested = lambda: next(polls) == stop_at   # asked before minibatch number stop_at
    with pytest.raises(TrainingInterrupted) as stop:
        stopped.run()
    assert (stop.value.epoch, stop.value.position) == (stop_at // 6 + 1, stop_at % 6)
    saved = load_checkpoint(tmp_path / "stopped" / "last.h5")
    assert saved.epoch == stop_at // 6 and saved.epoch_state.position == stop_at % 6
    resumed = open_run(small_config(), tmp_path / "stopped", data, resume=True)
    resumed.run()
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name], err_msg=name)
    assert strip_time(resumed.history) == strip_time(straight.history)


def test_a_new_run_writes_its_step_zero_checkpoint_before_training(tmp_path):
    trainer = open_run(small_config(), tmp_path / "run", synthetic_dataset())
    saved = load_checkpoint(tmp_path / "run" / "last.h5")
    assert saved.epoch == 0 and saved.adam_step == 0 and saved.epoch_state is None
    for name, value in trainer.params.items():
        np.testing.assert_array_equal(saved.params[name], value)
    resumed = open_run(small_config(), tmp_path / "run", synthetic_dataset(), resume=True)
    assert resumed.epoch == 0 and resumed.rng.bit_generator.state == trainer.rng.bit_generator.state


def test_a_trainer_in_memory_keeps_its_checkpoints_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(small_config(epochs=2), synthetic_dataset())
    history = trainer.run()
    assert set(trainer.kept) == {"best", "last"} and trainer.kept["last"].epoch == 2
    assert trainer.kept["best"].epoch == max(history, key=lambda h: h["valid_bound"])["epoch"]
    assert list(tmp_path.iterdir()) == []


def test_a_run_folder_on_a_new_path_is_created(tmp_path):
    trainer = open_run(small_config(epochs=1), tmp_path / "a" / "b", synthetic_dataset())
    trainer.run()
    trainer.release()
    assert {p.name for p in (tmp_path / "a" / "b").iterdir()} == {"config.json", "metrics.jsonl", "best.h5",
                                                                    "last.h5", ".lock"}


@pytest.mark.parametrize("kernels", [True, False])
def test_compiling_the_kernels_first_leaves_the_run_to_the_same_bits(tmp_path, kernels):
    data = synthetic_dataset()
    plain = open_run(small_config(epochs=2, kernels=kernels), tmp_path / "plain", data)
    plain.run()
    warmed = open_run(small_config(epochs=2, kernels=kernels), tmp_path / "warmed", data)
    before = {name: p.copy() for name, p in warmed.params.items()}
    state = warmed.rng.bit_generator.state
    warm_up_kernels(warmed)
    assert warmed.rng.bit_generator.state == state
    assert warmed.adam.step_count == 0
    for name, p in before.items():
        np.testing.assert_array_equal(warmed.params[name], p, err_msg=name)
    warmed.run()
    for name in plain.params:
        np.testing.assert_array_equal(warmed.params[name], plain.params[name], err_msg=name)
    assert strip_time(warmed.history) == strip_time(plain.history)
