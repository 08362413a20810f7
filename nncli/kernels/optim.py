"""Optimizers, in order of increasing complexity: the registry and the compiled update rules.

All parameters of a network live in one flat vector theta (see nncli.network), so an optimizer is
an elementwise rule. `update` computes one element's step from its gradient and state;
`apply_updates` is the one routine that applies them. The rules are PyTorch's (torch.optim), with
weight decay applied to every parameter as torch does when given all of them in one group:
coupled (g += wd*theta) for sgd, rmsprop, adagrad and adam; decoupled (theta -= lr*wd*theta) for
adamw.
"""

import math
from dataclasses import dataclass

from numba import njit

from nncli.kernels import CACHE

SGD, ADAGRAD, RMSPROP, ADAM, ADAMW = 0, 1, 2, 3, 4

# Slots of the float64 hyper-parameter vector hp that the kernels receive.
LR, MOMENTUM, BETA2, EPS, WEIGHT_DECAY, NESTEROV, LR_DECAY, DAMPENING = range(8)
BETA1, ALPHA = MOMENTUM, BETA2
N_HP = 8


@dataclass(frozen=True)
class Optimizer:
    name: str
    code: int
    params: dict  # name -> (slot in hp, default)
    summary: str


_LR = {"lr": (LR, 0.001)}
_WD = {"weight_decay": (WEIGHT_DECAY, 0.0)}

OPTIMIZERS = {
    o.name: o
    for o in [
        Optimizer("sgd", SGD, {"lr": (LR, 0.01), "momentum": (MOMENTUM, 0.0), "dampening": (DAMPENING, 0.0),
                               "nesterov": (NESTEROV, False), **_WD},
                  "theta -= lr*g, with optional (Nesterov) momentum"),
        Optimizer("adagrad", ADAGRAD, {"lr": (LR, 0.01), "lr_decay": (LR_DECAY, 0.0), "eps": (EPS, 1e-10), **_WD},
                  "per-parameter lr scaled by 1/sqrt(sum of squared gradients)"),
        Optimizer("rmsprop", RMSPROP, {**_LR, "alpha": (ALPHA, 0.99), "eps": (EPS, 1e-8),
                                       "momentum": (MOMENTUM, 0.0), **_WD},
                  "lr scaled by 1/sqrt(running mean of squared gradients)"),
        Optimizer("adam", ADAM, {**_LR, "beta1": (BETA1, 0.9), "beta2": (BETA2, 0.999), "eps": (EPS, 1e-8), **_WD},
                  "bias-corrected running means of g and g^2 (Kingma & Ba, 2015)"),
        Optimizer("adamw", ADAMW, {**_LR, "beta1": (BETA1, 0.9), "beta2": (BETA2, 0.999), "eps": (EPS, 1e-8),
                                   "weight_decay": (WEIGHT_DECAY, 0.01)},
                  "adam with decoupled weight decay (Loshchilov & Hutter, 2019)"),
    ]
}


@njit(cache=CACHE, inline="always")
def update(code, hp, theta, g, s1, s2, i, t, bc1, bc2):
    """Step for element i at step t (1-based); updates the state vectors s1, s2 in place.

    bc1, bc2: Adam's bias corrections 1 - beta1^t and 1 - beta2^t, computed once per step.
    """
    lr = hp[LR]
    wd = hp[WEIGHT_DECAY]
    if code != ADAMW and wd != 0.0:
        g = g + wd * theta[i]
    if code == SGD:
        mu = hp[MOMENTUM]
        if mu == 0.0:
            return lr * g
        s1[i] = g if t == 1 else mu * s1[i] + (1.0 - hp[DAMPENING]) * g
        return lr * (g + mu * s1[i]) if hp[NESTEROV] != 0.0 else lr * s1[i]
    if code == ADAGRAD:
        s1[i] += g * g
        clr = lr / (1.0 + (t - 1) * hp[LR_DECAY])
        return clr * g / (math.sqrt(s1[i]) + hp[EPS])
    if code == RMSPROP:
        a = hp[ALPHA]
        s1[i] = a * s1[i] + (1.0 - a) * g * g
        step = g / (math.sqrt(s1[i]) + hp[EPS])
        if hp[MOMENTUM] == 0.0:
            return lr * step
        s2[i] = hp[MOMENTUM] * s2[i] + step
        return lr * s2[i]
    # ADAM, ADAMW
    b1 = hp[BETA1]
    b2 = hp[BETA2]
    s1[i] = b1 * s1[i] + (1.0 - b1) * g
    s2[i] = b2 * s2[i] + (1.0 - b2) * g * g
    step = (lr / bc1) * s1[i] / (math.sqrt(s2[i]) / math.sqrt(bc2) + hp[EPS])
    if code == ADAMW:
        step += lr * wd * theta[i]
    return step


@njit(cache=CACHE)
def apply_updates(code, hp, theta, grad, s1, s2, t):
    """theta -= update(...) for every element; t is the 1-based step number."""
    bc1 = 1.0 - hp[BETA1] ** t
    bc2 = 1.0 - hp[BETA2] ** t
    for i in range(theta.shape[0]):
        theta[i] -= update(code, hp, theta, grad[i], s1, s2, i, t, bc1, bc2)
