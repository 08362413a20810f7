"""The compiled MLP: forward and backward passes and the whole training epoch.

Data layout (built by nncli.network, checked there; the kernels assume it):
- theta: 1-D float array holding every parameter; layer l's W (n_in, width) and b (width,) are
  contiguous slices at layout[l, W_OFF] and layout[l, B_OFF] (width = units * pieces); batch norm's
  gamma and beta (units each) at G_OFF; prelu's slopes (N_A of them) at A_OFF. grad has the same
  layout. running: batch norm's running mean and variance (units each) at R_OFF.
- layout: int64 (L, LAYOUT_COLS); offsets of absent parts are -1. The last layer is the output
  layer; its activation is folded into the loss, so it yields logits.
- layer_hp: float64 (L, LAYER_HP_COLS): activation parameters P0, P1, the dropout rate applied to
  the layer's output, batch norm's momentum and eps.
- ws: one float work buffer, carved by `workspace_offsets` into per-layer regions sized for a
  full batch.
- Views of theta, grad and ws (`_block`, `_span`) own no memory: a function that returns one
  (forward, _layer_views) is for compiled callers only; from Python, copy inside compiled code.

Order inside a hidden layer: Z = A_in @ W + b, [batch norm], activation, [batch norm], [dropout].
The backward pass walks the same steps in reverse. The mini-batch loop runs here, so an epoch
costs one call from Python; every branch on a layer's options is taken outside element loops.

`extras` picks one of two compiled variants of the kernels that take it. True: everything above,
plus gradient records, input augmentation and every activation. None: numba removes each
`if extras is not None` branch before it types the kernel, so batch norm, records, augmentation,
the activations without a loop of their own (activations.LOOPED), the losses other than
losses.PLAIN and the optimizers other than optim.PLAIN are not compiled at all: about half as
much to compile on an empty cache, for the configs that need none of them
(nncli.train.kernel_extras decides). Options are otherwise run-time values: one compiled variant
serves every config of a dtype.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from nncli.kernels import arrayobj, kernel, stack_array, unowned_array
from nncli.kernels import record, rng
from nncli.kernels.activations import MAXOUT, PRELU, RELU, RRELU, activate_rows, leaky_relu
from nncli.kernels.layout import (A_OFF, ACT, B_OFF, BN, BN_AFTER, BN_BEFORE, BN_EPS, BN_MOMENTUM, CLIP_NORM, CLIP_VALUE, DROPOUT, G_OFF, INPUT_DROPOUT, L1, L2, MIXUP, N_A, N_IN,
                                  N_OUT, NOISE, P0, P1, PIECES, R_OFF, W_OFF)
from nncli.kernels.losses import loss_and_delta
from nncli.kernels.optim import apply_updates
from nncli.kernels.sync import ABORT, STOP, atomic_cas, atomic_load, atomic_store, barrier, wait
from nncli.kernels.sync import SIZE as SYNC_SIZE

# Below this many multiply-adds a plain loop beats a BLAS call's fixed cost.
BLAS_MIN_MACS = 32768
# Below this many outputs (a binary or regression output layer), the plain loops of a dense
# layer run over the inputs instead: an inner loop over 1-3 outputs cost more than its work
# (10 rows, 8 inputs, 1 output: forward 158-323 -> 36-76 ns; 128 x 256 x 1 backward, called from
# Python: 10.0 -> 6.8 us).
NARROW = 4
# From this many, dense_forward has BLAS add the product to the bias (beta = 1). Below about a
# million, OpenBLAS runs small matrices through kernels of their own, and those were slower with
# beta = 1: inference of an 8-12-8-1 net in chunks of 1,024 rows took 51-80 instead of 45-47 ns a
# row, of 4,096 rows 48-63 instead of 29-30.
BLAS_ADD_MIN_MACS = 1 << 20

OK, NONFINITE_LOSS, NONFINITE_GRAD, INTERRUPTED = 0, 1, 2, 3
STATUS, STEP, LAST_GRAD_NORM, CLIPPED_STEPS, LOSS_SUM = range(5)
N_STATS = 5


def workspace_offsets(layout, batch_size):
    """Offsets into a workspace for batches of up to batch_size rows (fill_offsets), for Python:
    the last is the workspace's size. It runs fill_offsets' Python function, a few dozen integer
    operations: compiling it on its own for this call took 0.6 s of a first train on an empty
    cache (the kernels inline it), and loading it from the cache a few ms of every run."""
    return fill_offsets.py_func(layout, int(batch_size), np.zeros(layout.shape[0] + 7, dtype=np.int64))


@kernel(inline="always")
def fill_offsets(layout, batch_size, offs):
    """offs (L + 7 int64) = the offsets into ws: [X, Y, sw, one region per layer..., P0, P1,
    batch_size, end]; returns offs. The kernels take offs from stack_array."""
    L = layout.shape[0]
    offs[0] = 0
    widest = layout[0, N_IN]
    for l in range(L):
        widest = max(widest, layout[l, N_OUT] * layout[l, PIECES])
    pos = batch_size * layout[0, N_IN]
    offs[1] = pos
    pos += batch_size * layout[L - 1, N_OUT]
    offs[2] = pos
    pos += batch_size
    for l in range(L):
        offs[3 + l] = pos
        units = layout[l, N_OUT]
        pos += batch_size * units * layout[l, PIECES] + 4 * batch_size * units + 2 * units
    offs[3 + L] = pos
    pos += batch_size * widest
    offs[4 + L] = pos
    pos += batch_size * widest
    offs[5 + L] = batch_size
    offs[6 + L] = pos
    return offs


def _view_codegen(ret):
    """Code for an unowned C-contiguous view `ret` of buf[off:]; args: buf, off, then the shape."""

    def codegen(context, builder, sig, args):
        off, *shape = (context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:]))
        src = arrayobj().make_array(sig.args[0])(context, builder, args[0])
        strides = [context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(ret.dtype)))]
        for extent in reversed(shape[1:]):
            strides.insert(0, builder.mul(extent, strides[0]))
        return unowned_array(context, builder, ret, builder.gep(src.data, [off]), cgutils.pack_array(builder, shape),
                             cgutils.pack_array(builder, strides))

    return codegen


@intrinsic
def _block(typingctx, buf, off, n, m):
    """buf[off:off + n*m] as a C-contiguous (n, m) array sharing buf's memory, unchecked.

    `reshape` does the same through a call into numba's C helpers that costs about 25 ns; a step of
    the lecture's Pima net takes some 45 such views, a fifth of its time. The offsets come from
    nncli.network's checked layout and from workspace_offsets, which size every region.
    The view holds no reference to buf's memory: without the atomic reference-count updates a
    Pima step took 3.2 instead of 4.3 us (best of 300 runs each). So it must not outlive buf or
    leave compiled code.
    """
    if buf.layout != "C":
        return None  # a typing error: only C-contiguous buffers are read as flat
    ret = types.Array(buf.dtype, 2, "C")
    return ret(buf, off, n, m), _view_codegen(ret)


@intrinsic
def _span(typingctx, buf, off, n):
    """buf[off:off + n], unchecked and unowned like _block."""
    if buf.layout != "C":
        return None
    ret = types.Array(buf.dtype, 1, "C")
    return ret(buf, off, n), _view_codegen(ret)


@intrinsic
def _unowned(typingctx, arr):
    """arr itself, without its reference count: the same data, shape and strides, no meminfo.

    numba increments the reference count of every array argument when a compiled function is
    entered and decrements it on the way out. On an array from Python that is an atomic add on
    its meminfo, about 20 cycles; a Pima step passes theta, grad, the workspace and the rest
    some 30 times, and these counts took a tenth of the step (perf). The training and predict
    loops call their callees with unowned aliases of their arguments, whose counts numba skips
    (a null check). Like _block's views, an alias must not outlive its array or leave compiled
    code; its array is the kernel's argument, which the caller holds throughout.
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = arrayobj().make_array(sig.args[0])(context, builder, args[0])
        return unowned_array(context, builder, sig.return_type, src.data, src.shape, src.strides)

    return arr(arr), codegen


