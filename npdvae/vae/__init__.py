"""The (denoising) variational autoencoder itself: the Gaussian sampler, the likelihoods and
their gradients, the corruption samplers, the bounds of eq. 11 and 12, and the model that
wires them into one forward and one backward pass."""
