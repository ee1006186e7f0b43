"""``python -m cli``: the same program as ``npdvae``."""

from cli.entry import run

if __name__ == "__main__":
    run()
