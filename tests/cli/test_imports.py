"""``npdvae --import``: a corruption of one's own, registered by the user's code, trained,
listed, refused without its code, and resumed with it, all from the command line, in real
processes (the registry is per process)."""

import subprocess
import sys
import textwrap

import pytest

from tests.cli.test_main import SMALL
from tests.data.conftest import REPO

BLOCK_MASK = textwrap.dedent('''
    import numpy as np
    import npdvae


    class BlockMask:
        """a random size x size square of each image set to 0"""

        def __init__(self, noise, size=7):
            self.size, self.params, self.is_identity = size, {"size": size}, False

        def sample(self, x, m, rng):
            side = int(np.sqrt(x.shape[1]))
            out = np.repeat(x[:, None, :], m, axis=1).reshape(len(x), m, side, side)
            top, left = rng.integers(0, side - self.size + 1, size=(2, len(x), m))
            for i, j in np.ndindex(len(x), m):
                out[i, j, top[i, j]:top[i, j] + self.size, left[i, j]:left[i, j] + self.size] = 0
            return out.reshape(len(x), m, -1)


    npdvae.register_corruption("block-mask", BlockMask)
''')


def npdvae(cwd, mnist_root, *args):
    return subprocess.run([sys.executable, "-m", "npdvae.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "NPDVAE_DATA_DIR": str(mnist_root), "OPENBLAS_NUM_THREADS": "1",
                               "PYTHONPATH": str(REPO)})


def _one_line_error(result, code, *fragments):
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output


def test_a_corruption_of_ones_own_trains_and_resumes_from_the_command_line(mnist_root, tmp_path):
    (tmp_path / "blockmask.py").write_text(BLOCK_MASK)
    run = tmp_path / "run"
    trained = npdvae(REPO, mnist_root, "--import", tmp_path / "blockmask.py", "train", "--noise-type", "block-mask",
                     "--noise-param", "size=5", "--noise", "0.1", "--epochs", "1", *SMALL, "--out", run)
    assert trained.returncode == 0, trained.stderr
    assert "DVAE (K=1), 1 hidden layer, block-mask 0.1 (size=5)" in trained.stdout
    assert "corruption block-mask: a random size x size square of each image set to 0" in trained.stdout

    listed = npdvae(REPO, mnist_root, "runs", run)   # named and listed without the code
    assert listed.returncode == 0 and "block-mask 0.1 (size=5)" in listed.stdout, listed.stderr

    refused = npdvae(REPO, mnist_root, "train", "--resume", "--epochs", "2", "--out", run)
    _one_line_error(refused, 1, "no corruption called 'block-mask' is registered", "import blockmask",
                    "npdvae --import")
    # by module name, found from the working folder as python -m finds it
    resumed = npdvae(tmp_path, mnist_root, "--import", "blockmask", "train", "--resume", "--epochs", "2",
                     "--out", run)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch 1" in resumed.stdout, resumed.stdout
    scored = npdvae(tmp_path, mnist_root, "--import", "blockmask", "evaluate", run, "--examples", "20",
                    "--is-samples", "5")
    assert scored.returncode == 0, scored.stderr


@pytest.mark.parametrize("source, fragment", [
    (None, "nosuchmodule: cannot import it (ModuleNotFoundError"),
    ("raise RuntimeError('broken on purpose')\n", "cannot import it (RuntimeError: broken on purpose)"),
])
def test_code_that_cannot_be_imported_is_one_line_naming_it(mnist_root, tmp_path, source, fragment):
    target = "nosuchmodule"
    if source is not None:
        (tmp_path / "broken.py").write_text(source)
        target = tmp_path / "broken.py"
    result = npdvae(tmp_path, mnist_root, "--import", target, "runs", tmp_path)
    _one_line_error(result, 2, "--import", fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--noise-type", "block-mask"], "'block-mask' is not a registered corruption"),
    (["--noise-param", "size"], "give NAME=VALUE"),
    (["--noise-type", "salt-pepper", "--noise", "0.1", "--noise-param", "size=3"], "takes no parameters"),
])
def test_bad_corruption_options_are_usage_errors(mnist_root, tmp_path, args, fragment):
    result = npdvae(REPO, mnist_root, "train", *args, "--epochs", "1", *SMALL, "--out", tmp_path / "run")
    _one_line_error(result, 2, fragment)
    assert not (tmp_path / "run").exists()
