"""Large steps trained in two halves at once (nncli.kernels.mlp.train_epoch_split) against the
one-thread epoch (mlp.train_epoch): the same model to rounding, the same bits on one thread or two,
the same stops."""

import threading
from types import SimpleNamespace

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from nncli import config
from nncli import train as train_mod
from nncli.errors import ConfigError
from nncli.kernels import mlp, sync, threads


RUN_SPLIT = threads.train_epoch_split


def _blas_threads():
    return sorted(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def _fit(monkeypatch, split, overrides, task="regression", n=67, sw=None, workers=None, **kwargs):
    """fit on n rows of 3 features with the split forced on or off; returns (theta, result, calls),
    calls: (workers, BLAS thread counts) of each split epoch."""
    monkeypatch.setattr(train_mod, "SPLIT_MIN_MACS", 0 if split else 1 << 62)
    monkeypatch.setattr(train_mod, "SPLIT_MIN_BATCH", 1)
    if workers is not None:
        monkeypatch.setenv("NNCLI_THREADS", str(workers))
    calls = []

    def spy(args, n_workers):
        if args[8].size:  # not the empty call that loads the kernel
            calls.append((n_workers, _blas_threads()))
        return RUN_SPLIT(args, n_workers)

    monkeypatch.setattr(threads, "train_epoch_split", spy)
    cfg = config.load(None, ["train.epochs=3", "train.batch_size=16", "train.seed=5", *overrides])
    dtype = np.dtype(cfg["train"]["dtype"])
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, 3))
    K = 3 if task == "multiclass" else 1
    if task == "regression":
        Y = np.tanh(X[:, :1] - X[:, 2:3])
    elif task == "binary":
        Y = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    else:
        Y = np.eye(K)[np.argmax(X, axis=1)]
    sw = np.ones(n) if sw is None else sw
    net = train_mod.build_network(3, K, cfg["model"], dtype)
    net.initialize(np.random.default_rng(0))
    data = train_mod.Arrays(X.astype(dtype), Y.astype(dtype), sw.astype(dtype))
    result = train_mod.fit(net, data, None, cfg["train"], task, rng=np.random.default_rng(1), **kwargs)
    return net.theta.copy(), result, calls


RUNS = [  # hidden layers, task, other settings
    ("[{units: 8, activation: relu}, {units: 5, activation: tanh}]", "regression", ["train.optimizer={name: adam}"]),
    ("[{units: 6, activation: leaky_relu}]", "binary", ["train.optimizer={name: sgd, lr: 0.1}", "train.clip_norm=0.05"]),
    ("[{units: 7, activation: sigmoid}]", "multiclass", ["train.optimizer={name: sgd, lr: 0.2, momentum: 0.9}",
                                                          "train.regularization={l2: 0.01, l1: 0.001}", "train.clip_value=0.3"]),
]


