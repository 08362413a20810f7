"""Slow, obviously-correct plain-numpy references for the compiled kernels (test oracle only).

Written from the formulas, not from the kernels: no shared code with nncli.kernels.
"""

import numpy as np
from scipy.special import erf, expit, log_expit, log_softmax

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(z):
    return np.logaddexp(0.0, z)


# name -> f(z, p0, p1); derivatives come from finite differences or PyTorch, never from here
ACT = {
    "linear": lambda z, a, b: z,
    "sigmoid": lambda z, a, b: expit(z),
    "tanh": lambda z, a, b: np.tanh(z),
    "relu": lambda z, a, b: np.maximum(z, 0.0),
    "leaky_relu": lambda z, a, b: np.where(z > 0, z, a * z),
    "elu": lambda z, a, b: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0))),
    "selu": lambda z, a, b: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "celu": lambda z, a, b: np.maximum(z, 0) + np.minimum(0, a * np.expm1(np.minimum(z, 0) / a)),
    "gelu": lambda z, a, b: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    "gelu_tanh": lambda z, a, b: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    "silu": lambda z, a, b: z * expit(z),
    "mish": lambda z, a, b: z * np.tanh(_softplus(z)),
    "softplus": lambda z, a, b: np.where(a * z > b, z, _softplus(a * z) / a),
    "softsign": lambda z, a, b: z / (1 + np.abs(z)),
    "hardtanh": lambda z, a, b: np.clip(z, a, b),
    "hardsigmoid": lambda z, a, b: np.clip(z / 6 + 0.5, 0, 1),
    "hardswish": lambda z, a, b: z * np.clip(z / 6 + 0.5, 0, 1),
    "piecewise_linear": lambda z, a, b: np.clip(z + 0.5, 0, 1),
    "tanhshrink": lambda z, a, b: z - np.tanh(z),
    "softshrink": lambda z, a, b: np.where(z > a, z - a, np.where(z < -a, z + a, 0.0)),
    "hardshrink": lambda z, a, b: np.where(np.abs(z) > a, z, 0.0),
}


def forward(Ws, bs, acts, X):
    """Logits of an MLP: acts[l] = (name, p0, p1) for each hidden layer; the last layer is linear."""
    A = X
    for l, (W, b) in enumerate(zip(Ws, bs)):
        Z = A @ W + b
        A = ACT[acts[l][0]](Z, acts[l][1], acts[l][2]) if l < len(Ws) - 1 else Z
    return A


def loss(name, Z, Y, sw=None, delta=1.0):
    """Mean loss from logits, as PyTorch's reductions define it."""
    n, K = Z.shape
    sw = np.ones(n) if sw is None else sw
    if name == "bce":
        per = -(Y * log_expit(Z) + (1 - Y) * log_expit(-Z))
        return float(np.sum(sw[:, None] * per) / (n * K))
    if name == "cross_entropy":
        return float(np.sum(sw * -(Y * log_softmax(Z, axis=1)).sum(axis=1)) / n)
    R = Z - Y
    per = {"mse": R**2, "mae": np.abs(R),
           "huber": np.where(np.abs(R) < delta, 0.5 * R**2, delta * (np.abs(R) - 0.5 * delta))}[name]
    return float(np.sum(sw[:, None] * per) / (n * K))
