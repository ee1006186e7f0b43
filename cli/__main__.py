"""``python -m npdvae.cli``: the same program as ``npdvae``."""

from .entry import run

if __name__ == "__main__":
    run()
