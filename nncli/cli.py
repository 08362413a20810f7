"""The command line: parse options, call one plain function, hand its result to the report.

The only module that imports typer. Heavy imports (numpy, pandas, numba) happen inside the
commands, so `nncli --help` and `nncli --version` stay fast.
"""

import contextlib
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions

from nncli import __version__
from nncli.errors import EXIT_CODES, INTERNAL, INTERRUPTED, OUTPUT, USAGE, NncliError, OutputError

# OpenBLAS starts its worker threads when numpy or scipy loads it, and an idle worker spins for
# 2**28 cycles (about 0.1 s) before it sleeps: with numpy's and scipy's copies, two threads spun
# through every run's start-up (0.25 s of CPU on a 2-core machine), taking turns with the main
# thread, the parse threads and the compiling helper process for the cores. 2**20 cycles (about
# 0.3 ms) still keeps a worker awake between the GEMMs of one step. Set before the imports, and
# inherited by the helper process; a value the user set is kept.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

# Raised for `nncli` without arguments: its message is the help (empty where typer's layout printed it).
_NoArgsIsHelp = getattr(click_exceptions, "NoArgsIsHelpError", ())

_EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."

# Help is typer's boxed layout on a terminal and plain text elsewhere (a pipe, a script, a file):
# the layout imports rich's markdown and syntax modules, 0.13 s of `nncli --help`.
app = typer.Typer(
    name="nncli", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="rich" if sys.stdout.isatty() else None,
    help="Train, evaluate and apply multi-layer perceptrons on tabular CSV data.\n\n" + _EXIT_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}


def _version(value: bool):
    if value:
        print(f"nncli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")] = False,
):
    _state["debug"] = debug


def _console():
    from nncli.report import stderr_console

    return stderr_console()


def _progress(console):
    """Per-epoch progress on console; without one, no callback at all."""
    if console is None:
        return contextlib.nullcontext()
    from nncli.report import TrainProgress

    return TrainProgress(console)


def _emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _clean(obj):
    """NaN is not JSON: report it as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _check_writable(path: Path) -> None:
    """Fail before any work if the output folder cannot take the file."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {folder} is not writable")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder")


