"""Pictures: samples from the prior, denoised reconstructions, training curves.

Image grids are assembled here in NumPy; encoding to PNG and plotting use
matplotlib, an optional dependency (``pip install 'npdvae[plot]'``).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from npdvae.run_folder.run_files import replace_file

# formats a picture may be written in, by file suffix
PICTURE_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")
# a grid of more images than this is no longer a picture one can read, and its canvas
# (scaled 3 x 3, then RGBA) grows past hundreds of megabytes
MAX_IMAGES = 1024


def picture_format(path) -> str:
    """The format named by ``path``'s suffix, or ValueError naming the ones there are."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PICTURE_FORMATS:
        raise ValueError(f"{path}: the file name must end in one of "
                         f"{', '.join('.' + f for f in PICTURE_FORMATS)}")
    return suffix


def _write_figure(path, draw):
    """Render with ``draw(buffer, format)`` in memory, then replace ``path`` in one step:
    a symlink at ``path`` is replaced, never followed, and a failed write names the file."""
    fmt = picture_format(path)
    buffer = io.BytesIO()
    draw(buffer, fmt)
    replace_file(path, buffer.getvalue())


class PlotLibraryMissing(ImportError):
    pass


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise PlotLibraryMissing(
            "pictures need matplotlib: pip install matplotlib, or in a checkout pip install -e '.[plot]'") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    return matplotlib, plt


def decoder_mean(model, outputs) -> np.ndarray:
    """The mean of p(x | z): sigmoid(logits) for Bernoulli, the mean for Gaussian."""
    return model.head.mean(outputs)


def sample_images(model, params, num_images, rng) -> np.ndarray:
    """Decoder means at z ~ p(z) = N(0, I): (n, D)."""
    dtype = params["decoder.hidden0.W"].dtype
    z = model.ops.standard_normal(rng, (num_images, model.config.latent), dtype)
    outputs, _ = model.decode(params, z)
    return decoder_mean(model, outputs)


def reconstruct(model, params, x, corruption, rng):
    """Rows of (clean x, corrupted x~, reconstruction from x~), each (n, D).

    The reconstruction decodes the posterior mean z = mu(x~): the denoising
    model's best guess of the clean image behind the corrupted one.
    """
    x_tilde = corruption.sample(x, 1, rng)[:, 0, :]
    mu, _, _ = model.encode(params, x_tilde)
    outputs, _ = model.decode(params, mu)
    return x, np.clip(x_tilde, 0, 1), decoder_mean(model, outputs)


def tile(images: np.ndarray, image_shape, columns: int, pad: int = 1) -> np.ndarray:
    """(n, D) images -> one 2-D array, ``columns`` images per row, with a 1-pixel white margin."""
    n = images.shape[0]
    rows = math.ceil(n / columns)
    h, w = image_shape
    canvas = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = images[i].reshape(h, w)
    return canvas


def save_image(path, canvas: np.ndarray, scale: int = 3, row_labels=None):
    """Write a grey-scale picture of values in [0, 1], each pixel ``scale`` x ``scale``;
    ``row_labels`` names each row of images, to its left."""
    _, plt = _matplotlib()
    big = np.kron(np.clip(canvas, 0, 1), np.ones((scale, scale)))
    if not row_labels:
        _write_figure(path, lambda buffer, fmt: plt.imsave(buffer, big, cmap="gray", vmin=0.0, vmax=1.0,
                                                           format=fmt))
        return
    dpi, margin = 100, 110   # pixels of the label column
    height, width = big.shape
    fig = plt.figure(figsize=((width + margin) / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes([margin / (width + margin), 0, width / (width + margin), 1])
    ax.imshow(big, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    for row, label in enumerate(row_labels):
        center = 1 - (row + 0.5) / len(row_labels)
        fig.text(margin / (width + margin) - 0.01, center, label, ha="right", va="center", fontsize=9)
    try:
        _write_figure(path, lambda buffer, fmt: fig.savefig(buffer, dpi=dpi, format=fmt, facecolor="white"))
    finally:
        plt.close(fig)


def plot_training_curves(runs, path, log_epochs: bool = True, from_epoch: int = 1):
    """One panel: bound against epoch for each run (training dashed, validation solid).

    ``runs``: list of (label, metrics records). With ``log_epochs`` the x axis
    is log-scaled, as in the paper's Figure 1. ``from_epoch`` leaves out the
    epochs before it, so the y axis spans what is left: late differences of a
    fraction of a nat become visible. The legend (one entry per run, its colour)
    stands beside the panel, which keeps its size however many and however long
    the labels are.
    """
    _, plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, records in runs:
        records = [r for r in records if r["epoch"] >= from_epoch]
        epochs = [r["epoch"] for r in records]
        line, = ax.plot(epochs, [r["valid_bound"] for r in records], label=label)
        ax.plot(epochs, [r["train_bound"] for r in records], linestyle="--", color=line.get_color(), alpha=0.6)
    ax.plot([], [], color="black", label="validation (solid)")
    ax.plot([], [], color="black", linestyle="--", alpha=0.6, label="training (dashed)")
    if log_epochs:
        ax.set_xscale("log")
    ax.set_xlabel("epoch" + (" (log scale)" if log_epochs else ""))
    ax.set_ylabel("bound (nats)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    try:
        # "tight" grows the picture to hold the legend instead of shrinking the panel
        _write_figure(path, lambda buffer, fmt: fig.savefig(buffer, dpi=120, format=fmt, bbox_inches="tight"))
    finally:
        plt.close(fig)


def write_samples(path, model, params, image_shape, num_images=64, seed=0):
    """PNG of ``num_images`` decoder means from the prior, 8 or more per row."""
    if not 1 <= num_images <= MAX_IMAGES:
        raise ValueError(f"num_images must be in [1, {MAX_IMAGES}], got {num_images}")
    images = sample_images(model, params, num_images, np.random.default_rng(seed))
    columns = max(8, math.ceil(math.sqrt(num_images)))
    save_image(path, tile(images, image_shape, columns))
    return path


def write_reconstructions(path, model, params, dataset, corruption, split="test", num_images=10, seed=0):
    """PNG with three rows: clean, corrupted, reconstructed (first ``num_images`` of ``split``)."""
    if not 1 <= num_images <= MAX_IMAGES // 3:
        raise ValueError(f"num_images must be in [1, {MAX_IMAGES // 3}], got {num_images}")
    rng = np.random.default_rng(seed)
    idx = np.arange(min(num_images, dataset.num_examples(split)))
    clean, corrupted, recon = reconstruct(model, params, dataset.batch(split, idx, rng), corruption, rng)
    rows = np.concatenate([clean, corrupted, recon])
    save_image(path, tile(rows, dataset.image_shape, len(idx)), row_labels=("clean", "corrupted", "reconstructed"))
    return path