@kernel(inline="always")
def _layer_views(ws, offs, layout, l, nb):
    """Layer l's buffers: Z (nb, width) pre-activation, A, D = dA/dZ (or maxout's winning piece; relu
    in the plain kernels leaves it unwritten: see activation_forward),
    H (batch-normalized values), M (dropout scale), all (nb, units); mu, sig (units,)."""
    L = layout.shape[0]
    bs = offs[5 + L]
    units = layout[l, N_OUT]
    width = units * layout[l, PIECES]
    o = offs[3 + l]
    Z = _block(ws, o, nb, width)
    o += bs * width
    A = _block(ws, o, nb, units)
    D = _block(ws, o + bs * units, nb, units)
    H = _block(ws, o + 2 * bs * units, nb, units)
    M = _block(ws, o + 3 * bs * units, nb, units)
    o += 4 * bs * units
    return Z, A, D, H, M, _span(ws, o, units), _span(ws, o + units, units)


_BLAS_KINDS = {types.float32: "s", types.float64: "d"}


@intrinsic
def _gemm(typingctx, A, B, C, trans_a, trans_b, add):
    """C = op(A) @ op(B) (with add: C += op(A) @ op(B)) through BLAS ?gemm, op(X) = X.T if
    trans_X else X; A, B, C C-contiguous.

    np.dot would do the same, but transposed operands cost it a copy, and its shape-checking
    error paths alone took a sixth of a cold compile. This calls the helper np.dot itself uses
    (numba_xxgemm, which loads SciPy's BLAS on its first call) with row-major arrays read as
    column-major ones: C.T = op(B).T @ op(A).T. Shapes are the caller's to get right.
    """
    return _gemm_typed("C", A, B, C, trans_a, trans_b, add)


@intrinsic
def _gemm_rows(typingctx, A, B, C, trans_a, trans_b, add):
    """_gemm whose operands may also be row blocks of a C-contiguous array with a row stride of
    their own, such as X[:, i:j]. Its elements along a row must be contiguous: nothing checks it."""
    return _gemm_typed("CA", A, B, C, trans_a, trans_b, add)


def _gemm_typed(layouts, A, B, C, trans_a, trans_b, add):
    """Signature and code of _gemm for operands of the given layouts, or None (a typing error)."""
    if any(x.layout not in layouts or x.ndim != 2 or x.dtype != C.dtype for x in (A, B, C)) \
            or C.dtype not in _BLAS_KINDS:
        return None
    kind = ord(_BLAS_KINDS[C.dtype])

    def codegen(context, builder, sig, args):
        a_ty, b_ty, c_ty = sig.args[:3]
        a, b, c = (arrayobj().make_array(t)(context, builder, v) for t, v in zip((a_ty, b_ty, c_ty), args[:3]))
        char = ir.IntType(8)
        void_p = ir.IntType(8).as_pointer()
        intp = context.get_value_type(types.intp)
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, void_p, void_p, intp,
                                                void_p, intp, void_p, void_p, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        a_shape, b_shape, c_shape = (cgutils.unpack_tuple(builder, x.shape, 2) for x in (a, b, c))
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(C.dtype)))

        def lead(x, ty, shape):  # the row stride in elements: BLAS's leading dimension
            if ty.layout == "C":
                return shape[1]
            return builder.sdiv(cgutils.unpack_tuple(builder, x.strides, 2)[0], itemsize)

        lda, ldb, ldc = (lead(x, t, sh) for x, t, sh in zip((a, b, c), (a_ty, b_ty, c_ty), (a_shape, b_shape, c_shape)))
        k = builder.select(args[3], a_shape[0], a_shape[1])
        flag = lambda t: builder.select(t, ir.Constant(char, ord("t")), ir.Constant(char, ord("n")))
        dtype = sig.args[2].dtype
        one = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        beta = cgutils.alloca_once_value(builder, builder.select(args[5], context.get_constant(dtype, 1.0),
                                                                 context.get_constant(dtype, 0.0)))
        ptr = lambda x: builder.bitcast(x, void_p)
        status = builder.call(fn, (ir.Constant(char, kind), flag(args[4]), flag(args[3]), c_shape[1], c_shape[0], k,
                                   ptr(one), ptr(b.data), ldb, ptr(a.data), lda, ptr(beta), ptr(c.data), ldc))
        return builder.sext(status, ir.IntType(64))

    return types.int64(A, B, C, trans_a, trans_b, add), codegen


