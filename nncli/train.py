"""Training: the plain `train()` function behind `nncli train`, and `fit()` on arrays.

Python runs once per epoch (shuffling, validation, early stopping, the progress callback); each
epoch's mini-batch loop runs in the compiled kernel nncli.kernels.mlp.train_epoch.
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nncli.data import changed, every_column, read_table, split_rows
from nncli.errors import ConfigError, TrainingDiverged
from nncli.kernels import losses, mlp, optim, precompile, record, sync, threads
from nncli.kernels.activations import N_PARAMS
from nncli.kernels.layout import (CLIP_NORM, CLIP_VALUE, INPUT_DROPOUT, L1, L2, MIXUP, N_IN, N_OUT, NOISE, PIECES,
                                  TRAIN_HP_COLS)
from nncli.kernels.losses import DEFAULT_LOSS, LOSSES, loss_and_delta
from nncli.kernels.optim import LR, N_HP, OPTIMIZERS
from nncli.model import Model
from nncli.network import LayerSpec, Network, default_init
from nncli.preprocess import SCAN_ROWS, Preprocessor, summarize
from nncli.schedules import Schedule

# Rows per inference pass. Alone, 4096 runs faster per row (25 against 40 ns for an 8-12-8-1 net),
# but inside `nncli predict`, beside the parse threads on two cores, 1024 was faster: 1.83-2.04
# against 2.00-2.12 s on 2M rows (alternating runs); an earlier host had 4096 2-4x slower a row.
PREDICT_CHUNK = 1024
# A step of at least this many multiply-adds (batch rows x weights) on a batch of at least
# SPLIT_MIN_BATCH rows trains in halves on two cores (mlp.train_epoch_split); the model depends on
# this choice (to rounding), never on how many cores there are. Measured on 2 cores, epochs of
# 32-H-H-1 nets in the kernels, split against whole (median of 9 alternated runs): 0.58-0.95 of
# the time at batches of 128 to 1024 for H from 8 to 512; at batch 64, 0.63-1.12; at 32,
# 0.92-2.1: halves of fewer rows lose more to BLAS's lower speed on thinner matrices than the
# second core gives. Small nets gained too (0.77-0.86 at 8 to 64 units, batch 256 or 768), but
# their loop is a small part of a run, and the two-core kernel takes about 4 s more to compile on
# an empty cache, so only steps from 2^21 multiply-adds (32-128-128-1 at batch 128) split. (These
# figures are from numba's parallel regions: three a step at about 6 us each, where the
# barriers now cost about 0.3 us each.)
SPLIT_MIN_MACS = 1 << 21
SPLIT_MIN_BATCH = 128


@dataclass
class Arrays:
    X: np.ndarray  # (n, n_inputs)
    Y: np.ndarray  # (n, K) training targets (0/1, one-hot or scaled values)
    sw: np.ndarray  # (n,) row weights


@dataclass
class FitResult:
    history: dict  # name -> per-epoch list
    epochs_run: int
    best_epoch: int
    stop_reason: str
    loop_seconds: float
    compile_seconds: float
    steps: int
    records: np.ndarray  # (n_records, record.n_fields(L)) gradient statistics, empty unless recorded
    diverged: dict | None  # epoch, step and what became non-finite, when training stopped on it
    restored_best: bool = False  # the weights are those of best_epoch, not of the last epoch
    interrupted: dict | None = None  # epoch, step where control stopped the run
    state: "TrainState | None" = None  # to checkpoint an interrupted run


@dataclass
class TrainResult:
    model: Model
    fit: FitResult
    n_train: int
    n_val: int
    timing: dict = field(default_factory=dict)


def loss_name(task: str, train_cfg: dict) -> str:
    name = DEFAULT_LOSS[task] if train_cfg["loss"] == "auto" else train_cfg["loss"]
    if task not in LOSSES[name].tasks:
        raise ConfigError(f"train.loss: '{name}' does not fit a {task} task "
                          f"(use {', '.join(n for n, l in LOSSES.items() if task in l.tasks)})")
    return name


def build_network(n_inputs: int, n_outputs: int, model_cfg: dict, dtype) -> Network:
    layers = []
    for layer in model_cfg["hidden"]:
        act = layer["activation"]
        params = tuple(float(v) for k, v in act.items() if k != "name")
        params = params + (0.0,) * (N_PARAMS - len(params))
        init = layer["init"] if layer["init"] not in (None, "auto") else model_cfg["init"]
        layers.append(LayerSpec(layer["units"], act["name"], params,
                                default_init(act["name"]) if init == "auto" else init,
                                dropout=layer["dropout"], batch_norm=layer["batch_norm"],
                                bn_momentum=layer["bn_momentum"], bn_eps=layer["bn_eps"]))
    last_init = model_cfg["init"] if model_cfg["init"] != "auto" else "glorot_uniform"
    layers.append(LayerSpec(n_outputs, "linear", (0.0,) * N_PARAMS, last_init))
    return Network(n_inputs, layers, dtype=dtype, input_dropout=model_cfg["input_dropout"])


def optimizer_hp(opt_cfg: dict, lr: float | None = None) -> tuple[int, np.ndarray]:
    opt = OPTIMIZERS[opt_cfg["name"]]
    hp = np.zeros(N_HP)
    for key, (slot, _) in opt.params.items():
        hp[slot] = float(opt_cfg[key])
    if lr is not None:
        hp[0] = lr
    return opt.code, hp


def loss_hp(train_cfg: dict) -> np.ndarray:
    return np.array([train_cfg["huber_delta"], train_cfg["regularization"]["entropy"]])


def loss_extras(code: int):
    """The loss kernel's `extras` argument for loss `code` alone: None (its plain variant) for the
    losses of losses.PLAIN."""
    return None if code in losses.PLAIN else True


def logits_loss(Z: np.ndarray, code: int, hp: np.ndarray, Y, sw) -> float:
    """Mean loss of logits Z (n, K) against targets Y, through the training kernels' loss."""
    return float(loss_and_delta(code, hp, Z, Y.astype(Z.dtype), sw.astype(Z.dtype), np.empty_like(Z),
                                loss_extras(code)))


