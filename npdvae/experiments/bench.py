"""Measured speed: how close a training step comes to this machine's GEMM limit.

The floor. One minibatch of B examples runs the encoder on B*M rows and the
decoder on B*M*K rows. Its matrix products (forward, and a backward of two
products per layer, less the input gradient of the first layer) are a fixed
number of floating-point operations. That count divided by the machine's
float32 GEMM rate is the floor: no implementation of this model is much
faster. Everything else is overhead.

What :func:`benchmark` reports, per configuration:

* seconds per full epoch (median of several, after a warm-up epoch that
  also absorbs Numba's compilation) and examples per second;
* achieved model GFLOP/s = matmul FLOPs per epoch / seconds per epoch, and its
  ratio to the GEMM rate (the fraction of the floor reached);
* the matrix products' share of the step, measured by replaying exactly the
  step's products (same shapes, same order) on their own, and the ratio those
  products alone reach: the ceiling for this configuration's shapes, which
  no cut in overhead can pass (small products run below the GEMM rate);
* peak resident memory while that configuration trained.

Noise. On a shared host the speed of the whole machine drifts by tens of
percent over minutes, so a GEMM rate measured once at the start would be
compared with epochs run in another phase. So right after each timed epoch
the GEMM rate (on the shape of the decoder's output layer) and the replayed
products are measured again, each ratio and share is formed within its
epoch, and the table shows the medians over epochs.

When not to believe it. A configuration's figures are marked unreliable, with the
reason, and shown as no result (:func:`unreliable_reasons`) when the process got
less than 90% of a core over a timed epoch (CPU time against wall time: another
process had the cores), when the GEMM rate moved by more than a fifth between the
measurements around its epochs (the host changed speed under it), or when a
ratio came out above the ceiling it cannot pass (a sign of either).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from npdvae.data import Dataset
from npdvae.evaluation.evaluate import importance_sampled_bound
from npdvae.training.memory import keep_freed_memory
from npdvae.training.config import TrainConfig
from npdvae.training.loop import Trainer

# The configurations of the issue, by name.
CONFIGS = {
    "VAE K=1, 1 layer": dict(bound="elbo", k=1, noise=0.0, encoder_layers=1),
    "DVAE K=5, noise 0.05, 1 layer": dict(bound="elbo", k=5, noise=0.05, encoder_layers=1),
    "DIWAE K=5, noise 0.05, 2 layers": dict(bound="iwae", k=5, noise=0.05, encoder_layers=2),
    "DIWAE K=5, noise 0.05, GRU": dict(bound="iwae", k=5, noise=0.05, encoder="gru"),
}


def matmul_shapes(config: TrainConfig, input_dim: int, batch: int, likelihood: str = "bernoulli"):
    """The (rows, fan_in, fan_out) of every matrix product one minibatch makes, forward."""
    enc_rows, dec_rows = batch * config.m, batch * config.m * config.k
    H = config.hidden
    if config.encoder == "gru":
        # x W once for all steps, then h U_zr and (r h) U_n at each of the 5 steps
        encoder = [(enc_rows, input_dim, 3 * H)] + [(enc_rows, H, 2 * H), (enc_rows, H, H)] * 5
    else:
        enc = [input_dim] + [H] * config.encoder_layers
        encoder = [(enc_rows, i, o) for i, o in zip(enc[:-1], enc[1:])]
    dec = [config.latent] + [H] * 2
    heads = [(enc_rows, H, config.latent)] * 2
    out_heads = 1 if likelihood == "bernoulli" else 2  # logits, or mean and log-variance
    return (encoder + heads
            + [(dec_rows, i, o) for i, o in zip(dec[:-1], dec[1:])]
            + [(dec_rows, config.hidden, input_dim)] * out_heads)


def step_flops(shapes) -> float:
    """Forward 2*n*i*o per layer; backward 2*n*i*o for dW and the same for dx,
    except the first layer, whose input (the data) needs no gradient."""
    total = 0.0
    for index, (n, i, o) in enumerate(shapes):
        total += 2 * n * i * o * (2 if index == 0 else 3)
    return total


def gemm_rate(rows, inner, cols, seconds=0.5) -> float:
    """float32 GFLOP/s of an (rows x inner) @ (inner x cols) product, best of repeats."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    b = rng.standard_normal((inner, cols), dtype=np.float32)
    out = np.empty((rows, cols), np.float32)
    np.matmul(a, b, out=out)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * rows * inner * cols / best / 1e9


