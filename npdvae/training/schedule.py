"""The learning-rate schedules: constant, Burda et al.'s staged one, and the authors' released one."""

from __future__ import annotations

import math


def staged_lr(epoch: int, base_lr: float = 1e-3) -> float:
    """Burda et al.'s schedule for IWAE: stage i = 0, 1, ..., 7 lasts 3^i epochs
    at learning rate base_lr * 10^(-i/7); 3280 epochs in all. ``epoch`` counts
    from 0; after the last stage the rate stays at the last stage's."""
    stage, first_epoch_of_next = 0, 1
    while epoch >= first_epoch_of_next and stage < 7:
        stage += 1
        first_epoch_of_next += 3 ** stage
    return base_lr * 10 ** (-stage / 7)


def released_decay_constant(epochs: int) -> float:
    """c = log(floor(epochs / 2)) / log(3): the released script's ``get_epsilon_decay`` (whose
    Python 2 division floors); 7.12 for 5000 epochs, 6.74 for 3280."""
    if epochs < 6:
        raise ValueError(f"the released schedule needs at least 6 epochs (its decay constant divides by "
                         f"log(epochs // 2) / log 3), got {epochs}")
    return math.log(epochs // 2) / math.log(3)


def released_staged_lr(epoch: int, epochs: int, base_lr: float = 1e-3) -> float:
    """The authors' released schedule (Timsud/DVAE, main_mnist.py with utils.get_epsilon_decay):
    stage k = 0, 1, ... starts at epoch 3^k - 1 (counting from 0: epochs 0-1, 2-7, 8-25, ...,
    each stage twice as long as the one before it and the first) at the rate
    base_lr * 10^(-k / c), c = :func:`released_decay_constant` of the budget ``epochs``; the
    last stage runs to the end. (The script's epsilon is 1e-4 and its rate
    epsilon * 10^(1 - k/c): base_lr = 1e-3.) Against :func:`staged_lr` at 3280 epochs: its
    stages start at 0, 2, 8, 26, 80, 242, 728 and 2186 instead of 0, 1, 4, 13, 40, 121, 364
    and 1093, and its last rate is 1e-3 * 10^(-7/6.74) = 9.1e-5 instead of 1e-3 * 10^(-7/7) = 1e-4."""
    stage = 0
    while 3 ** (stage + 1) - 1 <= epoch:
        stage += 1
    return base_lr * 10 ** (-stage / released_decay_constant(epochs))