def kernel_extras(network: Network, thp: np.ndarray | None = None, every: int = 0, loss_code: int | None = None,
                  opt_code: int | None = None):
    """The kernels' `extras` argument: None (the plain kernels, quicker to compile) when the run
    needs no batch norm, no exotic activation, no gradient records, no input augmentation (train_hp
    thp), and trains (if it does) with a loss of losses.PLAIN and an optimizer of optim.PLAIN;
    else True."""
    augment = thp is not None and (thp[NOISE] > 0 or thp[INPUT_DROPOUT] > 0 or thp[MIXUP] > 0)
    common = (loss_code is None or loss_extras(loss_code) is None) and (opt_code is None or opt_code in optim.PLAIN)
    return None if network.plain and not every and not augment and common else True


def splits(network: Network, extras, batch_size: int) -> bool:
    """Whether fit trains in half-batches (mlp.train_epoch_split): plain kernels, large steps, on a
    platform where its waiting threads can give their cores away (sync.SUPPORTED)."""
    weights = int(np.sum(network.layout[:, N_IN] * network.layout[:, N_OUT] * network.layout[:, PIECES]))
    return (sync.SUPPORTED and extras is None and batch_size >= SPLIT_MIN_BATCH
            and batch_size * weights >= SPLIT_MIN_MACS)