def replay_matmuls(shapes, repeats=20) -> float:
    """Seconds per step of the step's matrix products alone (forward x W,
    backward x^T d and d W^T), on random data of the same shapes."""
    rng = np.random.default_rng(0)
    arrays = [(rng.standard_normal((n, i), dtype=np.float32), rng.standard_normal((i, o), dtype=np.float32),
               rng.standard_normal((n, o), dtype=np.float32)) for n, i, o in shapes]

    def one_step():
        for index, (x, W, d) in enumerate(arrays):
            x @ W
            x.T @ d
            if index:
                d @ W.T

    one_step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        one_step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _reset_peak_rss():
    """Linux lets a process reset its peak-RSS mark; elsewhere peaks accumulate."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The GEMM whose rate the ratios divide by: the decoder's output layer at K=5.
MODEL_GEMM_SHAPE = (500, 200, 784)


@dataclass
class ConfigResult:
    name: str
    seconds_per_epoch: float
    epoch_seconds: list
    examples_per_second: float
    model_gflops: float
    gemm_ratio: float
    matmul_share: float
    overhead_share: float
    peak_rss_mb: float
    gemm_gflops_during: list      # measured right after each timed epoch
    matmul_only_ratio: float      # the replayed products alone, over the same GEMM rate
    matmul_seconds_during: list   # an epoch's products replayed alone, right after each timed epoch
    cpu_per_wall: list = field(default_factory=list)   # the process's CPU seconds per wall second, each epoch
    unreliable: list = field(default_factory=list)     # why the figures are not to be believed (none: they are)


@dataclass
class EvalResult:
    examples: int
    samples: int
    seconds: float
    gflops: float
    gemm_ratio: float
    floor_seconds_full_test: float
    projected_seconds_full_test: float
    gemm_gflops_during: list      # measured just before and just after
    peak_rss_mb: float


@dataclass
class BenchReport:
    gemm_gflops_square: float
    gemm_gflops_model: float
    configs: list = field(default_factory=list)
    evaluation: EvalResult | None = None
    startup_seconds: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def bench_config(name, overrides, dataset: Dataset, epochs: int, batch_size=100, progress=None) -> ConfigResult:
    """Times ``epochs`` epochs after a warm-up one. Right after each, the GEMM
    rate and the replayed products are measured too, and every ratio is
    formed within its epoch before the median is taken, so that an epoch in
    a slow phase of the host is compared with measurements from that phase."""
    say = progress or (lambda message: None)
    config = TrainConfig(dataset="mnist", batch_size=batch_size, epochs=epochs + 1, **overrides)
    trainer = Trainer(config, dataset)
    n = dataset.num_examples("train")
    steps = -(-n // batch_size)
    shapes = matmul_shapes(config, dataset.input_dim, batch_size, dataset.likelihood)
    flops = step_flops(shapes) * n / batch_size
    trainer.train_epoch()  # warm-up: compilation, caches, allocator
    _reset_peak_rss()
    times, gemm_during, matmul_during, cpu_per_wall = [], [], [], []
    gemm_before = gemm_rate(*MODEL_GEMM_SHAPE, seconds=0.3)
    for epoch in range(epochs):
        say(f"training: {name}, timed epoch {epoch + 1} of {epochs}")
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train_epoch()
        times.append(time.perf_counter() - start)
        cpu_per_wall.append((time.process_time() - cpu) / times[-1])
        gemm_during.append(gemm_rate(*MODEL_GEMM_SHAPE, seconds=0.3))
        matmul_during.append(replay_matmuls(shapes) * steps)
    peak = peak_rss_mb()
    seconds = statistics.median(times)
    per_epoch = list(zip(times, gemm_during, matmul_during))
    ratio = statistics.median(flops / t / 1e9 / gemm for t, gemm, _ in per_epoch)
    share = statistics.median(min(1.0, matmuls / t) for t, _, matmuls in per_epoch)
    ceiling = statistics.median(flops / matmuls / 1e9 / gemm for _, gemm, matmuls in per_epoch)
    result = ConfigResult(name, seconds, times, n / seconds, flops / seconds / 1e9, ratio,
                          share, 1.0 - share, peak, gemm_during, ceiling, matmul_during, cpu_per_wall)
    result.unreliable = unreliable_reasons(result, gemm_before)
    return result


def unreliable_reasons(result: ConfigResult, gemm_before: float) -> list[str]:
    """Why ``result`` is not to be believed (see the module docstring); empty when it is."""
    reasons = []
    starved = min(result.cpu_per_wall, default=1.0)
    if starved < 0.9:
        reasons.append(f"the process got {starved:.0%} of a core in an epoch (the host was busy)")
    rates = [gemm_before, *result.gemm_gflops_during]
    if min(rates) > 0 and max(rates) / min(rates) > 1.2:
        reasons.append(f"the GEMM rate moved from {min(rates):.0f} to {max(rates):.0f} GFLOP/s during the timing")
    if result.gemm_ratio > result.matmul_only_ratio:
        reasons.append(f"of GEMM {result.gemm_ratio:.2f} came out above its ceiling {result.matmul_only_ratio:.2f}, "
                       "which cannot be")
    return reasons


def bench_evaluation(model, params, images, samples=5000, batch_size=100, full_test=10_000) -> EvalResult:
    """Importance-sampled log p(x) on ``images`` (forward only: decoder on B*S rows)."""
    rng = np.random.default_rng(0)
    importance_sampled_bound(model, params, images[:2], 10, rng)  # warm-up
    gemm_during = [gemm_rate(*MODEL_GEMM_SHAPE, seconds=0.3)]
    _reset_peak_rss()
    start = time.perf_counter()
    for begin in range(0, images.shape[0], batch_size):
        importance_sampled_bound(model, params, images[begin:begin + batch_size], samples, rng)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    gemm_during.append(gemm_rate(*MODEL_GEMM_SHAPE, seconds=0.3))
    gemm = statistics.mean(gemm_during)
    c = model.config
    decoder = [(1, c.latent, c.hidden)] + [(1, c.hidden, c.hidden)] * (c.decoder_layers - 1)
    decoder.append((1, c.hidden, c.input_dim))
    encoder = [(1, c.input_dim, c.hidden)] + [(1, c.hidden, c.hidden)] * (c.encoder_layers - 1)
    encoder += [(1, c.hidden, c.latent)] * 2
    per_example = sum(2 * i * o for _, i, o in decoder) * samples + sum(2 * i * o for _, i, o in encoder) * (
        -(-samples // 500))
    flops = per_example * images.shape[0]
    gflops = flops / seconds / 1e9
    return EvalResult(images.shape[0], samples, seconds, gflops, gflops / gemm,
                      per_example * full_test / (gemm * 1e9), seconds * full_test / images.shape[0],
                      gemm_during, peak)


def startup_seconds() -> float:
    """Wall time of a fresh process from start to the end of its first training
    step (Numba's cache warm): what a second run of a command waits."""
    code = ("import time; t = time.perf_counter()\n"
            "import numpy as np\n"
            "from npdvae.training.operations import operations\n"
            "from npdvae.vae.model import DVAEModel, ModelConfig\n"
            "from npdvae.training.optim import Adam\n"
            "from npdvae.vae.corruption import SaltAndPepper\n"
            "ops = operations(kernels=True)\n"
            "m = DVAEModel(ModelConfig(784, activation='tanh'), ops); rng = np.random.default_rng(0)\n"
            "p = m.init_params(rng); x = (rng.random((100, 784)) < .3).astype(np.float32)\n"
            "xt = SaltAndPepper(.05, released=False, ops=ops).sample(x, 1, rng)\n"
            "e = rng.standard_normal((100, 1, 5, 50), dtype=np.float32)\n"
            "Adam(p, ops=ops).step(m.bound_and_gradients(p, x, xt, e, 'iwae').grads)\n"
            "print(time.perf_counter() - t)\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    return total if done.stdout.strip() else float("nan")


def benchmark(dataset: Dataset, configs=None, epochs=3, eval_examples=200, eval_samples=5000,
              progress=None, startup=True) -> BenchReport:
    """Everything above, in one process (and the start-up of a fresh one, unless not
    ``startup``). ``progress(message)`` reports each stage."""
    keep_freed_memory()
    say = progress or (lambda message: None)
    say("GEMM rate")
    report = BenchReport(gemm_gflops_square=gemm_rate(2000, 2000, 2000),
                         gemm_gflops_model=gemm_rate(*MODEL_GEMM_SHAPE))
    for name in (configs or CONFIGS):
        say(f"training: {name}, warm-up epoch")
        report.configs.append(bench_config(name, CONFIGS[name], dataset, epochs, progress=say))
    if eval_examples:
        say(f"evaluation: K={eval_samples} on {eval_examples} test images")
        config = TrainConfig(dataset="mnist", bound="iwae", k=5)
        trainer = Trainer(config, dataset)
        images = dataset.batch("test", np.arange(min(eval_examples, dataset.num_examples("test"))))
        report.evaluation = bench_evaluation(trainer.model, trainer.params, images, eval_samples)
    if startup:
        say("start-up of a fresh process")
        report.startup_seconds = startup_seconds()
    return report


def format_report(report: BenchReport) -> str:
    lines = [f"float32 GEMM at the start: {report.gemm_gflops_square:.0f} GFLOP/s (2000^3), "
             f"{report.gemm_gflops_model:.0f} GFLOP/s (500x200 @ 200x784, the decoder's output layer)", ""]
    header = (f"{'configuration':34s} {'s/epoch':>8s} {'ex/s':>8s} {'GFLOP/s':>8s} {'GEMM now':>9s} "
              f"{'of GEMM':>8s} {'ceiling':>8s} {'matmul':>7s} {'other':>7s} {'peak MB':>8s}")
    lines += [header, "-" * len(header)]
    doubts = []
    for c in report.configs:
        gemm_now = statistics.median(c.gemm_gflops_during)
        if c.unreliable:   # measured, but not a result: no figure of it is printed as one
            lines.append(f"{c.name:34s} {'unreliable: see below':>48s}")
            doubts.append(f"{c.name}: not a result, because {'; and '.join(c.unreliable)} "
                          f"(measured {c.seconds_per_epoch:.2f} s/epoch; run the benchmark on an idle machine)")
            continue
        lines.append(f"{c.name:34s} {c.seconds_per_epoch:8.2f} {c.examples_per_second:8.0f} {c.model_gflops:8.1f} "
                     f"{gemm_now:9.0f} {c.gemm_ratio:8.2f} {c.matmul_only_ratio:8.2f} "
                     f"{c.matmul_share:7.0%} {c.overhead_share:7.0%} {c.peak_rss_mb:8.0f}")
    if doubts:
        lines += [""] + doubts
    if report.evaluation:
        e = report.evaluation
        lines += ["", f"evaluation, K={e.samples} importance samples: {e.examples} images in {e.seconds:.1f} s, "
                      f"{e.gflops:.1f} GFLOP/s = {e.gemm_ratio:.2f} of GEMM "
                      f"({statistics.mean(e.gemm_gflops_during):.0f} GFLOP/s now); the 10,000 test images would "
                      f"take {e.projected_seconds_full_test:.0f} s (GEMM floor {e.floor_seconds_full_test:.0f} s); "
                      f"peak {e.peak_rss_mb:.0f} MB"]
    if report.startup_seconds is not None:
        lines.append(f"fresh process to the end of its first training step (Numba cache warm): "
                     f"{report.startup_seconds:.2f} s")
    return "\n".join(lines)
