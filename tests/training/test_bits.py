"""A fixed seed gives fixed bits: the parameters after a few epochs of each configuration
family, against checksums recorded from the code as it stood before a change.

Moving or rewriting code is no reason for different numbers; this test says when a change
did alter them (then the change must say why, and the checksums are recorded anew with
``python -m tests.training.test_bits``). Floating-point results depend on the BLAS kernels of the
processor, so the checksums are kept per BLAS library, its architecture and the processor
LLVM compiles the Numba kernels for: two processors that OpenBLAS drives with the same
kernels can still give other bits (an Intel Xeon and an AMD EPYC, both SkylakeX to
OpenBLAS, differed in the DIWAE family). The first checksums were recorded on an Intel
Xeon whose LLVM name was not noted; they stand for the vendor (GenuineIntel), as a
fallback after the exact processor. On a processor with no checksums recorded the test
skips, saying so. BLAS runs on one thread."""

import hashlib
import json
import sys

import pytest

from npdvae.run_folder.checkpoint import array_checksum
from npdvae.training.config import TrainConfig
from npdvae.run_folder.runs import open_run
from tests.synthetic import synthetic_dataset, synthetic_real_dataset

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl (the cluster extra) pins BLAS threads")

FAMILIES = {
    "VAE K=1": (dict(dataset="mnist", bound="elbo", k=1, noise=0.0), synthetic_dataset),
    "DIWAE K=5, noise, 2 layers": (dict(dataset="mnist", bound="iwae", k=5, m=2, noise=0.1, encoder_layers=2),
                                   synthetic_dataset),
    "DVAE GRU": (dict(dataset="mnist", bound="elbo", k=2, noise=0.05, encoder="gru"), synthetic_dataset),
    "DVAE Gaussian likelihood": (dict(dataset="frey-face", bound="iwae", k=3, noise=0.05), synthetic_real_dataset),
}
COMMON = dict(latent=3, hidden=8, epochs=3, batch_size=50, seed=11, schedule="staged", clip_grad_norm=5.0)

# (BLAS library, architecture, LLVM's host processor) -> family -> SHA-256 over the parameters'
# checksums, in name order
RECORDED = {
    "openblas/SkylakeX/znver4": {
        "VAE K=1": "b222875f0d5f037bf8cacf90f3413fa181a22b51b241ce91b1f32831e7cdfa2f",
        "DIWAE K=5, noise, 2 layers": "fdcf202d79898a15efe0d70de51810a6e3eae8cbb6e6d555e7231b0d453d50ee",
        "DVAE GRU": "15ba65be0795d73dec9efe15c4a1d75b2729d79ec26ce10cc0b2f82aad31a189",
        "DVAE Gaussian likelihood": "60e813ab60c2d58b7f605796f62b0280c0ba5004735242d530d6ebacecd7bc5b",
    },
    "openblas/SkylakeX/emeraldrapids": {
        "VAE K=1": "b222875f0d5f037bf8cacf90f3413fa181a22b51b241ce91b1f32831e7cdfa2f",
        "DIWAE K=5, noise, 2 layers": "81e2c887242bccd1db2ffe3b9385eaf5fa72bbcb785f95ae6ce706566a4946c1",
        "DVAE GRU": "15ba65be0795d73dec9efe15c4a1d75b2729d79ec26ce10cc0b2f82aad31a189",
        "DVAE Gaussian likelihood": "60e813ab60c2d58b7f605796f62b0280c0ba5004735242d530d6ebacecd7bc5b",
    },
    "openblas/SkylakeX/GenuineIntel": {
        "VAE K=1": "b222875f0d5f037bf8cacf90f3413fa181a22b51b241ce91b1f32831e7cdfa2f",
        "DIWAE K=5, noise, 2 layers": "81e2c887242bccd1db2ffe3b9385eaf5fa72bbcb785f95ae6ce706566a4946c1",
        "DVAE GRU": "15ba65be0795d73dec9efe15c4a1d75b2729d79ec26ce10cc0b2f82aad31a189",
        "DVAE Gaussian likelihood": "60e813ab60c2d58b7f605796f62b0280c0ba5004735242d530d6ebacecd7bc5b",
    },
}


def _vendor() -> str:
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("vendor_id")), "unknown")


def blas_keys() -> list[str]:
    """This machine's keys into RECORDED, the exact one first: BLAS/architecture/LLVM processor,
    then BLAS/architecture/vendor."""
    import llvmlite.binding
    blas = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]
    library = f"{blas[0]['internal_api']}/{blas[0].get('architecture')}" if blas else "none"
    return [f"{library}/{llvmlite.binding.get_host_cpu_name()}", f"{library}/{_vendor()}"]


def parameters_digest(family: str, tmp_path) -> str:
    settings, make_dataset = FAMILIES[family]
    config = TrainConfig(**settings, **COMMON)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        trainer = open_run(config, tmp_path / "run", make_dataset())
        trainer.run()
    digest = hashlib.sha256()
    for name in sorted(trainer.params):
        digest.update(f"{name}:{array_checksum(trainer.params[name])};".encode())
    return digest.hexdigest()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_fixed_seed_gives_the_recorded_parameters(family, tmp_path):
    keys = blas_keys()
    key = next((key for key in keys if family in RECORDED.get(key, {})), None)
    if key is None:
        pytest.skip(f"no checksums recorded for {' or '.join(keys)}; record them with python -m tests.training.test_bits")
    assert parameters_digest(family, tmp_path) == RECORDED[key][family]


if __name__ == "__main__":   # print the checksums of this machine, to be pasted into RECORDED
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as folder:
        digests = {family: parameters_digest(family, Path(folder) / str(i)) for i, family in enumerate(FAMILIES)}
    json.dump({blas_keys()[0]: digests}, sys.stdout, indent=4)
    print()
