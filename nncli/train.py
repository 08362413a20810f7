"""Training: the plain `train()` function behind `nncli train`, and `fit()` on arrays.

Python runs once per epoch (shuffling, validation, early stopping, the progress callback); each
epoch's mini-batch loop runs in the compiled kernel nncli.kernels.mlp.train_epoch.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from nncli.data import read_table, split_rows
from nncli.errors import ConfigError, TrainingDiverged
from nncli.kernels import mlp, record
from nncli.kernels.layout import (CLIP_NORM, CLIP_VALUE, INPUT_DROPOUT, L1, L2, MIXUP, NOISE, TRAIN_HP_COLS)
from nncli.kernels.activations import N_PARAMS
from nncli.kernels.losses import DEFAULT_LOSS, LOSSES, loss_and_delta
from nncli.kernels.optim import LR, N_HP, OPTIMIZERS
from nncli.model import Model
from nncli.network import LayerSpec, Network, default_init
from nncli.preprocess import Preprocessor
from nncli.schedules import Schedule

PREDICT_CHUNK = 4096


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


def batch_loss(network: Network, code: int, hp: np.ndarray, X, Y, sw) -> float:
    """Mean loss of the network in inference mode on arrays, through the training kernels' loss."""
    Z = logits(network, X)
    return float(loss_and_delta(code, hp, Z, Y.astype(Z.dtype), sw.astype(Z.dtype), np.empty_like(Z)))