def logits(network: Network, X: np.ndarray, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """Output-layer logits (n, K) in inference mode; batch norm is folded into the dense layers."""
    network = inference(network)
    X = np.ascontiguousarray(X, dtype=network.dtype)
    out = np.empty((X.shape[0], network.n_outputs), dtype=network.dtype)
    chunk = max(1, min(chunk, X.shape[0]))
    ws = np.empty(mlp.workspace_offsets(network.layout, chunk)[-1], dtype=network.dtype)
    mlp.predict_logits(network.theta, network.running, network.layout, network.layer_hp, X, out, ws, chunk,
                       kernel_extras(network))
    return out


def inference(network: Network) -> Network:
    """The network that `logits` runs: batch norm folded into the dense layers."""
    return network.folded() if network.has_batch_norm else network


def train_hp(train_cfg: dict, network: Network) -> np.ndarray:
    hp = np.zeros(TRAIN_HP_COLS)
    reg, aug = train_cfg["regularization"], train_cfg["augment"]
    hp[[INPUT_DROPOUT, NOISE, MIXUP, L1, L2, CLIP_NORM, CLIP_VALUE]] = (
        network.input_dropout, aug["noise"], aug["mixup"], reg["l1"], reg["l2"],
        train_cfg["clip_norm"], train_cfg["clip_value"])
    return hp


@dataclass
class TrainState:
    """Everything a run carries from one step to the next beyond the weights: what a checkpoint
    saves so that an interrupted and resumed run ends with the same model as an uninterrupted one."""

    epoch: int = 1  # the epoch being trained (1-based)
    step: int = 0  # steps of that epoch already done
    t: int = 0  # optimizer steps so far
    perm: np.ndarray | None = None  # the epoch's row order, once drawn
    seed: int = 0  # the epoch's base seed for the kernels' random draws (nncli.kernels.rng; 0: nothing random)
    loss_sum: float = 0.0  # of the epoch so far
    clipped: int = 0
    history: dict = field(default_factory=lambda: {"train_loss": [], "val_loss": [], "val_metric": [], "lr": []})
    best_value: float = np.inf
    best_epoch: int = 0
    waited: int = 0
    best_theta: np.ndarray | None = None
    best_running: np.ndarray | None = None
    s1: np.ndarray | None = None  # optimizer state
    s2: np.ndarray | None = None
    schedule: dict | None = None  # Schedule's counters
    rng: dict | None = None  # the shuffling generator's state before the next draw


def mixup_draws(seed: int, steps: int, alpha: float) -> np.ndarray:
    """Mixup's draws for each step of an epoch (steps, 2): lambda ~ Beta(alpha, alpha) and a uniform
    number that picks how far rows are shifted to find their partners. They come from the epoch's
    seed, so a resumed epoch gets the same ones. Without mixup: one row of zeros."""
    if alpha <= 0.0:
        return np.zeros((1, 2))
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.beta(alpha, alpha, steps), rng.random(steps)])


def run_interruptible(call, control: np.ndarray):
    """Run call() (a loop of kernels that release the GIL) in a worker thread, while the main
    thread stays free to run signal handlers, which stop the kernel through control[0] != 0.

    If the main thread is interrupted itself (KeyboardInterrupt where no handler is installed, as
    in a notebook), the worker is stopped the same way before the exception goes on: training must
    not go on changing the weights in the background.
    """
    out, done = {}, threading.Event()

    def target():
        try:
            out["value"] = call()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            out["error"] = exc
        finally:
            done.set()

    # An Event rather than Thread.join: a join interrupted by KeyboardInterrupt can leave the
    # thread marked as finished while it still runs (CPython 3.11's bpo-45274 handling).
    threading.Thread(target=target, name="nncli-kernel", daemon=True).start()
    try:
        while not done.wait(0.05):
            pass
    except BaseException:
        control[0] = 1
        done.wait()
        raise
    if "error" in out:
        raise out["error"]
    return out.get("value")


