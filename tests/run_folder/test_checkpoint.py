import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from npdvae.run_folder.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint


def make_checkpoint(epoch=3, size=10):
    rng = np.random.default_rng(epoch)
    params = {"encoder.hidden0.W": rng.standard_normal((size, 4)).astype(np.float32),
              "decoder.logits.b": rng.standard_normal(size).astype(np.float32)}
    return Checkpoint(params, {k: v * 2 for k, v in params.items()}, {k: v * v for k, v in params.items()},
                      adam_step=17, epoch=epoch, config={"k": 5, "noise": 0.05},
                      history=[{"epoch": 1, "valid_bound": -100.5}], rng_state=np.random.default_rng(1).bit_generator.state)


def test_checkpoint_round_trip_is_exact(tmp_path):
    original = make_checkpoint()
    save_checkpoint(tmp_path / "c.h5", original)
    loaded = load_checkpoint(tmp_path / "c.h5")
    for group in ("params", "adam_m", "adam_v"):
        for name, value in getattr(original, group).items():
            np.testing.assert_array_equal(getattr(loaded, group)[name], value)
            assert getattr(loaded, group)[name].dtype == value.dtype
    assert (loaded.adam_step, loaded.epoch, loaded.config, loaded.history) == (17, 3, original.config, original.history)
    rng = np.random.default_rng()
    rng.bit_generator.state = loaded.rng_state
    np.testing.assert_array_equal(rng.random(5), np.random.default_rng(1).random(5))
    assert list(tmp_path.iterdir()) == [tmp_path / "c.h5"]  # no temporary file left


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "x.h5")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.h5")


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from npdvae.run_folder.checkpoint import Checkpoint, save_checkpoint
    path = sys.argv[1]
    big = {f"p{i}": np.full((1000, 1000), i, dtype=np.float32) for i in range(8)}   # 32 MB per file
    epoch = 1
    while True:
        epoch += 1
        params = {k: v + epoch for k, v in big.items()}
        save_checkpoint(path, Checkpoint(params, params, params, epoch, epoch, {"hidden": 2000}, [], {}))
""")


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.9])
def test_sigkill_while_writing_leaves_a_loadable_checkpoint(tmp_path, delay):
    path = tmp_path / "last.h5"
    big = {f"p{i}": np.full((1000, 1000), i + 1, dtype=np.float32) for i in range(8)}
    save_checkpoint(path, Checkpoint(big, big, big, 1, 1, {"hidden": 2000}, [], {}))   # arrays of its size
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    time.sleep(delay)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    loaded = load_checkpoint(path)
    epoch = loaded.epoch
    for i in range(8):  # the file is one whole checkpoint, not a mixture
        assert np.all(loaded.params[f"p{i}"] == i + epoch)


def test_a_mid_epoch_state_round_trips(tmp_path):
    from npdvae.run_folder.checkpoint import EpochState
    original = make_checkpoint()
    original.epoch_state = EpochState(np.random.default_rng(0).permutation(700), 4, -123.25, 1.5)
    save_checkpoint(tmp_path / "c.h5", original)
    loaded = load_checkpoint(tmp_path / "c.h5").epoch_state
    np.testing.assert_array_equal(loaded.order, original.epoch_state.order)
    assert (loaded.position, loaded.total, loaded.seconds) == (4, -123.25, 1.5)
    assert load_checkpoint(tmp_path / "c.h5").epoch_state is not None
    save_checkpoint(tmp_path / "d.h5", make_checkpoint())
    assert load_checkpoint(tmp_path / "d.h5").epoch_state is None


def test_a_format_1_checkpoint_without_checksums_still_loads(tmp_path):
    import h5py
    import json
    original = make_checkpoint()
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["format"] = "npdvae-checkpoint-1"
        f.attrs["epoch"], f.attrs["adam_step"] = 3, 17
        for name in ("config", "history", "rng_state"):
            f.attrs[name] = json.dumps(getattr(original, name))
        for group, arrays in (("params", original.params), ("adam/m", original.adam_m), ("adam/v", original.adam_v)):
            for name, value in arrays.items():
                f[f"{group}/{name}"] = value
    loaded = load_checkpoint(tmp_path / "old.h5")
    assert loaded.epoch == 3 and loaded.epoch_state is None
    np.testing.assert_array_equal(loaded.params["decoder.logits.b"], original.params["decoder.logits.b"])


def test_an_array_of_another_shape_with_the_same_bytes_fails_its_checksum():
    from npdvae.run_folder.checkpoint import array_checksum
    a = np.arange(6, dtype=np.float32)
    assert array_checksum(a) != array_checksum(a.reshape(2, 3))
    assert array_checksum(a) != array_checksum(a.astype(np.float64))
    assert array_checksum(a) == array_checksum(a.copy())
