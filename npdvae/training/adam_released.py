"""Adam as the authors' released code writes it: an option of the released script's protocol
(``optimizer="adam-released"``), never the default. The derivation is in docs/math.md."""

from __future__ import annotations

import numpy as np

from npdvae.training.optim import Adam


class AdamReleased(Adam):
    """Adam as the authors' released code writes it (Timsud/DVAE, optimize.py, ``ADAM``), whose
    first moment is no average: an option (``optimizer="adam-released"``), never the default.

    The script updates, with its beta1 = 0.1, beta2 = 0.001 (the weights of the *new*
    gradient, 1 - beta in the textbook's notation), l = 1e-8 and t = 1, 2, ...::

        b1_t = 1 - (1 - 0.1) l^(t - 1)
        m_t = b1_t g + (1 - b1_t) m_(t-1)          v_t = 0.001 g^2 + 0.999 v_(t-1)
        theta <- theta - lr * [m_t / (1 - 0.9^t)] / (sqrt(v_t / (1 - 0.999^t)) + 1e-8)

    In the textbook's notation the old moment's weight is 1 - b1_t = 0.9 l^(t-1): 0.9 at
    t = 1, then 9e-9, 9e-17, ...; in float32, b1_t = 1 - 9e-9 rounds to 1, so from the second
    step on m_t = g_t exactly: no momentum, only the second moment. The bias corrections stay those
    of beta1 = 0.9 and beta2 = 0.999, so m_t / (1 - 0.9^t) is g_1 at t = 1, then
    g_t / 0.19, g_t / 0.271, ...: the early steps are up to 5.3 times larger than the
    gradient's, falling to 1.01 times by t = 44.

    The update is :func:`adam_update` (or its twin) with the old moment's weight 1 - b1_t
    in place of beta1 and the step size and eps of beta1 = 0.9, beta2 = 0.999."""

    LAMBDA = 1e-8   # the script's l

    def __init__(self, initial: dict, lr=1e-3, maximize=True, ops=None):
        super().__init__(initial, lr=lr, beta1=0.9, beta2=0.999, eps=1e-8, maximize=maximize, ops=ops)

    def first_moment_decay(self, t: int, dtype=np.float64):
        """1 - b1_t with b1_t rounded to the parameters' precision first, as the script's float32
        arithmetic does: exactly 0 in float32 from t = 2 on (and in float64 from t = 3)."""
        b1_t = dtype(1.0 - self.beta1 * self.LAMBDA ** (t - 1))
        return dtype(1.0) - b1_t


# The optimizers a configuration names
OPTIMIZERS = {"adam": Adam, "adam-released": AdamReleased}
