"""A model card: the Markdown page beside a model file that tells whoever finds it what the
model is, how it was trained, what it scores on which images, how to check those figures and
load it, and who made it. Everything on the card is read from the model file itself, so a
card can always be written again from its model (``npdvae export`` writes both)."""

from __future__ import annotations

from pathlib import Path

from npdvae.run_folder.model_file import ModelFile, load_model_file
from npdvae.run_folder.provenance import describe
from npdvae.run_folder.run_files import replace_file
from npdvae.training.config import ENCODER_GRADIENT_DESCRIPTIONS, OPTIMIZER_DESCRIPTIONS, TrainConfig
from npdvae.training.selection import describe_rule

CARD_SUFFIX = ".md"

_BOUNDS = {"elbo": "the denoising variational lower bound, eq. 11 (DVAE; the VAE's bound at noise 0)",
           "iwae": "the denoising importance-weighted bound, eq. 12 (DIWAE; the IWAE bound at noise 0)"}


def _output_bias(likelihood: str) -> str:
    return "decoder.logits.b" if likelihood == "bernoulli" else "decoder.mean.b"


def card_path(model_path) -> Path:
    """Where the card of ``MODEL.h5`` lives: ``MODEL.md`` beside it."""
    return Path(model_path).with_suffix(CARD_SUFFIX)


def _architecture(config: TrainConfig, likelihood: str) -> str:
    if config.encoder == "gru":
        encoder = f"a GRU of {config.hidden} units run for 5 steps"
    else:
        layers = config.encoder_layers
        encoder = f"an MLP of {layers} hidden layer{'s' if layers > 1 else ''} of {config.hidden} ({config.activation})"
    head = "Bernoulli logits" if likelihood == "bernoulli" else "a Gaussian's mean and log-variance per pixel"
    return (f"encoder {encoder} -> a diagonal Gaussian q(z \\| x~) over {config.latent} latent units; "
            f"decoder an MLP of 2 hidden layers of {config.hidden} ({config.activation}) -> {head}")


def _corruption(config: TrainConfig) -> str:
    if not config.corrupted:
        return "none (the plain VAE or IWAE)"
    level = f"standard deviation {config.noise:g} on [0, 1] pixels" if config.noise_type == "gaussian" \
        else f"rate {100 * config.noise:g}%" if config.noise_level.endswith("%") else \
        f"level {config.noise_level}" if config.noise else "no level"
    params = "".join(f", {k} {v}" for k, v in sorted((config.noise_params or {}).items()))
    return f"`{config.noise_type}`, {level}{params}: {config.corruption_description}"


_SCHEDULES = {"staged": "staged (stage i: 3^i epochs at lr x 10^(-i/7))",
              "released": "the released script's stages (stage k from epoch 3^k - 1 at lr x 10^(-k/c), "
                          "c = log(epochs // 2) / log 3)",
              "constant": "constant"}


def _protocol(config: TrainConfig) -> str:
    clip = f"gradients clipped at a global norm of {config.clip_grad_norm:g}" if config.clip_grad_norm else \
        "no gradient clipping"
    if config.encoder_gradient != "standard":
        clip += f", the encoder's gradient by {ENCODER_GRADIENT_DESCRIPTIONS[config.encoder_gradient]}"
    data = f"{config.dataset}" + (f", {config.binarize} binarization" if config.dataset != "frey-face" else "")
    selection = describe_rule(config.select_every, config.select_after)
    return (f"{config.epochs} epochs of {OPTIMIZER_DESCRIPTIONS[config.optimizer]} at lr {config.lr:g}, "
            f"{_SCHEDULES[config.schedule]}, {clip}; minibatches of "
            f"{config.batch_size}; {data}; seed {config.seed}; {selection} kept")


def model_card(model: ModelFile, file_name: str) -> str:
    """The card of the model file ``model`` (named ``file_name`` beside its card)."""
    config = TrainConfig.from_dict(model.config)
    likelihood = "bernoulli" if "decoder.logits.b" in model.params else "gaussian"
    best = next((row for row in model.curves if int(row[0]) == model.epoch), None)
    trained = int(model.curves[-1][0]) if len(model.curves) else model.epoch
    lines = [f"# {config.model_name}", "",
             f"Model card of `{file_name}`, written from the file by `npdvae export` (npdvae's model-card "
             "format: everything below is read from the model file).", "",
             "## The model", "",
             "| | |", "|---|---|",
             f"| objective | {_BOUNDS[config.bound]}, K={config.k}, M={config.m} |",
             f"| corruption | {_corruption(config)} |",
             f"| architecture | {_architecture(config, likelihood)} |",
             f"| training | {_protocol(config)} |",
             f"| epochs trained | {trained}; these parameters are epoch {model.epoch}'s"
             + (f" (validation bound {best[2]:.2f} nats)" if best is not None else "") + " |", ""]
    lines += ["## What it scores", ""]
    evaluation = model.evaluation
    if evaluation is None:
        lines += ["No evaluation was published with this model (its run was not scored by a grid); "
                  "`npdvae evaluate` scores it.", ""]
    else:
        n, k = evaluation["log_likelihood_examples"], evaluation["is_samples"]
        lines += ["| figure | nats | images |", "|---|---|---|",
                  f"| test bound (the training estimator, K={config.k}, on the clean test images) | "
                  f"{evaluation['test_bound']:.2f} | all {evaluation['test_examples']} test images |",
                  f"| log p(x), importance sampled with K={k} | {evaluation['log_likelihood']:.2f} ± "
                  f"{evaluation['log_likelihood_stderr']:.2f} | the first {n} test images |", "",
                  "The paper's tables print the negated test bound. To check both figures (the data are "
                  "found or downloaded and verified as for training):", "", "```",
                  f"npdvae evaluate {file_name} --examples {n} --is-samples {k}",
                  f"npdvae evaluate {file_name} --is-samples 1",
                  "```", "",
                  "The first prints the log p(x) above; the second scores every test image, and its line "
                  "\"training bound (..., as tables score)\" is the test bound above.", ""]
    lines += ["## Use it", "", "```python", "import npdvae", "",
              f'model = npdvae.load("{file_name}")   # its checksums and parameters are verified',
              f"mu, log_sigma2 = model.encode(x)   # x: (B, {model.params[_output_bias(likelihood)].size}) images",
              f"bounds = model.bound(x, k={config.k})   # nats per image",
              "images = model.sample(16)", "```", "",
              f"`npdvae sample {file_name}`, `npdvae reconstruct {file_name}` and `npdvae plot {file_name}` "
              "(the training curves) take it too.", ""]
    lines += ["## Provenance", "",
              f"- trained by {describe(model.trained_by)}" if model.trained_by else
              "- trained by a version that recorded no provenance in its checkpoints",
              f"- exported by {describe(model.provenance)}",
              f"- from the run folder `{model.source}`" + (f", run identity `{model.run_id}`" if model.run_id else ""),
              ""]
    return "\n".join(lines)


def write_model_card(model_path) -> Path:
    """Write the card of the model file ``model_path`` beside it (atomically); its path."""
    model_path = Path(model_path)
    path = card_path(model_path)
    replace_file(path, model_card(load_model_file(model_path), model_path.name).encode())
    return path
