"""The benchmark's workloads. Each takes the Env and returns a list of harness.Sections.

Every system is a callable that does its own (untimed) setup and returns the seconds of its timed
part; harness.alternate runs them in turn, round after round. Ratios are per-round time ratios
other / nncli, so > 1 means nncli is faster.
"""

import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.harness import Section, Stat, alternate, md_table, num, optional_import, ratio, timed

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
PIMA_CONFIG = REPO / "configs" / "pima.yaml"
PIMA_ROWS, PIMA_EPOCHS, PIMA_BATCH = 768, 100, 10
PIMA_STEPS = PIMA_EPOCHS * math.ceil(PIMA_ROWS / PIMA_BATCH)  # 7,700
PIMA_LOOP_RUNS = 5  # nncli's Pima loop (about 20 ms) is timed this many times in a row per round
PIMA_LAYERS = (8, 12, 8, 1)
LARGE_LAYERS = (32, 256, 256, 1)
SWEEP_BATCHES = (1, 10, 32, 128, 768)
PIMA_MISSING = "*Skipped: the Pima data file was not found (see the notes at the top).*"


@dataclass(frozen=True)
class Settings:
    name: str
    repeats: int
    sweep_rows: int  # each sweep run trains on at least this many rows ...
    sweep_steps: int  # ... and takes at least this many steps
    large_rows: int
    budget: dict | None = None  # workload -> seconds its rounds may take (quick mode stays short on a busy machine)
    peak_n: int = 2048


QUICK = Settings("quick", repeats=3, sweep_rows=PIMA_ROWS, sweep_steps=50, large_rows=12_800,
                 budget={"pima": 65, "sweep": 12, "large": 20, "aids": 15})
FULL = Settings("full", repeats=5, sweep_rows=26 * PIMA_ROWS, sweep_steps=200, large_rows=200_000)


@dataclass
class Env:
    settings: Settings
    tmp: Path
    torch: object  # the module, or None
    sklearn: object
    skipped: list  # messages about systems that cannot run here
    pima: Path | None


def make_env(settings: Settings, tmp: Path) -> Env:
    skipped = []
    torch, why = optional_import("torch")
    if why:
        skipped.append(why)
    sklearn, why = optional_import("sklearn")
    if why:
        skipped.append(why)
    shared = Path(os.environ.get("NNCLI_SHARED_DATA") or REPO.parent / "shared" / "data")
    pima = shared / "pima-indians-diabetes.csv"
    if not pima.is_file():
        skipped.append(f"{pima} not found (set NNCLI_SHARED_DATA): the Pima workloads are skipped")
        pima = None
    return Env(settings, tmp, torch, sklearn, skipped, pima)


def _budget(env: Env, workload: str) -> float | None:
    return None if env.settings.budget is None else env.settings.budget[workload]


def flops_per_row(layers) -> int:
    """Forward + backward of a dense MLP: about 3 x 2 multiply-adds per weight per row."""
    return 3 * 2 * sum(a * b for a, b in zip(layers[:-1], layers[1:]))


def nncli_system(data: Path, cfg: dict, expected_steps: int | None = None, on_result=None, runs: int = 1):
    """nncli through its Python API: the epoch loop's seconds (kernels are loaded before that timer),
    the median of `runs` runs in a row."""
    from nncli.train import train

    def run() -> float:
        seconds = []
        for _ in range(runs):
            result = train(data, cfg)
            if expected_steps is not None and result.fit.steps != expected_steps:
                raise RuntimeError(f"nncli took {result.fit.steps} steps, expected {expected_steps}")
            seconds.append(result.timing["loop_seconds"])
        if on_result is not None:
            on_result(result)
        return statistics.median(seconds)

    return run


def torch_system(env: Env, layers, X: np.ndarray, y: np.ndarray, epochs: int, batch: int):
    """The lecture's torch loop on float32 tensors; a sigmoid + BCE head for 0/1 targets, else MSE."""
    torch = env.torch
    from bench.lecture_torch import train_loop

    binary = set(np.unique(y)) <= {0.0, 1.0}
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)

    def run() -> float:
        mods = []
        for a, b in zip(layers[:-1], layers[1:]):
            mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        model = torch.nn.Sequential(*mods[:-1], *([torch.nn.Sigmoid()] if binary else []))
        loss_fn = torch.nn.BCELoss() if binary else torch.nn.MSELoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
        return timed(lambda: train_loop(model, loss_fn, optimizer, Xt, yt, epochs, batch))

    return run


