from npdvae.bench import matmul_shapes, step_flops
from npdvae.config import TrainConfig


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
