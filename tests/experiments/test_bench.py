import math

from npdvae.experiments.bench import matmul_shapes, step_flops
from npdvae.training.config import TrainConfig


def test_flop_count_of_a_dvae_step():
    config = TrainConfig(bound="elbo", k=5, m=1, latent=50, hidden=200, encoder_layers=1)
    shapes = matmul_shapes(config, 784, 100)
    assert shapes == [(100, 784, 200), (100, 200, 50), (100, 200, 50),
                      (500, 50, 200), (500, 200, 200), (500, 200, 784)]
    forward = 2 * (100 * (784 * 200 + 2 * 200 * 50) + 500 * (50 * 200 + 200 * 200 + 200 * 784))
    first_layer_input_grad = 2 * 100 * 784 * 200
    assert step_flops(shapes) == 3 * forward - first_layer_input_grad


def test_gru_encoder_products_are_counted_per_step():
    config = TrainConfig(bound="iwae", k=5, encoder="gru", hidden=200)
    shapes = matmul_shapes(config, 784, 100)
    assert shapes[0] == (100, 784, 600) and shapes[1:11] == [(100, 200, 400), (100, 200, 200)] * 5


def test_benchmark_divides_by_the_gemm_rate_measured_alongside():
    import json
    import statistics

    from npdvae.experiments.bench import benchmark, format_report
    from tests.synthetic import synthetic_dataset

    report = benchmark(synthetic_dataset(n_train=200), configs=["VAE K=1, 1 layer"], epochs=2,
                       eval_examples=3, eval_samples=50)
    (result,) = report.configs
    assert len(result.epoch_seconds) == 2 and len(result.gemm_gflops_during) == 2
    assert all(rate > 0 for rate in result.gemm_gflops_during)
    # each epoch is divided by the measurements taken right after it; the medians of two are means
    flops = result.model_gflops * result.seconds_per_epoch
    per_epoch = list(zip(result.epoch_seconds, result.gemm_gflops_during, result.matmul_seconds_during))
    assert math.isclose(result.gemm_ratio, statistics.mean(flops / t / gemm for t, gemm, _ in per_epoch))
    assert math.isclose(result.matmul_only_ratio, statistics.mean(flops / m / gemm for _, gemm, m in per_epoch))
    assert math.isclose(result.matmul_share, statistics.mean(min(1.0, m / t) for t, _, m in per_epoch))
    assert 0 <= result.overhead_share <= 1 and math.isclose(result.matmul_share + result.overhead_share, 1.0)
    e = report.evaluation
    assert e.examples == 3 and len(e.gemm_gflops_during) == 2 and e.peak_rss_mb > 0
    assert math.isclose(e.gemm_ratio, e.gflops / statistics.mean(e.gemm_gflops_during))
    assert report.startup_seconds > 0
    text = format_report(report)
    assert "VAE K=1, 1 layer" in text and "GEMM now" in text and "ceiling" in text
    assert json.loads(report.to_json())["configs"][0]["gemm_gflops_during"] == result.gemm_gflops_during


def _result(**changes):
    from npdvae.experiments.bench import ConfigResult
    values = dict(name="VAE K=1, 1 layer", seconds_per_epoch=2.0, epoch_seconds=[2.0], examples_per_second=25000,
                  model_gflops=40.0, gemm_ratio=0.4, matmul_share=0.7, overhead_share=0.3, peak_rss_mb=300,
                  gemm_gflops_during=[100.0], matmul_only_ratio=0.6, matmul_seconds_during=[1.4],
                  cpu_per_wall=[1.0])
    values.update(changes)
    return ConfigResult(**values)


def test_figures_a_busy_or_drifting_host_made_are_named_unreliable():
    from npdvae.experiments.bench import unreliable_reasons
    assert unreliable_reasons(_result(), gemm_before=100.0) == []
    assert "got 50% of a core" in unreliable_reasons(_result(cpu_per_wall=[1.0, 0.5]), 100.0)[0]
    assert "GEMM rate moved from 70 to 100" in unreliable_reasons(_result(), gemm_before=70.0)[0]
    assert "above its ceiling" in unreliable_reasons(_result(gemm_ratio=4.32, matmul_only_ratio=0.11), 100.0)[0]


def test_an_unreliable_configuration_prints_no_figure_as_a_result():
    from npdvae.experiments.bench import BenchReport, format_report
    bad = _result(gemm_ratio=4.32, matmul_only_ratio=0.11, unreliable=["of GEMM 4.32 came out above its ceiling"])
    text = format_report(BenchReport(gemm_gflops_square=100.0, gemm_gflops_model=90.0, configs=[bad]))
    row = next(line for line in text.splitlines() if line.startswith("VAE K=1, 1 layer "))
    assert "unreliable" in row and "4.32" not in row and "0.11" not in row
    assert "VAE K=1, 1 layer: not a result, because of GEMM 4.32 came out above its ceiling" in text


def test_a_benchmark_beside_a_cpu_hog_is_marked_unreliable(tmp_path):
    import subprocess
    import sys

    from npdvae.experiments.bench import benchmark, format_report
    from tests.synthetic import synthetic_dataset

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]   # 4 on 2 cores
    try:
        report = benchmark(synthetic_dataset(n_train=1500), configs=["VAE K=1, 1 layer"], epochs=2,
                           eval_examples=0, startup=False)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    (result,) = report.configs
    assert result.unreliable, result
    text = format_report(report)
    assert "VAE K=1, 1 layer: not a result, because" in text
    assert f"{result.gemm_ratio:8.2f}" not in text