def sklearn_system(layers, X: np.ndarray, y: np.ndarray, epochs: int, batch: int, regression=False):
    from bench.lecture_sklearn import adam_mlp, fit_quietly

    def run() -> float:
        model = adam_mlp(tuple(layers[1:-1]), batch, epochs, regression)
        return timed(lambda: fit_quietly(model, X, y))

    return run


# --- 1. The lecture's Pima workload: training loop (1a) and whole process (1b) --------------

def nncli_command() -> list[str]:
    """The console script next to this python (not a pyenv shim, whose own start-up would be timed)."""
    beside = Path(sys.executable).with_name("nncli")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("nncli")
    return [found] if found else [sys.executable, "-m", "nncli"]


def run_process(cmd: list[str]) -> str:
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def script_system(script: str, data: Path, name: str, accuracy: dict):
    """A lecture script as a whole process; it reports its own training-loop seconds and accuracy."""
    cmd = [sys.executable, str(BENCH / script), str(data)]

    def run() -> dict:
        out = []
        seconds = timed(lambda: out.append(run_process(cmd)))
        loop = re.search(r"Training loop ([0-9.]+) s", out[0])
        acc = re.search(r"Accuracy ([0-9.]+)", out[0])
        if not (loop and acc):
            raise RuntimeError(f"{script}: unexpected output {out[0]!r}")
        accuracy[name] = float(acc.group(1))
        return {f"{name} script": seconds, name: float(loop.group(1))}

    return run, cmd


def _short(arg: str) -> str:
    return Path(arg).name if os.path.isabs(arg) else (f'"{arg}"' if " " in arg else arg)


def pima(env: Env) -> list[Section]:
    """One alternation gives both tables: the lecture scripts report their own loop time."""
    title_a = "1a. Pima, training loop only (the lecture workload)"
    title_b = "1b. Pima, whole process (warm cache)"
    if env.pima is None:
        return [Section(title_a, PIMA_MISSING), Section(title_b, PIMA_MISSING)]
    import nncli.config
    from nncli.predict import evaluate

    accuracy, systems, commands = {}, {}, {}

    def nncli_acc(result):
        accuracy["nncli"] = evaluate(result.model, env.pima)["accuracy"]
    systems["nncli"] = nncli_system(env.pima, nncli.config.load(PIMA_CONFIG), PIMA_STEPS, nncli_acc,
                                    runs=PIMA_LOOP_RUNS)
    if env.torch is not None:
        systems["PyTorch"], commands["PyTorch script"] = script_system("lecture_torch.py", env.pima, "PyTorch", accuracy)
    if env.sklearn is not None:
        systems["sklearn"], commands["sklearn script"] = script_system("lecture_sklearn.py", env.pima, "sklearn", accuracy)
    nncli = nncli_command()
    commands["nncli train"] = [*nncli, "train", str(env.pima), "--config", str(PIMA_CONFIG), "--quiet",
                               "--out", str(env.tmp / "pima.npz")]
    commands["nncli --version"] = [*nncli, "--version"]
    commands["nncli --help"] = [*nncli, "--help"]
    # exits as the nncli command does (os._exit): tearing down an interpreter that loaded numba takes
    # 0.2-0.35 s, which `nncli train` never spends
    commands["import nncli.train"] = [sys.executable, "-c", "import os, nncli.train; os._exit(0)"]
    run_process(commands["nncli train"])  # untimed: fills the kernel cache (and the OS file cache)
    for name in ("nncli train", "nncli --version", "nncli --help", "import nncli.train"):
        systems[name] = lambda cmd=commands[name]: timed(lambda: run_process(cmd))
    seconds = alternate(systems, env.settings.repeats, "pima", _budget(env, "pima"))

    loop_names = [n for n in ("PyTorch", "sklearn", "nncli") if n in seconds]
    rows = [[name, Stat(seconds[name]), Stat(seconds[name]).map(lambda t: t / PIMA_STEPS * 1e6),
             f"{accuracy[name]:.3f}", "1 (reference)" if name == "nncli" else ratio(seconds[name], seconds["nncli"])]
            for name in loop_names]
    body_a = (
        f"Net 8→12 ReLU→8 ReLU→1 sigmoid, BCE, Adam lr 0.001, batch {PIMA_BATCH}, {PIMA_EPOCHS} epochs, sequential "
        f"slices: {PIMA_STEPS:,} steps. PyTorch: float32, raw features, the loop of bench/lecture_torch.py timed "
        f"inside that script (so in its own process, alongside 1b); sklearn: float64, raw features, "
        f"`MLPClassifier.fit` timed inside bench/lecture_sklearn.py; nncli: float32, standardized features, "
        f"`nncli.train.train(path, nncli.config.load(\"configs/pima.yaml\"))` in the bench process, "
        f"`timing['loop_seconds']`, the median of {PIMA_LOOP_RUNS} runs in a row in each round: nncli's loop takes "
        "about 20 ms, shorter than the slices of CPU time another process on this shared machine can take, which "
        "the others' loops of a second or more average over. Accuracy is on the training set.\n\n"
        + md_table(["system", "loop seconds", "µs/step", "train accuracy", "time ratio vs nncli"], rows)
        + seconds.note
    )
    process_names = [n for n in commands if n in seconds]
    rows = [[name, "`" + " ".join(_short(c) for c in commands[name]) + "`", Stat(seconds[name]),
             ratio(seconds[name], seconds["nncli train"]) if name.endswith("script") else ""]
            for name in process_names]
    body_b = (
        "Wall time of each command as a subprocess (`subprocess.run`, cwd = the repo), after one untimed "
        f"`nncli train` that warms nncli's kernel cache. nncli is run as `{nncli[0]}` (the console script "
        "itself, not a pyenv shim). The scripts are the same runs whose loop times 1a reports.\n\n"
        + md_table(["what", "command", "seconds", "time ratio vs nncli train"], rows)
        + seconds.note
    )
    med = {name: Stat(s).median for name, s in seconds.items()}
    return [Section(title_a, body_a, _pima_loop_limits(med, loop_names)),
            Section(title_b, body_b, _pima_process_limits(med, loop_names, seconds))]


