"""Pictures (`nncli plot`, `inspect-grads --plot`, `activations --plot`) and the terminal learning curve.

Each picture is rendered to a file and read back as pixels. The colours of a decision surface are
checked against the model's predictions on the same grid made by `nncli predict` from a CSV
file: the bands (or classes) the surface shows must be the ones the predictions fall in.
"""

import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from conftest import ROOT, require_matplotlib
from nncli import playground
from nncli.cli import app
from nncli.errors import USAGE
from nncli.kernels.activations import ACTIVATIONS
from nncli.report import learning_curve

CHURN = ROOT / "sample_data" / "churn.csv"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    assert result.stderr.startswith("nncli: error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def pixels():
    require_matplotlib()
    from matplotlib.image import imread

    def read(path) -> np.ndarray:
        """RGB pixels (height, width, 3) as integers 0-255."""
        return np.round(imread(path)[:, :, :3] * 255).astype(int)

    return read


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Small trained models: binary (circle), 3 classes, regression (plane), and churn (5 columns)."""
    d = tmp_path_factory.mktemp("plots")
    X, y = playground.generate("circle", 400, 0, seed=1)
    (d / "circle.csv").write_text(playground.csv_text(X, y))
    X, y = playground.generate("circle", 100, 0, seed=2)
    (d / "circle_test.csv").write_text(playground.csv_text(X, y))
    rng = np.random.default_rng(3)
    centres = np.array([[-3, -3], [3, -3], [0, 3]])
    labels = np.repeat(["a", "b", "c"], 60)
    pts = centres[np.repeat([0, 1, 2], 60)] + rng.normal(0, 0.8, (180, 2))
    pd.DataFrame({"u": pts[:, 0], "v": pts[:, 1], "kind": labels}).to_csv(d / "blobs.csv", index=False)
    X, y = playground.generate("plane", 300, 0, seed=4)
    (d / "plane.csv").write_text(playground.csv_text(X, y))
    runs = {
        "circle": ("circle.csv", "-c", ROOT / "configs" / "playground_circle.yaml", "--val", d / "circle_test.csv"),
        "blobs": ("blobs.csv", "--epochs", 60, "--lr", 0.01),
        "plane": ("plane.csv", "--set", "model.hidden=[{units: 8, activation: tanh}]", "--epochs", 40),
        "churn": (CHURN, "--epochs", 5, "--val-split", 0.2),
    }
    for name, (data, *options) in runs.items():
        result = invoke("train", data if isinstance(data, Path) else d / data, *options, "-o", d / f"{name}.npz", "-q")
        assert result.exit_code == 0, result.stderr
    return {"dir": d, **{name: d / f"{name}.npz" for name in runs}}


def box(axes, width, height, margin=3):
    """Pixel rows and columns inside an axes given as figure shares (left, bottom, w, h)."""
    left, bottom, w, h = axes
    return (slice(int((1 - bottom - h) * height) + margin, int((1 - bottom) * height) - margin),
            slice(int(left * width) + margin, int((left + w) * width) - margin))


def grid_predictions(models, name, columns, ranges) -> pd.DataFrame:
    """`nncli predict --proba` on the plot's grid: 100 points per axis over the ranges padded by 5%."""
    axes = []
    for lo, hi in ranges:
        pad = 0.05 * (hi - lo)
        axes.append(np.linspace(lo - pad, hi + pad, 100))
    A, B = np.meshgrid(*axes)
    path = models["dir"] / f"{name}_grid.csv"
    pd.DataFrame({columns[0]: A.ravel(), columns[1]: B.ravel()}).to_csv(path, index=False, float_format="%.17g")
    result = invoke("predict", models[name], path, "--proba")
    assert result.exit_code == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout), dtype={"prediction": str})


def colours_shown(image, palette) -> list[int]:
    """Indices of the palette colours (k, 3 in 0-1) that appear in the image (n, m, 3 in 0-255)."""
    rgb = np.round(np.asarray(palette) * 255).astype(int)
    flat = image.reshape(-1, 3)
    return [k for k, c in enumerate(rgb) if (np.abs(flat - c).max(axis=1) <= 1).any()]


