"""The staged learning-rate schedule."""

from __future__ import annotations


def staged_lr(epoch: int, base_lr: float = 1e-3) -> float:
    """Burda et al.'s schedule for IWAE: stage i = 0, 1, ..., 7 lasts 3^i epochs
    at learning rate base_lr * 10^(-i/7); 3280 epochs in all. ``epoch`` counts
    from 0; after the last stage the rate stays at the last stage's."""
    stage, first_epoch_of_next = 0, 1
    while epoch >= first_epoch_of_next and stage < 7:
        stage += 1
        first_epoch_of_next += 3 ** stage
    return base_lr * 10 ** (-stage / 7)