def _pima_loop_limits(med: dict, names: list) -> str:
    us = {n: med[n] / PIMA_STEPS * 1e6 for n in names}
    step_flops = PIMA_BATCH * flops_per_row(PIMA_LAYERS)
    weights = sum(a * b for a, b in zip(PIMA_LAYERS[:-1], PIMA_LAYERS[1:]))
    return (
        f"**1a (Pima loop).** A step is ≈{step_flops:,} flops (batch {PIMA_BATCH}, {weights} weights): at "
        f"{num(us['nncli'])} µs/step nncli computes at {num(step_flops / us['nncli'] / 1e3)} GFLOP/s, so no system "
        "here is limited by arithmetic; each pays a fixed cost per step. "
        + "".join(f"{n} spends {num(us[n])} µs/step ({num(us[n] / us['nncli'])}× nncli): {WHY_PER_STEP[n]}. "
                  for n in names if n != "nncli")
        + f"nncli {WHY_PER_STEP['nncli']} (the sweep splits each cost into fixed and per-row parts)."
    )


WHY_PER_STEP = {
    "PyTorch": "Python and dispatcher work for every module, the loss, each autograd node and Adam's per-tensor "
               "update, on tensors of 10 rows",
    "sklearn": "several numpy calls on tiny arrays per layer, forward and backward, plus its Adam update",
    "nncli": "runs a whole epoch in one compiled call, so its per-step cost is its own loop code",
}


def _pima_process_limits(med: dict, names: list, seconds) -> str:
    rest = med["nncli train"] - med["import nncli.train"] - med["nncli"]
    text = (f"**1b (whole process).** `nncli train` takes {num(med['nncli train'])} s: starting the interpreter "
            f"and importing what training needs (numpy, pandas, numba, the kernel modules) "
            f"{num(med['import nncli.train'])} s (`import nncli.train`; the CLI alone, `nncli --version`, "
            f"{num(med['nncli --version'])} s), the training loop {num(med['nncli'])} s (1a); "
            + (f"the remaining ≈{num(rest)} s is loading the cached kernels, reading and preprocessing the CSV and "
               "writing the model." if rest > 0 else
               "loading the cached kernels, reading and preprocessing the CSV and writing the model take less than "
               "the run-to-run spread of these medians (the import alone ranged "
               f"{num(min(seconds['import nncli.train']))}-{num(max(seconds['import nncli.train']))} s).")
            + (" Start-up, not training, is what a user of nncli waits for here." if med["nncli"] < med["nncli train"] / 2
               else ""))
    for n in names:
        if n != "nncli":
            text += (f" The {n} script takes {num(med[n + ' script'])} s, of which {num(med[n])} s is its training "
                     f"loop and ≈{num(med[n + ' script'] - med[n])} s start-up, imports and data loading.")
    return text


