"""The compiled MLP: forward and backward passes and the whole training epoch.

Data layout (built by nncli.network, checked there; the kernels assume it):
- theta: 1-D float array holding every parameter; layer l's W (n_in, n_out) and b (n_out,) are
  contiguous slices at layout[l, W_OFF] and layout[l, B_OFF]. grad has the same layout.
- layout: int64 (L, 5): n_in, n_out, W offset, b offset, activation code. The last layer is the
  output layer; its activation is folded into the loss, so it yields logits.
- act_params: float64 (L, 2): the activation parameters of each layer.
- ws: one float work buffer, carved by `workspace_offsets` into per-layer regions sized for a
  full batch: the batch inputs, targets and row weights, each hidden layer's A and D = f'(Z),
  the logits, and two ping-pong buffers for the backward deltas.

The mini-batch loop runs here, so an epoch costs one call from Python.
"""

import math

import numpy as np
from numba import njit

from nncli.kernels import CACHE
from nncli.kernels.activations import activate
from nncli.kernels.losses import loss_and_delta
from nncli.kernels.optim import apply_updates

N_IN, N_OUT, W_OFF, B_OFF, ACT = range(5)
# Below this many multiply-adds a plain loop beats a BLAS call's fixed cost.
BLAS_MIN_MACS = 32768

OK, NONFINITE_LOSS, NONFINITE_GRAD = 0, 1, 2
STATUS, BAD_STEP, LAST_GRAD_NORM, CLIPPED_STEPS, MEAN_LOSS = range(5)
N_STATS = 5


@njit(cache=CACHE)
def workspace_offsets(layout, batch_size):
    """Offsets into ws: [X, Y, sw, (A_l, D_l) per hidden layer, logits, P0, P1, end]."""
    L = layout.shape[0]
    offs = np.zeros(2 * L + 6, dtype=np.int64)
    widest = layout[0, N_IN]
    for l in range(L):
        widest = max(widest, layout[l, N_OUT])
    K = layout[L - 1, N_OUT]
    pos = batch_size * layout[0, N_IN]
    offs[1] = pos
    pos += batch_size * K
    offs[2] = pos
    pos += batch_size
    for l in range(L):
        offs[3 + 2 * l] = pos
        pos += batch_size * layout[l, N_OUT]
        offs[4 + 2 * l] = pos
        if l < L - 1:
            pos += batch_size * layout[l, N_OUT]
    offs[2 * L + 3] = pos
    pos += batch_size * widest
    offs[2 * L + 4] = pos
    pos += batch_size * widest
    offs[2 * L + 5] = pos
    return offs


@njit(cache=CACHE, inline="always")
def _block(buf, off, n, m):
    return buf[off:off + n * m].reshape(n, m)


@njit(cache=CACHE)
def dense_forward(A_in, W, b, Z):
    """Z = A_in @ W + b for A_in (n, k), W (k, m), b (m,), Z (n, m)."""
    n, k = A_in.shape
    m = W.shape[1]
    if n * k * m >= BLAS_MIN_MACS:
        np.dot(A_in, W, Z)
        for i in range(n):
            for j in range(m):
                Z[i, j] += b[j]
        return
    for i in range(n):
        for j in range(m):
            Z[i, j] = b[j]
        for p in range(k):
            a = A_in[i, p]
            for j in range(m):
                Z[i, j] += a * W[p, j]


@njit(cache=CACHE)
def dense_backward(A_in, delta, W, dW, db, dA_in, want_dA):
    """dW = A_in.T @ delta, db = sum(delta, 0) and, if want_dA, dA_in = delta @ W.T."""
    n, k = A_in.shape
    m = delta.shape[1]
    big = n * k * m >= BLAS_MIN_MACS
    if big:
        np.dot(A_in.T, delta, dW)
    else:
        dW[:, :] = 0.0
        for i in range(n):
            for p in range(k):
                a = A_in[i, p]
                for j in range(m):
                    dW[p, j] += a * delta[i, j]
    db[:] = 0.0
    for i in range(n):
        for j in range(m):
            db[j] += delta[i, j]
    if not want_dA:
        return
    if big:
        np.dot(delta, W.T, dA_in)
        return
    for i in range(n):
        for p in range(k):
            s = 0.0
            for j in range(m):
                s += delta[i, j] * W[p, j]
            dA_in[i, p] = s


@njit(cache=CACHE)
def forward(theta, layout, act_params, Xb, ws, offs, nb):
    """Forward pass on Xb (nb, n_in); returns the logits (nb, K), a view into ws.

    Each hidden layer's A and D = f'(Z) are left in ws for the backward pass.
    """
    L = layout.shape[0]
    A_in = Xb
    for l in range(L):
        n_in = layout[l, N_IN]
        n_out = layout[l, N_OUT]
        W = _block(theta, layout[l, W_OFF], n_in, n_out)
        b = theta[layout[l, B_OFF]:layout[l, B_OFF] + n_out]
        Z = _block(ws, offs[3 + 2 * l], nb, n_out)
        dense_forward(A_in, W, b, Z)
        if l < L - 1:
            D = _block(ws, offs[4 + 2 * l], nb, n_out)
            code = layout[l, ACT]
            p0 = act_params[l, 0]
            p1 = act_params[l, 1]
            for i in range(nb):
                for j in range(n_out):
                    Z[i, j], D[i, j] = activate(code, Z[i, j], p0, p1)
        A_in = Z
    return A_in


