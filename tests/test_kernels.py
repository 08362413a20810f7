"""The compiled core against three oracles: PyTorch reference values (tools/make_torch_reference.py),
central finite differences, and the plain-numpy reference in tests/naive.py. All in float64."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import naive
from kernel_call import from_python
from nncli.kernels import mlp
from nncli.kernels.activations import ACTIVATIONS, N_PARAMS, activate_array
from nncli.kernels.layout import CLIP_NORM, TRAIN_HP_COLS
from nncli.kernels.losses import LOSSES
from nncli.kernels.optim import OPTIMIZERS
from nncli.network import LayerSpec, Network
from nncli.train import optimizer_hp

REF = np.load(Path(__file__).parent / "reference" / "torch_reference.npz", allow_pickle=False)
TRAINABLE = [name for name, a in ACTIVATIONS.items() if a.trainable and a.kind == "elementwise"]


def default_params(name):
    values = list(ACTIVATIONS[name].params.values())
    return tuple(values + [0.0] * (N_PARAMS - len(values)))


def act_values(name, z, params=None):
    params = default_params(name) if params is None else params
    A, D = np.empty_like(z), np.empty_like(z)
    activate_array(ACTIVATIONS[name].code, params[0], params[1], z, A, D)
    return A, D


def make_net(n_in, units, acts, Ws=None, bs=None, seed=0):
    """Network with hidden layers `units[:-1]` (activations acts) and a linear output layer."""
    layers = [LayerSpec(u, a[0], a[1:], "glorot_normal") for u, a in zip(units[:-1], acts)]
    layers.append(LayerSpec(units[-1], "linear", (0.0, 0.0), "glorot_normal"))
    net = Network(n_in, layers, dtype=np.float64)
    net.initialize(np.random.default_rng(seed))
    if Ws is not None:
        for l, (W, b) in enumerate(zip(Ws, bs)):
            net.params()[f"layers.{l}.W"][:] = W
            net.params()[f"layers.{l}.b"][:] = b
    return net


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_python_workspace_sizing_matches_the_kernels(batch):
    """workspace_offsets runs fill_offsets' Python function; the kernels carve ws with the compiled
    one (inlined). Both must give the same regions, maxout's widened ones and the scratch included."""
    net = make_net(5, [9, 4, 3], [("maxout", 3.0, 0.0), ("tanh", 0.0, 0.0)])
    L = net.layout.shape[0]
    compiled = mlp.fill_offsets(net.layout, batch, np.zeros(L + 7, dtype=np.int64))
    python = mlp.workspace_offsets(net.layout, np.int64(batch))
    assert python.dtype == np.int64 and python.tolist() == compiled.tolist()
    assert python[-1] > python[3 + L] > python[3] > 0


def loss_and_grad(net, loss, X, Y, sw=None, hp=1.0):
    n = X.shape[0]
    sw = np.ones(n) if sw is None else sw
    offs = mlp.workspace_offsets(net.layout, n)
    ws = np.zeros(offs[-1])
    grad = np.zeros_like(net.theta)
    value = mlp.loss_and_gradient(net.theta, net.running, grad, net.layout, net.layer_hp, LOSSES[loss].code,
                                  np.array([hp, 0.0]), X.copy(), Y.copy(), sw, ws, offs, True, np.uint64(0))
    return value, grad


# ---- activations ---------------------------------------------------------------------------------
TORCH_ACTS = {  # reference key -> (registry name, parameters)
    "linear": ("linear", None), "sigmoid": ("sigmoid", None), "tanh": ("tanh", None), "relu": ("relu", None),
    "leaky_relu": ("leaky_relu", None), "leaky_relu_0.1": ("leaky_relu", (0.1, 0.0)), "elu": ("elu", None),
    "elu_0.5": ("elu", (0.5, 0.0)), "selu": ("selu", None), "celu": ("celu", None), "gelu": ("gelu", None),
    "gelu_tanh": ("gelu_tanh", None), "silu": ("silu", None), "mish": ("mish", None),
    "softplus": ("softplus", None), "softplus_b2": ("softplus", (2.0, 20.0)), "softsign": ("softsign", None),
    "hardtanh": ("hardtanh", None), "hardsigmoid": ("hardsigmoid", None), "hardswish": ("hardswish", None),
    "tanhshrink": ("tanhshrink", None), "softshrink": ("softshrink", None), "hardshrink": ("hardshrink", None),
}