# --- 2. Batch-size sweep on the Pima net ---------------------------------------------------

def sweep_epochs(settings: Settings, batch: int) -> int:
    steps_per_epoch = math.ceil(PIMA_ROWS / batch)
    return max(math.ceil(settings.sweep_rows / PIMA_ROWS), math.ceil(settings.sweep_steps / steps_per_epoch))


def batch_sweep(env: Env) -> list[Section]:
    title = "2. Batch-size sweep (Pima net)"
    if env.pima is None:
        return [Section(title, PIMA_MISSING)]
    import nncli.config

    data = np.loadtxt(env.pima, delimiter=",")
    X, y = data[:, :8], data[:, 8]
    systems = {}
    for batch in SWEEP_BATCHES:
        epochs = sweep_epochs(env.settings, batch)
        if env.torch is not None:
            systems[batch, "PyTorch"] = torch_system(env, PIMA_LAYERS, X, y, epochs, batch)
        if env.sklearn is not None:
            systems[batch, "sklearn"] = sklearn_system(PIMA_LAYERS, X, y, epochs, batch)
        cfg = nncli.config.load(PIMA_CONFIG, [f"train.batch_size={batch}", f"train.epochs={epochs}"])
        systems[batch, "nncli"] = nncli_system(env.pima, cfg, epochs * math.ceil(PIMA_ROWS / batch))
    seconds = alternate(systems, env.settings.repeats, "batch sweep", _budget(env, "sweep"))
    names = list(dict.fromkeys(name for _, name in systems))
    others = [n for n in names if n != "nncli"]
    rows, us_step = [], {n: [] for n in names}
    for batch in SWEEP_BATCHES:
        epochs = sweep_epochs(env.settings, batch)
        steps = epochs * math.ceil(PIMA_ROWS / batch)
        rows.append([batch, epochs, f"{steps:,}"]
                    + [Stat(seconds[batch, n]).map(lambda t: epochs * PIMA_ROWS / t) for n in names]
                    + [ratio(seconds[batch, n], seconds[batch, "nncli"]) for n in others])
        for n in names:
            us_step[n].append(Stat(seconds[batch, n]).median / steps * 1e6)
    body = (
        f"Pima net and data as in 1a, batch size varied. Each run trains on at least {env.settings.sweep_rows:,} rows "
        f"(whole epochs) and takes at least {env.settings.sweep_steps} steps, so small batches are not timed over "
        "hundreds of thousands of steps and large ones not over a handful: epochs = max(⌈rows/768⌉, "
        "⌈steps/steps per epoch⌉). Figures are training rows per second (epochs × 768 / loop seconds).\n\n"
        + md_table(["batch", "epochs", "steps"] + [f"{n} rows/s" for n in names]
                   + [f"time ratio {n}/nncli" for n in others], rows)
        + seconds.note
    )
    fits = {n: _fixed_and_per_row(us) for n, us in us_step.items()}
    nn_fixed, nn_row = fits["nncli"]
    lo, hi = SWEEP_BATCHES[0], SWEEP_BATCHES[-1]
    limits = (
        "**2 (batch sweep).** Fitting each system's median µs/step to *fixed + per-row × batch* (least squares on "
        "relative error) gives: " + "; ".join(
            f"{n} {num(a)} µs + {num(b)} µs/row" + ("" if n == "nncli" else f" ({num(a / nn_fixed)}× and {num(b / nn_row)}× nncli's)")
            for n, (a, b) in fits.items())
        + ". The per-row work outweighs the fixed per-step cost from a batch of about "
        + ", ".join(f"{num(a / b)} rows for {n}" + (" (beyond the batches measured)" if a / b > hi else "")
                    if b > 0 else f"never for {n}" for n, (a, b) in fits.items())
        + ": below that a system is limited by its per-step overhead, above it by arithmetic and memory traffic "
        "per row."
        + "".join(f" From batch {lo} to {hi} the {n}/nncli time ratio goes from "
                  f"{num(ratio(seconds[lo, n], seconds[lo, 'nncli']).median)} to "
                  f"{num(ratio(seconds[hi, n], seconds[hi, 'nncli']).median)}." for n in others)
        + " Wide min–max ranges mark rounds disturbed by other load (see the busy note)."
    )
    return [Section(title, body, limits)]