@kernel()
def dense_forward(A_in, W, b, Z):
    """Z = A_in @ W + b for A_in (n, k), W (k, m), b (m,), Z (n, m)."""
    n, k = A_in.shape
    m = W.shape[1]
    if n * k * m >= BLAS_ADD_MIN_MACS:
        # Z starts as the bias and BLAS adds the product to it: with beta = 0 OpenBLAS first
        # zeroes Z in a pass of its own, and adding b after took one more pass over Z (forward
        # pass of 128 rows through 32-256-256-1: 165 -> 161 us, best of 15 x 500 calls)
        for i in range(n):
            for j in range(m):
                Z[i, j] = b[j]
        _gemm(A_in, W, Z, False, False, True)
        return
    if n * k * m >= BLAS_MIN_MACS:
        _gemm(A_in, W, Z, False, False, False)
        for i in range(n):
            for j in range(m):
                Z[i, j] += b[j]
        return
    if m < NARROW:  # a dot product per output: an inner loop over 1-3 outputs costs more than its work
        for i in range(n):
            for j in range(m):
                s = b[j]
                for p in range(k):
                    s += A_in[i, p] * W[p, j]
                Z[i, j] = s
        return
    for i in range(n):
        for j in range(m):
            Z[i, j] = b[j]
        for p in range(k):
            a = A_in[i, p]
            for j in range(m):
                Z[i, j] += a * W[p, j]


@kernel()
def dense_backward(A_in, delta, W, dW, db, dA_in, want_dA, want_dW):
    """db = sum(delta, 0), if want_dW dW = A_in.T @ delta, and if want_dA dA_in = delta @ W.T."""
    n, k = A_in.shape
    m = delta.shape[1]
    big = n * k * m >= BLAS_MIN_MACS
    if want_dW:
        if big:
            _gemm(A_in, delta, dW, True, False, False)
        elif m < NARROW:  # a row's inputs times each of its 1-3 deltas: contiguous inner loops
            dW[:, :] = 0.0
            for i in range(n):
                for j in range(m):
                    d = delta[i, j]
                    for p in range(k):
                        dW[p, j] += A_in[i, p] * d
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
        _gemm(delta, W, dA_in, False, True, False)
        return
    if m < NARROW:
        for i in range(n):
            d = delta[i, 0]
            for p in range(k):
                dA_in[i, p] = d * W[p, 0]
            for j in range(1, m):
                d = delta[i, j]
                for p in range(k):
                    dA_in[i, p] += d * W[p, j]
        return
    zero = dA_in.dtype.type(0.0)  # sums in the arrays' dtype, as BLAS does: a float64 sum of float32
    for i in range(n):               # products converted each one (10 x 12 x 8: 286 -> 107 ns)
        for p in range(k):
            s = zero
            for j in range(m):
                s += delta[i, j] * W[p, j]
            dA_in[i, p] = s


@kernel()
def batch_norm_forward(X, H, mu, sig, gamma, beta, run_mean, run_var, training, momentum, eps):
    """In place X := gamma * H + beta with H = (X - mu) / sig (Ioffe & Szegedy, 2015).

    Training: mu and the biased variance come from the batch, and the running estimates move
    toward mu and the unbiased variance m/(m-1) * var, as torch.nn.BatchNorm1d does.
    Inference: mu and var are the running estimates.
    """
    n, u = X.shape
    for j in range(u):
        if training:
            mean = 0.0
            for i in range(n):
                mean += X[i, j]
            mean /= n
            var = 0.0
            for i in range(n):
                var += (X[i, j] - mean) ** 2
            var /= n
            if n > 1:
                run_mean[j] = (1.0 - momentum) * run_mean[j] + momentum * mean
                run_var[j] = (1.0 - momentum) * run_var[j] + momentum * var * n / (n - 1)
        else:
            mean = run_mean[j]
            var = run_var[j]
        mu[j] = mean
        sig[j] = math.sqrt(var + eps)
        for i in range(n):
            H[i, j] = (X[i, j] - mean) / sig[j]
            X[i, j] = gamma[j] * H[i, j] + beta[j]


@kernel()
def batch_norm_backward(G, H, sig, gamma, dgamma, dbeta):
    """In place G := dL/dX from G = dL/d(output) of batch_norm_forward in training mode."""
    n, u = G.shape
    for j in range(u):
        sum_g = 0.0
        sum_gh = 0.0
        for i in range(n):
            sum_g += G[i, j]
            sum_gh += G[i, j] * H[i, j]
        dbeta[j] = sum_g
        dgamma[j] = sum_gh
        c = gamma[j] / sig[j]
        for i in range(n):
            G[i, j] = c * (G[i, j] - sum_g / n - H[i, j] * sum_gh / n)


@kernel()
def activation_forward(code, Z, A, D, p0, p1, alpha, pieces, training, extras, key):
    """A = f(Z) and D = f'(Z) (maxout: D = index of the winning piece); rrelu's random slopes in
    training are the draws of stream `key` (nncli.kernels.rng).

    relu in the plain kernels (extras None) writes A alone: its derivative is 1 where A > 0 and
    0 elsewhere, and backward reads it from A, which there is relu's output (times a dropout
    mask that zeroes the same gradients anyway; batch norm, which would change A, is not in the
    plain kernels). A loop that stores two arrays ran at a third of the speed of one that stores
    one: 11.6 against 3.1 us for 128 x 256 values (median of 7 x 2,000 calls).
    """
    n, u = A.shape
    if extras is None and code == RELU:
        zero = A.dtype.type(0.0)
        for i in range(n):
            for j in range(u):
                z = Z[i, j]
                A[i, j] = z if z > zero else zero
    elif extras is not None and code == MAXOUT:
        for i in range(n):
            for j in range(u):
                best = Z[i, j * pieces]
                arg = 0
                for p in range(1, pieces):
                    if Z[i, j * pieces + p] > best:
                        best = Z[i, j * pieces + p]
                        arg = p
                A[i, j] = best
                D[i, j] = arg
    elif extras is not None and code == PRELU:
        per_unit = alpha.shape[0] > 1
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = leaky_relu(Z[i, j], alpha[j if per_unit else 0])
    elif extras is not None and code == RRELU and training:
        for i in range(n):
            for j in range(u):
                z = Z[i, j]
                if z > 0.0:
                    A[i, j], D[i, j] = z, 1.0
                else:
                    slope = p0 + (p1 - p0) * rng.uniform(key, i * u + j)
                    A[i, j], D[i, j] = slope * z, slope
    else:
        activate_rows(code, Z, A, D, p0, p1, extras)