def palette_share(image, palette) -> float:
    rgb = np.round(np.asarray(palette) * 255).astype(int)
    flat = image.reshape(-1, 3)
    return float(np.mean((np.abs(flat[:, None, :] - rgb[None]).max(axis=2) <= 1).any(axis=1)))


def training_ranges(path, columns):
    frame = pd.read_csv(path)
    return [(frame[c].min(), frame[c].max()) for c in columns]


# ----- nncli plot --------------------------------------------------------------------------------
def test_binary_surface_shows_the_probability_bands_of_the_predictions(models, pixels, tmp_path):
    from nncli import plots

    out = tmp_path / "circle.png"
    result = invoke("plot", models["circle"], "-o", out)
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == "", result.stderr
    image = pixels(out)
    assert image.shape == (500, 1200, 3)
    surface = image[box(plots.SURFACE_AXES, 1200, 500)]
    predictions = grid_predictions(models, "circle", ["x1", "x2"],
                                   training_ranges(models["dir"] / "circle.csv", ["x1", "x2"]))
    expected = sorted(set(np.clip((predictions["proba_1"].to_numpy() * 10).astype(int), 0, 9)))
    assert len(expected) >= 6  # a disc and a ring: the probability runs from ~0 to ~1
    palette = plots.lighten(plots.bands())
    assert colours_shown(surface, palette) == expected
    assert palette_share(surface, palette) > 0.9  # the rest: the 0.5 contour line
    dark = (np.abs(surface - 0x33).max(axis=2) <= 1).mean()
    assert 0.001 < dark < 0.05  # the 0.5 contour, drawn in #333333


def test_points_of_each_data_file_are_drawn_on_top(models, pixels, tmp_path):
    from nncli import plots

    out = tmp_path / "points.png"
    result = invoke("plot", models["circle"], "--data", models["dir"] / "circle.csv",
                    "--data", models["dir"] / "circle_test.csv", "-o", out)
    assert result.exit_code == 0, result.stderr
    surface = pixels(out)[box(plots.SURFACE_AXES, 1200, 500)]
    flat = surface.reshape(-1, 3)
    for colour in (plots.ORANGE, plots.BLUE):  # the two classes' points, in full colour
        assert (np.abs(flat - np.round(colour * 255)).max(axis=1) <= 2).sum() > 500
    assert (flat.max(axis=1) <= 5).sum() > 50  # black edges: the second file's points