def _fixed_and_per_row(us_per_step: list[float]) -> tuple[float, float]:
    b = np.array(SWEEP_BATCHES, dtype=float)
    us = np.array(us_per_step)
    per_row, fixed = np.polyfit(b, us, 1, w=1 / us)
    return float(fixed), float(per_row)


# --- 3. Large synthetic workload ----------------------------------------------------------

LARGE_CONFIG = """\
# python -m bench, workload 3: synthetic regression, 32 -> 256 ReLU -> 256 ReLU -> 1
data: {header: true, target: y, task: regression}
model:
  hidden:
    - {units: 256, activation: relu}
    - {units: 256, activation: relu}
train:
  epochs: 1
  batch_size: 256
  optimizer: {name: adam, lr: 0.001}
  loss: mse
  shuffle: false
  dtype: float32
"""


def synthetic(rows: int, folder: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    """Seeded float32 regression data, also written as a CSV with a header."""
    rng = np.random.default_rng(20240601)
    d = LARGE_LAYERS[0]
    X = rng.standard_normal((rows, d), dtype=np.float32)
    w = rng.standard_normal(d, dtype=np.float32) / np.float32(math.sqrt(d))
    y = (np.tanh(X @ w) + 0.1 * rng.standard_normal(rows, dtype=np.float32)).astype(np.float32)
    path = folder / f"synthetic_{rows}x{d}.csv"
    header = ",".join([f"x{j}" for j in range(d)] + ["y"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.7g", header=header, comments="")
    return X, y, path


def gemm_only(rows: int, layers, batch: int, dtype, halves: bool = False):
    """The GEMMs of one epoch at the same shapes, straight from numpy: a floor for any MLP code.
    halves: as nncli's split steps run them (nncli.kernels.mlp.train_epoch_split), each half of
    every batch on a thread of its own with one BLAS thread each, and no waiting between steps."""
    rng = np.random.default_rng(0)
    shapes = list(zip(layers[:-1], layers[1:]))
    rows_per_call = batch // 2 if halves else batch

    def buffers():
        A = [rng.standard_normal((rows_per_call, a)).astype(dtype) for a, _ in shapes]
        Z = [np.empty((rows_per_call, b), dtype) for _, b in shapes]
        return A, Z, [np.empty((a, b), dtype) for a, b in shapes], [np.empty_like(a) for a in A]

    W = [rng.standard_normal((a, b)).astype(dtype) for a, b in shapes]
    parts = [buffers() for _ in range(2 if halves else 1)]
    steps = math.ceil(rows / batch)

    def epoch(A, Z, dW, dA):
        for _ in range(steps):
            for l in range(len(shapes)):
                np.dot(A[l], W[l], out=Z[l])  # forward
            for l in reversed(range(len(shapes))):
                np.dot(A[l].T, Z[l], out=dW[l])  # weight gradient
                if l > 0:
                    np.dot(Z[l], W[l].T, out=dA[l])  # delta to the layer below

    if not halves:
        return lambda: timed(lambda: epoch(*parts[0]))

    def two_threads():
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            workers = [threading.Thread(target=epoch, args=part) for part in parts]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

    return lambda: timed(two_threads)


def peak_system(n: int, dtype, calls: int = 1) -> Callable[[], float]:
    """The matmul peak as an alternated system: seconds of the best of `calls` np.dot calls of n²
    matrices (2n³ flops each)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    c = np.empty_like(a)
    np.dot(a, a, out=c)  # warm: threads up, pages touched
    return lambda: min(timed(lambda: np.dot(a, a, out=c)) for _ in range(calls))


def matmul_peak(env: Env) -> dict:
    n = env.settings.peak_n
    systems = {np.dtype(dtype).name: peak_system(n, dtype) for dtype in (np.float32, np.float64)}
    seconds = alternate(systems, 2 * env.settings.repeats)  # cheap, and a peak wants a quiet moment
    return {name: Stat(s).map(lambda t: 2 * n**3 / t / 1e9) for name, s in seconds.items()}


def large(env: Env) -> list[Section]:
    import nncli.config

    rows_n, batch = env.settings.large_rows, 256
    steps = math.ceil(rows_n / batch)
    title = f"3. Large: synthetic {rows_n:,} × {LARGE_LAYERS[0]} regression, 32→256→256→1"
    peak = matmul_peak(env)
    X, y, csv = synthetic(rows_n, env.tmp)
    cfg_path = env.tmp / "large.yaml"
    cfg_path.write_text(LARGE_CONFIG, encoding="utf-8")
    systems, dtypes, train_total = {}, {}, {}
    if env.torch is not None:
        systems["PyTorch"], dtypes["PyTorch"] = torch_system(env, LARGE_LAYERS, X, y, 1, batch), "float32"
    if env.sklearn is not None:
        for dt in ("float32", "float64"):
            systems[f"sklearn {dt}"] = sklearn_system(LARGE_LAYERS, X.astype(dt), y.astype(dt), 1, batch, True)
            dtypes[f"sklearn {dt}"] = dt
    for dt in ("float32", "float64"):
        # the peak of each round, so that a round can be set against the machine's speed in it
        systems[f"peak {dt}"] = peak_system(env.settings.peak_n, np.dtype(dt), calls=3)
    for dt in ("float32", "float64"):
        cfg = nncli.config.load(cfg_path, [f"train.dtype={dt}"])
        systems[f"nncli {dt}"] = nncli_system(
            csv, cfg, steps, lambda r, dt=dt: train_total.setdefault(dt, []).append(r.timing["total_seconds"]))
        dtypes[f"nncli {dt}"] = dt
    for dt in ("float32", "float64"):
        systems[f"numpy GEMMs only {dt}"] = gemm_only(rows_n, LARGE_LAYERS, batch, np.dtype(dt))
        systems[f"numpy GEMMs in halves {dt}"] = gemm_only(rows_n, LARGE_LAYERS, batch, np.dtype(dt), halves=True)
        dtypes[f"numpy GEMMs only {dt}"] = dtypes[f"numpy GEMMs in halves {dt}"] = dt
    seconds = alternate(systems, env.settings.repeats, "large", _budget(env, "large"))

    work = rows_n * flops_per_row(LARGE_LAYERS)
    round_peaks = {dt: Stat(seconds.pop(f"peak {dt}")).map(lambda t: 2 * env.settings.peak_n**3 / t / 1e9)
                   for dt in ("float32", "float64")}
    table, shares = [], {}
    for name, s in seconds.items():
        gflops = Stat(s).map(lambda t: work / t / 1e9)
        same_round = Stat([100 * g / p for g, p in zip(gflops.values, round_peaks[dtypes[name]].values)])
        shares[name] = same_round
        table.append([name, dtypes[name], Stat(s), Stat(s).map(lambda t: rows_n / t), gflops,
                      f"{100 * gflops.median / max(peak[dtypes[name]].values):.0f}%", same_round,
                      "1 (reference)" if name.startswith("nncli") else ratio(s, seconds[f"nncli {dtypes[name]}"])])
    body = (
        f"{rows_n:,} rows × {LARGE_LAYERS[0]} float32 features (seeded numpy), target tanh(x·w) + noise, written to a "
        f"CSV with a header. Net 32→256 ReLU→256 ReLU→1, MSE, Adam lr 1e-3, batch {batch}, 1 epoch "
        f"({steps:,} steps), no shuffling. nncli trains through `nncli.train.train` on the CSV (config written to the "
        f"temp folder, `train.dtype` overridden); only its loop is timed. PyTorch and sklearn train on the in-memory "
        f"arrays. \"numpy GEMMs only\" issues just the matrix products of the same epoch (forward, weight gradient, "
        f"back-propagated delta) and is a floor for any implementation on this BLAS; \"numpy GEMMs in halves\" issues "
        f"them as nncli's halves do, each half of every batch on a thread of its own with one BLAS thread each (no "
        f"waiting between steps; nncli's threads also share out the weight gradients, so a slower core costs nncli "
        f"less than these fixed halves). GFLOP/s counts "
        f"3 × 2 × rows × (32·256 + 256·256 + 256·1) = {work / 1e9:.1f} GFLOP.\n\n"
        f"Matrix-multiply peak (numpy `np.dot` of {env.settings.peak_n}² matrices, 2n³ flops, "
        f"{len(peak['float32'].values)} rounds): float32 {peak['float32']} GFLOP/s, float64 {peak['float64']} GFLOP/s. "
        "Other load only lowers it, so \"% of peak\" divides a system's median by the best round. The peak is "
        "also taken in every round of the table below (best of three calls, just before nncli's runs): "
        f"float32 {round_peaks['float32']}, float64 {round_peaks['float64']} GFLOP/s; \"% of the round's peak\" "
        "sets each round's GFLOP/s against that round's peak, so that a slower host in one round (this machine "
        "is shared) lowers both sides of the ratio.\n\n"
        + md_table(["system", "dtype", "loop seconds", "rows/s", "GFLOP/s", "% of peak (same dtype)",
                    "% of the round's peak", "time ratio vs nncli (same dtype)"], table)
        + "\n\nnncli's whole `train()` call, including reading and preprocessing the CSV: "
        + ", ".join(f"{dt} {Stat(t)} s" for dt, t in train_total.items()) + "."
        + seconds.note
    )
    med = {name: Stat(s).median for name, s in seconds.items()}
    limits = _large_limits(med, {dt: max(p.values) for dt, p in peak.items()}, shares, work, steps,
                           {dt: Stat(t).median for dt, t in train_total.items()})
    return [Section(title, body, limits)]


def _large_limits(med: dict, peak: dict, shares: dict, work: float, steps: int, train_total: dict) -> str:
    n_params = sum(a * b + b for a, b in zip(LARGE_LAYERS[:-1], LARGE_LAYERS[1:]))
    text = (f"**3 (large).** Arithmetic dominates here ({work / steps / 1e6:.0f} MFLOP per step). A step this large "
            "(batch rows × weights ≥ 2²¹, batch ≥ 128) trains in two halves at once, one per core "
            "(nncli.kernels.mlp.train_epoch_split): each thread gathers its 128 rows and runs forward, loss and "
            "backward with a one-thread BLAS, but leaves the weight-gradient GEMMs (a third of the arithmetic) as "
            "blocks that whichever thread is free computes; then the threads sum the halves' gradients and apply "
            "Adam, claiming the parameters eight shares at a time, so that a core running slower (this machine's "
            "cores are shared) hands work to the other instead of holding it at a barrier; the threads meet at a "
            "spin barrier (nncli.kernels.sync) twice a step (the update follows each share's sum on the "
            "thread that summed it; a run that clips by norm meets three times).")
    for dt in ("float32", "float64"):
        nn, gemm, halves = med[f"nncli {dt}"], med[f"numpy GEMMs only {dt}"], med[f"numpy GEMMs in halves {dt}"]
        share = lambda seconds: 100 * work / seconds / 1e9 / peak[dt]  # noqa: E731
        text += (f" nncli {dt} reaches {num(work / nn / 1e9)} GFLOP/s, {share(nn):.0f}% of the {dt} matmul peak "
                 f"({num(peak[dt])} GFLOP/s, the best round) and {shares[f'nncli {dt}'].median:.0f}% of the peak of "
                 f"the same round (median over rounds); the epoch's GEMMs alone, from numpy, reach {share(halves):.0f}% of it "
                 f"issued in halves as nncli issues them and {share(gemm):.0f}% issued whole on two BLAS threads")
        if halves < nn:
            text += (f". In halves they take {num(halves)} s, {100 * halves / nn:.0f}% of nncli's loop ({num(nn)} s): "
                     f"the other {num(nn - halves)} s is nncli's work outside those GEMMs.")
        else:
            text += (f", but in halves took {num(halves)} s, longer than nncli's whole loop ({num(nn)} s): numpy's "
                     "halves are fixed, one per thread, so a core running slower holds up its half of the epoch, while "
                     "nncli's threads share out the weight gradients and the update.")
    text += (" These GEMMs are thin (k or n is 32 or 1; m is 128 rows a half), so even one BLAS thread per core "
             "runs them below the square-matrix peak. What nncli adds to the GEMMs is bias adds, activation and "
             f"derivative loops, the row gather, summing the halves' gradients and the Adam update of {n_params:,} "
             "parameters per step, the waits at the barriers, and whatever differs between numba's BLAS "
             "(scipy's OpenBLAS) and numpy's. Why one BLAS thread per half: two calls at once into a two-thread "
             "OpenBLAS wait for each other's thread pool (on this machine, two threads each issuing half-batch "
             "GEMMs reached 56 GFLOP/s with two BLAS threads, 151 with one).")
    if "PyTorch" in med:
        text += f" PyTorch's loop takes {num(med['PyTorch'] / med['nncli float32'])}× nncli's float32 loop."
    text += (f" nncli float64 takes {num(med['nncli float64'] / med['nncli float32'])}× its float32 time, for a "
             f"matmul peak {num(peak['float64'] / peak['float32'])}× the float32 one. As a user runs it, nncli's "
             f"whole float32 `train()` takes {num(train_total['float32'])} s for a {num(med['nncli float32'])} s loop: "
             f"reading and preprocessing the CSV costs {num(train_total['float32'] / med['nncli float32'] - 1)}× the "
             "training. Every system here keeps both cores busy, so this workload is the most sensitive to other "
             "processes (see the busy note and the min–max ranges).")
    return text


AIDS = {  # name -> (config overrides, train(every=...)): what each aid costs on the lecture's workload
    "plain": ([], 0),
    "dropout 0.1, both layers": (["model.hidden=[{units: 12, activation: relu, dropout: 0.1}, "
                                  "{units: 8, activation: relu, dropout: 0.1}]"], 0),
    "batch norm before, both layers": (["model.hidden=[{units: 12, activation: relu, batch_norm: before}, "
                                        "{units: 8, activation: relu, batch_norm: before}]"], 0),
    "inspect-grads, every step": ([], 1),
}


def aids(env: Env) -> list[Section]:
    """The cost per step of dropout, batch norm and gradient recording against a plain run."""
    title = "4. Training aids and inspect-grads on the Pima workload"
    if env.pima is None:
        return [Section(title, PIMA_MISSING)]
    import nncli.config
    from nncli.train import train

    def system(overrides, every):
        cfg = nncli.config.load(PIMA_CONFIG, overrides)
        return lambda: train(env.pima, cfg, every=every).timing["loop_seconds"]

    systems = {name: system(*spec) for name, spec in AIDS.items()}
    seconds = alternate(systems, env.settings.repeats, "aids", _budget(env, "aids"))
    rows = [[name, Stat(seconds[name]).map(lambda t: t / PIMA_STEPS * 1e6), ratio(seconds[name], seconds["plain"])]
            for name in AIDS]
    body = ("configs/pima.yaml (7,700 steps of batch 10) as in 1a, with one aid switched on at a time; "
            "`inspect-grads, every step` is `train(..., every=1)`, which is what `nncli inspect-grads --every 1` "
            "runs: per-layer gradient statistics recorded inside the compiled loop at every step. Every variant "
            "runs the whole epoch in one compiled call.\n\n"
            + md_table(["variant", "µs/step", "time ratio vs plain"], rows) + seconds.note)
    med = {name: Stat(seconds[name]).median for name in AIDS}
    limits = ("**4 (aids).** " + "; ".join(f"{name} costs {num(med[name] / med['plain'])}× a plain step"
                                          for name in AIDS if name != "plain")
              + ". Recording reads every gradient and weight once more per step (norms, max, non-finite counts, "
                "dead/saturated shares, the update ratio), about as much memory traffic as a backward pass.")
    return [Section(title, body, limits)]


# the data-path workloads, in their own modules (they use this module's helpers)
from bench.scaling import scaling
from bench.streaming import streaming

WORKLOADS = {"pima": pima, "sweep": batch_sweep, "large": large, "aids": aids, "scaling": scaling, "stream": streaming}


def _cold(env: Env) -> list[Section]:
    from bench.cold import cold  # bench.cold imports this module
    return cold(env)


WORKLOADS["cold"] = _cold


def temp_folder():
    return tempfile.TemporaryDirectory(prefix="nncli-bench-")