HeaderOpt = Annotated[Optional[bool], typer.Option(
    "--header/--no-header", help="The data has (or has not) a header row; default: data.header (auto).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]
DelimiterOpt = Annotated[Optional[str], typer.Option(
    "--delimiter", help="Field separator of the CSV (data.delimiter; default ',' or the model's).")]
EncodingOpt = Annotated[Optional[str], typer.Option(
    "--encoding", help="Text encoding of the CSV (data.encoding; default utf-8 or the model's).")]
ChunkRowsOpt = Annotated[int, typer.Option(min=1, help="At most this many rows read and predicted at a time.")]
CHUNK_ROWS = 100_000  # nncli.predict.DEFAULT_CHUNK_ROWS, not imported here: that takes pandas and numba


def _return_freed_blocks() -> None:
    """Have glibc's malloc give blocks of 1 MiB and more back to the system when they are freed.

    For commands that read a whole training file into arrays. The reader parses the file in
    blocks of 4 MiB on several threads (nncli.data). By default glibc raises its mmap threshold
    after the first such block is freed, and keeps later blocks in per-thread heaps. Those heaps
    then stayed on top of the training array. `nncli train` on 500,000 rows x 32 columns peaked
    at 276-294 MiB; with this it peaked at 267-270 MiB, and no slower (alternating runs).
    `nncli predict` keeps the default: it holds no whole array, and mapping fresh pages for every
    block made it slower. A no-op where malloc is not glibc's.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or one without mallopt
        return
    M_MMAP_THRESHOLD = -3
    mallopt(M_MMAP_THRESHOLD, 1 << 20)


def _format_overrides(delimiter, encoding) -> list[str]:
    out = []
    if delimiter is not None:
        out.append(f"data.delimiter={json.dumps(delimiter)}")
    if encoding is not None:
        out.append(f"data.encoding={json.dumps(encoding)}")
    return out


def _load_model(path, delimiter=None, encoding=None):
    """Load a model file; --delimiter/--encoding replace the training file's for this run."""
    from nncli.model import load

    model = load(path)
    for key, value in (("delimiter", delimiter), ("encoding", encoding)):
        if value is not None:
            model.config["data"][key] = value
    return model


@app.command(epilog="Example: nncli train ../shared/data/pima-indians-diabetes.csv --config configs/pima.yaml "
                    "--no-header --val-split 0.25 --out pima.npz")
def train(
    data: Annotated[Path, typer.Argument(help="Training CSV file.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (default: built-in).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Model file (default: CONFIG_NAME.npz).")] = None,
    target: Annotated[Optional[str], typer.Option(help="Target column name or index (data.target).")] = None,
    val_split: Annotated[Optional[float], typer.Option(help="Share of rows for validation (train.val_split).")] = None,
    val: Annotated[Optional[Path], typer.Option("--val", help="Validation CSV file (train.val_file).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="train.epochs")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="train.batch_size")] = None,
    lr: Annotated[Optional[float], typer.Option(help="train.optimizer.lr")] = None,
    seed: Annotated[Optional[int], typer.Option(help="train.seed")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config key, e.g. --set train.optimizer.lr=0.01 (repeatable).")] = None,
    header: HeaderOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")] = False,
    grad_report: Annotated[bool, typer.Option(
        "--grad-report", help="Record gradient statistics and print the inspect-grads table at the end.")] = False,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue the run a SIGINT/SIGTERM stopped, from the checkpoint it saved "
                         "(same data, config and options).")] = None,
):
    """Train an MLP on a CSV file and save the model file."""
    overrides = list(set_ or [])
    for key, value in (("data.target", target), ("train.val_split", val_split), ("train.epochs", epochs),
                       ("train.batch_size", batch_size), ("train.optimizer.lr", lr), ("train.seed", seed)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if header is not None:
        overrides.append(f"data.header={'true' if header else 'false'}")
    overrides += _format_overrides(delimiter, encoding)
    if val is not None and val_split is not None:
        raise typer.BadParameter("give --val-split or --val, not both")

    def run():
        from nncli import config as config_mod
        from nncli.model import load_checkpoint, save
        from nncli.train import train as train_fn

        _return_freed_blocks()
        cfg = config_mod.load(config, overrides)
        model_path = out or Path((config.stem if config else Path(data).stem) + ".npz")
        _check_writable(model_path)
        if model_path.exists() and model_path.resolve() == Path(data).resolve():
            raise OutputError(f"{model_path}: the model file would overwrite the training data")
        checkpoint = load_checkpoint(resume) if resume is not None else None
        # quiet and --json runs show nothing on stderr: they do without rich (0.05 s of imports)
        console = None if quiet or as_json else _console()
        with _progress(console) as progress, _StopOnSignal() as stop:
            result = train_fn(data, cfg, val_path=val, callback=progress, every=-1 if grad_report else 0,
                              control=stop.control, resume=checkpoint)
        if result.fit.interrupted is not None:
            _save_checkpoint(result, data, model_path, stop.signal)
        save(result.model, model_path)
        report = None
        if grad_report:
            from nncli.gradients import Thresholds, analyse

            report = analyse(result.fit.records, result.model.network, Thresholds(), result.fit.diverged)
        if as_json:
            extra = {"gradients": report.to_dict()} if report is not None else {}
            _emit_json(_clean({"model": str(model_path), **result.model.summary, "history": result.model.history,
                               "timing": result.timing, **extra}))
        elif not quiet:
            from nncli.report import learning_curve, train_summary

            train_summary(console, result, model_path)
            learning_curve(console, result.model.history)
            if report is not None:
                from nncli.report import grad_report as show

                show(console, report)

    _run(run)


def _note_unused(model, data, keep=()) -> None:
    from nncli.predict import unused_columns

    unused = unused_columns(model, data, keep)
    if unused:
        print(f"nncli: note: {data}: ignoring column(s) the model does not use: {', '.join(unused)}",
              file=sys.stderr)


class _StopOnSignal:
    """While active, SIGINT and SIGTERM ask the training kernel to stop before its next step."""

    def __init__(self):
        import numpy as np

        self.control = np.zeros(1, dtype=np.int64)
        self.signal = None
        self._old = {}

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second signal: stop at once
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.signal = signum
        self.control[0] = 1

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _save_checkpoint(result, data, model_path: Path, signum) -> None:
    from nncli.data import file_digest
    from nncli.errors import TERMINATED
    from nncli.model import save_checkpoint

    path = model_path.with_name(model_path.name.removesuffix(".npz") + ".ckpt.npz")
    save_checkpoint(result.model, result.fit.state, file_digest(data), path)
    where = result.fit.interrupted
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
    print(f"nncli: {name}: stopped at epoch {where['epoch']}, step {where['step']}; checkpoint saved to {path} "
          f"(continue with the same command and --resume {path})", file=sys.stderr)
    raise typer.Exit(TERMINATED if signum == signal.SIGTERM else INTERRUPTED)


@app.command("eval", epilog="Example: nncli eval pima.npz test.csv --json")
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model file written by nncli train.")],
    data: Annotated[Path, typer.Argument(help="Labelled CSV file.")],
    chunk_rows: ChunkRowsOpt = CHUNK_ROWS,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    as_json: JsonOpt = False,
):
    """Print metrics of a model on labelled data."""
    def run():
        from nncli.predict import evaluate as evaluate_fn
        from nncli.report import metrics_table

        loaded = _load_model(model, delimiter, encoding)
        _note_unused(loaded, data)
        result = evaluate_fn(loaded, data, chunk_rows=chunk_rows)
        if as_json:
            _emit_json(_clean(result))
        else:
            metrics_table(_console(), _clean(result), f"{model.name} on {data.name}")

    _run(run)


@app.command(epilog="Example: nncli predict pima.npz new.csv --proba -o predictions.csv")
def predict(
    model: Annotated[Path, typer.Argument(help="Model file written by nncli train.")],
    data: Annotated[Path, typer.Argument(help="CSV file to predict (the target column may be absent).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output CSV (default: stdout).")] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add one probability column per class.")] = False,
    keep: Annotated[Optional[list[str]], typer.Option("--keep", help="Copy this input column (repeatable).")] = None,
    chunk_rows: ChunkRowsOpt = CHUNK_ROWS,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
):
    """Write one prediction per input row as CSV."""
    def run():
        from nncli.predict import predict as predict_fn

        if out is not None:
            _check_writable(out)
        loaded = _load_model(model, delimiter, encoding)
        _note_unused(loaded, data, keep or [])
        predict_fn(loaded, data, out, proba=proba, keep=keep or [], chunk_rows=chunk_rows)

    _run(run)


@app.command(epilog="Example: nncli info pima.npz --json")
def info(
    model: Annotated[Path, typer.Argument(help="Model file written by nncli train.")],
    as_json: JsonOpt = False,
):
    """Show a model's architecture, data schema, training summary and versions."""
    def run():
        from nncli.model import describe, load
        from nncli.report import model_info

        details = describe(load(model), model)
        if as_json:
            _emit_json(_clean(details))
        else:
            model_info(_console(), _clean(details))

    _run(run)


@app.command(epilog="Example: nncli init ../shared/data/iris.csv > iris.yaml")
def init(
    data: Annotated[Path, typer.Argument(help="CSV file to write a config for.")],
    target: Annotated[Optional[str], typer.Option(help="Target column name or index (default: last).")] = None,
    header: HeaderOpt = None,
):
    """Print a starter config for a CSV file on stdout."""
    def run():
        from nncli.starter import starter_config

        sys.stdout.write(starter_config(data, target, "auto" if header is None else str(header).lower()))

    _run(run)


@app.command("inspect-grads", epilog="Example: nncli inspect-grads data.csv --config deep.yaml --every 5 "
                                     "--fail-on vanishing,nan")
def inspect_grads(
    data: Annotated[Path, typer.Argument(help="Training CSV file.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (default: built-in).")] = None,
    model: Annotated[Optional[Path], typer.Option(
        "--model", help="Inspect this trained model on DATA (one pass, no training) instead.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="train.epochs")] = None,
    every: Annotated[int, typer.Option(min=0, help="Record every K-th step (0: about 400 records).")] = 0,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key (repeatable).")] = None,
    header: HeaderOpt = None,
    as_json: JsonOpt = False,
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Write the per-step records to this CSV.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Draw the gradient norm per layer over training to this .png or .svg (needs nncli[plot]).")] = None,
    fail_on: Annotated[str, typer.Option(
        help="Exit with code 8 if any of these is found: vanishing, exploding, nan, dead (comma-separated).")] = "",
    vanishing: Annotated[float, typer.Option(help="Vanishing: first/output gradient-norm ratio below this.")] = 1e-3,
    exploding: Annotated[float, typer.Option(help="Exploding: global gradient norm grows more than this.")] = 1e3,
    dead: Annotated[float, typer.Option(help="Dead: share of dead relu units in a layer at least this.")] = 0.5,
):
    """Train as `train` would and report vanishing, exploding, NaN and dead gradients per layer."""
    overrides = list(set_ or [])
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    if header is not None:
        overrides.append(f"data.header={'true' if header else 'false'}")

    def run():
        from nncli import config as config_mod
        from nncli.errors import GRADIENT_PROBLEM
        from nncli.gradients import VERDICTS, Thresholds, inspect, records_csv
        from nncli.model import atomic_write
        from nncli.report import TrainProgress, grad_report

        _return_freed_blocks()
        wanted = {w.strip() for w in fail_on.split(",") if w.strip()}
        unknown = wanted - set(VERDICTS)
        if unknown:
            raise typer.BadParameter(f"unknown problem(s) {', '.join(sorted(unknown))}; choose from "
                                     f"{', '.join(VERDICTS)}", param_hint="--fail-on")
        if csv is not None:
            _check_writable(csv)
        if plot is not None:
            from nncli.plots import require

            require(plot)
            _check_writable(plot)
        trained = _load_model(model) if model is not None else None
        cfg = trained.config if trained is not None else config_mod.load(config, overrides)
        console = _console()
        with TrainProgress(console, quiet=as_json or trained is not None) as progress:
            report, _ = inspect(data, cfg, every=every, model=trained, callback=progress,
                                thresholds=Thresholds(vanishing=vanishing, exploding=exploding, dead=dead))
        if csv is not None:
            text = records_csv(report).encode()
            atomic_write(csv, lambda f: f.write(text))
        if plot is not None:
            from nncli.plots import grad_plot

            grad_plot(report, plot)
        if as_json:
            _emit_json(_clean(report.to_dict()))
        else:
            grad_report(console, report)
        found = report.problems & wanted
        if found:
            print(f"nncli: gradient problem(s) found: {', '.join(sorted(found))}", file=sys.stderr)
            raise typer.Exit(GRADIENT_PROBLEM)

    _run(run)


@app.command(epilog="Example: nncli activations --plot activations.png")
def activations(
    as_json: JsonOpt = False,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Also draw each activation and its derivative to this .png or .svg (needs nncli[plot]).")] = None,
):
    """List every activation nncli knows, with its formula and parameters."""
    def run():
        from nncli.kernels.activations import ACTIVATIONS
        from nncli.report import activations_table

        if plot is not None:
            from nncli.plots import activations_plot, require

            require(plot)
            _check_writable(plot)
            activations_plot(plot)

        rows = [{"name": a.name, "formula": a.formula, "params": a.params, "family": a.family,
                 "trainable": a.trainable, "note": a.why_not} for a in ACTIVATIONS.values()]
        if as_json:
            _emit_json(rows)
        else:
            activations_table(_console(), rows)

    _run(run)


@app.command(epilog="Example: nncli plot circle.npz --data circle.csv --data test.csv -o circle.png")
def plot(
    model: Annotated[Path, typer.Argument(help="Model file written by nncli train.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture file, .png or .svg.")],
    data: Annotated[Optional[list[Path]], typer.Option(
        "--data", help="Draw this CSV's rows on the surface (repeatable: e.g. the training and the test file).")] = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
):
    """Draw a model: its decision surface with data points (two-column models) and its learning curves.

    Needs the plot extra: pip install 'nncli[plot]'.
    """
    def run():
        from nncli.plots import model_plot, require

        require(out)
        _check_writable(out)
        note = model_plot(_load_model(model, delimiter, encoding), list(data or []), out)
        if note:
            print(f"nncli: note: {note}", file=sys.stderr)

    _run(run)


@app.command("make-data", epilog="Example: nncli make-data spiral --n 600 --noise 10 --seed 1 -o spiral.csv")
def make_data(
    name: Annotated[str, typer.Argument(
        help="Data set: circle, xor, gauss, spiral (classes 0/1), plane, multigauss (regression).")],
    n: Annotated[int, typer.Option("--n", "-n", help="Number of rows.")] = 500,
    noise: Annotated[float, typer.Option(help="Noise in percent, 0 to 50, as the Playground's slider.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output CSV (default: stdout).")] = None,
):
    """Write one of TensorFlow Playground's 2-D data sets as CSV (columns x1, x2, label)."""
    def run():
        from nncli.model import atomic_write
        from nncli.playground import csv_text, generate

        if out is not None:
            _check_writable(out)
        text = csv_text(*generate(name, n, noise, seed))
        if out is None:
            sys.stdout.write(text)
        else:
            atomic_write(out, lambda f: f.write(text.encode()))

    _run(run)


@app.command(epilog="Example: nncli warmup   (in a Dockerfile or a CI cache step)")
def warmup(as_json: JsonOpt = False):
    """Compile every kernel ahead of time (float32 and float64) and say where the cache lives."""
    def run():
        from nncli.train import warmup as warmup_fn

        result = warmup_fn()
        if as_json:
            _emit_json(result)
        elif result["cache_dir"]:
            print(f"nncli: kernels ready in {result['seconds']:.1f} s; cache: {result['cache_dir']}", file=sys.stderr)
        else:
            print("nncli: no writable cache folder: kernels compile in memory on every run", file=sys.stderr)

    _run(run)


def _run(fn) -> None:
    """Run a command body: nncli's errors become one line on stderr and their exit code."""
    try:
        fn()
    except NncliError as exc:
        if _state["debug"]:
            raise
        print(f"nncli: error: {exc.message}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("nncli: interrupted", file=sys.stderr)
        raise typer.Exit(INTERRUPTED) from None
    except BrokenPipeError:
        # the reader went away (`nncli predict ... | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None


def main() -> None:
    try:
        rv = app(standalone_mode=False)
    except _NoArgsIsHelp as exc:  # `nncli` alone: the help, then exit code 2
        if exc.format_message():  # plain help is the message (typer's layout was printed already)
            print(exc.format_message())
        sys.exit(USAGE)
    except click_exceptions.UsageError as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        print(f"nncli: error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(USAGE)
    except typer.Abort:  # typer.Abort/typer.Exit: the public names in every typer version
        print("nncli: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: one line, unless --debug asks for the traceback
        if _state["debug"]:
            raise
        print(f"nncli: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
              file=sys.stderr)
        sys.exit(INTERNAL)
    sys.exit(rv if isinstance(rv, int) else 0)


def console() -> None:
    """The `nncli` executable: main(), then exit without tearing the interpreter down.

    Python's own shutdown frees every module and object one by one and runs LLVM's static
    destructors: after a run that used numba that took 0.2-0.35 s, a fifth of `nncli train` on a
    small file, for nothing a finished process needs. Everything that matters is done first:
    atexit callbacks, then flushing stdout and stderr (a reader that went away is no error; any
    other failure to write is one line and exit code 7). Other callers of main(), including
    `python -m nncli` (so profilers and wrappers still get to run after it), keep the usual
    SystemExit.

    It also tells numba that cffi is absent (sys.modules["cffi"] = None, unless something imported
    it already): numba imports cffi and its C parser (pycparser) when it first types arguments,
    in case one is a cffi function, which nncli never passes. That import took 15-30 ms of every
    `nncli train` (python -X importtime).
    """
    sys.modules.setdefault("cffi", None)
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        code = exc.code or 0
    import atexit

    atexit._run_exitfuncs()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away, or the stream is closed
            pass
        except OSError as exc:  # e.g. a full disk
            code = code or OUTPUT
            with contextlib.suppress(OSError):
                os.write(2, f"nncli: error: cannot write {name}: {exc.strerror or exc}\n".encode())
    os._exit(code)