@pytest.mark.parametrize("rows", [67, 65, 80])  # last batch of 3 rows, of 1 (an empty first half), none
@pytest.mark.parametrize("hidden,task,settings", RUNS)
def test_split_steps_train_the_model_of_whole_steps(monkeypatch, hidden, task, settings, rows):
    """Weights, loss history and clipping counts of a split run against the one-thread epoch, in
    float64 to 1e-10: the halves' mean-loss gradients, weighted by their rows, are the batch's.
    Uneven row weights make a wrong weighting of the halves show."""
    sw = np.random.default_rng(9).uniform(0.2, 3.0, rows)
    overrides = [f"model.hidden={hidden}", "train.dtype=float64", *settings]
    whole, whole_result, none = _fit(monkeypatch, False, overrides, task, rows, sw)
    split, split_result, calls = _fit(monkeypatch, True, overrides, task, rows, sw)
    assert not none and len(calls) == 3  # one split kernel call per epoch
    np.testing.assert_allclose(split, whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(split_result.history["train_loss"], whole_result.history["train_loss"], rtol=1e-10)
    assert split_result.state.clipped == whole_result.state.clipped  # the last epoch's clipped steps
    assert split_result.steps == whole_result.steps == 3 * -(-rows // 16)
    if "clip_norm" in str(settings):
        assert whole_result.state.clipped > 0


DEFERRED = ["model.hidden=[{units: 64, activation: relu, dropout: 0.2}, {units: 48, activation: tanh}]",
            "train.batch_size=128", "train.optimizer={name: adam}"]  # halves of 64 rows: 64*64*48 MACs defer


@pytest.mark.parametrize("rows", [195, 129, 256])  # last batch of 67 rows, of 1 (an empty first half), none
def test_weight_gradients_either_thread_computes_give_the_model_of_whole_steps(monkeypatch, rows):
    """The BLAS weight gradients of a split step are blocks that whichever thread is free computes
    (mlp._weight_gradients): on two threads or one, the model of whole steps (without dropout), and
    with dropout the same bits on two threads or one."""
    plain = [DEFERRED[0].replace(", dropout: 0.2", ""), *DEFERRED[1:], "train.dtype=float64"]
    whole = _fit(monkeypatch, False, plain, n=rows)[0]
    for workers in (1, 2):
        split = _fit(monkeypatch, True, plain, n=rows, workers=workers)[0]
        np.testing.assert_allclose(split, whole, rtol=1e-10, atol=1e-12)
    one = _fit(monkeypatch, True, DEFERRED, n=rows, workers=1)[0]
    two = _fit(monkeypatch, True, DEFERRED, n=rows, workers=2)[0]
    assert one.tobytes() == two.tobytes()


@numba.njit(nogil=True)
def _claim_all(tid, sync_flags, layout, ws2, grads2, offs, nb, k):
    return mlp._weight_gradients(tid, sync_flags, layout, ws2, grads2, offs, nb, k)


def _deferred_setup(nb=81):
    """A 40-64-48-32 net whose three weight gradients all defer on halves of 40 and 41 rows; work
    buffers of random numbers, gradients of NaN, no block ready."""
    net = train_mod.build_network(40, 32, config.load(None, ["model.hidden=[{units: 64}, {units: 48}]"])["model"],
                                  np.float64)
    layout = net.layout
    offs = mlp.workspace_offsets(layout, nb - nb // 2)
    ws2 = np.random.default_rng(4).normal(size=(2, offs[-1]))
    grads2 = np.full((2, net.theta.size), np.nan)
    return layout, offs, ws2, grads2, np.zeros(mlp.sync_size(len(layout)), dtype=np.int64)


def _expected_dW(layout, offs, ws, l, rows):
    """dW = A_in.T @ dZ from the workspace regions the plain backward pass leaves them in (mlp._layer_views)."""
    L, bs = len(layout), offs[5 + len(layout)]
    n_in, width = layout[l, mlp.N_IN], layout[l, mlp.N_OUT] * layout[l, mlp.PIECES]
    dZ = ws[offs[3 + L] if l == L - 1 else offs[3 + l]:][:rows * width].reshape(rows, width)
    if l == 0:
        A_in = ws[offs[0]:][:rows * n_in].reshape(rows, n_in)
    else:
        start = offs[2 + l] + bs * n_in  # layer l - 1's A follows its Z (width n_in: no maxout here)
        A_in = ws[start:][:rows * n_in].reshape(rows, n_in)
    return A_in.T @ dZ


def _dW(layout, grads, l):
    n_in, width = layout[l, mlp.N_IN], layout[l, mlp.N_OUT] * layout[l, mlp.PIECES]
    return grads[layout[l, mlp.W_OFF]:][:n_in * width].reshape(n_in, width)


def _mark(flags, layout, halves, slot, step):
    for h in halves:
        for l in range(len(layout)):
            for blk in range(mlp.BLOCKS):
                flags[mlp._task(h, l, blk, len(layout)) + slot] = step


def test_a_free_thread_computes_every_ready_block_of_both_halves_once():
    layout, offs, ws2, grads2, flags = _deferred_setup()
    _mark(flags, layout, (0, 1), 0, 3)  # both halves' blocks ready for step 2 (stamps count from 1)
    assert _claim_all(1, flags, layout, ws2, grads2, offs, 81, 2) is False
    for h, rows in ((0, 40), (1, 41)):
        for l in range(len(layout)):
            np.testing.assert_allclose(_dW(layout, grads2[h], l), _expected_dW(layout, offs, ws2[h], l, rows),
                                       rtol=1e-12)
    claims = flags[mlp.sync_size(0):][1::2]
    assert (claims == 3).all()  # every block claimed for step 2, once
    grads2[:] = np.nan
    assert _claim_all(0, flags, layout, ws2, grads2, offs, 81, 2) is False
    assert np.isnan(grads2).all()  # claimed already: computed by nobody a second time


def test_blocks_another_thread_claimed_are_left_to_it():
    layout, offs, ws2, grads2, flags = _deferred_setup()
    _mark(flags, layout, (0, 1), 0, 1)
    _mark(flags, layout, (1,), 1, 1)  # half 1's blocks: claimed by the other thread for step 0
    assert _claim_all(0, flags, layout, ws2, grads2, offs, 81, 0) is False
    assert not np.isnan(_dW(layout, grads2[0], 1)).any()
    assert np.isnan(grads2[1]).all()


def test_a_thread_waits_for_the_other_half_to_be_ready_and_leaves_if_it_gives_up():
    layout, offs, ws2, grads2, flags = _deferred_setup()
    _mark(flags, layout, (0,), 0, 1)
    threading.Timer(0.2, _mark, (flags, layout, (1,), 0, 1)).start()
    assert _in_thread(_claim_all, 0, flags, layout, ws2, grads2, offs, 81, 0) is False
    for h, rows in ((0, 40), (1, 41)):  # half 1's blocks, once ready, computed here too
        np.testing.assert_allclose(_dW(layout, grads2[h], 1), _expected_dW(layout, offs, ws2[h], 1, rows), rtol=1e-12)
    layout, offs, ws2, grads2, flags = _deferred_setup()
    _mark(flags, layout, (0,), 0, 1)
    threading.Timer(0.2, flags.__setitem__, (sync.ABORT, 1)).start()
    assert _in_thread(_claim_all, 0, flags, layout, ws2, grads2, offs, 81, 0) is True
    assert np.isnan(grads2[1]).all()


def test_float32_split_steps_stay_within_float32_rounding(monkeypatch):
    overrides = ["model.hidden=[{units: 16, activation: relu}, {units: 16, activation: relu}]", "train.dtype=float32"]
    whole = _fit(monkeypatch, False, overrides)[0]
    split = _fit(monkeypatch, True, overrides)[0]
    assert split.dtype == np.float32
    np.testing.assert_allclose(split, whole, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_model_does_not_depend_on_the_number_of_threads(monkeypatch, dtype):
    """Dropout draws too: each half reseeds its own thread's generator, so one thread running both
    halves in turn gives the same bits as two threads at once."""
    overrides = ["model.hidden=[{units: 12, activation: relu, dropout: 0.3}, {units: 6, activation: tanh}]",
                 f"train.dtype={dtype}", "train.optimizer={name: adam}"]
    one, result_one, calls_one = _fit(monkeypatch, True, overrides, workers=1)
    two, result_two, calls_two = _fit(monkeypatch, True, overrides, workers=2)
    assert {c[0] for c in calls_one} == {1} and {c[0] for c in calls_two} == {min(2, threads.workers())}
    assert one.tobytes() == two.tobytes()
    assert result_one.history["train_loss"] == result_two.history["train_loss"]
    whole = _fit(monkeypatch, False, overrides)[0]
    assert not np.allclose(one, whole)  # dropout masks are drawn per half, so they differ from one whole batch's


def test_blas_runs_on_one_thread_only_while_two_threads_train(monkeypatch):
    before = _blas_threads()
    overrides = ["model.hidden=[{units: 8, activation: relu}]"]
    _, _, calls = _fit(monkeypatch, True, overrides, workers=2)
    if threads.workers() > 1:
        assert all(set(c[1]) == {1} for c in calls)
    _, _, calls = _fit(monkeypatch, True, overrides, workers=1)
    assert all(c[1] == before for c in calls)
    assert _blas_threads() == before


def test_a_split_run_stops_where_the_loss_turns_non_finite(monkeypatch):
    """Row 40 weighs inf: the third step (rows 32-47) stops the run before its update, as in the
    one-thread epoch, with the weights of two steps."""
    sw = np.ones(67)
    sw[40] = np.inf
    overrides = ["model.hidden=[{units: 8, activation: relu}]", "train.dtype=float64"]
    whole, whole_result, _ = _fit(monkeypatch, False, overrides, sw=sw, stop_on_divergence=True)
    split, split_result, _ = _fit(monkeypatch, True, overrides, sw=sw, stop_on_divergence=True)
    assert split_result.diverged == whole_result.diverged == {"epoch": 1, "step": 3, "global_step": 3, "what": "loss"}
    np.testing.assert_allclose(split, whole, rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(split))


def test_a_split_run_stops_when_asked(monkeypatch):
    """control is read after a step's halves: the step is left undone, the weights as they were."""
    control = np.ones(1, dtype=np.int64)
    overrides = ["model.hidden=[{units: 8, activation: relu}]"]
    theta, result, calls = _fit(monkeypatch, True, overrides, control=control, workers=2)
    assert calls and result.interrupted == {"epoch": 1, "step": 0, "global_step": 0}
    assert result.steps == 0
    net = train_mod.build_network(3, 1, config.load(None, overrides)["model"], np.float32)
    net.initialize(np.random.default_rng(0))  # as _fit does
    np.testing.assert_array_equal(theta, net.theta)


@numba.njit(nogil=True)
def _meet(tid, n, flags, counts, seen):
    """Each round: write this thread's count, meet, read the other's, meet again."""
    for r in range(seen.shape[1]):
        counts[tid] = r + 1
        if sync.barrier(flags, n):
            return False
        seen[tid, r] = counts[1 - tid]
        if sync.barrier(flags, n):
            return False
    return True


def _in_thread(fn, *args):
    """fn(*args) in a thread of its own; its result, or None if it is still running after 60 s."""
    out = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(60)
    return out[0] if out else None


def test_the_barrier_lets_no_thread_past_before_the_other_arrives():
    """Two threads through 20,000 rounds: after each barrier a thread sees the other's write from
    before it, never an older or a newer one."""
    flags = np.zeros(sync.SIZE, dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    seen = np.zeros((2, 20_000), dtype=np.int64)
    _meet(0, 1, np.zeros(sync.SIZE, dtype=np.int64), np.zeros(2, dtype=np.int64), seen[:, :0])  # compile
    other = threading.Thread(target=_meet, args=(1, 2, flags, counts, seen), daemon=True)
    other.start()
    assert _in_thread(_meet, 0, 2, flags, counts, seen)
    other.join(60)
    rounds = np.arange(1, seen.shape[1] + 1)
    np.testing.assert_array_equal(seen, [rounds, rounds])
    assert flags[sync.COUNT] == 0 and flags[sync.GEN] == 2 * seen.shape[1]


def test_a_thread_at_the_barrier_leaves_when_the_other_gives_up():
    flags = np.zeros(sync.SIZE, dtype=np.int64)
    seen = np.zeros((2, 3), dtype=np.int64)
    _meet(0, 1, np.zeros(sync.SIZE, dtype=np.int64), np.zeros(2, dtype=np.int64), seen[:, :0])
    threading.Timer(0.2, flags.__setitem__, (sync.ABORT, 1)).start()
    assert _in_thread(_meet, 0, 2, flags, np.zeros(2, dtype=np.int64), seen) is False


def test_an_error_in_the_second_thread_is_raised_and_nothing_waits_for_ever(monkeypatch):
    """The second thread fails before its kernel starts: the first leaves its first barrier, and
    fit raises the second thread's error."""
    real = mlp.train_epoch_split

    def failing(tid, *args):
        if tid == 1:
            raise RuntimeError("no second thread")
        return real(tid, *args)

    monkeypatch.setattr(threads, "mlp", SimpleNamespace(SPLIT=mlp.SPLIT, SHARES=mlp.SHARES, sync_size=mlp.sync_size,
                                                         train_epoch_split=failing))
    overrides = ["model.hidden=[{units: 8, activation: relu}]"]

    def attempt():
        try:
            _fit(monkeypatch, True, overrides, workers=2)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert _in_thread(attempt) == "no second thread"  # None: still waiting after 60 s


def test_only_large_steps_of_the_plain_kernels_split():
    def net(hidden, n_in=32):
        return train_mod.build_network(n_in, 1, config.load(None, [f"model.hidden={hidden}"])["model"], np.float32)

    large = net("[{units: 256}, {units: 256}]")
    assert train_mod.splits(large, None, 256)
    assert not train_mod.splits(large, True, 256)  # batch norm, records, augmentation: the full kernels
    assert not train_mod.splits(large, None, train_mod.SPLIT_MIN_BATCH - 1)
    assert train_mod.splits(net("[{units: 128}, {units: 128}]"), None, 128)  # 2.6M multiply-adds a step
    assert not train_mod.splits(net("[{units: 64}, {units: 64}]"), None, 256)  # 1.6M
    pima = net("[{units: 12}, {units: 8}]", 8)  # 200 weights
    assert not any(train_mod.splits(pima, None, batch) for batch in (10, 128, 768))


def test_nncli_threads_is_checked_and_capped(monkeypatch):
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("NNCLI_THREADS", bad)
        with pytest.raises(ConfigError, match=f"NNCLI_THREADS: expected a whole number of at least 1, got '{bad}'"):
            threads.workers()
    monkeypatch.setenv("NNCLI_THREADS", "64")
    assert threads.workers() <= mlp.SPLIT
    monkeypatch.setenv("NNCLI_THREADS", "1")
    assert threads.workers() == 1


def test_a_bad_nncli_threads_is_one_line_and_exit_code_3(tmp_path):
    """Read by every training run, split or not."""
    import os
    import subprocess
    import sys

    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(40)), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "nncli", "train", str(data), "--quiet", "--out", str(tmp_path / "m.npz")],
                          capture_output=True, text=True, env=dict(os.environ, NNCLI_THREADS="many"), timeout=600)
    assert done.returncode == 3
    assert done.stderr == "nncli: error: NNCLI_THREADS: expected a whole number of at least 1, got 'many'\n"
    assert not (tmp_path / "m.npz").exists()
