"""Everything nncli shows a person: progress, tables and summaries. The only module using rich.

Logs and progress go to stderr; stdout is left to data (CSV, JSON). When stderr is not a
terminal, or NO_COLOR is set, or TERM=dumb, output is plain lines: no colour, no redraws.
"""

import math
import os
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text


def stderr_console() -> Console:
    plain = not sys.stderr.isatty() or os.environ.get("TERM") == "dumb"
    # without a terminal there is no width to fit: wide enough that tables are not cut
    return Console(stderr=True, no_color=plain or bool(os.environ.get("NO_COLOR")), highlight=False,
                   force_terminal=False if plain else None, soft_wrap=True, width=160 if plain else None)


def _fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def _rate(rows_per_s: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if rows_per_s >= size:
            return f"{rows_per_s / size:.1f}{unit}"
    return f"{rows_per_s:.0f}"


class TrainProgress:
    """Per-epoch callback: a live bar on a terminal, else one plain line per epoch."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not console.is_dumb_terminal and not quiet
        self.progress = None
        self.task = None

    def __enter__(self):
        if self.live:
            self.progress = Progress(
                TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
                TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=self.console, transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, r: dict) -> None:
        if self.quiet:
            return
        parts = [f"loss {_fmt(r['train_loss'])}"]
        if not math.isnan(r["val_loss"]):
            parts.append(f"val_loss {_fmt(r['val_loss'])}")
        if r["metric_name"]:
            parts.append(f"{r['metric_name']} {_fmt(r['val_metric'])}")
        parts.append(f"{_rate(r['rows_per_s'])} rows/s")
        status = "  ".join(parts)
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task("train", total=r["epochs"], status=status)
            self.progress.update(self.task, completed=r["epoch"], status=status)
        else:
            self.console.print(f"epoch {r['epoch']}/{r['epochs']}  {status}", markup=False)


def train_summary(console: Console, result, model_path) -> None:
    model = result.model
    s = model.summary
    t = Table(title="training summary", show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("task", f"{model.prep.task} ({s['loss']} loss)")
    t.add_row("rows", f"{result.n_train} train, {result.n_val} validation")
    t.add_row("network", architecture_line(model))
    t.add_row("epochs", f"{s['epochs_run']} ({s['stop_reason']}; best epoch {s['best_epoch']})")
    h = model.history
    # the model holds the best epoch's weights when early stopping restored them
    e = s["best_epoch"] if s.get("restored_best") else s["epochs_run"]
    which = f"epoch {e}" + (" (best, restored)" if s.get("restored_best") else "")
    t.add_row(f"train loss, {which}", _fmt(h["train_loss"][e - 1]))
    if "val_loss" in h:
        t.add_row(f"val loss, {which}", _fmt(h["val_loss"][e - 1]))
    if "val_metric" in h:
        t.add_row(f"{s.get('metric_name') or 'val metric'}, {which}", _fmt(h["val_metric"][e - 1]))
    t.add_row("time", f"{result.timing['total_seconds']:.2f} s total, {result.timing['loop_seconds']:.3f} s "
                      f"in the training loop ({result.timing['us_per_step']:.1f} us/step)")
    t.add_row("model", str(model_path))
    console.print(t)


def architecture_line(model) -> str:
    sizes = [str(model.network.n_inputs)] + [
        f"{s.units} {s.activation}" if i < len(model.network.layers) - 1 else f"{s.units}"
        for i, s in enumerate(model.network.layers)
    ]
    from nncli.model import OUTPUT_ACTIVATION

    out = OUTPUT_ACTIVATION[model.prep.task]
    return " -> ".join(sizes) + f" ({out} output, {model.network.n_params} parameters)"


def metrics_table(console: Console, m: dict, title: str) -> None:
    t = Table(title=title, show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key, value in m.items():
        if key in ("per_class", "confusion_matrix", "labels", "task"):
            continue
        t.add_row(key, _fmt(value))
    console.print(t)
    if "confusion_matrix" in m:
        c = Table(title="confusion matrix (rows: true, columns: predicted)")
        c.add_column("")
        for label in m["labels"]:
            c.add_column(label, justify="right")
        for label, row in zip(m["labels"], m["confusion_matrix"]):
            c.add_row(label, *map(str, row))
        console.print(c)
    if "per_class" in m:
        p = Table(title="per class")
        for col in ("class", "precision", "recall", "f1", "support"):
            p.add_column(col, justify="right")
        for label, v in m["per_class"].items():
            p.add_row(label, _fmt(v["precision"]), _fmt(v["recall"]), _fmt(v["f1"]), str(v["support"]))
        console.print(p)


def model_info(console: Console, info: dict) -> None:
    t = Table(title=f"model {info['file']}", show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for key in ("task", "network", "parameters", "dtype", "inputs", "target", "labels", "trained_on", "epochs",
                "saved_epoch", "versions"):
        if key in info:
            value = info[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            t.add_row(key, str(value))
    console.print(t)
    layers = Table(title="layers")
    cols = ("layer", "n_in", "n_out", "activation", "init", "dropout", "batch_norm", "params")
    for col in cols:
        layers.add_column(col, justify="right")
    for row in info["layers"]:
        layers.add_row(*(str(row[c]) for c in cols))
    console.print(layers)
    features = Table(title="input columns")
    for col in ("column", "kind", "fill", "center", "scale", "categories"):
        features.add_column(col, overflow="fold", no_wrap=col == "column")  # never cut a name to "…"
    for f in info["features"]:
        numeric = f["kind"] != "categorical"  # a one-hot column has no centre or scale
        features.add_row(f["name"], f["kind"], _fmt(f["fill"]), _fmt(f["center"]) if numeric else "-",
                         _fmt(f["scale"]) if numeric else "-",
                         ", ".join(f["categories"][:8]) + (" ..." if len(f["categories"]) > 8 else ""))
    console.print(features)


_SPARK_UNICODE = "▁▂▃▄▅▆▇█"
_SPARK_ASCII = "_.-~=+*#"


def sparkline(values, width: int = 24, unicode: bool = True) -> str:
    """A run of values (here log10 gradient norms) as one line of block characters."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    if v.size > width:  # mean of equal chunks
        v = np.array([chunk.mean() for chunk in np.array_split(v, width)])
    chars = _SPARK_UNICODE if unicode else _SPARK_ASCII
    lo, hi = v.min(), v.max()
    if hi - lo < 1e-12:
        return chars[len(chars) // 2] * v.size
    idx = np.round((v - lo) / (hi - lo) * (len(chars) - 1)).astype(int)
    return "".join(chars[i] for i in idx)


def grad_report(console: Console, report) -> None:
    """The inspect-grads table (one row per layer) and the verdicts."""
    fancy = console.is_terminal and not console.is_dumb_terminal and console.encoding.lower().startswith("utf")
    t = Table(title="gradient norms of W per layer (recorded steps, before clipping)")
    for col in ("layer", "activation", "first", "last", "min", "median", "max", "vs output", "dead",
                "saturated", "update/W", "log10 norm over training"):
        t.add_column(col, justify="left" if col in ("activation", "log10 norm over training") else "right")
    for row in report.layers:
        t.add_row(str(row["layer"]), row["activation"], *(_fmt(row[k], 3) for k in ("first", "last", "min", "median",
                                                                                  "max", "ratio_to_output")),
                  f"{row['dead']:.0%}", f"{row['saturated']:.0%}", _fmt(row["update_ratio"], 3),
                  sparkline(row["log10_norms"], unicode=fancy))
    console.print(t)
    for v in report.verdicts:
        style = "green" if v["kind"] == "healthy" else "bold red"
        console.print(f"[{style}]{v['kind']}[/]: {v['message'].split(': ', 1)[-1]}")


def activations_table(console: Console, rows: list[dict]) -> None:
    t = Table(title="activations (use in model.hidden[].activation)")
    for col in ("name", "formula", "parameters", "note"):
        t.add_column(col, overflow="fold")
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        note = "not trainable: " + r["note"].split(";")[0] if not r["trainable"] else r["family"].replace("other", "")
        t.add_row(*(Text(x) for x in (r["name"], r["formula"], params, note)))
    console.print(t)


def learning_curve(console: Console, history: dict, width: int = 60, height: int = 8) -> None:
    """Training (and validation) loss per epoch as a small chart of characters.

    Epochs are averaged into at most `width` columns; each column marks its value's row among
    `height` rows between the smallest and largest loss (on a log scale when they are more than 20
    times apart, as losses falling over orders of magnitude are). Plain ASCII ('*' training, 'o'
    validation, '#' both) when the console is not a terminal; dots in colour on one.
    """
    import numpy as np

    series = [np.asarray(history[k], dtype=float) for k in ("train_loss", "val_loss") if k in history]
    n = len(series[0]) if series else 0
    if n < 2:
        return
    columns = [np.array([c.mean() for c in np.array_split(s, min(width, n))]) for s in series]
    finite = np.concatenate([c[np.isfinite(c)] for c in columns])
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    log = lo > 0 and hi / lo > 20
    scale = np.log10 if log else (lambda v: v)
    bottom = scale(lo)
    span = scale(hi) - bottom if hi > lo else 1.0
    fancy = console.is_terminal and not console.is_dumb_terminal and console.encoding.lower().startswith("utf")
    marks = [("•", "cyan"), ("•", "magenta")] if fancy else [("*", ""), ("o", "")]
    both, vbar, corner, hbar = ("•", "│", "└", "─") if fancy else ("#", "|", "+", "-")
    grid = [[None] * len(columns[0]) for _ in range(height)]
    for k, col in enumerate(columns):
        for j, v in enumerate(col):
            if np.isfinite(v):
                row = height - 1 - int(round((scale(v) - bottom) / span * (height - 1)))
                grid[row][j] = k if grid[row][j] in (None, k) else -1
    label_width = max(len(_fmt(hi)), len(_fmt(lo)))
    text = Text()
    for r, cells in enumerate(grid):
        label = _fmt(hi) if r == 0 else (_fmt(lo) if r == height - 1 else "")
        text.append(f"{label:>{label_width}} {vbar}")
        for cell in cells:
            if cell is None:
                text.append(" ")
            elif cell < 0:
                text.append(both, style="bold" if fancy else "")
            else:
                text.append(marks[cell][0], style=marks[cell][1])
        text.append("\n")
    text.append(" " * label_width + " " + corner + hbar * len(grid[0]) + "\n")
    text.append(" " * (label_width + 2) + f"epoch 1{' ' * max(1, len(grid[0]) - 8 - len(str(n)))}{n}\n")
    text.append(" " * (label_width + 2))
    text.append(marks[0][0], style=marks[0][1])
    text.append(" training loss")
    if len(columns) > 1:
        text.append("   ")
        text.append(marks[1][0], style=marks[1][1])
        text.append(" validation loss")
    if log:
        text.append("   (log scale)")
    console.print(text)
