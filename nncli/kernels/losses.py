"""Losses on the output layer's logits: the registry and the compiled loss/delta kernel.

Every loss takes the output layer's pre-activation Z (logits), never probabilities, so the output
activation (sigmoid, softmax or identity) is folded into the loss. That is what makes
delta = dL/dZ simple and stable: for sigmoid + binary cross-entropy and for softmax + categorical
cross-entropy, delta = (p_hat - y) / n, and logits of +-1000 give finite losses.

The confidence penalty (Pereyra et al., 2017) adds -beta * H(p_hat) per row to classification
losses, H the entropy of the predicted distribution: beta > 0 penalizes over-confident outputs.
The lecture's term L - lambda * sum(p log p) = L + lambda * H is the same with beta = -lambda: it
rewards confident outputs. hp = [huber_delta, beta].

Reductions follow PyTorch's `mean`: binary cross-entropy, MSE, MAE and Huber average over all
n*K elements, softmax cross-entropy over the n rows. A row weight w_i (class weights) multiplies
that row's loss before the mean, as PyTorch's `weight` argument of BCEWithLogitsLoss does.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from nncli.kernels import kernel


@dataclass(frozen=True)
class Loss:
    name: str
    code: int
    tasks: tuple
    formula: str
    params: dict = field(default_factory=dict)


BCE, SOFTMAX_CE, MSE, MAE, HUBER = 0, 1, 2, 3, 4

LOSSES = {
    loss.name: loss
    for loss in [
        Loss("bce", BCE, ("binary",), "-(y log s(z) + (1-y) log(1-s(z))), from logits"),
        Loss("cross_entropy", SOFTMAX_CE, ("multiclass",), "-log softmax(z)[y], from logits"),
        Loss("mse", MSE, ("regression",), "(z - y)^2"),
        Loss("mae", MAE, ("regression",), "|z - y|"),
        Loss("huber", HUBER, ("regression",), "(z-y)^2/2 if |z-y| < delta else delta*(|z-y| - delta/2)",
             {"delta": 1.0}),
    ]
}
DEFAULT_LOSS = {"binary": "bce", "multiclass": "cross_entropy", "regression": "mse"}


PLAIN = (BCE, SOFTMAX_CE, MSE)  # the losses of the plain kernels (extras=None: nncli.train.kernel_extras)


@kernel(from_python=True)  # also scores validation data (nncli.train)
def loss_and_delta(code, hp, Z, Y, sw, delta, extras):
    """Mean loss over the batch, and delta = dLoss/dZ written into `delta`.

    Z, Y, delta: (n, K); sw: (n,) row weights; hp: float64 parameters of the loss (Huber's delta).
    For cross_entropy, Y is one-hot. With extras None (the plain kernels, see nncli.kernels.mlp)
    only the PLAIN losses are compiled; any other gives NaN, which stops training.
    """
    n, K = Z.shape
    total = 0.0
    beta = hp[1]
    if code == SOFTMAX_CE:
        for i in range(n):
            zmax = Z[i, 0]
            for k in range(1, K):
                zmax = max(zmax, Z[i, k])
            s = 0.0
            for k in range(K):
                s += math.exp(Z[i, k] - zmax)
            log_s = math.log(s)
            row = 0.0
            entropy = 0.0
            for k in range(K):
                log_p = Z[i, k] - zmax - log_s
                row -= Y[i, k] * log_p
                entropy -= math.exp(log_p) * log_p
                delta[i, k] = sw[i] * (math.exp(log_p) - Y[i, k]) / n
            if beta != 0.0:
                # dH/dz_k = -p_k (log p_k + H)
                for k in range(K):
                    log_p = Z[i, k] - zmax - log_s
                    delta[i, k] += sw[i] * beta * math.exp(log_p) * (log_p + entropy) / n
                row -= beta * entropy
            total += sw[i] * row
        return total / n
    scale = 1.0 / (n * K)
    for i in range(n):
        for k in range(K):
            z = Z[i, k]
            y = Y[i, k]
            if code == BCE:
                # log(1 + exp(-|z|)) keeps exp from overflowing for any logit
                total += sw[i] * (max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z))))
                p = 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z))
                delta[i, k] = sw[i] * (p - y) * scale
                if beta != 0.0:
                    # H = softplus(z) - z*p, the entropy of Bernoulli(p); dH/dz = -z p (1 - p)
                    entropy = max(z, 0.0) + math.log1p(math.exp(-abs(z))) - z * p
                    total -= sw[i] * beta * entropy
                    delta[i, k] += sw[i] * beta * z * p * (1.0 - p) * scale
            elif code == MSE:
                r = z - y
                total += sw[i] * r * r
                delta[i, k] = sw[i] * 2.0 * r * scale
            elif extras is None:
                total = math.nan
                delta[i, k] = math.nan
            elif code == MAE:
                r = z - y
                total += sw[i] * abs(r)
                delta[i, k] = sw[i] * (np.sign(r)) * scale
            else:  # HUBER
                r = z - y
                d = hp[0]
                if abs(r) < d:
                    total += sw[i] * 0.5 * r * r
                    delta[i, k] = sw[i] * r * scale
                else:
                    total += sw[i] * d * (abs(r) - 0.5 * d)
                    delta[i, k] = sw[i] * d * np.sign(r) * scale
    return total * scale
