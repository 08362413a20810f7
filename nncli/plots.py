"""Pictures as PNG or SVG files: decision surfaces, learning curves, gradient norms, activations.

The only module that imports matplotlib, an optional extra (`pip install 'nncli[plot]'`); call
`require` first, which says how to install it when it is missing. Drawing only: the values come
from nncli.predict (surfaces, points), the model's history, nncli.gradients and the activation
kernels. Figures have fixed sizes and axes positions (no tight layout), so a picture's pixels
can be checked: at DPI 100 a model plot is 1200 x 500 pixels with a surface and 640 x 500
without, a gradient plot 800 x 500, the activations grid 1500 x 1300.

Colours follow TensorFlow Playground: orange for the first class (or low values), blue for the
second (or high values). The surface is drawn in discrete shades, SHADES bands of probability
or value (one colour per class for multiclass models), so that each colour has one meaning.
"""

from pathlib import Path

import numpy as np

from nncli.errors import MissingExtra, UsageError

FORMATS = ("png", "svg")
DPI = 100
SHADES = 10  # bands of probability (or value) in a surface
INSTALL_HINT = "pip install 'nncli[plot]'"
ORANGE, NEUTRAL, BLUE = np.array([245, 147, 34]) / 255, np.array([232, 234, 235]) / 255, np.array([8, 119, 189]) / 255

# (left, bottom, width, height) as shares of the figure
MODEL_SIZE, CURVES_SIZE = (12.0, 5.0), (6.4, 5.0)  # inches
SURFACE_AXES = (0.06, 0.12, 0.40, 0.78)
COLORBAR_AXES = (0.47, 0.12, 0.012, 0.78)
LOSS_AXES, METRIC_AXES = (0.60, 0.58, 0.37, 0.32), (0.60, 0.12, 0.37, 0.32)
CURVES_LOSS_AXES, CURVES_METRIC_AXES = (0.14, 0.58, 0.80, 0.32), (0.14, 0.12, 0.80, 0.32)
POINT_STYLES = [("o", "white"), ("o", "black"), ("s", "white"), ("^", "black")]  # per --data file


def require(out: Path | None = None):
    """matplotlib's pyplot on the Agg backend; MissingExtra with the install command if it is absent.

    With `out`, also check that its suffix names a format this module writes.
    """
    if out is not None and Path(out).suffix.lower().lstrip(".") not in FORMATS:
        raise UsageError(f"{out}: a picture file must end in .png or .svg")
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise MissingExtra(f"pictures need matplotlib, an optional extra: {INSTALL_HINT}") from None
    return pyplot


def _save(fig, out: Path) -> None:
    from nncli.model import atomic_write

    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    # fixed metadata: the same figure gives the same bytes
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    atomic_write(out, lambda f: fig.savefig(f, format=fmt, dpi=DPI, metadata=metadata))
    require().close(fig)


def bands(n: int = SHADES) -> np.ndarray:
    """n colours (n, 3) from orange through a light grey to blue."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    low, high = NEUTRAL + (ORANGE - NEUTRAL) * (1 - 2 * t), NEUTRAL + (BLUE - NEUTRAL) * (2 * t - 1)
    return np.where(t < 0.5, low, high)


def lighten(colours: np.ndarray, white: float = 0.4) -> np.ndarray:
    """Colours (n, 3) mixed with a share of white: the Playground's pale field behind its points."""
    return (1 - white) * colours + white


def class_colours(k: int) -> np.ndarray:
    """Point colours (k, 3) of k classes: orange and blue for two, matplotlib's tab10/tab20 beyond."""
    from matplotlib import colormaps

    if k <= 2:
        return np.array([ORANGE, BLUE])[:k]
    return np.array(colormaps["tab10" if k <= 10 else "tab20"].colors)[np.arange(k) % 20]


def surface_codes(values: np.ndarray, task: str, vrange: tuple[float, float]) -> np.ndarray:
    """Colour index of each surface cell: the band of a probability or value, or the class index."""
    if task == "multiclass":
        return values.astype(int)
    lo, hi = vrange
    scaled = (values - lo) / (hi - lo) if hi > lo else np.full_like(values, 0.5)
    return np.clip((scaled * SHADES).astype(int), 0, SHADES - 1)