def test_multiclass_surface_has_one_colour_per_class(models, pixels, tmp_path):
    from nncli import plots

    out = tmp_path / "blobs.png"
    assert invoke("plot", models["blobs"], "-o", out).exit_code == 0
    surface = pixels(out)[box(plots.SURFACE_AXES, 1200, 500)]
    predictions = grid_predictions(models, "blobs", ["u", "v"],
                                   training_ranges(models["dir"] / "blobs.csv", ["u", "v"]))
    expected = sorted({"a": 0, "b": 1, "c": 2}[p] for p in set(predictions["prediction"]))
    assert expected == [0, 1, 2]
    palette = plots.lighten(plots.class_colours(3), 0.55)
    assert colours_shown(surface, palette) == expected
    assert palette_share(surface, palette) > 0.97  # no contour for classes
    # where the classes are: a at (-3, -3) bottom left, b at (3, -3) bottom right, c at (0, 3) top middle
    for (row, col), k in (((-10, 10), 0), ((-10, -10), 1), ((10, surface.shape[1] // 2), 2)):
        assert colours_shown(surface[row, col][None, None], palette) == [k]


def test_regression_surface_shows_value_bands(models, pixels, tmp_path):
    from nncli import plots

    out = tmp_path / "plane.png"
    assert invoke("plot", models["plane"], "-o", out).exit_code == 0
    surface = pixels(out)[box(plots.SURFACE_AXES, 1200, 500)]
    values = grid_predictions(models, "plane", ["x1", "x2"],
                              training_ranges(models["dir"] / "plane.csv", ["x1", "x2"]))["prediction"].to_numpy(float)
    bound = np.abs(values).max()  # the bands are symmetric about 0 when the values have both signs
    expected = sorted(set(np.clip(((values + bound) / (2 * bound) * 10).astype(int), 0, 9)))
    assert len(expected) >= 8
    palette = plots.lighten(plots.bands())
    assert colours_shown(surface, palette) == expected
    assert palette_share(surface, palette) > 0.97
    # (x1 + x2) / 10 is lowest at the bottom left and highest at the top right
    assert colours_shown(surface[-5, 5][None, None], palette) == [expected[0]]
    assert colours_shown(surface[5, -5][None, None], palette) == [expected[-1]]


def test_svg_output(models, tmp_path):
    require_matplotlib()
    out = tmp_path / "circle.svg"
    assert invoke("plot", models["circle"], "-o", out).exit_code == 0
    text = out.read_text()
    assert text.startswith("<?xml") and '<svg' in text and 'width="864pt" height="360pt"' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["circle.svg"]  # written atomically


def test_a_model_with_more_columns_gets_learning_curves_only(models, pixels, tmp_path):
    out = tmp_path / "churn.png"
    result = invoke("plot", models["churn"], "--data", CHURN, "-o", out)
    assert result.exit_code == 0
    assert result.stderr == ("nncli: note: no decision surface: the model reads 5 column(s) and a surface needs two "
                             "numeric ones; drawing the learning curves only (--data is not used)\n")
    image = pixels(out)
    assert image.shape == (500, 640, 3)
    from nncli import plots

    # the training and the validation loss: a blue and an orange line in the loss panel
    loss = image[box(plots.CURVES_LOSS_AXES, 640, 500)].reshape(-1, 3)
    for colour in (plots.BLUE, plots.ORANGE):
        assert (np.abs(loss - np.round(colour * 255)).max(axis=1) <= 2).sum() > 100


def test_plot_errors(models, tmp_path):
    require_matplotlib()
    bad = invoke("plot", models["circle"], "-o", tmp_path / "x.pdf")
    assert bad.exit_code == USAGE and "x.pdf: a picture file must end in .png or .svg" in one_line_error(bad)
    missing = invoke("plot", models["circle"], "--data", tmp_path / "none.csv", "-o", tmp_path / "x.png")
    assert missing.exit_code == 4 and "none.csv: no such file" in one_line_error(missing)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("command", ["plot", "inspect-grads", "activations"])
def test_without_matplotlib_the_commands_say_how_to_install_it(models, tmp_path, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    args = {"plot": ("plot", models["circle"], "-o", tmp_path / "p.png"),
            "inspect-grads": ("inspect-grads", CHURN, "--epochs", 500, "--plot", tmp_path / "p.png"),
            "activations": ("activations", "--plot", tmp_path / "p.png")}[command]
    result = invoke(*args)
    assert result.exit_code == USAGE
    assert one_line_error(result) == ("nncli: error: pictures need matplotlib, an optional extra: "
                                      "pip install 'nncli[plot]'\n")
    assert result.stdout == ""  # inspect-grads failed before training, activations before its table


# ----- inspect-grads --plot, activations --plot --------------------------------------------------
def test_gradient_plot_has_one_line_per_layer(pixels, tmp_path):
    from matplotlib import colormaps

    out = tmp_path / "grads.png"
    result = invoke("inspect-grads", CHURN, "--epochs", 3, "--set", "model.hidden=[{units: 8}, {units: 8}]",
                    "--plot", out, "--json")
    assert result.exit_code == 0, result.stderr
    image = pixels(out)
    assert image.shape == (500, 800, 3)
    flat = image[box((0.1, 0.12, 0.86, 0.78), 800, 500)].reshape(-1, 3)
    line_colours = np.array(colormaps["tab10"].colors)  # matplotlib's colour cycle, one per line
    found = [k for k, c in enumerate(line_colours) if (np.abs(flat - np.round(c * 255)).max(axis=1) <= 2).sum() > 20]
    assert found == [0, 1, 2]  # two hidden layers and the output layer


def test_activation_grid_has_a_panel_per_curve(pixels, tmp_path):
    out = tmp_path / "act.svg"
    result = invoke("activations", "--plot", out, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    curves = [a for a in ACTIVATIONS.values() if a.kind != "pieces"]
    assert len(re.findall(r'<g id="axes_\d+"', out.read_text())) == len(curves)
    png = tmp_path / "act.png"
    assert invoke("activations", "--plot", png).exit_code == 0
    assert pixels(png).shape == (1300, 1500, 3)


@pytest.mark.parametrize("name", [a.name for a in ACTIVATIONS.values() if a.kind != "pieces"])
def test_activation_curves_come_from_the_kernels(name):
    """The drawn derivative is the kernel's: it matches central differences of the drawn function."""
    from nncli.kernels.activations import curve

    Z = np.linspace(-4, 4, 81) + 0.0123  # off the kinks at 0, +-0.5, +-1, +-3
    A, D = curve(name, Z)
    h = 1e-6
    numeric = (curve(name, Z + h)[0] - curve(name, Z - h)[0]) / (2 * h)
    np.testing.assert_allclose(D, numeric, atol=1e-5)


# ----- the learning curve in the terminal --------------------------------------------------------
def chart(history, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, color_system="standard" if terminal else None, width=100)
    learning_curve(console, history)
    return out.getvalue()


def test_learning_curve_marks_each_epoch_at_its_height():
    # 8 epochs of a loss falling by 1 each: 8 rows between 1 and 8, so epoch e sits in row e - 1
    text = chart({"train_loss": [8, 7, 6, 5, 4, 3, 2, 1]}, terminal=False)
    rows = text.splitlines()[:8]
    for e, row in enumerate(rows):
        plot = row.split("|", 1)[1]
        assert plot.rstrip() == " " * e + "*", row
    assert rows[0].startswith("8 |") and rows[7].startswith("1 |")
    assert text.isascii() and "* training loss" in text and "log scale" not in text


def test_learning_curve_on_a_terminal_uses_colour_and_a_log_scale():
    text = chart({"train_loss": [1.0, 0.1, 0.01, 0.001], "val_loss": [1.0, 0.2, 0.05, 0.04]}, terminal=True)
    assert "\x1b[" in text and "•" in text and "│" in text
    assert "validation loss" in text and "(log scale)" in text


def test_train_ends_with_the_chart_unless_quiet_or_json(tmp_path):
    plain = invoke("train", CHURN, "--epochs", 6, "--val-split", 0.2, "-o", tmp_path / "m.npz")
    assert plain.exit_code == 0 and plain.stdout == ""
    tail = plain.stderr[plain.stderr.index("training summary"):]
    assert "* training loss   o validation loss" in tail and tail.isascii()
    assert "epoch 1" in tail and re.search(r"^\s+\+-{6}$", tail, re.MULTILINE)
    quiet = invoke("train", CHURN, "--epochs", 6, "-o", tmp_path / "m.npz", "-q")
    assert quiet.stderr == "" and quiet.stdout == ""
    as_json = invoke("train", CHURN, "--epochs", 6, "-o", tmp_path / "m.npz", "--json")
    assert as_json.stderr == "" and as_json.stdout.startswith("{")


def test_only_the_plots_module_imports_matplotlib():
    sources = {p.relative_to(ROOT).as_posix(): p.read_text() for p in (ROOT / "nncli").rglob("*.py")}
    users = sorted(name for name, text in sources.items() if re.search(r"^\s*(import|from) matplotlib", text, re.M))
    assert users == ["nncli/plots.py"]
