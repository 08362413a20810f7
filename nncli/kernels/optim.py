"""Optimizers, in order of increasing complexity: the registry and the compiled update rules.

All parameters of a network live in one flat vector theta (see nncli.network), so an optimizer is
an elementwise rule: each `_<name>` function computes one element's step from its gradient and
state, and `apply_updates` is the one routine that applies them. The rules are PyTorch's (torch.optim), with
weight decay applied to every parameter as torch does when given all of them in one group:
coupled (g += wd*theta) for sgd, rmsprop, adagrad and adam; decoupled (theta -= lr*wd*theta) for
adamw.
"""

import math
from dataclasses import dataclass

import numpy as np

from nncli.kernels import kernel, stack_array

SGD, ADAGRAD, RMSPROP, ADAM, ADAMW = 0, 1, 2, 3, 4

# Slots of the float64 hyper-parameter vector hp that the kernels receive.
LR, MOMENTUM, BETA2, EPS, WEIGHT_DECAY, NESTEROV, LR_DECAY, DAMPENING = range(8)
BETA1, ALPHA = MOMENTUM, BETA2
N_HP = 8
# Optimizer state below this is set to zero. A dead unit's gradient is exactly 0, so its running
# mean decays geometrically (0.9^t for Adam) into subnormal numbers within a few hundred steps in
# float32, and arithmetic on subnormals is 10-100 times slower on x86. A state this small moves
# a weight by less than 1e-20 per step.
FLUSH = 1e-30


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


@kernel(inline="always")
def _flushed(x, tiny):
    return x - x if abs(x) < tiny else x


@kernel(inline="always")
def _sgd(h, theta, g, s1, s2, i, t):
    g += h[WEIGHT_DECAY] * theta[i]
    mu = h[MOMENTUM]
    if mu == 0.0:
        return h[LR] * g
    s1[i] = g if t == 1 else _flushed(mu * s1[i] + h[N_HP + DAMPENING] * g, h[N_HP])
    return h[LR] * (g + mu * s1[i]) if h[NESTEROV] != 0.0 else h[LR] * s1[i]


@kernel(inline="always")
def _adagrad(h, theta, g, s1, s2, i, lr_t):
    g += h[WEIGHT_DECAY] * theta[i]
    s1[i] += g * g
    return lr_t * g / (np.sqrt(s1[i]) + h[EPS])


@kernel(inline="always")
def _rmsprop(h, theta, g, s1, s2, i, t):
    g += h[WEIGHT_DECAY] * theta[i]
    s1[i] = _flushed(h[ALPHA] * s1[i] + h[N_HP + ALPHA] * g * g, h[N_HP])
    step = g / (np.sqrt(s1[i]) + h[EPS])
    if h[MOMENTUM] == 0.0:
        return h[LR] * step
    s2[i] = _flushed(h[MOMENTUM] * s2[i] + step, h[N_HP])
    return h[LR] * s2[i]


@kernel(inline="always")
def _adam(h, theta, g, s1, s2, i, lr_t, inv_sqrt_bc2, decoupled):
    """Adam; with `decoupled`, AdamW: weight decay shrinks theta directly instead of adding to g.

    lr_t = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t): the bias corrections,
    computed once per step.
    """
    if not decoupled:
        g += h[WEIGHT_DECAY] * theta[i]
    s1[i] = _flushed(h[BETA1] * s1[i] + h[N_HP + BETA1] * g, h[N_HP])
    s2[i] = _flushed(h[BETA2] * s2[i] + h[N_HP + BETA2] * g * g, h[N_HP])
    step = lr_t * s1[i] / (np.sqrt(s2[i]) * inv_sqrt_bc2 + h[EPS])
    if decoupled:
        step += h[LR] * h[WEIGHT_DECAY] * theta[i]
    return step


PLAIN = (SGD, ADAM)  # the optimizers of the plain kernels (extras=None: nncli.train.kernel_extras)


@kernel()
def apply_updates(code, hp, theta, grad, s1, s2, t, extras):
    """theta -= the chosen optimizer's update, for every element; t is the 1-based step number.
    With extras None (the plain kernels) only the PLAIN optimizers are compiled; any other makes
    theta NaN (a safeguard: nncli.train.kernel_extras gives such runs the full kernels).

    Every branch on a run-time setting is taken once per step, outside the element loop: a
    branch inside it stops LLVM from vectorizing the loop, which then costs 5-10 times more.
    For the same reason the element loops see only numbers of theta's dtype (h: the
    hyper-parameters, then FLUSH, then 1 - each of them): float64 arithmetic on float32 arrays
    ran at a fifth of the speed. float32 runs compute their updates in float32, as torch does.
    """
    n = theta.shape[0]
    h = stack_array(2 * N_HP, theta)
    for k in range(N_HP):
        h[k] = hp[k]
        h[N_HP + k] = 1.0 - hp[k]
    h[N_HP] = FLUSH  # slot N_HP + LR holds FLUSH: 1 - lr is never used
    if code == SGD:
        for i in range(n):
            theta[i] -= _sgd(h, theta, grad[i], s1, s2, i, t)
    elif extras is None:  # numba compiles only this branch of the rest for the plain kernels
        if code != ADAM:
            for i in range(n):
                theta[i] = math.nan
            return
        lr_t = theta.dtype.type(hp[LR] / (1.0 - hp[BETA1] ** t))
        inv_sqrt_bc2 = theta.dtype.type(1.0 / math.sqrt(1.0 - hp[BETA2] ** t))
        for i in range(n):
            theta[i] -= _adam(h, theta, grad[i], s1, s2, i, lr_t, inv_sqrt_bc2, False)
    elif code == ADAGRAD:
        lr_t = theta.dtype.type(hp[LR] / (1.0 + (t - 1) * hp[LR_DECAY]))
        for i in range(n):
            theta[i] -= _adagrad(h, theta, grad[i], s1, s2, i, lr_t)
    elif code == RMSPROP:
        for i in range(n):
            theta[i] -= _rmsprop(h, theta, grad[i], s1, s2, i, t)
    else:
        lr_t = theta.dtype.type(hp[LR] / (1.0 - hp[BETA1] ** t))
        inv_sqrt_bc2 = theta.dtype.type(1.0 / math.sqrt(1.0 - hp[BETA2] ** t))
        if code == ADAM:
            for i in range(n):
                theta[i] -= _adam(h, theta, grad[i], s1, s2, i, lr_t, inv_sqrt_bc2, False)
        else:
            for i in range(n):
                theta[i] -= _adam(h, theta, grad[i], s1, s2, i, lr_t, inv_sqrt_bc2, True)