@njit(cache=CACHE)
def backward(theta, grad, layout, Xb, ws, offs, nb):
    """Backward pass after `forward`: the output delta is in ping-pong buffer P0; fills grad."""
    L = layout.shape[0]
    p_cur = offs[2 * L + 3]
    p_next = offs[2 * L + 4]
    for l in range(L - 1, -1, -1):
        n_in = layout[l, N_IN]
        n_out = layout[l, N_OUT]
        A_in = Xb if l == 0 else _block(ws, offs[3 + 2 * (l - 1)], nb, n_in)
        delta = _block(ws, p_cur, nb, n_out)
        W = _block(theta, layout[l, W_OFF], n_in, n_out)
        dW = _block(grad, layout[l, W_OFF], n_in, n_out)
        db = grad[layout[l, B_OFF]:layout[l, B_OFF] + n_out]
        dA_in = _block(ws, p_next, nb, n_in)
        dense_backward(A_in, delta, W, dW, db, dA_in, l > 0)
        if l > 0:
            D = _block(ws, offs[4 + 2 * (l - 1)], nb, n_in)
            for i in range(nb):
                for j in range(n_in):
                    dA_in[i, j] *= D[i, j]
            p_cur, p_next = p_next, p_cur


@njit(cache=CACHE)
def loss_and_gradient(theta, grad, layout, act_params, loss_code, loss_hp, Xb, Yb, swb, ws, offs):
    """Mean loss on one batch and its gradient with respect to theta (written into grad)."""
    nb = Xb.shape[0]
    L = layout.shape[0]
    K = layout[L - 1, N_OUT]
    Zout = forward(theta, layout, act_params, Xb, ws, offs, nb)
    delta = _block(ws, offs[2 * L + 3], nb, K)
    loss = loss_and_delta(loss_code, loss_hp, Zout, Yb, swb, delta)
    backward(theta, grad, layout, Xb, ws, offs, nb)
    return loss


@njit(cache=CACHE)
def clip_gradient(grad, clip_norm, clip_value):
    """Clip by value, then by global L2 norm (torch's clip_grad_norm_); return the norm before."""
    if clip_value > 0.0:
        for i in range(grad.shape[0]):
            grad[i] = min(max(grad[i], -clip_value), clip_value)
    sq = 0.0
    for i in range(grad.shape[0]):
        sq += grad[i] * grad[i]
    norm = math.sqrt(sq)
    if clip_norm > 0.0 and math.isfinite(norm):
        coef = clip_norm / (norm + 1e-6)
        if coef < 1.0:
            for i in range(grad.shape[0]):
                grad[i] *= coef
    return norm


@njit(cache=CACHE)
def train_epoch(theta, grad, layout, act_params, X, Y, sw, perm, batch_size, loss_code, loss_hp,
                opt_code, opt_hp, s1, s2, t, clip_norm, clip_value, ws, stats):
    """One epoch of mini-batch training over the rows in `perm`; returns the new step count t.

    Rows are visited in perm's order, batch_size at a time. Returns early, leaving theta as it
    was before the bad step, if a loss or gradient is not finite: stats[STATUS] says which and
    stats[BAD_STEP] at which step of the epoch. stats[MEAN_LOSS] is the mean of the batch losses
    over the epoch's rows (each taken before its update).
    """
    n = perm.shape[0]
    d = X.shape[1]
    K = Y.shape[1]
    offs = workspace_offsets(layout, batch_size)
    loss_sum = 0.0
    clipped = 0
    stats[STATUS] = OK
    step = 0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        Xb = _block(ws, offs[0], nb, d)
        Yb = _block(ws, offs[1], nb, K)
        swb = ws[offs[2]:offs[2] + nb]
        for i in range(nb):
            r = perm[start + i]
            for j in range(d):
                Xb[i, j] = X[r, j]
            for k in range(K):
                Yb[i, k] = Y[r, k]
            swb[i] = sw[r]
        loss = loss_and_gradient(theta, grad, layout, act_params, loss_code, loss_hp, Xb, Yb, swb, ws, offs)
        if not math.isfinite(loss):
            stats[STATUS] = NONFINITE_LOSS
            stats[BAD_STEP] = step
            return t
        norm = clip_gradient(grad, clip_norm, clip_value)
        if not math.isfinite(norm):
            stats[STATUS] = NONFINITE_GRAD
            stats[BAD_STEP] = step
            return t
        if clip_norm > 0.0 and norm > clip_norm:
            clipped += 1
        stats[LAST_GRAD_NORM] = norm
        t += 1
        apply_updates(opt_code, opt_hp, theta, grad, s1, s2, t)
        loss_sum += loss * nb
        step += 1
    stats[CLIPPED_STEPS] = clipped
    stats[MEAN_LOSS] = loss_sum / max(n, 1)
    return t


@njit(cache=CACHE)
def predict_logits(theta, layout, act_params, X, out, ws, chunk):
    """Logits for every row of X (n, n_in) into out (n, K), chunk rows at a time."""
    n = X.shape[0]
    offs = workspace_offsets(layout, chunk)
    for start in range(0, n, chunk):
        nb = min(chunk, n - start)
        Zout = forward(theta, layout, act_params, X[start:start + nb], ws, offs, nb)
        out[start:start + nb] = Zout