# ----- nncli plot: decision surface and learning curves ------------------------------------------
def model_plot(model, data_paths: list, out: Path) -> str | None:
    """Draw the model's decision surface (two-column models) with the points of data_paths on top,
    and its learning curves; write `out`. Returns a note for the user, or None."""
    from nncli import predict

    plt = require(out)
    columns = predict.surface_columns(model)
    note = None
    if columns is None:
        n = len(model.prep.source_columns())
        note = (f"no decision surface: the model reads {n} column(s) and a surface needs two numeric ones; "
                f"drawing the learning curves only")
        if data_paths:
            note += " (--data is not used)"
        fig = plt.figure(figsize=CURVES_SIZE, dpi=DPI)
        _learning_curves(fig, model, CURVES_LOSS_AXES, CURVES_METRIC_AXES)
    else:
        fig = plt.figure(figsize=MODEL_SIZE, dpi=DPI)
        sets = [(Path(p).name, *predict.points(model, p)) for p in data_paths]
        xy = np.concatenate([s[1] for s in sets]) if sets else np.empty((0, 2))
        ext1, ext2 = predict.surface_extent(model, xy)
        x1 = np.linspace(*ext1, predict.SURFACE_STEPS)
        x2 = np.linspace(*ext2, predict.SURFACE_STEPS)
        _surface(fig, model, columns, x1, x2, predict.surface(model, x1, x2), sets)
        _learning_curves(fig, model, LOSS_AXES, METRIC_AXES)
    _save(fig, out)
    return note


def _surface(fig, model, columns, x1, x2, values, sets) -> None:
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D

    prep = model.prep
    ax = fig.add_axes(SURFACE_AXES)
    if prep.task == "multiclass":
        palette, vrange = lighten(class_colours(len(prep.labels)), 0.55), (0.0, 1.0)
        title = "decision surface: predicted class"
    else:
        palette = lighten(bands())
        targets = [s[2] for s in sets if s[2] is not None]
        if prep.task == "binary":
            vrange, title = (0.0, 1.0), f"decision surface: P({prep.target} = {prep.labels[1]})"
        else:
            everything = np.concatenate([values.ravel(), *targets])
            lo, hi = float(everything.min()), float(everything.max())
            if lo < 0 < hi:  # the neutral shade at 0: orange below, blue above, as the Playground
                lo, hi = -max(-lo, hi), max(-lo, hi)
            vrange, title = (lo, hi), f"predicted {prep.target}"
    codes = surface_codes(values, prep.task, vrange)
    cmap = ListedColormap(palette)
    image = ax.imshow(codes, origin="lower", extent=(x1[0], x1[-1], x2[0], x2[-1]), cmap=cmap, vmin=-0.5,
                      vmax=len(palette) - 0.5, interpolation="nearest", aspect="auto")
    if prep.task == "binary" and values.min() < 0.5 < values.max():
        ax.contour(x1, x2, values, levels=[0.5], colors="#333333", linewidths=1.5)
    handles = []
    for i, (name, xy, y) in enumerate(sets):
        marker, edge = POINT_STYLES[i % len(POINT_STYLES)]
        if y is None:  # no target column: the points' places only
            colour = np.tile([0.5, 0.5, 0.5], (len(xy), 1))
        elif prep.task == "regression":
            colour = bands()[surface_codes(y, "regression", vrange)]
        else:
            colour = class_colours(len(prep.labels))[y.astype(int)]
        ax.scatter(xy[:, 0], xy[:, 1], s=22, c=colour, marker=marker, edgecolors=edge, linewidths=0.8, zorder=3)
        handles.append(Line2D([], [], marker=marker, linestyle="", markerfacecolor="#888888",
                              markeredgecolor=edge, label=f"{name} ({len(xy)} rows)"))
    ax.set_xlim(x1[0], x1[-1])
    ax.set_ylim(x2[0], x2[-1])
    ax.set_xlabel(columns[0])
    ax.set_ylabel(columns[1])
    ax.set_title(title)
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    bar = fig.colorbar(image, cax=fig.add_axes(COLORBAR_AXES))
    if prep.task == "multiclass":
        bar.set_ticks(range(len(prep.labels)))
        bar.set_ticklabels(prep.labels)
    else:
        edges = np.linspace(*vrange, SHADES + 1)
        bar.set_ticks(np.arange(SHADES + 1)[::2] - 0.5)
        bar.set_ticklabels([f"{v:.3g}" for v in edges[::2]])