@kernel()
def forward(theta, running, layout, layer_hp, Xb, ws, offs, nb, training, extras, key):
    """Forward pass on Xb (nb, n_in); returns the logits (nb, K), a view into ws.

    Each hidden layer's buffers are left in ws for the backward pass. With training, batch norm
    uses batch statistics (and updates the running ones), dropout and rrelu draw random numbers
    from the streams of `key`, the step's key (nncli.kernels.rng).
    """
    L = layout.shape[0]
    A_in = Xb
    for l in range(L):
        n_in = layout[l, N_IN]
        units = layout[l, N_OUT]
        pieces = layout[l, PIECES]
        width = units * pieces
        W = _block(theta, layout[l, W_OFF], n_in, width)
        b = _span(theta, layout[l, B_OFF], width)
        Z, A, D, H, M, mu, sig = _layer_views(ws, offs, layout, l, nb)
        dense_forward(A_in, W, b, Z)
        if l == L - 1:
            return Z
        bn = layout[l, BN]
        g = max(layout[l, G_OFF], 0)
        r = max(layout[l, R_OFF], 0)
        gamma = _span(theta, g, units)
        beta = _span(theta, g + units, units)
        run_mean = _span(running, r, units)
        run_var = _span(running, r + units, units)
        if extras is not None and bn == BN_BEFORE:
            batch_norm_forward(Z, H, mu, sig, gamma, beta, run_mean, run_var, training,
                                   layer_hp[l, BN_MOMENTUM], layer_hp[l, BN_EPS])
        alpha = _span(theta, max(layout[l, A_OFF], 0), max(layout[l, N_A], 1))
        draws = rng.stream(key, l)
        activation_forward(layout[l, ACT], Z, A, D, layer_hp[l, P0], layer_hp[l, P1], alpha, pieces, training,
                           extras, rng.stream(draws, rng.RRELU))
        if extras is not None and bn == BN_AFTER:
            batch_norm_forward(A, H, mu, sig, gamma, beta, run_mean, run_var, training,
                               layer_hp[l, BN_MOMENTUM], layer_hp[l, BN_EPS])
        p = layer_hp[l, DROPOUT]
        if training and p > 0.0:
            keep = 1.0 / (1.0 - p)  # inverted dropout: no rescaling at inference
            mask = rng.stream(draws, rng.DROPOUT)
            for i in range(nb):
                for j in range(units):
                    M[i, j] = keep if rng.uniform(mask, i * units + j) >= p else 0.0
                    A[i, j] *= M[i, j]
        A_in = A
    return A_in


@kernel(inline="always")
def _defers(layout, l, nb):
    """Whether the plain backward pass leaves layer l's weight gradient to its caller, for nb rows:
    the ones BLAS computes."""
    return nb * layout[l, N_IN] * layout[l, N_OUT] * layout[l, PIECES] >= BLAS_MIN_MACS


@kernel()
def backward(theta, grad, layout, layer_hp, Xb, ws, offs, nb, extras):
    """Backward pass after `forward(training=True)`: dL/dZ of the output layer is in buffer P0;
    fills grad.

    The plain variant (extras None) leaves the weight gradients BLAS would compute (_defers)
    undone, for the training kernel to compute with _weight_gradient (train_epoch_split: later,
    on either thread); so dL/dZ of each layer stays in the workspace: the output layer's in P0, a
    hidden layer's in place of its Z, which its backward step no longer reads. (The full variant's
    gradient records read Z after the backward pass.)
    """
    L = layout.shape[0]
    keep = extras is None
    cur = offs[3 + L]  # holds dL/dZ of the layer being processed
    nxt = offs[4 + L]  # scratch for dL/dA of the layer below
    for l in range(L - 1, -1, -1):
        n_in = layout[l, N_IN]
        width = layout[l, N_OUT] * layout[l, PIECES]
        W = _block(theta, layout[l, W_OFF], n_in, width)
        dW = _block(grad, layout[l, W_OFF], n_in, width)
        db = _span(grad, layout[l, B_OFF], width)
        dZ = _block(ws, cur, nb, width)
        # layer j = l - 1 fed this one (for l = 0 its views go unused): after dW and db, walk
        # its steps back from its output to its Z. One call site with a run-time flag: a literal
        # True and False would compile dense_backward twice.
        j = max(l - 1, 0)
        Z, A, D, H, M, mu, sig = _layer_views(ws, offs, layout, j, nb)
        G = _block(ws, nxt, nb, n_in)
        inner = l > 0
        fuse = keep and inner and width == 1 and layout[j, ACT] == RELU and layer_hp[j, DROPOUT] == 0.0
        dense_backward(A if inner else Xb, dZ, W, dW, db, G, inner and not fuse, not (keep and _defers(layout, l, nb)))
        if not inner:
            return
        if fuse:
            cur = offs[3 + j]  # layer j's Z (_layer_views)
            _output_delta_relu(dZ, W, A, _block(ws, cur, nb, n_in))
            continue
        if layer_hp[j, DROPOUT] > 0.0:
            for i in range(nb):
                for k in range(n_in):
                    G[i, k] *= M[i, k]
        bn = layout[j, BN]
        units = n_in
        g = max(layout[j, G_OFF], 0)
        gamma = _span(theta, g, units)
        dgamma = _span(grad, g, units)
        dbeta = _span(grad, g + units, units)
        if extras is not None and bn == BN_AFTER:
            batch_norm_backward(G, H, sig, gamma, dgamma, dbeta)
        pieces = layout[j, PIECES]
        if keep:
            cur = offs[3 + j]  # layer j's Z (_layer_views)
        dZj = _block(ws, cur, nb, units * pieces)
        code = layout[j, ACT]
        if extras is not None and code == MAXOUT:
            dZj[:, :] = 0.0
            for i in range(nb):
                for k in range(units):
                    dZj[i, k * pieces + int(D[i, k])] = G[i, k]
        elif extras is None and code == RELU:  # no D: see activation_forward
            zero = dZj.dtype.type(0.0)
            one = dZj.dtype.type(1.0)
            for i in range(nb):
                for k in range(units):
                    dZj[i, k] = G[i, k] * (one if A[i, k] > zero else zero)
        else:
            for i in range(nb):
                for k in range(units):
                    dZj[i, k] = G[i, k] * D[i, k]
            if extras is not None and code == PRELU:
                a = layout[j, A_OFF]
                n_a = layout[j, N_A]
                dalpha = _span(grad, a, n_a)
                dalpha[:] = 0.0
                for i in range(nb):
                    for k in range(units):
                        if Z[i, k] < 0.0:
                            dalpha[k if n_a > 1 else 0] += G[i, k] * Z[i, k]
        if extras is not None and bn == BN_BEFORE:
            batch_norm_backward(dZj, H, sig, gamma, dgamma, dbeta)