def logits(network: Network, X: np.ndarray, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """Output-layer logits (n, K) in inference mode; batch norm is folded into the dense layers."""
    if network.has_batch_norm:
        network = network.folded()
    X = np.ascontiguousarray(X, dtype=network.dtype)
    out = np.empty((X.shape[0], network.n_outputs), dtype=network.dtype)
    chunk = max(1, min(chunk, X.shape[0]))
    ws = np.empty(mlp.workspace_offsets(network.layout, chunk)[-1], dtype=network.dtype)
    mlp.predict_logits(network.theta, network.running, network.layout, network.layer_hp, X, out, ws, chunk)
    return out


def train_hp(train_cfg: dict, network: Network) -> np.ndarray:
    hp = np.zeros(TRAIN_HP_COLS)
    reg, aug = train_cfg["regularization"], train_cfg["augment"]
    hp[[INPUT_DROPOUT, NOISE, MIXUP, L1, L2, CLIP_NORM, CLIP_VALUE]] = (
        network.input_dropout, aug["noise"], aug["mixup"], reg["l1"], reg["l2"],
        train_cfg["clip_norm"], train_cfg["clip_value"])
    return hp


def fit(network: Network, train: Arrays, val: Arrays | None, train_cfg: dict, task: str,
        metric: Callable | None = None, callback: Callable | None = None,
        rng: np.random.Generator | None = None, every: int = 0, stop_on_divergence: bool = False) -> FitResult:
    """Train `network` in place. metric(network, val) -> (name, value) scores validation data.

    every > 0 records gradient statistics every `every` steps (FitResult.records). A non-finite
    loss or gradient raises TrainingDiverged, or with stop_on_divergence ends training there
    (FitResult.diverged names the epoch and step).
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
    s1, s2 = np.zeros_like(theta), np.zeros_like(theta)
    ws = np.zeros(mlp.workspace_offsets(network.layout, batch_size)[-1], dtype=dtype)
    stats = np.zeros(mlp.N_STATS)
    thp = train_hp(train_cfg, network)
    args = (network.layout, network.layer_hp)

    steps_per_epoch = -(-n // batch_size)
    records = np.zeros((steps_per_epoch * train_cfg["epochs"] // every + 2 if every else 1,
                        record.n_fields(len(network.layers))))
    rec_count = np.zeros(1, dtype=np.int64)
    before = np.empty_like(theta) if every else theta[:0]

    def epoch(perm, t, seed, epoch_no):
        return mlp.train_epoch(theta, network.running, grad, *args, X, Y, sw, perm, batch_size, loss_code, lhp,
                               opt_code, opt_hp, s1, s2, t, thp, seed, ws, stats, records, every, rec_count, before,
                               epoch_no)

    t0 = time.perf_counter()  # load (or compile) the kernels before timing the loop
    epoch(np.empty(0, np.int64), 0, 0, 0)
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
    schedule = Schedule(train_cfg["schedule"], opt_hp[LR], train_cfg["epochs"])
    best_value, best_epoch, best_theta, waited = np.inf, 0, None, 0
    history = {"train_loss": [], "val_loss": [], "val_metric": [], "lr": []}
    stop_reason = "completed all epochs"
    loop_seconds, t, epochs, diverged = 0.0, 0, train_cfg["epochs"], None
    for epoch_no in range(1, epochs + 1):
        perm = rng.permutation(n) if train_cfg["shuffle"] else np.arange(n)
        seed = int(rng.integers(2**31)) if network.stochastic or thp[NOISE] or thp[MIXUP] else 0
        start = time.perf_counter()
        t = epoch(perm, t, seed, epoch_no)
        seconds = time.perf_counter() - start
        loop_seconds += seconds
        if stats[mlp.STATUS] != mlp.OK:
            what = "loss" if stats[mlp.STATUS] == mlp.NONFINITE_LOSS else "gradient norm"
            diverged = {"epoch": epoch_no, "step": int(stats[mlp.BAD_STEP]) + 1, "global_step": t + 1, "what": what}
            message = (f"the training {what} became non-finite at epoch {epoch_no}, step {diverged['step']}; "
                       f"lower train.optimizer.lr (now {opt_hp[LR]:g}) or set train.clip_norm (e.g. 1.0)")
            if not stop_on_divergence:
                raise TrainingDiverged(message)
            stop_reason = message
            break
        entry = {"epoch": epoch_no, "epochs": epochs, "train_loss": float(stats[mlp.MEAN_LOSS]),
                  "val_loss": float("nan"), "val_metric": float("nan"), "metric_name": None,
                  "lr": float(opt_hp[0]), "seconds": seconds, "rows_per_s": n / seconds if seconds > 0 else 0.0}
        if val is not None:
            entry["val_loss"] = batch_loss(network, loss_code, lhp, val.X, val.Y, val.sw)
            if metric is not None:
                entry["metric_name"], entry["val_metric"] = metric(network, val)
        for key in history:
            history[key].append(entry[key])
        current = {"train_loss": entry["train_loss"], "val_loss": entry["val_loss"]}.get(
            monitor, entry["val_metric"])
        score = -current if maximize else current
        if score < best_value - es["min_delta"]:
            best_value, best_epoch, waited = score, epoch_no, 0
            if es["enabled"] and es["restore_best"]:
                best_theta = (theta.copy(), network.running.copy())
        else:
            waited += 1
        opt_hp[LR] = schedule.step(score)
        if callback is not None:
            callback(entry)
        if es["enabled"] and waited >= es["patience"]:
            stop_reason = f"early stopping: {monitor} did not improve for {es['patience']} epochs"
            break
    if best_theta is not None:
        theta[:], network.running[:] = best_theta
    return FitResult(history, epoch_no, best_epoch, stop_reason, loop_seconds, compile_seconds, t,
                     records[:rec_count[0]], diverged, best_theta is not None)


def validation_metric(prep: Preprocessor) -> Callable:
    """Accuracy for classes, RMSE in the target's own units for regression."""
    def metric(network: Network, val: Arrays):
        Z = logits(network, val.X)
        if prep.task == "regression":
            err = prep.unscale_target(Z[:, 0]) - prep.unscale_target(val.Y[:, 0])
            return "val_rmse", float(np.sqrt(np.mean(err * err)))
        pred = (Z[:, 0] > 0).astype(int) if prep.task == "binary" else Z.argmax(axis=1)
        true = val.Y[:, 0].astype(int) if prep.task == "binary" else val.Y.argmax(axis=1)
        return "val_accuracy", float(np.mean(pred == true))
    return metric


def train(data_path, config: dict, *, val_path=None, callback: Callable | None = None, every: int = 0,
          stop_on_divergence: bool = False) -> TrainResult:
    """Fit preprocessing and network on a CSV file; returns the model (not yet saved).

    every: record gradient statistics every `every` steps (0: none; -1: about 400 over the run).
    """
    started = time.perf_counter()
    data_cfg, train_cfg = config["data"], config["train"]
    dtype = np.dtype(train_cfg["dtype"])
    table = read_table(data_path, header=data_cfg["header"], delimiter=data_cfg["delimiter"],
                       encoding=data_cfg["encoding"])
    seeds = np.random.SeedSequence(train_cfg["seed"]).spawn(3)
    split_rng, init_rng, shuffle_rng = (np.random.default_rng(s) for s in seeds)
    val_path = val_path or train_cfg["val_file"]
    val_table = None
    if val_path is None and train_cfg["val_split"] > 0:
        prep_all = Preprocessor.fit(table, data_cfg)
        strata = None if prep_all.task == "regression" else table.frame[prep_all.target].str.strip().to_numpy()
        keep, held = split_rows(len(table.frame), train_cfg["val_split"], split_rng, strata)
        if len(keep) == 0 or len(held) == 0:
            raise ConfigError(f"train.val_split: {train_cfg['val_split']} leaves no rows for training or validation")
        val_frame = table.frame.iloc[held]
        table.frame = table.frame.iloc[keep]
        val_table = type(table)(val_frame, table.has_header, table.path)
    prep = Preprocessor.fit(table, data_cfg)
    if val_path is not None:
        val_table = prep.match_columns(read_table(
            val_path, header=data_cfg["header"], delimiter=data_cfg["delimiter"],
            encoding=data_cfg["encoding"], expected_names=prep.columns if table.has_header else None))
    loss_name(prep.task, train_cfg)  # a loss that does not fit the task fails before any work

    train_arrays = _arrays(prep, table, dtype, train_cfg["class_weight"])
    val_arrays = _arrays(prep, val_table, dtype, train_cfg["class_weight"]) if val_table is not None else None
    network = build_network(prep.n_inputs, prep.n_outputs, config["model"], dtype)
    network.initialize(init_rng, config["model"]["init_gain"])
    if every < 0:
        steps = -(-len(train_arrays.X) // min(train_cfg["batch_size"], len(train_arrays.X))) * train_cfg["epochs"]
        every = max(1, steps // 400)
    result = fit(network, train_arrays, val_arrays, train_cfg, prep.task, validation_metric(prep), callback,
                 shuffle_rng, every, stop_on_divergence)
    history = {k: v for k, v in result.history.items() if not all(np.isnan(v))}
    summary = {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "stop_reason": result.stop_reason,
               "restored_best": result.restored_best,
               "metric_name": None if val_table is None else ("val_rmse" if prep.task == "regression" else "val_accuracy"),
               "steps": result.steps, "n_train": len(table.frame),
               "n_val": 0 if val_table is None else len(val_table.frame),
               "data_file": Path(data_path).name, "task": prep.task, "loss": loss_name(prep.task, train_cfg)}
    model = Model(network, prep, config, history, summary)
    timing = {"total_seconds": time.perf_counter() - started, "loop_seconds": result.loop_seconds,
              "compile_seconds": result.compile_seconds,
              "us_per_step": 1e6 * result.loop_seconds / max(result.steps, 1)}
    return TrainResult(model, result, summary["n_train"], summary["n_val"], timing)


def _arrays(prep: Preprocessor, table, dtype, class_weight="none") -> Arrays:
    X = prep.transform(table, dtype)
    Y = prep.encode_target(table, dtype)
    return Arrays(X, Y, row_weights(prep, Y, class_weight).astype(dtype))


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