def _learning_curves(fig, model, loss_box, metric_box) -> None:
    from matplotlib.ticker import MaxNLocator

    h, s = model.history, model.summary
    epochs = np.arange(1, len(h.get("train_loss", [])) + 1)
    best = s.get("best_epoch") if s.get("restored_best") else None
    ax = fig.add_axes(loss_box)
    ax.plot(epochs, h.get("train_loss", []), color="#0877bd", label="training loss")
    if "val_loss" in h:
        ax.plot(epochs, h["val_loss"], color="#f59322", label="validation loss")
    ax.set_title(f"learning curves ({s.get('loss', 'loss')})")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    metric = fig.add_axes(metric_box, sharex=ax)
    if "val_metric" in h:
        metric.plot(epochs, h["val_metric"], color="#f59322", label=s.get("metric_name") or "validation metric")
        metric.set_ylabel(s.get("metric_name") or "validation metric")
        metric.legend(fontsize=8)
    else:
        metric.text(0.5, 0.5, "no validation data: train with --val-split or --val for a metric",
                    ha="center", va="center", transform=metric.transAxes, fontsize=9, color="#666666")
    metric.set_xlabel("epoch")
    metric.xaxis.set_major_locator(MaxNLocator(integer=True))
    metric.grid(alpha=0.3)
    for a in (ax, metric):
        if best:
            a.axvline(best, color="#333333", linestyle=":", linewidth=1)


# ----- inspect-grads --plot, activations --plot --------------------------------------------------
def grad_plot(report, out: Path) -> None:
    """Gradient norm of W per layer over the recorded steps (log scale): one line per layer."""
    plt = require(out)
    fig = plt.figure(figsize=(8.0, 5.0), dpi=DPI)
    ax = fig.add_axes((0.1, 0.12, 0.86, 0.78))
    steps = report.records[:, report.columns.index("step")] if len(report.records) else np.empty(0)
    for row in report.layers:
        norms = 10.0 ** np.asarray(row["log10_norms"])
        shown = np.isfinite(norms) & (norms > 1e-300)  # 0 cannot be drawn on a log scale
        ax.plot(steps[shown], norms[shown], label=f"layer {row['layer']} ({row['activation']})", linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm of W (before clipping)")
    ax.set_title("gradient norm per layer: " + ", ".join(sorted(report.problems)) if report.problems
                 else "gradient norm per layer: healthy")
    ax.grid(alpha=0.3, which="both")
    if report.layers:
        ax.legend(fontsize=8)
    _save(fig, out)


def activations_plot(out: Path, z_range: tuple[float, float] = (-4.0, 4.0)) -> None:
    """Every activation with a curve f(z), with its derivative f'(z), in a grid of small plots."""
    from nncli.kernels.activations import ACTIVATIONS, curve

    plt = require(out)
    acts = [a for a in ACTIVATIONS.values() if a.kind != "pieces"]
    cols = 5
    rows = -(-len(acts) // cols)
    fig = plt.figure(figsize=(15.0, 13.0), dpi=DPI)
    Z = np.linspace(*z_range, 801)
    for i, act in enumerate(acts):
        r, c = divmod(i, cols)
        ax = fig.add_axes((0.04 + c * 0.194, 0.93 - (r + 1) * (0.88 / rows) + 0.035, 0.16, 0.88 / rows - 0.06))
        A, D = curve(act.name, Z)
        ax.plot(Z, A, color="#0877bd", linewidth=1.5, label="f(z)")
        ax.plot(Z, D, color="#f59322", linewidth=1.2, linestyle="--", label="f'(z)")
        ax.axhline(0, color="#999999", linewidth=0.5)
        ax.axvline(0, color="#999999", linewidth=0.5)
        ax.set_title(act.name + ("" if act.trainable else " (not trainable)"), fontsize=10)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8, loc="upper left")
    skipped = [a.name for a in ACTIVATIONS.values() if a.kind == "pieces"]
    fig.suptitle("activations f(z) and their derivatives f'(z) at default parameters"
                 + (f" ({', '.join(skipped)}: a max over pieces, no curve of one z)" if skipped else ""), fontsize=13)
    _save(fig, out)