@kernel(inline="always")
def _output_delta_relu(delta, w, A, dZ):
    """dZ = (delta @ w.T) * relu'(A) for a one-output layer (delta (n, 1), w (k, 1)) over a relu
    layer of output A (n, k): the plain backward pass's dL/dZ of that layer in one pass, where
    dense_backward's dA_in and the relu mask took two. A half-step of the bench's 32-256-256-1
    net (128 x 256 x 1): 3.5 us, against 11.3-13 for BLAS's delta @ w.T and the mask."""
    zero = dZ.dtype.type(0.0)
    one = dZ.dtype.type(1.0)
    for i in range(dZ.shape[0]):
        d = delta[i, 0]
        for p in range(dZ.shape[1]):
            dZ[i, p] = d * w[p, 0] * (one if A[i, p] > zero else zero)


@kernel()
def _weight_gradient(ws, offs, layout, grad, l, blk, blocks, nb):
    """Block blk of `blocks` blocks of the rows of layer l's weight gradient, which the plain
    backward pass left undone for the nb rows in ws: dW = A_in.T @ dZ.

    A function of its own, not inlined: the training kernels call it once per deferred layer and
    block of a step, around a BLAS call of microseconds, and on a cold cache the helper process
    compiles it (nncli.kernels.precompile) while train_epoch's other callees compile here; the
    first train of the Pima config on an empty cache took 0.94 of the time it took with this
    inlined (paired median of 10 alternating runs each)."""
    L = layout.shape[0]
    n_in = layout[l, N_IN]
    width = layout[l, N_OUT] * layout[l, PIECES]
    dZ = _block(ws, offs[3 + L] if l == L - 1 else offs[3 + l], nb, width)
    A_in = _block(ws, offs[0], nb, n_in) if l == 0 else _layer_views(ws, offs, layout, l - 1, nb)[1]
    lo, size = _part(n_in, blk, blocks)
    if size > 0:
        dW = _block(grad, layout[l, W_OFF], n_in, width)
        _gemm_rows(A_in[:, lo:lo + size], dZ, dW[lo:lo + size], True, False, False)


@kernel()
def weight_penalty(theta, grad, layout, l1, l2):
    """Add the gradient of l1*|W| + l2*W^2 (weights only, not biases) to grad; return its value."""
    return _penalize(theta, grad, layout, l1, l2, 0, theta.shape[0])


@kernel(inline="always")
def _penalize(theta, grad, layout, l1, l2, lo, hi):
    """weight_penalty of the weights among theta[lo:hi] (a split step's share)."""
    total = 0.0
    for l in range(layout.shape[0]):
        for i in range(max(layout[l, W_OFF], lo), min(layout[l, B_OFF], hi)):
            w = theta[i]
            total += l1 * abs(w) + l2 * w * w
            grad[i] += l1 * np.sign(w) + 2.0 * l2 * w
    return total


@kernel(inline="always")
def loss_and_gradient(theta, running, grad, layout, layer_hp, loss_code, loss_hp, Xb, Yb, swb, ws, offs, extras, key):
    """Mean loss on one batch (training mode) and its gradient with respect to theta; in the plain
    variant without the weight gradients backward leaves to the caller (_defers).

    Inlined into train_epoch by numba (inline="always"): as a function of its own, numba compiled
    it into a module that re-optimized forward, the loss and backward once more before
    train_epoch re-optimized them all again; inlined, the first train on an empty cache takes
    about 2 s less (8.9 → 7.8 s, Pima config, alternating runs), and the loop runs as fast."""
    nb = Xb.shape[0]
    L = layout.shape[0]
    K = layout[L - 1, N_OUT]
    Zout = forward(theta, running, layout, layer_hp, Xb, ws, offs, nb, True, extras, key)
    delta = _block(ws, offs[3 + L], nb, K)
    loss = loss_and_delta(loss_code, loss_hp, Zout, Yb, swb, delta, extras)
    backward(theta, grad, layout, layer_hp, Xb, ws, offs, nb, extras)
    return loss


@kernel()
def clip_gradient(grad, clip_norm, clip_value):
    """Clip by value, then by global L2 norm (torch's clip_grad_norm_); return the norm before."""
    norm = math.sqrt(_clamp_and_square(grad, 0, grad.shape[0], clip_value))
    coef = _norm_coef(norm, clip_norm)
    if coef < 1.0:
        for i in range(grad.shape[0]):
            grad[i] *= coef
    return norm


@kernel(inline="always")
def _clamp_and_square(grad, lo, hi, clip_value):
    """Clip grad[lo:hi] to +-clip_value (if > 0); return the sum of its squares after.

    The loops run over a view from index 0: with indices from lo, which numba must allow to be
    negative (counted from the end), LLVM vectorized the sum with gather instructions."""
    g = _span(grad, lo, hi - lo)
    if clip_value > 0.0:
        for i in range(g.shape[0]):
            g[i] = min(max(g[i], -clip_value), clip_value)
    sq = 0.0
    for i in range(g.shape[0]):
        sq += g[i] * g[i]
    return sq


@kernel(inline="always")
def _norm_coef(norm, clip_norm):
    """What clipping by norm multiplies the gradient by (1: no clipping)."""
    if clip_norm > 0.0 and math.isfinite(norm):
        return clip_norm / (norm + 1e-6)
    return 1.0


@kernel()
def _mix_rows(arr, tmp, lam, shift):
    """arr[i] := lam * arr[i] + (1 - lam) * arr[(i + shift) % n] for every row i; tmp: scratch.

    Copies are element loops here and below: numba's checked slice assignment (a[:] = b) brings
    in error-formatting code that took seconds of every cold compile."""
    n, m = arr.shape
    T = _block(tmp, 0, n, m)
    for i in range(n):
        for j in range(m):
            T[i, j] = arr[i, j]
    for i in range(n):
        partner = (i + shift) % n
        for j in range(m):
            arr[i, j] = lam * T[i, j] + (1.0 - lam) * T[partner, j]


