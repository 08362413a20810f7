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

from nncli.kernels import kernel

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
def _flushed(x):
    return 0.0 if abs(x) < FLUSH else x


@kernel(inline="always")
def _sgd(hp, theta, g, s1, s2, i, t):
    g += hp[WEIGHT_DECAY] * theta[i]
    mu = hp[MOMENTUM]
    if mu == 0.0:
        return hp[LR] * g
    s1[i] = g if t == 1 else _flushed(mu * s1[i] + (1.0 - hp[DAMPENING]) * g)
    return hp[LR] * (g + mu * s1[i]) if hp[NESTEROV] != 0.0 else hp[LR] * s1[i]


@kernel(inline="always")
def _adagrad(hp, theta, g, s1, s2, i, t):
    g += hp[WEIGHT_DECAY] * theta[i]
    s1[i] += g * g
    return hp[LR] / (1.0 + (t - 1) * hp[LR_DECAY]) * g / (math.sqrt(s1[i]) + hp[EPS])


@kernel(inline="always")
def _rmsprop(hp, theta, g, s1, s2, i, t):
    g += hp[WEIGHT_DECAY] * theta[i]
    a = hp[ALPHA]
    s1[i] = _flushed(a * s1[i] + (1.0 - a) * g * g)
    step = g / (math.sqrt(s1[i]) + hp[EPS])
    if hp[MOMENTUM] == 0.0:
        return hp[LR] * step
    s2[i] = _flushed(hp[MOMENTUM] * s2[i] + step)
    return hp[LR] * s2[i]


@kernel(inline="always")
def _adam(hp, theta, g, s1, s2, i, bc1, bc2, decoupled):
    """Adam; with `decoupled`, AdamW: weight decay shrinks theta directly instead of adding to g.

    bc1, bc2: the bias corrections 1 - beta1^t and 1 - beta2^t, computed once per step.
    """
    if not decoupled:
        g += hp[WEIGHT_DECAY] * theta[i]
    b1 = hp[BETA1]
    b2 = hp[BETA2]
    s1[i] = _flushed(b1 * s1[i] + (1.0 - b1) * g)
    s2[i] = _flushed(b2 * s2[i] + (1.0 - b2) * g * g)
    step = (hp[LR] / bc1) * s1[i] / (math.sqrt(s2[i]) / math.sqrt(bc2) + hp[EPS])
    if decoupled:
        step += hp[LR] * hp[WEIGHT_DECAY] * theta[i]
    return step


@kernel()
def apply_updates(code, hp, theta, grad, s1, s2, t):
    """theta -= the chosen optimizer's update, for every element; t is the 1-based step number.

    Every branch on a run-time setting is taken once per step, outside the element loop: a
    branch inside it stops LLVM from vectorizing the loop, which then costs 5-10 times more.
    """
    n = theta.shape[0]
    if code == SGD:
        for i in range(n):
            theta[i] -= _sgd(hp, theta, grad[i], s1, s2, i, t)
    elif code == ADAGRAD:
        for i in range(n):
            theta[i] -= _adagrad(hp, theta, grad[i], s1, s2, i, t)
    elif code == RMSPROP:
        for i in range(n):
            theta[i] -= _rmsprop(hp, theta, grad[i], s1, s2, i, t)
    else:
        bc1 = 1.0 - hp[BETA1] ** t
        bc2 = 1.0 - hp[BETA2] ** t
        if code == ADAM:
            for i in range(n):
                theta[i] -= _adam(hp, theta, grad[i], s1, s2, i, bc1, bc2, False)
        else:
            for i in range(n):
                theta[i] -= _adam(hp, theta, grad[i], s1, s2, i, bc1, bc2, True)