@pytest.mark.parametrize("key", sorted(TORCH_ACTS))
def test_activation_matches_pytorch(key):
    name, params = TORCH_ACTS[key]
    z = REF["act.grid"]
    A, D = act_values(name, z, params)
    np.testing.assert_allclose(A, REF[f"act.{key}.f"], rtol=1e-12, atol=1e-14)
    # torch computes hardsigmoid's slope 1/6 with a float32 constant even in float64
    rtol = 1e-7 if key == "hardsigmoid" else 1e-12
    np.testing.assert_allclose(D, REF[f"act.{key}.df"], rtol=rtol, atol=1e-14)


def test_every_trainable_activation_has_a_pytorch_or_numpy_reference():
    assert set(TRAINABLE) <= {n for n, _ in TORCH_ACTS.values()} | set(naive.ACT)


def _kinks(name, params):
    """Points where f is not differentiable, to keep finite differences away from them."""
    p0, p1 = params
    if name == "softplus":
        return [p1 / p0]
    return {"relu": [0], "leaky_relu": [0], "elu": [0], "selu": [0], "celu": [0], "hardtanh": [p0, p1],
            "hardsigmoid": [-3, 3], "hardswish": [-3, 3], "piecewise_linear": [-0.5, 0.5],
            "softshrink": [-p0, p0], "hardshrink": [-p0, p0]}.get(name, [])


@pytest.mark.parametrize("name", TRAINABLE)
def test_activation_matches_numpy_and_finite_differences(name):
    params = default_params(name)
    z = np.concatenate([np.linspace(-6, 6, 481), [-30, 30, 0.0, 1e-3, -1e-3]])
    A, D = act_values(name, z)
    np.testing.assert_allclose(A, naive.ACT[name](z, *params), rtol=1e-12, atol=1e-14)
    away = np.all([np.abs(z - k) > 1e-4 for k in _kinks(name, params)] or [np.ones_like(z, bool)], axis=0)
    h = 1e-6
    fd = (naive.ACT[name](z + h, *params) - naive.ACT[name](z - h, *params)) / (2 * h)
    np.testing.assert_allclose(D[away], fd[away], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if not a.trainable])
def test_step_and_sign_have_zero_gradient(name):
    z = np.array([-2.0, -0.1, 0.1, 2.0])
    A, D = act_values(name, z)
    assert np.all(D == 0.0)
    assert A[-1] == 1.0


# ---- losses and backprop -------------------------------------------------------------------------
REF_LOSS = {"bce": "bce", "softmax_ce": "cross_entropy", "mse": "mse", "mae": "mae", "huber": "huber"}