def fit(network: Network, train: Arrays, val: Arrays | None, train_cfg: dict, task: str,
        metric: Callable | None = None, callback: Callable | None = None,
        rng: np.random.Generator | None = None, every: int = 0, stop_on_divergence: bool = False,
        state: TrainState | None = None, control: np.ndarray | None = None) -> FitResult:
    """Train `network` in place. metric(Z, val) -> (name, value) scores validation data from the
    network's logits Z on val.X.

    every > 0 records gradient statistics every `every` steps (FitResult.records). A non-finite
    loss or gradient raises TrainingDiverged, or with stop_on_divergence ends training there
    (FitResult.diverged names the epoch and step). `state` resumes an interrupted run (its
    weights must be in network already); setting control[0] != 0 from a signal handler stops
    training before the next step (FitResult.interrupted, FitResult.state to checkpoint).
    """
    dtype = network.dtype
    X = np.ascontiguousarray(train.X, dtype=dtype)
    Y = np.ascontiguousarray(train.Y, dtype=dtype)
    sw = np.ascontiguousarray(train.sw, dtype=dtype)
    n = X.shape[0]
    rng = rng or np.random.default_rng(train_cfg["seed"])
    batch_size = min(train_cfg["batch_size"], n)
    if network.has_batch_norm and batch_size < 2:
        raise ConfigError("train.batch_size: batch norm needs batches of at least 2 rows")
    loss_code = LOSSES[loss_name(task, train_cfg)].code
    lhp = loss_hp(train_cfg)
    opt_code, opt_hp = optimizer_hp(train_cfg["optimizer"])
    theta, grad = network.theta, np.zeros_like(network.theta)
    st = state or TrainState()
    if st.s1 is None:
        st.s1, st.s2 = np.zeros_like(theta), np.zeros_like(theta)
    if st.rng is not None:
        rng.bit_generator.state = st.rng
    control = np.zeros(1, dtype=np.int64) if control is None else control
    ws = np.zeros(mlp.workspace_offsets(network.layout, batch_size)[-1], dtype=dtype)
    stats = np.zeros(mlp.N_STATS)
    thp = train_hp(train_cfg, network)
    stochastic = network.stochastic or thp[NOISE] > 0 or thp[MIXUP] > 0

    steps_per_epoch = -(-n // batch_size)
    records = np.zeros((steps_per_epoch * train_cfg["epochs"] // every + 2 if every else 1,
                        record.n_fields(len(network.layers))))
    rec_count = np.zeros(1, dtype=np.int64)
    before = np.empty_like(theta) if every else theta[:0]
    extras = kernel_extras(network, thp, every, loss_code, opt_code)

    def epoch_args(perm, t, seed, epoch_no, first_step):
        mix = mixup_draws(seed, steps_per_epoch, thp[MIXUP])
        return (theta, network.running, grad, network.layout, network.layer_hp, X, Y, sw, perm, batch_size, loss_code,
                lhp, opt_code, opt_hp, st.s1, st.s2, t, thp, seed, mix, ws, stats, records, every, rec_count, before,
                epoch_no, first_step, control, extras)

    split = splits(network, extras, batch_size)
    n_workers = threads.workers()  # read (and checked) whether or not this run splits
    if split:
        rows = batch_size - batch_size // mlp.SPLIT
        ws2 = np.zeros((mlp.SPLIT, mlp.workspace_offsets(network.layout, rows)[-1]), dtype=dtype)
        grads2 = np.zeros((mlp.SPLIT, theta.size), dtype=dtype)

    def run_epoch(perm, t, seed, epoch_no, first_step):
        if not split:
            return mlp.train_epoch(*epoch_args(perm, t, seed, epoch_no, first_step))
        return threads.train_epoch_split((theta, network.running, grad, network.layout, network.layer_hp, X, Y, sw,
                                          perm, batch_size, loss_code, lhp, opt_code, opt_hp, st.s1, st.s2, t, thp,
                                          seed, ws2, grads2, stats, first_step, control), n_workers)

    t0 = time.perf_counter()  # load (or compile) the kernels before timing the loop
    empty = epoch_args(np.empty(0, np.int64), 0, 0, 0, 0)
    validation = None if val is None else (kernel_extras(inference(network)), loss_extras(loss_code))
    with precompile.training(empty, validation):  # on a cold cache, compiled on two cores
        run_epoch(np.empty(0, np.int64), 0, 0, 0, 0)
    if val is not None:
        logits(network, val.X[:1])
    compile_seconds = time.perf_counter() - t0

    es = train_cfg["early_stopping"]
    monitor = es["monitor"]
    if monitor == "auto":
        monitor = "val_loss" if val is not None else "train_loss"
    if monitor.startswith("val_") and val is None:
        raise ConfigError(f"train.early_stopping.monitor: '{monitor}' needs validation data "
                          f"(set train.val_split or --val)")
    maximize = monitor == "val_accuracy"
    schedule = Schedule(train_cfg["schedule"], opt_hp[LR], train_cfg["epochs"], st.schedule)
    opt_hp[LR] = schedule.lr
    stop_reason, diverged, interrupted = "completed all epochs", None, None
    epochs = train_cfg["epochs"]

    def run_epochs():
        """The epoch loop, run in one worker thread (see run_interruptible): a thread per epoch
        cost more than a Pima epoch's 77 compiled steps."""
        nonlocal stop_reason, diverged, interrupted
        while st.epoch <= epochs:
            if st.perm is None:  # a new epoch: draw its order and seed
                st.perm = rng.permutation(n) if train_cfg["shuffle"] else np.arange(n)
                st.seed = int(rng.integers(1, 2**31 - 1)) if stochastic else 0
                st.step, st.loss_sum, st.clipped = 0, 0.0, 0
                st.rng = rng.bit_generator.state  # after this epoch's draws: where a resumed run goes on
            stats[mlp.LOSS_SUM], stats[mlp.CLIPPED_STEPS] = st.loss_sum, st.clipped
            start = time.perf_counter()
            st.t = run_epoch(st.perm, st.t, st.seed, st.epoch, st.step)
            seconds = time.perf_counter() - start
            st.step, st.loss_sum, st.clipped = int(stats[mlp.STEP]), stats[mlp.LOSS_SUM], int(stats[mlp.CLIPPED_STEPS])
            status = stats[mlp.STATUS]
            if status == mlp.INTERRUPTED:
                interrupted = {"epoch": st.epoch, "step": st.step, "global_step": st.t}
                stop_reason = f"interrupted at epoch {st.epoch}, step {st.step}"
                break
            if status != mlp.OK:
                what = "loss" if status == mlp.NONFINITE_LOSS else "gradient norm"
                diverged = {"epoch": st.epoch, "step": st.step + 1, "global_step": st.t + 1, "what": what}
                message = (f"the training {what} became non-finite at epoch {st.epoch}, step {st.step + 1}; "
                           f"lower train.optimizer.lr (now {opt_hp[LR]:g}) or set train.clip_norm (e.g. 1.0)")
                if not stop_on_divergence:
                    raise TrainingDiverged(message)
                stop_reason = message
                break
            entry = {"epoch": st.epoch, "epochs": epochs, "train_loss": float(st.loss_sum / n),
                     "val_loss": float("nan"), "val_metric": float("nan"), "metric_name": None,
                     "lr": float(opt_hp[LR]), "seconds": seconds, "rows_per_s": n / seconds if seconds > 0 else 0.0,
                     "clipped_steps": st.clipped}
            if val is not None:  # one forward pass serves the loss and the metric
                Z = logits(network, val.X)
                entry["val_loss"] = logits_loss(Z, loss_code, lhp, val.Y, val.sw)
                if metric is not None:
                    entry["metric_name"], entry["val_metric"] = metric(Z, val)
            for key in st.history:
                st.history[key].append(entry[key])
            current = {"train_loss": entry["train_loss"], "val_loss": entry["val_loss"]}.get(monitor, entry["val_metric"])
            score = -current if maximize else current
            if score < st.best_value - es["min_delta"]:
                st.best_value, st.best_epoch, st.waited = score, st.epoch, 0
                if es["enabled"] and es["restore_best"]:
                    st.best_theta, st.best_running = theta.copy(), network.running.copy()
            else:
                st.waited += 1
            opt_hp[LR] = schedule.step(score)
            st.schedule = schedule.counters()
            st.epoch += 1
            st.perm = None
            if callback is not None:
                callback(entry)
            if es["enabled"] and st.waited >= es["patience"]:
                stop_reason = f"early stopping: {monitor} did not improve for {es['patience']} epochs"
                break

    start = time.perf_counter()
    with threads.single_threaded_blas(n_workers if split else 1):
        run_interruptible(run_epochs, control)
    loop_seconds = time.perf_counter() - start  # the whole loop, Python work between epochs included
    restored = st.best_theta is not None and interrupted is None
    if restored:
        theta[:], network.running[:] = st.best_theta, st.best_running
    epochs_run = st.epoch - 1
    return FitResult(st.history, epochs_run, st.best_epoch, stop_reason, loop_seconds, compile_seconds, st.t,
                     records[:rec_count[0]], diverged, restored, interrupted, st)


def validation_metric(prep: Preprocessor) -> Callable:
    """Accuracy for classes, RMSE in the target's own units for regression."""
    def metric(Z: np.ndarray, val: Arrays):
        if prep.task == "regression":
            err = prep.unscale_target(Z[:, 0]) - prep.unscale_target(val.Y[:, 0])
            return "val_rmse", float(np.sqrt(np.mean(err * err)))
        pred = (Z[:, 0] > 0).astype(int) if prep.task == "binary" else Z.argmax(axis=1)
        true = val.Y[:, 0].astype(int) if prep.task == "binary" else val.Y.argmax(axis=1)
        return "val_accuracy", float(np.mean(pred == true))
    return metric


def train(data_path, config: dict, *, val_path=None, callback: Callable | None = None, every: int = 0,
          stop_on_divergence: bool = False, control: np.ndarray | None = None, resume=None) -> TrainResult:
    """Fit preprocessing and network on a CSV file; returns the model (not yet saved).

    every: record gradient statistics every `every` steps (0: none; -1: about 400 over the run).
    control: control[0] != 0 stops training before the next step (result.fit.interrupted).
    resume: (model, state, data_sha256) from nncli.model.load_checkpoint, to continue that run;
    the config and the data must be the ones it was made with.
    """
    started = time.perf_counter()
    data_cfg, train_cfg = config["data"], config["train"]
    dtype = np.dtype(train_cfg["dtype"])
    read = {"header": data_cfg["header"], "delimiter": data_cfg["delimiter"], "encoding": data_cfg["encoding"],
            "numbers": every_column, "missing": data_cfg["missing_values"]}

    def blocks():
        return read_table(data_path, chunk_rows=SCAN_ROWS, **read)

    # a file larger than its first block is fitted from summaries of its numeric columns and read
    # again into the arrays (see nncli.preprocess.summarize)
    stamp = _stamp(data_path)
    table = summarize(blocks(), data_cfg)
    if table is None:
        table = read_table(data_path, **read)
    seeds = np.random.SeedSequence(train_cfg["seed"]).spawn(3)
    split_rng, init_rng, shuffle_rng = (np.random.default_rng(s) for s in seeds)
    val_path = val_path or train_cfg["val_file"]
    val_table, held = None, None
    if val_path is None and train_cfg["val_split"] > 0:
        target = Preprocessor.fit_target(table, data_cfg)
        strata = None if target.task == "regression" else table.text(target.target).to_numpy()
        keep, held = split_rows(len(table.frame), train_cfg["val_split"], split_rng, strata)
        if len(keep) == 0 or len(held) == 0:
            raise ConfigError(f"train.val_split: {train_cfg['val_split']} leaves no rows for training or validation")
        if table.summaries:  # the statistics of the training rows alone: one more pass
            mask = np.ones(len(table.frame), dtype=bool)
            mask[held] = False
            table = summarize(blocks(), data_cfg, rows=mask)
            if table is None:
                raise changed(data_path)
            held = ~mask
        else:
            table, val_table, held = table.subset(keep), table.subset(held), None
    prep = Preprocessor.fit(table, data_cfg)
    if val_path is not None:
        val_table = prep.match_columns(read_table(
            val_path, expected_names=prep.columns if table.has_header else None, **read))
    loss_name(prep.task, train_cfg)  # a loss that does not fit the task fails before any work

    val_arrays = None
    if table.summaries:
        n = len(table.frame) if held is None else len(held)
        parts = _read_arrays(prep, blocks(), n, dtype, held)
        if _stamp(data_path) != stamp:
            raise changed(data_path)
        train_arrays = _weighted(prep, *parts[0], train_cfg["class_weight"])
        if held is not None:
            val_arrays = _weighted(prep, *parts[1], train_cfg["class_weight"])
    else:
        train_arrays = _arrays(prep, table, dtype, train_cfg["class_weight"])
    if val_table is not None:
        val_arrays = _arrays(prep, val_table, dtype, train_cfg["class_weight"])
    n_train, n_val = len(train_arrays.X), 0 if val_arrays is None else len(val_arrays.X)
    del table, val_table  # the parsed file is not needed once it is arrays
    network = build_network(prep.n_inputs, prep.n_outputs, config["model"], dtype)
    network.initialize(init_rng, config["model"]["init_gain"])
    state = None
    if resume is not None:
        state = _resume_state(resume, config, data_path, network)
    if every < 0:
        steps = -(-len(train_arrays.X) // min(train_cfg["batch_size"], len(train_arrays.X))) * train_cfg["epochs"]
        every = max(1, steps // 400)
    result = fit(network, train_arrays, val_arrays, train_cfg, prep.task, validation_metric(prep), callback,
                 shuffle_rng, every, stop_on_divergence, state, control)
    history = {k: v for k, v in result.history.items() if not all(np.isnan(v))}
    summary = {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "stop_reason": result.stop_reason,
               "restored_best": result.restored_best,
               "metric_name": None if val_arrays is None else ("val_rmse" if prep.task == "regression" else "val_accuracy"),
               "steps": result.steps, "n_train": n_train, "n_val": n_val,
               "data_file": Path(data_path).name, "task": prep.task, "loss": loss_name(prep.task, train_cfg)}
    model = Model(network, prep, config, history, summary)
    timing = {"total_seconds": time.perf_counter() - started, "loop_seconds": result.loop_seconds,
              "compile_seconds": result.compile_seconds,
              "us_per_step": 1e6 * result.loop_seconds / max(result.steps, 1)}
    return TrainResult(model, result, summary["n_train"], summary["n_val"], timing)


def _resume_state(resume, config: dict, data_path, network: Network) -> TrainState:
    """Check that a checkpoint fits this run, put its weights in network, return its state."""
    from nncli.data import file_digest

    model, state, data_sha = resume
    now = json.loads(json.dumps(config))
    if model.config != now:
        raise ConfigError(f"--resume: the checkpoint was made with another config ({_first_difference(model.config, now)}); "
                          f"resume with the same config and options")
    if file_digest(data_path) != data_sha:
        raise ConfigError(f"--resume: {data_path} is not the data the checkpoint was trained on")
    if model.network.theta.shape != network.theta.shape:
        raise ConfigError("--resume: the checkpoint's network does not match this config")
    network.theta[:] = model.network.theta
    network.running[:] = model.network.running
    return TrainState(**state)


def _first_difference(old, new, path="") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
    return f"{path}: {old!r} then, {new!r} now"


def _arrays(prep: Preprocessor, table, dtype, class_weight="none") -> Arrays:
    return _weighted(prep, prep.transform(table, dtype), prep.encode_target(table, dtype), class_weight)


def _weighted(prep: Preprocessor, X: np.ndarray, Y: np.ndarray, class_weight) -> Arrays:
    return Arrays(X, Y, row_weights(prep, Y, class_weight).astype(X.dtype))


def _read_arrays(prep: Preprocessor, tables, n: int, dtype, held: np.ndarray | None) -> list[tuple]:
    """The second pass over a summarized file (see train): (X, Y) of its rows, written chunk by
    chunk into arrays sized beforehand, or of the rows not `held` out and of those held out."""
    sizes = [n] if held is None else [n - int(held.sum()), int(held.sum())]
    out = [(np.empty((k, prep.n_inputs), dtype), np.empty((k, prep.n_outputs), dtype)) for k in sizes]
    filled = [0] * len(out)
    seen, path = 0, None
    for chunk in tables:
        path, first, k = chunk.path, int(chunk.frame.index[0]), len(chunk.frame)
        if first != seen or first + k > n:
            raise changed(path)
        picks = [None] if held is None else [np.flatnonzero(~held[first:first + k]), np.flatnonzero(held[first:first + k])]
        for (X, Y), at, rows, i in zip(out, filled, picks, range(len(out))):
            part = chunk if rows is None else chunk.subset(rows)
            m = len(part.frame)
            if m == 0:
                continue
            prep.transform(part, dtype, out=X[at:at + m])
            Y[at:at + m] = prep.encode_target(part, dtype)
            filled[i] += m
        seen += k
    if seen != n:
        raise changed(path)
    return out


def _stamp(path) -> tuple:
    """What tells that a file was not rewritten between two reads of it (None: no file to read,
    which read_table reports)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def row_weights(prep: Preprocessor, Y: np.ndarray, class_weight) -> np.ndarray:
    """Each row's weight in the loss from train.class_weight: none, balanced or {label: weight}.

    balanced gives class k the weight n / (K * n_k), as scikit-learn does, so rare classes count
    as much in total as common ones and the mean weight over rows is 1.
    """
    n = len(Y)
    if class_weight in ("none", None):
        return np.ones(n)
    if prep.task == "regression":
        raise ConfigError("train.class_weight: only classification tasks have classes to weight")
    idx = Y[:, 0].astype(int) if prep.task == "binary" else Y.argmax(axis=1)
    K = len(prep.labels)
    if class_weight == "balanced":
        counts = np.bincount(idx, minlength=K)
        weights = np.where(counts > 0, n / (K * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        given = {str(k): v for k, v in class_weight.items()}
        unknown = sorted(set(given) - set(prep.labels))
        if unknown:
            raise ConfigError(f"train.class_weight: no class {unknown[0]!r} (classes: {', '.join(prep.labels)})")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in given.values()):
            raise ConfigError("train.class_weight: weights must be numbers >= 0")
        weights = np.array([float(given.get(label, 1.0)) for label in prep.labels])
    else:
        raise ConfigError(f"train.class_weight: expected none, balanced or a mapping label: weight, "
                          f"got {class_weight!r}")
    return weights[idx]


def warmup(dtypes=("float32", "float64")) -> dict:
    """Compile (or load) every kernel a run can call, for each dtype, so that later runs start warm,
    and the CSV parser of large files (nncli.kernels.csvparse) and their block statistics
    (nncli.kernels.columns).

    The kernels' types do not depend on the options a config switches on (those are run-time
    values) except for `extras` (kernel_extras): per dtype, one small run on the plain kernels
    and one with batch norm, an activation without a loop of its own and gradient records, each
    with its prediction and validation loss, the validation loss of a loss the plain kernels
    leave out, and one run whose steps split in halves (splits) cover them all.
    """
    from nncli import config as config_mod
    from nncli.kernels import CACHE_DIR
    from nncli.kernels.activations import activate_array
    from nncli.kernels.columns import moments, standardize
    from nncli.kernels.csvparse import parse_block

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    for name in dtypes:
        dtype = np.dtype(name)
        data = Arrays(rng.normal(size=(8, 2)).astype(dtype), (rng.random((8, 1)) > 0.5).astype(dtype),
                      np.ones(8, dtype=dtype))
        for hidden, every in (("{units: 3, activation: tanh}", 0),
                              ("{units: 3, activation: elu, batch_norm: before}", 1)):
            cfg = config_mod.load(None, ["train.epochs=1", "train.batch_size=4", f"train.dtype={name}",
                                         f"model.hidden=[{hidden}]"])
            net = build_network(2, 1, cfg["model"], dtype)
            net.initialize(rng)
            fit(net, data, data, cfg["train"], "binary", every=every)
        logits_loss(logits(net, data.X), LOSSES["huber"].code, loss_hp(cfg["train"]), data.Y, data.sw)
        z = np.zeros(3, dtype=dtype)
        activate_array(0, 0.0, 0.0, z, z.copy(), z.copy())
        if not sync.SUPPORTED:
            continue
        # a net whose steps split in halves (splits): train_epoch_split
        cfg = config_mod.load(None, ["train.epochs=1", f"train.batch_size={SPLIT_MIN_BATCH}", f"train.dtype={name}",
                                     "model.hidden=[{units: 256}, {units: 256}]"])
        rows = Arrays(*(np.resize(a, (SPLIT_MIN_BATCH,) + a.shape[1:]) for a in (data.X, data.Y, data.sw)))
        fit(build_network(2, 1, cfg["model"], dtype), rows, None, cfg["train"], "binary")
    # the CSV parser of large files, with its argument types as nncli.data passes them, and the
    # statistics of their blocks (nncli.preprocess.summarize)
    parse_block(bytearray(b"1.5,NA\n"), 2, ",", [b"NA"])
    moments(np.zeros(2))
    for name in dtypes:
        standardize(np.zeros(2), 0.0, 1.0, 0.0, np.zeros((2, 1), dtype=name), 0)
    return {"cache_dir": str(CACHE_DIR) if CACHE_DIR else None, "seconds": time.perf_counter() - started,
            "dtypes": list(dtypes)}