@kernel()
def _augment(Xb, Yb, swb, tmp, train_hp, mix, key):
    """Input noise, input dropout and mixup on one gathered batch, in place; mix: this step's
    mixup draws (lambda, u), drawn in Python (nncli.train.mixup_draws); the noise and the input
    dropout are draws of the step's key (nncli.kernels.rng)."""
    nb, d = Xb.shape
    draws = rng.stream(key, rng.INPUTS)
    sigma = train_hp[NOISE]
    if sigma > 0.0:
        noise = rng.stream(draws, rng.NOISE)
        pairs = (d + 1) // 2
        for i in range(nb):
            for j in range(0, d, 2):
                z0, z1 = rng.normal_pair(noise, i * pairs + j // 2)
                Xb[i, j] += sigma * z0
                if j + 1 < d:
                    Xb[i, j + 1] += sigma * z1
    p = train_hp[INPUT_DROPOUT]
    if p > 0.0:
        keep = 1.0 / (1.0 - p)
        mask = rng.stream(draws, rng.INPUT_DROPOUT)
        for i in range(nb):
            for j in range(d):
                Xb[i, j] *= keep if rng.uniform(mask, i * d + j) >= p else 0.0
    alpha = train_hp[MIXUP]
    if alpha > 0.0 and nb > 1:
        # mix each row with the row `shift` places on (Zhang et al., 2018: one lambda per batch)
        lam = mix[0]
        shift = 1 + int(mix[1] * (nb - 1))
        _mix_rows(Xb, tmp, lam, shift)
        _mix_rows(Yb, tmp, lam, shift)
        _mix_rows(_block(swb, 0, nb, 1), tmp, lam, shift)


@kernel()
def _record_step(rec, theta, grad, layout, layer_hp, ws, offs, nb, loss, epoch, t):
    record.record_common(rec, theta, grad, loss, epoch, t)
    L = layout.shape[0]
    for l in range(L):
        Z, A, D, H, M, mu, sig = _layer_views(ws, offs, layout, l, nb)
        record.record_layer(rec, l, theta, grad, layout, layer_hp, Z, D, l < L - 1)


@kernel(inline="always")
def _gather(X, Y, sw, perm, start, nb, ws, offs):
    """The batch of rows perm[start:start + nb], copied into ws: its X, Y and sw (views into ws)."""
    d = X.shape[1]
    K = Y.shape[1]
    Xb = _block(ws, offs[0], nb, d)
    Yb = _block(ws, offs[1], nb, K)
    swb = _span(ws, offs[2], nb)
    for i in range(nb):
        r = perm[start + i]
        for j in range(d):
            Xb[i, j] = X[r, j]
        for k in range(K):
            Yb[i, k] = Y[r, k]
        swb[i] = sw[r]
    return Xb, Yb, swb


@kernel(nogil=True, reoptimize_callees=False, from_python=True)
def train_epoch(theta, running, grad, layout, layer_hp, X, Y, sw, perm, batch_size, loss_code, loss_hp,
                opt_code, opt_hp, s1, s2, t, train_hp, seed, mix, ws, stats, records, rec_every, rec_count, before,
                epoch, first_step, control, extras):
    """Mini-batch training over the rows in `perm` from step `first_step` of the epoch to its end;
    returns the new optimizer step count t.

    Rows are visited in perm's order, batch_size at a time. The random draws of a step (dropout,
    rrelu, noise) come from its key, rng.step_key(seed, step), so that they do not depend on where
    a run was interrupted and resumed. mix holds each step's mixup draws (steps, 2); without mixup
    one row of zeros.

    Stops early, leaving stats[STATUS] != OK and stats[STEP] = the step of the epoch it stopped
    at: before the update of a step whose loss or gradient is not finite (NONFINITE_*), or before
    a step when control[0] != 0 (INTERRUPTED: set from another thread; this kernel runs without
    the GIL). Otherwise stats[STEP] ends at the number of steps in the epoch. stats[LOSS_SUM] and
    stats[CLIPPED_STEPS] accumulate over calls (sum of batch loss * rows, before each update and
    without weight penalties; steps where clipping fired): the caller resets them per epoch.

    With rec_every > 0, every rec_every-th step (counted over the whole run by t) appends a row
    of gradient statistics (nncli.kernels.record) to records at rec_count[0], and before (theta's
    size) holds the weights before the update; rec_every = 0 records nothing.

    extras: True, or None for the plain variant (module docstring), which neither records nor
    augments and knows no batch norm, and only the common losses and optimizers.
    """
    theta, running, grad, s1, s2, ws, before = (_unowned(theta), _unowned(running), _unowned(grad), _unowned(s1),
                                                _unowned(s2), _unowned(ws), _unowned(before))
    layout, layer_hp, loss_hp, opt_hp, train_hp = (_unowned(layout), _unowned(layer_hp), _unowned(loss_hp),
                                                   _unowned(opt_hp), _unowned(train_hp))
    X, Y, sw, perm, mix, records = _unowned(X), _unowned(Y), _unowned(sw), _unowned(perm), _unowned(mix), _unowned(records)
    n = perm.shape[0]
    L = layout.shape[0]
    offs = fill_offsets(layout, batch_size, stack_array(L + 7, layout))
    augment = train_hp[NOISE] > 0.0 or train_hp[INPUT_DROPOUT] > 0.0 or train_hp[MIXUP] > 0.0
    penalty = train_hp[L1] > 0.0 or train_hp[L2] > 0.0
    stats[STATUS] = OK
    step = first_step
    for start in range(first_step * batch_size, n, batch_size):
        stats[STEP] = step
        if control[0] != 0:
            stats[STATUS] = INTERRUPTED
            return t
        key = rng.step_key(seed, step)
        nb = min(batch_size, n - start)
        Xb, Yb, swb = _gather(X, Y, sw, perm, start, nb, ws, offs)
        if extras is not None and augment:
            _augment(Xb, Yb, swb, ws[offs[4 + L]:offs[6 + L]], train_hp, mix[min(step, mix.shape[0] - 1)], key)
        loss = loss_and_gradient(theta, running, grad, layout, layer_hp, loss_code, loss_hp, Xb, Yb, swb, ws, offs,
                                 extras, key)
        if extras is None:  # the weight gradients the plain backward pass left, as train_epoch_split's do
            for l in range(L):
                if _defers(layout, l, nb):
                    _weight_gradient(ws, offs, layout, grad, l, 0, 1, nb)
        if penalty:
            weight_penalty(theta, grad, layout, train_hp[L1], train_hp[L2])
        rec = records[rec_count[0]] if rec_every > 0 and (t + 1) % rec_every == 0 else records[0, :0]
        recording = rec.shape[0] > 0
        if extras is not None and recording:
            _record_step(rec, theta, grad, layout, layer_hp, ws, offs, nb, loss, epoch, t + 1)
            rec_count[0] += 1
        if not math.isfinite(loss):
            stats[STATUS] = NONFINITE_LOSS
            return t
        norm = clip_gradient(grad, train_hp[CLIP_NORM], train_hp[CLIP_VALUE])
        if not math.isfinite(norm):
            stats[STATUS] = NONFINITE_GRAD
            return t
        fired = train_hp[CLIP_NORM] > 0.0 and norm > train_hp[CLIP_NORM]
        stats[CLIPPED_STEPS] += fired
        stats[LAST_GRAD_NORM] = norm
        t += 1
        if extras is not None and recording:
            rec[record.GRAD_NORM] = norm
            rec[record.CLIPPED] = fired
            for i in range(theta.shape[0]):
                before[i] = theta[i]
        apply_updates(opt_code, opt_hp, theta, grad, s1, s2, t, extras)
        if extras is not None and recording:
            record.record_update(rec, theta, before, layout)
        stats[LOSS_SUM] += loss * nb
        step += 1
    stats[STEP] = step
    return t


SPLIT = 2  # train_epoch_split's share of a batch: two halves, one per core
# train_epoch_split computes a weight gradient the plain backward pass left (_defers) in this many
# blocks of its rows, each one claimed by whichever thread is free first.
BLOCKS = 2
# ... and sums the halves' gradients and updates the weights in this many shares of theta, claimed
# the same way.
SHARES = 8
CLAIMS = SYNC_SIZE  # sync's slots of the shares: the phase each was last claimed for (one cache line)
_TASKS = SYNC_SIZE + SHARES


def sync_size(layers: int) -> int:
    """Length of train_epoch_split's `sync` for a net of `layers` layers: the barrier's slots, the
    count of claimed shares, then two slots per block of a deferred weight gradient (_task)."""
    return _TASKS + 2 * SPLIT * layers * BLOCKS


@kernel(inline="always")
def _part(n, h, parts):
    """Start and length of part h of range(n) cut into `parts` parts (the last ones may be shorter,
    or empty): a block of a weight gradient's rows, a share of theta."""
    size = -(-n // parts)
    lo = min(h * size, n)
    return lo, min(n, lo + size) - lo


@kernel(inline="always")
def _half(nb, h):
    """Offset and rows of half h of a batch of nb rows (the second takes the odd row)."""
    first = nb // SPLIT
    return h * first, first if h == 0 else nb - first


@kernel(inline="always")
def _claim_share(sync, tid, phase, i):
    """Claim a share of theta for phase (counted from 1 in the kernel's call): the first one still
    unclaimed from place i on in thread tid's order, thread 0's from the first share up and thread
    1's from the last down. Returns (its place, the share), or place SHARES when none is left.

    In a balanced step each thread so takes the same shares, both phases of every step, and
    their gradient, theta and optimizer state stay in its core's cache; a thread ahead of the
    other goes on into the other's end. (Shares taken from one counter, in the order the threads
    came, moved between the cores from step to step: the sum and the update of the bench's
    32-256-256-1 net took 76.4 us a step per thread that way, and 69.6 this way; medians of 20
    alternating runs.)"""
    for place in range(i, SHARES):
        h = place if tid % 2 == 0 else SHARES - 1 - place
        seen = atomic_load(sync, CLAIMS + h)
        if seen < phase and atomic_cas(sync, CLAIMS + h, seen, phase):
            return place, h
    return SHARES, 0


@kernel(inline="always")
def _task(h, l, blk, L):
    """sync's slot of block blk of half h's layer l weight gradient: the step (counted from 1 in
    the kernel's call) it is ready for; the next slot, the step it has been claimed for."""
    return _TASKS + 2 * ((h * L + l) * BLOCKS + blk)


@kernel(inline="always")
def _weight_gradients(tid, sync, layout, ws2, grads2, offs, nb, k):
    """Compute the deferred weight gradients of step k (counted from 0 in the kernel's call), both
    halves', a block at a time, until every block is claimed: this thread's own half first, then
    blocks of the other half as its thread makes them ready. Returns True when a thread gave up
    (sync[ABORT]), and the caller must return."""
    L = layout.shape[0]
    spins = 0
    while True:
        pending = False
        for i in range(SPLIT):
            h = (tid + i) % SPLIT
            rows = _half(nb, h)[1]
            for l in range(L - 1, -1, -1):
                if not _defers(layout, l, rows):
                    continue
                for blk in range(BLOCKS):
                    slot = _task(h, l, blk, L)
                    claimed = atomic_load(sync, slot + 1)
                    if claimed > k:
                        continue
                    if atomic_load(sync, slot) <= k:  # its half's backward pass is still running
                        pending = True
                    elif atomic_cas(sync, slot + 1, claimed, k + 1):
                        _weight_gradient(ws2[h], offs, layout, grads2[h], l, blk, BLOCKS, rows)
        if not pending:
            return False
        if atomic_load(sync, ABORT) != 0:
            return True
        spins = wait(spins)


@kernel(nogil=True, reoptimize_callees=False, from_python=True)
def train_epoch_split(tid, n_threads, sync, shared, theta, running, grad, layout, layer_hp, X, Y, sw, perm, batch_size,
                      loss_code, loss_hp, opt_code, opt_hp, s1, s2, t, train_hp, seed, ws2, grads2, stats, first_step,
                      control):
    """train_epoch's plain variant (extras None: no batch norm, records or augmentation) for nets
    whose steps are large, with each batch split into two halves that run at once, one per core.

    n_threads threads (1 or SPLIT) call this kernel at once, each with its number tid, the same
    `sync` (int64, sync_size(layers), zeros; see nncli.kernels.sync) and `shared` (float64,
    SPLIT + SHARES: the halves' losses, then the shares' squared norms); nncli.kernels.threads
    starts them. Thread tid does half h = tid of each batch (one thread: both halves, one after the
    other): it gathers its rows and runs forward, loss and backward into its own work buffer
    (ws2[h], carved by workspace_offsets for batch_size - batch_size // 2 rows) and gradient
    (grads2[h]). The backward pass leaves the BLAS weight gradients (a third of a step's
    arithmetic in a 32-256-256-1 net) as BLOCKS blocks each, and says when they are ready; each
    thread then computes blocks, its own half's first, until all are claimed (_weight_gradients).
    So when one core runs slower (this machine's two cores are shared with other work, and one
    often ran a third slower than the other for a whole epoch), the other takes over part of its
    half instead of waiting at the barrier. The batch's gradient is the halves' row-weighted sum
    (halves of the mean loss's gradient combine exactly, so this trains the model train_epoch
    would, to rounding). Summing, weight penalties, clipping by value, the squared norm,
    clipping by norm and the optimizer's update are elementwise: the threads claim them a share
    of theta at a time (SHARES of them, _claim_share). The threads meet at a barrier after the
    halves (every thread then reads the same loss, and so takes the same decisions), after the
    sum (and the same norm) and, with clipping by norm, after the update. Without it a share's
    update needs only the share's own gradient, so each thread updates a share as soon as it has
    summed it, and the sum's barrier is the step's last: a non-finite gradient norm is then
    found after the update, which leaves non-finite weights, and the run ends there (fit raises
    TrainingDiverged; runs that stop on divergence instead record gradients, and so never split).
    Which thread computes a block or a share does not change its numbers.

    Every half draws its dropout masks from a key of its own, rng.step_key(seed, step * SPLIT +
    h), so the result does not depend on the number of threads, to the last bit. Both threads
    call BLAS: the caller limits BLAS to one thread of its own, since two calls at once into a
    multi-threaded OpenBLAS wait for each other.

    control is read by thread 0 alone, once a step (after the halves; a stop then leaves the
    step undone) and passed on through sync[STOP]. The other arguments, the return value and
    stats (written by thread 0) are as in train_epoch.
    """
    theta, running, grad, s1, s2, ws2, grads2 = (_unowned(theta), _unowned(running), _unowned(grad), _unowned(s1),
                                                 _unowned(s2), _unowned(ws2), _unowned(grads2))
    layout, layer_hp, loss_hp, opt_hp, train_hp = (_unowned(layout), _unowned(layer_hp), _unowned(loss_hp),
                                                   _unowned(opt_hp), _unowned(train_hp))
    X, Y, sw, perm = _unowned(X), _unowned(Y), _unowned(sw), _unowned(perm)
    n = perm.shape[0]
    L = layout.shape[0]
    offs = fill_offsets(layout, batch_size - batch_size // SPLIT, stack_array(L + 7, layout))
    penalty = train_hp[L1] > 0.0 or train_hp[L2] > 0.0
    clips = train_hp[CLIP_NORM] > 0.0
    losses = shared[:SPLIT]
    squares = shared[SPLIT:]
    P = theta.shape[0]
    lead = tid == 0
    if lead:
        stats[STATUS] = OK
    step = first_step
    for start in range(first_step * batch_size, n, batch_size):
        if lead:
            stats[STEP] = step
        nb = min(batch_size, n - start)
        first = nb // SPLIT
        for h in range(tid, SPLIT, n_threads):
            offset, rows = _half(nb, h)
            lo = start + offset
            losses[h] = 0.0
            if rows > 0:
                ws = ws2[h]
                Xb, Yb, swb = _gather(X, Y, sw, perm, lo, rows, ws, offs)
                losses[h] = loss_and_gradient(theta, running, grads2[h], layout, layer_hp, loss_code, loss_hp, Xb, Yb,
                                              swb, ws, offs, None, rng.step_key(seed, step * SPLIT + h))
                for l in range(L):
                    for blk in range(BLOCKS):
                        atomic_store(sync, _task(h, l, blk, L), step - first_step + 1)
        if _weight_gradients(tid, sync, layout, ws2, grads2, offs, nb, step - first_step):
            return t
        if lead:
            atomic_store(sync, STOP, control[0] != 0)
        if barrier(sync, n_threads):
            return t
        if atomic_load(sync, STOP) != 0:
            if lead:
                stats[STATUS] = INTERRUPTED
            return t
        share = first / nb
        loss = share * losses[0] + (1.0 - share) * losses[1]
        if not math.isfinite(loss):
            if lead:
                stats[STATUS] = NONFINITE_LOSS
            return t
        a = theta.dtype.type(share)
        b = theta.dtype.type(1.0 - share)
        phase = 2 * (step - first_step) + 1
        place, h = _claim_share(sync, tid, phase, 0)
        while place < SHARES:  # the batch's gradient, a share of theta at a time
            lo, size = _part(P, h, SHARES)
            g = _span(grad, lo, size)
            g0 = _span(grads2[0], lo, size)
            g1 = _span(grads2[1], lo, size)
            if first == 0:  # a one-row batch: the first half is empty and its buffer stale
                for i in range(size):
                    g[i] = g1[i]
            else:
                for i in range(size):
                    g[i] = a * g0[i] + b * g1[i]
            if penalty:
                _penalize(theta, grad, layout, train_hp[L1], train_hp[L2], lo, lo + size)
            squares[h] = _clamp_and_square(grad, lo, lo + size, train_hp[CLIP_VALUE])
            if not clips:  # its update needs no more than its own gradient
                apply_updates(opt_code, opt_hp, _span(theta, lo, size), g, _span(s1, lo, size), _span(s2, lo, size),
                              t + 1, None)
            place, h = _claim_share(sync, tid, phase, place + 1)
        if barrier(sync, n_threads):  # without clipping by norm: theta whole again for the next step
            return t
        norm = 0.0
        for h in range(SHARES):
            norm += squares[h]
        norm = math.sqrt(norm)
        if not math.isfinite(norm):
            if lead:
                stats[STATUS] = NONFINITE_GRAD
            return t
        t += 1
        if clips:
            coef = _norm_coef(norm, train_hp[CLIP_NORM])
            place, h = _claim_share(sync, tid, phase + 1, 0)
            while place < SHARES:  # clipping and the optimizer's update, a share at a time
                lo, size = _part(P, h, SHARES)
                g = _span(grad, lo, size)
                if coef < 1.0:
                    for i in range(size):
                        g[i] *= coef
                apply_updates(opt_code, opt_hp, _span(theta, lo, size), g, _span(s1, lo, size), _span(s2, lo, size),
                              t, None)
                place, h = _claim_share(sync, tid, phase + 1, place + 1)
            if barrier(sync, n_threads):  # theta whole again before the next step's forward pass
                return t
        if lead:
            stats[CLIPPED_STEPS] += clips and norm > train_hp[CLIP_NORM]
            stats[LAST_GRAD_NORM] = norm
            stats[LOSS_SUM] += loss * nb
        step += 1
    if lead:
        stats[STEP] = step
    return t


@kernel(nogil=True, reoptimize_callees=False, from_python=True)
def predict_logits(theta, running, layout, layer_hp, X, out, ws, chunk, extras):
    """Logits for every row of X (n, n_in) into out (n, K), in inference mode, chunk rows at a time."""
    theta, running, layout, layer_hp, X, ws = (_unowned(theta), _unowned(running), _unowned(layout),
                                               _unowned(layer_hp), _unowned(X), _unowned(ws))
    n = X.shape[0]
    offs = fill_offsets(layout, chunk, stack_array(layout.shape[0] + 7, layout))
    for start in range(0, n, chunk):
        nb = min(chunk, n - start)
        Zout = forward(theta, running, layout, layer_hp, X[start:start + nb], ws, offs, nb, False, extras,
                       np.uint64(0))
        for i in range(nb):
            for k in range(Zout.shape[1]):
                out[start + i, k] = Zout[i, k]
