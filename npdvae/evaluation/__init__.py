"""Judging a trained model: bounds and importance-sampled log p(x), pictures, curves."""