@pytest.mark.parametrize("hidden", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("ref_loss", sorted(REF_LOSS))
def test_loss_and_gradients_match_pytorch(ref_loss, hidden):
    p = f"loss.{ref_loss}.{hidden}."
    Ws = [REF[p + f"W{l}"] for l in range(3)]
    bs = [REF[p + f"b{l}"] for l in range(3)]
    net = make_net(5, [7, 6, Ws[2].shape[1]], [(hidden, 0.0, 0.0)] * 2, Ws, bs)
    value, grad = loss_and_grad(net, REF_LOSS[ref_loss], REF[p + "X"], REF[p + "Y"])
    assert value == pytest.approx(REF[p + "loss"][0], rel=1e-12)
    g = net.params(grad)
    for l in range(3):
        np.testing.assert_allclose(g[f"layers.{l}.W"], REF[p + f"dW{l}"], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(g[f"layers.{l}.b"], REF[p + f"db{l}"], rtol=1e-9, atol=1e-15)


def test_weighted_bce_matches_pytorch():
    p = "loss.bce_weighted.tanh."
    Ws = [REF[p + f"W{l}"] for l in range(3)]
    bs = [REF[p + f"b{l}"] for l in range(3)]
    net = make_net(5, [7, 6, 1], [("tanh", 0.0, 0.0)] * 2, Ws, bs)
    value, grad = loss_and_grad(net, "bce", REF[p + "X"], REF[p + "Y"], REF[p + "sw"])
    assert value == pytest.approx(REF[p + "loss"][0], rel=1e-12)
    np.testing.assert_allclose(net.params(grad)["layers.0.W"], REF[p + "dW0"], rtol=1e-9, atol=1e-15)


def test_bce_from_logits_is_stable_for_huge_logits():
    from nncli.kernels.losses import loss_and_delta

    Z, Y = REF["loss.bce_extreme.Z"], REF["loss.bce_extreme.Y"]
    delta = np.empty_like(Z)
    value = loss_and_delta(LOSSES["bce"].code, np.array([1.0, 0.0]), Z, Y, np.ones(len(Z)), delta, True)
    assert np.isfinite(value) and value == pytest.approx(REF["loss.bce_extreme.loss"][0], rel=1e-12)
    np.testing.assert_allclose(delta, REF["loss.bce_extreme.dZ"], atol=1e-15)


LOSS_SHAPES = {"bce": 1, "cross_entropy": 3, "mse": 2, "mae": 2, "huber": 2}


def _targets(loss, n, K, rng):
    if loss == "bce":
        return (rng.random((n, K)) > 0.5).astype(float)
    if loss == "cross_entropy":
        return np.eye(K)[rng.integers(0, K, n)]
    return rng.normal(0, 1.5, (n, K))


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("name", TRAINABLE)
def test_network_gradient_matches_finite_differences(name, loss):
    rng = np.random.default_rng(7)
    K = LOSS_SHAPES[loss]
    params = default_params(name)
    net = make_net(4, [5, 3, K], [(name, *params)] * 2, seed=3)
    X = rng.normal(0, 1.0, (6, 4))
    Y = _targets(loss, 6, K, rng)
    sw = rng.uniform(0.5, 2.0, 6)
    value, grad = loss_and_grad(net, loss, X, Y, sw)
    Ws = [v for k, v in net.params().items() if k.endswith("W")]
    bs = [v for k, v in net.params().items() if k.endswith("b")]
    acts = [(name, *params)] * 2
    assert value == pytest.approx(naive.loss(loss, naive.forward(Ws, bs, acts, X), Y, sw), rel=1e-12)
    h = 1e-6
    fd = np.empty_like(net.theta)
    theta0 = net.theta.copy()
    for i in range(theta0.size):
        for sign in (1, -1):
            net.theta[:] = theta0
            net.theta[i] += sign * h
            f = naive.loss(loss, naive.forward(Ws, bs, acts, X), Y, sw)
            fd[i] = f / (2 * h) if sign == 1 else fd[i] - f / (2 * h)
    net.theta[:] = theta0
    # a kink crossed by the +-h step spoils finite differences for that parameter only
    np.testing.assert_allclose(grad, fd, rtol=2e-5, atol=2e-7)


# ---- optimizers ------------------------------------------------------------------------------------
OPT_CASES = {  # reference case -> optimizer config
    "sgd": {"name": "sgd", "lr": 0.1},
    "sgd_momentum": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "sgd_nesterov": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    "sgd_wd": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    "adam": {"name": "adam", "lr": 0.01},
    "adam_wd": {"name": "adam", "lr": 0.01, "weight_decay": 0.01},
    "adamw": {"name": "adamw", "lr": 0.01, "weight_decay": 0.05},
    "rmsprop": {"name": "rmsprop", "lr": 0.01},
    "rmsprop_momentum": {"name": "rmsprop", "lr": 0.01, "momentum": 0.9},
    "adagrad": {"name": "adagrad", "lr": 0.1},
    "adam_betas": {"name": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6},
    "clip": {"name": "adam", "lr": 0.01},
}


def _full_config(opt):
    defaults = {k: v[1] for k, v in OPTIMIZERS[opt["name"]].params.items()}
    return {**defaults, **opt}


NO_MIX = np.zeros((1, 2))  # mixup draws: none
NO_RECORDS = (np.zeros((1, 1)), 0, np.zeros(1, np.int64), np.zeros(0), 0, 0, np.zeros(1, np.int64))


def train_hp(clip_norm=0.0):
    hp = np.zeros(TRAIN_HP_COLS)
    hp[CLIP_NORM] = clip_norm
    return hp


def run_steps(net, opt_cfg, X, Y, steps, clip_norm=0.0):
    """`steps` full-batch steps through train_epoch; returns the losses before each step."""
    code, hp = optimizer_hp(_full_config(opt_cfg))
    n = X.shape[0]
    grad, s1, s2 = (np.zeros_like(net.theta) for _ in range(3))
    ws = np.zeros(mlp.workspace_offsets(net.layout, n)[-1])
    stats = np.zeros(mlp.N_STATS)
    losses, t = [], 0
    for _ in range(steps):
        stats[mlp.LOSS_SUM] = 0.0
        t = mlp.train_epoch(net.theta, net.running, grad, net.layout, net.layer_hp, X, Y, np.ones(n), np.arange(n), n,
                            LOSSES["bce"].code, np.zeros(2), code, hp, s1, s2, t, train_hp(clip_norm), 0, NO_MIX, ws, stats,
                            *NO_RECORDS, True)
        assert stats[mlp.STATUS] == mlp.OK
        losses.append(stats[mlp.LOSS_SUM] / n)
    return np.array(losses), stats


@pytest.mark.parametrize("case", sorted(OPT_CASES))
def test_twenty_optimizer_steps_match_pytorch(case):
    Ws = [REF[f"opt.W{l}"] for l in range(3)]
    bs = [REF[f"opt.b{l}"] for l in range(3)]
    net = make_net(5, [7, 6, 1], [("tanh", 0.0, 0.0)] * 2, Ws, bs)
    losses, stats = run_steps(net, OPT_CASES[case], REF["opt.X"], REF["opt.Y"], 20,
                              clip_norm=0.05 if case == "clip" else 0.0)
    np.testing.assert_allclose(losses, REF[f"opt.{case}.losses"], rtol=1e-9)
    for l in range(3):
        np.testing.assert_allclose(net.params()[f"layers.{l}.W"], REF[f"opt.{case}.W{l}"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(net.params()[f"layers.{l}.b"], REF[f"opt.{case}.b{l}"], rtol=1e-9, atol=1e-12)
    if case == "clip":
        assert stats[mlp.LAST_GRAD_NORM] == pytest.approx(REF["opt.clip.norms"][-1], rel=1e-9)


def test_every_optimizer_is_checked_against_pytorch():
    assert {c["name"] for c in OPT_CASES.values()} == set(OPTIMIZERS)


# ---- kernels agree with themselves and the reference on real sizes --------------------------------
@pytest.mark.parametrize("n,width", [(7, 5), (300, 64)])  # the second takes the BLAS path
def test_predict_logits_match_numpy_forward(n, width):
    rng = np.random.default_rng(0)
    net = make_net(9, [width, width, 3], [("tanh", 0.0, 0.0), ("relu", 0.0, 0.0)], seed=1)
    X = rng.normal(size=(n, 9))
    out = np.empty((n, 3))
    chunk = 64
    ws = np.empty(mlp.workspace_offsets(net.layout, chunk)[-1])
    mlp.predict_logits(net.theta, net.running, net.layout, net.layer_hp, X, out, ws, chunk, True)
    Ws = [v for k, v in net.params().items() if k.endswith("W")]
    bs = [v for k, v in net.params().items() if k.endswith("b")]
    np.testing.assert_allclose(out, naive.forward(Ws, bs, [("tanh", 0, 0), ("relu", 0, 0)], X), rtol=1e-10, atol=1e-12)


def test_blas_and_loop_paths_give_the_same_gradient():
    rng = np.random.default_rng(2)
    net = make_net(40, [48, 2], [("silu", 0.0, 0.0)], seed=4)  # 600*40*48 MACs: BLAS
    X = rng.normal(size=(600, 40))
    Y = rng.normal(size=(600, 2))
    _, g_big = loss_and_grad(net, "mse", X, Y)
    g_small = sum(loss_and_grad(net, "mse", X[i:i + 6], Y[i:i + 6])[1] * 6 for i in range(0, 600, 6)) / 600
    np.testing.assert_allclose(g_big, g_small, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k,m", [(3, 4, 5), (10, 8, 1), (7, 5, 3), (300, 40, 7), (257, 9, 130)])  # loops (narrow: m < 4); BLAS
def test_dense_layer_kernels_match_numpy(dtype, n, k, m):
    rng = np.random.default_rng(n)
    A, W, b, delta = (rng.normal(size=s).astype(dtype) for s in [(n, k), (k, m), (m,), (n, m)])
    Z, dW, db, dA = np.empty((n, m), dtype), np.empty((k, m), dtype), np.empty(m, dtype), np.empty((n, k), dtype)
    from_python(mlp.dense_forward)(A, W, b, Z)
    from_python(mlp.dense_backward)(A, delta, W, dW, db, dA, True, True)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    a, w, d = (x.astype(np.float64) for x in (A, W, delta))
    np.testing.assert_allclose(Z, a @ w + b, **tol)
    np.testing.assert_allclose(dW, a.T @ d, **tol)
    np.testing.assert_allclose(db, d.sum(axis=0), **tol)
    np.testing.assert_allclose(dA, d @ w.T, **tol)
    dW[:] = np.nan  # without want_dW (a split step's deferred weight gradient), the rest alone
    from_python(mlp.dense_backward)(A, delta, W, dW, db, dA, True, False)
    assert np.isnan(dW).all()
    np.testing.assert_allclose(db, d.sum(axis=0), **tol)
    np.testing.assert_allclose(dA, d @ w.T, **tol)


_BLAS_PROBE = """
import sys
import numpy as np
{first}
from nncli.kernels import mlp
import numba
rng = np.random.default_rng(0)
A, W, b = rng.normal(size=(300, 40)), rng.normal(size=(40, 7)), rng.normal(size=7)
Z = np.empty((300, 7))
numba.njit(lambda A, W, b, Z: mlp.dense_forward(A, W, b, Z))(A, W, b, Z)  # no entry point for Python
linalg_imported = "scipy.linalg" in sys.modules
import scipy.linalg
import scipy.linalg.cython_blas as blas
assert blas is sys.modules["scipy.linalg.cython_blas"] is scipy.linalg.cython_blas
assert np.allclose(scipy.linalg.solve(2 * np.eye(3), np.ones(3)), 0.5)
np.save(sys.argv[1], Z)
print(linalg_imported)
"""


def test_blas_without_the_scipy_linalg_package_gives_the_same_numbers(tmp_path):
    """nncli.kernels loads scipy's cython_blas module straight from its file (start-up time). The
    GEMM results must equal, bit for bit, those of a process where scipy.linalg was imported
    first (numba's usual path), and scipy.linalg must still import and work afterwards."""
    out = {}
    for name, first in [("direct", ""), ("usual", "import scipy.linalg")]:
        path = tmp_path / f"{name}.npy"
        proc = subprocess.run([sys.executable, "-c", _BLAS_PROBE.format(first=first), str(path)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        out[name] = (proc.stdout.strip(), np.load(path))
    assert out["direct"][0] == "False" and out["usual"][0] == "True"
    np.testing.assert_array_equal(out["direct"][1], out["usual"][1])
    rng = np.random.default_rng(0)
    A, W, b = rng.normal(size=(300, 40)), rng.normal(size=(40, 7)), rng.normal(size=7)
    np.testing.assert_allclose(out["direct"][1], A @ W + b, rtol=1e-12, atol=1e-12)


_CACHED = """
import json, sys
import numba
import numpy as np
from numba.core import entrypoints
from numba.core.registry import cpu_target
from nncli import config
from nncli.kernels import mlp
from nncli.train import Arrays, build_network, fit, logits

context, refreshes = cpu_target.target_context, []
refresh = context.refresh
context.refresh = lambda: refreshes.append(1) or refresh()
cfg = config.load(None, ["train.epochs=2", "train.batch_size=16", "train.dtype=float32",
                         "model.hidden=[{units: 5, activation: relu}]"])
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 3))
net = build_network(3, 1, cfg["model"], np.dtype("float32"))
net.initialize(rng)
fit(net, Arrays(X, (X[:, :1] > 0).astype(float), np.ones(64)), None, cfg["train"], "binary")
out = logits(net, X)
before, extensions = len(refreshes), [entrypoints._already_initialized]
total = numba.njit(lambda a: np.sum(a * 2.0))(np.arange(4.0))  # a compile after the loads
extensions.append(entrypoints._already_initialized)
hits = sum(sum(k.stats.cache_hits.values()) for k in (mlp.train_epoch, mlp.predict_logits))
print(json.dumps({"theta": net.theta.astype(float).tolist(), "out": out.astype(float).tolist(),
                  "refreshes": [before, len(refreshes)], "extensions": extensions, "total": float(total), "hits": hits}))
"""


def test_kernels_load_from_the_cache_without_numba_compiler_registries(tmp_path):
    """Kernels read from the cache load through _CacheLoad, which sets up numba's runtime but does
    not refresh (load) numba's compiler registries, and they skip numba's extension hook (start-up
    time). A process that loads them must train and predict as the process that compiled them,
    and another function compiled afterwards must still refresh, run the hook and work."""
    env = dict(os.environ, NNCLI_CACHE_DIR=str(tmp_path / "cache"))
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _CACHED], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout))
    compiled, loaded = runs
    assert compiled["hits"] == 0 and compiled["refreshes"][0] > 0
    assert loaded["hits"] == 2 and loaded["refreshes"][0] == 0 < loaded["refreshes"][1]
    assert loaded["total"] == compiled["total"] == 12.0
    assert loaded["extensions"] == [False, True]  # the hook still runs for other functions
    np.testing.assert_allclose(loaded["theta"], compiled["theta"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(loaded["out"], compiled["out"], rtol=1e-6, atol=1e-6)


def test_the_kernel_modules_leave_numba_array_code_generation_unimported():
    """numba.np.arrayobj (0.04 s to import) is for compiling nncli's intrinsics only."""
    script = ("import pkgutil, sys, importlib\nimport nncli.kernels as k\n"
              "for m in pkgutil.iter_modules(k.__path__): importlib.import_module('nncli.kernels.' + m.name)\n"
              "print('numba.np.arrayobj' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]


def test_every_kernel_loads_through_the_light_cache():
    """Each compiled function in nncli.kernels reads its cache through _CacheLoad."""
    import importlib
    import pkgutil

    import numba

    import nncli.kernels as package

    if not package.CACHE:
        pytest.skip("no writable cache folder: kernels are compiled in memory")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"nncli.kernels.{info.name}")
        found += [(info.name, name, type(value._cache).__name__) for name, value in vars(module).items()
                  if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__ == module.__name__]
    assert len(found) > 40
    assert [f for f in found if f[2] != "_CacheLoad"] == []


_LINKED = """
import json
import numpy as np
import nncli.kernels as k
from nncli.kernels import jit

final = []
optimize_final = k._numba_optimize_final_module
k._numba_optimize_final_module = lambda library: final.append(library.name) or optimize_final(library)


@jit()
def callee(a):
    total = 0.0
    for i in range(a.shape[0]):  # a strict sum: no vector code of its own
        total += a[i] * a[i]
    return total


@jit(reoptimize_callees=False)
def marked(a, out):
    for i in range(out.shape[0]):
        out[i] = a[i] * 3.0 + 1.0
    return callee(a)


@jit()
def unmarked(a, out):
    for i in range(out.shape[0]):
        out[i] = a[i] * 3.0 + 1.0
    return callee(a)


a = np.arange(1000.0)
results = {}
for name, kernel in (("marked", marked), ("unmarked", unmarked)):
    out = np.empty_like(a)
    total = kernel(a, out)
    llvm = kernel.inspect_llvm(kernel.signatures[0])
    results[name] = {"total": total, "out_ok": bool(np.array_equal(out, a * 3.0 + 1.0)),
                     "flagged": getattr(kernel.overloads[kernel.signatures[0]].library, "_nncli_link_as_is", False),
                     "vector": " x double>" in llvm, "callee_defined": "callee" in llvm}
print(json.dumps({"final": final, "results": results}))
"""


def test_a_marked_kernel_links_its_callees_as_they_are_and_optimizes_its_own_code(tmp_path):
    """reoptimize_callees=False (train_epoch, train_epoch_split, predict_logits): the kernel's
    library skips numba's optimization of the linked module (the callee's code is optimized
    already), its own loop is still optimized (vectorized) before linking, and it computes what
    an unmarked kernel computes."""
    script = tmp_path / "linked.py"  # a file: numba caches only functions that have one
    script.write_text(_LINKED, encoding="utf-8")
    env = dict(os.environ, NNCLI_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert {"callee", "unmarked"} <= set(out["final"]) and "marked" not in out["final"]
    marked, unmarked = out["results"]["marked"], out["results"]["unmarked"]
    assert marked["flagged"] and not unmarked["flagged"]
    assert marked["vector"] and unmarked["vector"] and marked["callee_defined"]
    assert marked["out_ok"] and unmarked["out_ok"]
    assert marked["total"] == unmarked["total"] == float(np.sum(np.arange(1000.0) ** 2))
    from nncli.kernels import _LINK_AS_IS
    assert {p.rsplit("3mlp", 1)[-1] for p in _LINK_AS_IS if "3mlp" in p} == {
        "11train_epoch", "17train_epoch_split", "14predict_logits"}


_REFUSED = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from kernel_call import from_python
from nncli.kernels import mlp

def python_call():
    try:
        mlp.clip_gradient(np.ones(3), 0.0, 0.0)
    except TypeError as exc:
        return str(exc)

before = python_call()
norm = from_python(mlp.clip_gradient)(np.ones(3), 0.0, 0.0)  # compiles it, as a callee
print(json.dumps({"before": before, "norm": norm, "after": python_call(), "compiled": len(mlp.clip_gradient.overloads)}))
"""


def test_a_kernel_only_kernels_call_refuses_a_python_call(tmp_path):
    """A kernel without an entry point for Python (from_python=False) raises a TypeError when
    Python calls it, before and after it is compiled, instead of jumping to the entry point it
    lacks; called from compiled code it works. In a subprocess: a failure could be a crash."""
    env = dict(os.environ, NNCLI_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", _REFUSED, str(Path(__file__).parent)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    refused = "clip_gradient is a kernel only other kernels call: it has no entry point for Python"
    assert out["before"] == out["after"] == refused
    assert out["norm"] == np.sqrt(3.0) and out["compiled"] == 1


def test_dense_kernels_refuse_arrays_blas_would_misread():
    """The gemm helper reads operands as C-contiguous: other layouts are a compile error, never
    silently wrong numbers."""
    rng = np.random.default_rng(0)
    A = np.asfortranarray(rng.normal(size=(300, 40)))
    with pytest.raises(Exception, match="(?i)typ"):
        from_python(mlp.dense_forward)(A, rng.normal(size=(40, 7)), np.zeros(7), np.empty((300, 7)))


def test_nonfinite_loss_stops_the_epoch_before_touching_weights():
    net = make_net(2, [3, 1], [("relu", 0.0, 0.0)])
    X = np.array([[1.0, 2.0], [np.inf, 0.0], [1.0, 1.0]])
    Y = np.array([[1.0], [0.0], [1.0]])
    before = net.theta.copy()
    code, hp = optimizer_hp(_full_config({"name": "sgd", "lr": 0.1}))
    stats = np.zeros(mlp.N_STATS)
    z = np.zeros_like(net.theta)
    ws = np.zeros(mlp.workspace_offsets(net.layout, 1)[-1])
    t = mlp.train_epoch(net.theta, net.running, z.copy(), net.layout, net.layer_hp, X, Y, np.ones(3), np.arange(3),
                        1, LOSSES["bce"].code, np.zeros(2), code, hp, z.copy(), z.copy(), 0, train_hp(), 0, NO_MIX, ws, stats,
                        *NO_RECORDS, True)
    assert stats[mlp.STATUS] != mlp.OK and stats[mlp.STEP] == 1 and t == 1
    assert not np.array_equal(net.theta, before)  # the first, finite step was applied
    assert np.all(np.isfinite(net.theta))


# ---- the plain kernels (extras=None) against the full ones ----------------------------------------
PLAIN_RUNS = [("[{units: 6, activation: relu}, {units: 4, activation: leaky_relu, dropout: 0.2}]", "bce", "adam", 0.0),
              ("[{units: 5, activation: tanh}, {units: 3, activation: sigmoid}]", "mse", "sgd", 1.0),
              ("[{units: 4, activation: linear}]", "mse", "adam", 0.5),
              # relu right below the one output: the plain backward pass's one-pass delta
              # (mlp._output_delta_relu)
              ("[{units: 6, activation: tanh}, {units: 5, activation: relu}]", "bce", "adam", 0.0),
              # 16 x 64 x 48 multiply-adds: the plain backward pass leaves this weight gradient to
              # train_epoch (mlp._defers); the last batch's 10 rows stay under it
              ("[{units: 64, activation: relu}, {units: 48, activation: tanh, dropout: 0.1}]", "mse", "adam", 0.0)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,loss,opt,clip", PLAIN_RUNS)
def test_plain_kernels_train_and_predict_as_the_full_ones(monkeypatch, dtype, hidden, loss, opt, clip):
    """A run that needs no extras goes to the plain kernels; with the full ones forced instead, the
    weights, the loss history and the predictions must agree to rounding. Not bit for bit: with
    reassociation allowed, LLVM may order a sum differently in each compiled variant (and even
    within one, depending on what the process compiled before it: see the README)."""
    from nncli import config
    from nncli import train as train_mod

    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 4))
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(float) if loss == "bce" else np.tanh(X[:, :1] - X[:, 2:3])
    cfg = config.load(None, [f"model.hidden={hidden}", f"train.loss={loss}", f"train.optimizer={{name: {opt}}}",
                             f"train.clip_norm={clip}", "train.epochs=3", "train.batch_size=16",
                             f"train.dtype={dtype}", "train.seed=5"])
    task = "binary" if loss == "bce" else "regression"
    chosen, picked = train_mod.kernel_extras, []

    def recorded(pick):
        def wrapper(*args, **kwargs):
            picked.append(pick(*args, **kwargs))
            return picked[-1]
        return wrapper

    runs = {}
    for variant, pick in (("plain", chosen), ("full", lambda *args, **kwargs: True)):
        monkeypatch.setattr(train_mod, "kernel_extras", recorded(pick))
        net = train_mod.build_network(4, 1, cfg["model"], np.dtype(dtype))
        net.initialize(np.random.default_rng(0))
        data = train_mod.Arrays(X.astype(dtype), Y.astype(dtype), np.ones(len(X), dtype=dtype))
        result = train_mod.fit(net, data, data, cfg["train"], task, rng=np.random.default_rng(1))
        runs[variant] = (net.theta.copy(), result.history["train_loss"], train_mod.logits(net, X))
        assert set(picked) == ({None} if variant == "plain" else {True}), picked  # training and prediction
        picked.clear()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for plain, full in zip(runs["plain"], runs["full"]):
        np.testing.assert_allclose(plain, full, **tol)


def test_only_runs_that_need_no_extras_get_the_plain_kernels():
    from nncli.kernels.activations import LOOPED
    from nncli.kernels.layout import INPUT_DROPOUT, MIXUP, NOISE
    from nncli.train import kernel_extras

    looped = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
    for name in (*looped, "elu", "gelu", "softplus", "prelu", "rrelu"):
        net = make_net(3, [4, 1], [(name, 0.1, 0.3)])
        assert (kernel_extras(net) is None) == (ACTIVATIONS[name].code in LOOPED) == (name in looped), name
    plain = make_net(3, [4, 1], [("relu", 0.0, 0.0)])
    assert kernel_extras(plain, train_hp()) is None
    assert kernel_extras(plain, train_hp(), every=1) is True  # gradient records
    for col in (NOISE, INPUT_DROPOUT, MIXUP):
        hp = train_hp()
        hp[col] = 0.1
        assert kernel_extras(plain, hp) is True
    normed = Network(3, [LayerSpec(4, "relu", (0.0, 0.0), "he_uniform", batch_norm="before"),
                         LayerSpec(1, "linear", (0.0, 0.0), "glorot_normal")], dtype=np.float64)
    assert kernel_extras(normed) is True and kernel_extras(normed.folded()) is None
    for loss in LOSSES.values():
        for opt in OPTIMIZERS.values():
            common = loss.name in ("bce", "cross_entropy", "mse") and opt.name in ("sgd", "adam")
            assert (kernel_extras(plain, train_hp(), 0, loss.code, opt.code) is None) == common, (loss, opt)


@pytest.mark.parametrize("loss,opt", [("mae", "adam"), ("huber", "sgd"), ("mse", "adagrad"), ("mse", "rmsprop"),
                                      ("mse", "adamw")])
def test_a_run_with_a_loss_or_optimizer_the_plain_kernels_leave_out_trains_on_the_full_ones(monkeypatch, loss, opt):
    from nncli import config
    from nncli import train as train_mod

    chosen, picked = train_mod.kernel_extras, []

    def recorded(*args, **kwargs):
        picked.append(chosen(*args, **kwargs))
        return picked[-1]

    monkeypatch.setattr(train_mod, "kernel_extras", recorded)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    cfg = config.load(None, ["model.hidden=[{units: 4, activation: relu}]", f"train.loss={loss}",
                             f"train.optimizer={{name: {opt}}}", "train.epochs=2", "train.batch_size=16"])
    net = train_mod.build_network(3, 1, cfg["model"], np.dtype("float32"))
    net.initialize(np.random.default_rng(0))
    data = train_mod.Arrays(X.astype(np.float32), np.tanh(X[:, :1]).astype(np.float32), np.ones(60, np.float32))
    result = train_mod.fit(net, data, data, cfg["train"], "regression", rng=np.random.default_rng(1))
    assert picked[0] is True  # the training kernels; predictions (validation) may take the plain ones
    assert np.isfinite(result.history["train_loss"]).all() and np.isfinite(result.history["val_loss"]).all()
    assert np.isfinite(net.theta).all()


def test_the_plain_kernels_give_nan_for_an_activation_they_leave_out():
    """Should a run with another activation ever reach the plain kernels, training stops on a
    non-finite loss instead of going on with wrong numbers."""
    Z = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    A, D = np.zeros_like(Z), np.zeros_like(Z)
    from_python(mlp.activation_forward)(ACTIVATIONS["elu"].code, Z, A, D, 1.0, 0.0, np.zeros(1), 1, False, None,
                                        np.uint64(0))
    assert np.isnan(A).all() and np.isnan(D).all()
    from_python(mlp.activation_forward)(ACTIVATIONS["elu"].code, Z, A, D, 1.0, 0.0, np.zeros(1), 1, False, True,
                                        np.uint64(0))
    np.testing.assert_allclose(A, np.where(Z > 0, Z, np.expm1(Z)))


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_the_plain_kernels_give_nan_for_a_loss_they_leave_out(loss):
    from nncli.kernels.losses import loss_and_delta

    rng = np.random.default_rng(0)
    Z, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    hp, sw, delta = np.array([1.0, 0.0]), np.ones(5), np.zeros((5, 2))
    assert np.isnan(loss_and_delta(LOSSES[loss].code, hp, Z, Y, sw, delta, None)) and np.isnan(delta).all()
    assert np.isfinite(loss_and_delta(LOSSES[loss].code, hp, Z, Y, sw, delta, True)) and np.isfinite(delta).all()


@pytest.mark.parametrize("opt", ["adagrad", "rmsprop", "adamw"])
def test_the_plain_kernels_give_nan_for_an_optimizer_they_leave_out(opt):
    from nncli.kernels.optim import apply_updates

    code, hp = optimizer_hp({"name": opt, **{k: default for k, (_, default) in OPTIMIZERS[opt].params.items()}})
    for extras, finite in ((None, False), (True, True)):
        theta, grad = np.ones(6), np.full(6, 0.5)
        from_python(apply_updates)(code, hp, theta, grad, np.zeros(6), np.zeros(6), 1, extras)
        assert np.isfinite(theta).all() == finite and (theta != 1.0).all()
