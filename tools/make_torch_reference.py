"""Generate PyTorch reference values for the nncli test-suite.

What it makes
-------------
``tests/reference/torch_reference.npz`` -- a compressed NumPy archive holding
inputs *and* expected outputs computed with PyTorch (float64 everywhere):

* ``act.*``   activation forward values and elementwise derivatives on a grid;
* ``loss.*``  losses, logits and parameter gradients of a small MLP;
* ``opt.*``   20-step full-batch optimizer trajectories (final weights, losses);
* ``sched.*`` learning-rate schedules over 30 epochs;
* ``bn.*``    BatchNorm1d training / evaluation reference values;
* ``meta.*``  provenance (``meta.torch_version`` = e.g. ``[2, 13, 0]``).

Every input is generated with ``np.random.default_rng(seed)`` (seeds are the
module-level constants below) and stored in the archive, so the consumer never
needs to regenerate anything -- and never needs PyTorch.  PyTorch is *not* a
runtime (or test) dependency of nncli; it is used only by this script.

Conventions
-----------
A dense layer stores ``W`` with shape ``(n_in, n_out)`` and ``b`` with shape
``(n_out,)`` and computes ``Z = A_prev @ W + b``.  (``torch.nn.Linear.weight``
is ``W.T``; this script uses ``W`` directly, so gradients come out as ``dW``
in the same ``(n_in, n_out)`` layout.)  All arrays are float64 or int64; the
file loads with ``np.load(path, allow_pickle=False)``.

How to run
----------
    pip install torch==2.13.0
    python tools/make_torch_reference.py

The script is deterministic (fixed seeds, float64, one CPU thread); re-running
it with the same torch/numpy versions reproduces the same numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # fixed reduction order -> bitwise reproducible
torch.manual_seed(0)  # no torch RNG is used; set anyway for safety

OUT_PATH = Path(__file__).resolve().parent.parent / "tests" / "reference" / "torch_reference.npz"

# Seeds (np.random.default_rng) -- documented here, inputs are stored anyway.
SEED_LOSS_BASE = 1000  # loss case i (in generation order) uses seed 1000 + i
SEED_OPT = 2000
SEED_BN = 3000

# Shared network shape for the loss / optimizer sections: 5 -> 7 -> 6 -> K.
N_IN, H1, H2 = 5, 7, 6
INIT_STD = 0.5


def t(a) -> torch.Tensor:
    """numpy -> float64 torch tensor (copy, so numpy arrays stay untouched)."""
    return torch.tensor(np.asarray(a, dtype=np.float64))


def n(x: torch.Tensor) -> np.ndarray:
    """torch -> float64 numpy array (detached copy)."""
    return x.detach().cpu().numpy().astype(np.float64, copy=True)


# --------------------------------------------------------------------------
# 1. Activations
# --------------------------------------------------------------------------

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
    "leaky_relu_0.1": lambda z: F.leaky_relu(z, negative_slope=0.1),
    "elu": lambda z: F.elu(z, alpha=1.0),
    "elu_0.5": lambda z: F.elu(z, alpha=0.5),
    "selu": F.selu,
    "gelu": lambda z: F.gelu(z, approximate="none"),
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
    "silu": F.silu,
    "mish": F.mish,
    "softplus": lambda z: F.softplus(z, beta=1.0, threshold=20.0),
    "softplus_b2": lambda z: F.softplus(z, beta=2.0, threshold=20.0),
    "softsign": F.softsign,
    "hardtanh": lambda z: F.hardtanh(z, min_val=-1.0, max_val=1.0),
    "hardsigmoid": F.hardsigmoid,
    "hardswish": F.hardswish,
    "tanhshrink": F.tanhshrink,
    "softshrink": lambda z: F.softshrink(z, lambd=0.5),
    "hardshrink": lambda z: F.hardshrink(z, lambd=0.5),
    "linear": lambda z: z * 1.0,  # identity (the multiply keeps it in the graph)
    "celu": lambda z: F.celu(z, alpha=1.0),
}


# Values are recorded exactly as torch produces them, including its choices at
# kinks (e.g. relu'(0) = 0, leaky_relu'(0) = slope, hardtanh'(+-1) = 0,
# hardswish'(-3) = 0, hardswish'(3) = 1, softshrink/hardshrink'(+-0.5) = 0).
# Known torch quirk: hardsigmoid's backward uses a float32 constant, so
# act.hardsigmoid.df is float32(1/6) = 0.1666666716337204 on (-3, 3) even in
# float64 (off from 1/6 by ~5e-9); the forward values are exact.


def make_activations(out: dict) -> None:
    grid = np.concatenate(
        [np.linspace(-6, 6, 241), [-30, -1, -0.5, 0.5, 1, 30, 3, -3, 20, -20, 1e-3, -1e-3]]
    ).astype(np.float64)
    out["act.grid"] = grid
    for name, fn in ACTIVATIONS.items():
        z = t(grid).requires_grad_(True)
        a = fn(z)
        (dz,) = torch.autograd.grad(a.sum(), z)
        out[f"act.{name}.f"] = n(a)
        out[f"act.{name}.df"] = n(dz)


# --------------------------------------------------------------------------
# 2. Losses and gradients through a small network
# --------------------------------------------------------------------------

HIDDEN = {"tanh": torch.tanh, "relu": F.relu, "sigmoid": torch.sigmoid}


def init_params(rng: np.random.Generator, k_out: int) -> dict[str, np.ndarray]:
    """W0,b0,W1,b1,W2,b2 for 5 -> 7 -> 6 -> k_out, all N(0, INIT_STD^2)."""
    sizes = [N_IN, H1, H2, k_out]
    p = {}
    for i in range(3):
        p[f"W{i}"] = rng.normal(0.0, INIT_STD, size=(sizes[i], sizes[i + 1]))
        p[f"b{i}"] = rng.normal(0.0, INIT_STD, size=(sizes[i + 1],))
    return p


def forward(params: dict[str, torch.Tensor], X: torch.Tensor, act) -> torch.Tensor:
    """Two hidden layers with activation `act`, linear output (logits)."""
    A = act(X @ params["W0"] + params["b0"])
    A = act(A @ params["W1"] + params["b1"])
    return A @ params["W2"] + params["b2"]


def loss_fn(kind: str, Z: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None = None):
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(Z, Y)
    if kind == "bce_weighted":
        return F.binary_cross_entropy_with_logits(Z, Y, weight=sw[:, None])
    if kind == "softmax_ce":
        return F.cross_entropy(Z, Y.argmax(dim=1))
    if kind == "mse":
        return F.mse_loss(Z, Y)
    if kind == "mae":
        return F.l1_loss(Z, Y)
    if kind == "huber":
        return F.huber_loss(Z, Y, delta=1.0)
    raise ValueError(kind)


LOSS_K = {"bce": 1, "bce_weighted": 1, "softmax_ce": 3, "mse": 2, "mae": 2, "huber": 2}
N_LOSS = 9


def make_targets(kind: str, rng: np.random.Generator) -> np.ndarray:
    k = LOSS_K[kind]
    if kind in ("bce", "bce_weighted"):
        # both classes always present
        y = np.array([0, 1] * 4 + [1], dtype=np.float64)
        return rng.permutation(y)[:, None]
    if kind == "softmax_ce":
        cls = rng.permutation(np.arange(N_LOSS) % k)  # every class present
        return np.eye(k, dtype=np.float64)[cls]
    if kind == "huber":
        # wide spread so that |Zout - Y| falls on both sides of delta=1
        return rng.normal(0.0, 1.5, size=(N_LOSS, k))
    return rng.normal(0.0, 1.0, size=(N_LOSS, k))


def make_losses(out: dict) -> None:
    cases = [(loss, h) for loss in ("bce", "softmax_ce", "mse", "mae", "huber") for h in HIDDEN]
    cases.append(("bce_weighted", "tanh"))
    for i, (kind, h) in enumerate(cases):
        rng = np.random.default_rng(SEED_LOSS_BASE + i)
        X = rng.normal(0.0, 1.0, size=(N_LOSS, N_IN))
        Y = make_targets(kind, rng)
        params_np = init_params(rng, LOSS_K[kind])
        sw = rng.uniform(0.2, 2.0, size=(N_LOSS,)) if kind == "bce_weighted" else None

        params = {k: t(v).requires_grad_(True) for k, v in params_np.items()}
        Z = forward(params, t(X), HIDDEN[h])
        loss = loss_fn(kind, Z, t(Y), None if sw is None else t(sw))
        loss.backward()

        if kind == "huber":
            r = np.abs(n(Z) - Y)
            assert (r > 1).any() and (r < 1).any(), "huber case must straddle delta"

        pre = f"loss.{kind}.{h}."
        out[pre + "X"] = X
        out[pre + "Y"] = Y
        if sw is not None:
            out[pre + "sw"] = sw
        for k, v in params_np.items():
            out[pre + k] = v
        out[pre + "Zout"] = n(Z)
        out[pre + "loss"] = n(loss).reshape(1)
        for k, p in params.items():
            out[pre + "d" + k] = n(p.grad)

    # Numerical-stability case: huge logits, mean BCE-with-logits.
    Zx = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0], [0.0]])
    Yx = np.array([[1.0], [0.0], [0.0], [1.0], [1.0]])
    z = t(Zx).requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(z, t(Yx))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    out["loss.bce_extreme.Z"] = Zx
    out["loss.bce_extreme.Y"] = Yx
    out["loss.bce_extreme.loss"] = n(loss).reshape(1)
    out["loss.bce_extreme.dZ"] = n(z.grad)


# --------------------------------------------------------------------------
# 3. Optimizer trajectories
# --------------------------------------------------------------------------

N_OPT = 16
OPT_STEPS = 20
PARAM_NAMES = ("W0", "b0", "W1", "b1", "W2", "b2")

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "sgd_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam_wd": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
    "rmsprop_momentum": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
    "adam_betas": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.95), eps=1e-6),
    # gradient clipping (max total L2 norm 0.05) before each Adam step
    "clip": lambda p: torch.optim.Adam(p, lr=0.01),
}
CLIP_MAX_NORM = 0.05


def run_optimizer(case: str, X, Y, init: dict[str, np.ndarray], out: dict) -> None:
    params = {k: t(init[k]).requires_grad_(True) for k in PARAM_NAMES}
    plist = [params[k] for k in PARAM_NAMES]  # single param group, fixed order
    opt = OPTIMIZERS[case](plist)
    losses, norms = [], []
    for _ in range(OPT_STEPS):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(forward(params, X, torch.tanh), Y)
        loss.backward()
        losses.append(loss.item())
        if case == "clip":
            total = torch.nn.utils.clip_grad_norm_(plist, max_norm=CLIP_MAX_NORM)
            norms.append(total.item())
        opt.step()
    pre = f"opt.{case}."
    for k in PARAM_NAMES:
        out[pre + k] = n(params[k])
    out[pre + "losses"] = np.array(losses, dtype=np.float64)
    if case == "clip":
        out[pre + "norms"] = np.array(norms, dtype=np.float64)
        assert (out[pre + "norms"] > CLIP_MAX_NORM).any(), "clipping never active"


def make_optimizers(out: dict) -> None:
    rng = np.random.default_rng(SEED_OPT)
    X = rng.normal(0.0, 1.0, size=(N_OPT, N_IN))
    Y = rng.permutation(np.array([0.0, 1.0] * (N_OPT // 2)))[:, None]
    init = init_params(rng, 1)
    out["opt.X"] = X
    out["opt.Y"] = Y
    for k in PARAM_NAMES:
        out["opt." + k] = init[k]
    for case in OPTIMIZERS:
        run_optimizer(case, t(X), t(Y), init, out)


# --------------------------------------------------------------------------
# 4. Learning-rate schedulers
# --------------------------------------------------------------------------

N_EPOCHS = 30


def plateau_metric() -> np.ndarray:
    """Decreases for 8 epochs, stalls (with tiny sub-threshold 'improvements'
    and some rises), improves once more, then stalls again."""
    m = list(1.0 * 0.8 ** np.arange(8))  # 1.0 ... 0.8**7 (~0.2097)
    best = m[-1]
    # stall: equal, slightly worse, and a sub-threshold improvement (rel 5e-5 < 1e-4)
    m += [best, best * 1.01, best * (1 - 5e-5), best * 1.02, best, best * 1.005, best * 1.01,
          best * 1.03]
    # genuine improvement (resets the bad-epoch counter)
    m += [best * 0.9, best * 0.85]
    best2 = best * 0.85
    m += [best2 * (1 + 0.001 * i) for i in range(N_EPOCHS - len(m))]
    arr = np.array(m, dtype=np.float64)
    assert arr.shape == (N_EPOCHS,)
    return arr


def record_schedule(make_sched, metric: np.ndarray | None = None) -> np.ndarray:
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make_sched(opt)
    lrs = []
    for epoch in range(N_EPOCHS):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients -> no-op, but keeps the call order torch expects
        if metric is None:
            sched.step()
        else:
            sched.step(float(metric[epoch]))
    return np.array(lrs, dtype=np.float64)


def make_schedulers(out: dict) -> None:
    S = torch.optim.lr_scheduler
    out["sched.step.lr"] = record_schedule(lambda o: S.StepLR(o, step_size=7, gamma=0.5))
    out["sched.exponential.lr"] = record_schedule(lambda o: S.ExponentialLR(o, gamma=0.9))
    out["sched.cosine.lr"] = record_schedule(
        lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.001)
    )
    metric = plateau_metric()
    out["sched.plateau.metric"] = metric
    out["sched.plateau.lr"] = record_schedule(
        lambda o: S.ReduceLROnPlateau(
            o, mode="min", factor=0.5, patience=2, threshold=1e-4,
            threshold_mode="rel", cooldown=0, min_lr=0,
        ),
        metric,
    )
    n_drops = int((np.diff(out["sched.plateau.lr"]) < 0).sum())
    assert n_drops >= 2, n_drops


# --------------------------------------------------------------------------
# 5. BatchNorm1d
# --------------------------------------------------------------------------

N_BN, F_BN, BN_STEPS = 32, 4, 20


def make_batchnorm(out: dict) -> None:
    rng = np.random.default_rng(SEED_BN)
    X = rng.normal(1.0, 2.0, size=(N_BN, F_BN))
    C = rng.normal(0.0, 1.0, size=(N_BN, F_BN))
    gamma = rng.uniform(0.5, 1.5, size=(F_BN,))
    beta = rng.normal(0.0, 0.5, size=(F_BN,))

    bn = torch.nn.BatchNorm1d(F_BN, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(t(gamma))
        bn.bias.copy_(t(beta))
    opt = torch.optim.SGD([bn.weight, bn.bias], lr=0.1)
    Ct = t(C)
    bn.train()
    for step in range(BN_STEPS):
        Xt = t(X * (1 + 0.1 * step) + 0.05 * step).requires_grad_(True)
        opt.zero_grad()
        y = bn(Xt)
        loss = (y * Ct).sum()
        loss.backward()
        if step == 0:
            out["bn.train_out0"] = n(y)
            out["bn.dX0"] = n(Xt.grad)
            out["bn.dgamma0"] = n(bn.weight.grad)
            out["bn.dbeta0"] = n(bn.bias.grad)
        opt.step()
    bn.eval()
    with torch.no_grad():
        eval_out = bn(t(X))

    out["bn.X"] = X
    out["bn.C"] = C
    out["bn.gamma"] = gamma
    out["bn.beta"] = beta
    out["bn.running_mean"] = n(bn.running_mean)
    out["bn.running_var"] = n(bn.running_var)
    out["bn.gamma_final"] = n(bn.weight)
    out["bn.beta_final"] = n(bn.bias)
    out["bn.eval_out"] = n(eval_out)


# --------------------------------------------------------------------------


def torch_version() -> np.ndarray:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", torch.__version__)
    assert m, torch.__version__
    return np.array([int(g) for g in m.groups()], dtype=np.int64)


def main() -> None:
    out: dict[str, np.ndarray] = {"meta.torch_version": torch_version()}
    make_activations(out)
    make_losses(out)
    make_optimizers(out)
    make_schedulers(out)
    make_batchnorm(out)

    for k, v in out.items():
        assert isinstance(v, np.ndarray) and v.dtype in (np.float64, np.int64), (k, type(v))
        assert np.isfinite(v).all(), k

    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT_PATH, **out)

    # Verify the file round-trips without pickle and print a summary.
    with np.load(OUT_PATH, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(out), "key mismatch after reload"
        for k in z.files:
            assert np.array_equal(z[k], out[k]), k
        print(f"wrote {OUT_PATH} ({OUT_PATH.stat().st_size} bytes, {len(z.files)} arrays, "
              f"torch {torch.__version__}, numpy {np.__version__})")
        for k in z.files:
            print(f"  {k:40s} {str(z[k].shape):10s} {z[k].dtype}")


if __name__ == "__main__":
    main()
