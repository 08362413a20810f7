"""Per-step gradient statistics, recorded inside the compiled training loop for inspect-grads.

One record is one row of a float64 array: the COMMON fields, then LAYER_FIELDS for each layer.
Gradient statistics are taken before clipping (what backpropagation produced); the update ratio
||W_after - W_before|| / ||W_before|| after the optimizer step.
"""

import math

import numpy as np

from nncli.kernels import kernel
from nncli.kernels.layout import B_OFF, FAMILY, FAMILY_RELU, FAMILY_SATURATING, MAX_DERIV, N_OUT, PIECES, W_OFF

COMMON = ("epoch", "step", "loss", "grad_norm", "clipped", "nonfinite_grad", "nonfinite_weight")
LAYER_FIELDS = ("grad_W_norm", "grad_W_max", "grad_b_norm", "grad_b_max", "W_norm", "update_ratio",
                "z_mean", "z_std", "dead", "saturated")
EPOCH, STEP, LOSS, GRAD_NORM, CLIPPED, NONFINITE_GRAD, NONFINITE_WEIGHT = range(len(COMMON))
(GRAD_W_NORM, GRAD_W_MAX, GRAD_B_NORM, GRAD_B_MAX, W_NORM, UPDATE_RATIO, Z_MEAN, Z_STD, DEAD,
 SATURATED) = range(len(LAYER_FIELDS))
N_COMMON = len(COMMON)
N_LAYER = len(LAYER_FIELDS)
SATURATION = 0.01  # a unit is saturated where its derivative is below 1% of the maximum


def n_fields(n_layers: int) -> int:
    return N_COMMON + N_LAYER * n_layers


@kernel(inline="always")
def _norm_max(v):
    sq = 0.0
    mx = 0.0
    for x in v:
        sq += x * x
        mx = max(mx, abs(x))
    return math.sqrt(sq), mx


@kernel()
def record_common(rec, theta, grad, loss, epoch, t):
    """The step's loss and counts of non-finite gradients and weights."""
    rec[EPOCH] = epoch
    rec[STEP] = t
    rec[LOSS] = loss
    bad_g = 0
    bad_w = 0
    for i in range(grad.shape[0]):
        if not math.isfinite(grad[i]):
            bad_g += 1
        if not math.isfinite(theta[i]):
            bad_w += 1
    rec[NONFINITE_GRAD] = bad_g
    rec[NONFINITE_WEIGHT] = bad_w


@kernel()
def record_layer(rec, l, theta, grad, layout, layer_hp, Z, D, hidden):
    """Layer l's gradient and weight norms, its pre-activation Z's mean and std, and for hidden
    layers the share of dead units (relu family: zero derivative on the whole batch) or of
    saturated entries (sigmoid/tanh family: derivative below SATURATION of its maximum)."""
    o = N_COMMON + N_LAYER * l
    w, b = layout[l, W_OFF], layout[l, B_OFF]
    b_end = b + layout[l, N_OUT] * layout[l, PIECES]
    rec[o + GRAD_W_NORM], rec[o + GRAD_W_MAX] = _norm_max(grad[w:b])
    rec[o + GRAD_B_NORM], rec[o + GRAD_B_MAX] = _norm_max(grad[b:b_end])
    rec[o + W_NORM] = _norm_max(theta[w:b])[0]
    s = 0.0
    ss = 0.0
    for x in Z.ravel():
        s += x
        ss += x * x
    m = Z.size
    rec[o + Z_MEAN] = s / m
    rec[o + Z_STD] = math.sqrt(max(ss / m - (s / m) ** 2, 0.0))
    rec[o + DEAD] = 0.0
    rec[o + SATURATED] = 0.0
    if not hidden:
        return
    nb, u = D.shape
    if layer_hp[l, FAMILY] == FAMILY_RELU:
        dead = 0
        for j in range(u):
            alive = False
            for i in range(nb):
                if D[i, j] != 0.0:
                    alive = True
                    break
            if not alive:
                dead += 1
        rec[o + DEAD] = dead / u
    elif layer_hp[l, FAMILY] == FAMILY_SATURATING:
        flat = 0
        for i in range(nb):
            for j in range(u):
                if abs(D[i, j]) < SATURATION * layer_hp[l, MAX_DERIV]:
                    flat += 1
        rec[o + SATURATED] = flat / (nb * u)


@kernel()
def record_update(rec, theta, before, layout):
    """Each layer's ||W_after - W_before|| / ||W_before||."""
    for l in range(layout.shape[0]):
        d = 0.0
        w = 0.0
        for i in range(layout[l, W_OFF], layout[l, B_OFF]):
            d += (theta[i] - before[i]) ** 2
            w += before[i] * before[i]
        rec[N_COMMON + N_LAYER * l + UPDATE_RATIO] = math.sqrt(d) / math.sqrt(w) if w > 0.0 else np.inf
