"""TensorFlow Playground's data sets: small 2-D tables to learn from, as the lecture shows them.

The generating rules are the Playground's (its `dataset.ts`), rewritten here in numpy:
- circle: half the points at radius U(0, 2.5), half at U(3.5, 5), uniform angle; label 1 inside
  radius 2.5, else 0. Noise moves the point used for the label (not the point written) by
  U(-5, 5) * noise in each coordinate, so noisy labels cross the gap.
- xor: x1, x2 ~ U(-5, 5), pushed 0.3 away from the axes; label 1 where x1 * x2 >= 0 (again
  computed on the point moved by U(-5, 5) * noise).
- gauss: two Gaussian clouds at (2, 2) (label 1) and (-2, -2) (label 0), variance growing linearly
  from 0.5 at no noise to 4 at 50% noise.
- spiral: two interleaved spirals of n/2 points, radius r = i / (n/2) * 5, angle
  t = 1.75 * 2*pi * i / (n/2) (+ pi for label 0); each coordinate moves by U(-1, 1) * noise.
- plane (regression): x1, x2 ~ U(-6, 6); label (x1 + x2) / 10, computed on the noise-moved point
  (U(-6, 6) * noise), so the label lies in [-1.2, 1.2].
- multigauss (regression): x1, x2 ~ U(-6, 6); six bumps of height +-1 and radius 2 at
  (-4, 2.5) +, (0, 2.5) -, (4, 2.5) +, (-4, -2.5) -, (0, -2.5) +, (4, -2.5) -; the label is the
  bump value max(0, 1 - d/2) * sign of largest magnitude, on the noise-moved point.
The Playground labels classes -1 and 1; here they are 0 and 1 (its -1 is our 0), the usual coding
for a binary target. Noise is given in percent, 0 to 50, as on the Playground's slider. Rows are
shuffled, so the first rows of a file are a fair sample.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nncli.errors import UsageError

MAX_NOISE = 50.0  # percent, as the Playground's slider
COLUMNS = ("x1", "x2", "label")
_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]])


def _halves(n: int) -> tuple[int, int]:
    return n - n // 2, n // 2


def circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and labels (n,): a disc of label 1 inside a ring of label 0."""
    n_in, n_out = _halves(n)
    r = np.concatenate([rng.uniform(0.0, 2.5, n_in), rng.uniform(3.5, 5.0, n_out)])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    moved = X + rng.uniform(-5.0, 5.0, (n, 2)) * noise
    return X, (np.hypot(moved[:, 0], moved[:, 1]) < 2.5).astype(np.int64)


def xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and labels (n,): label 1 in the quadrants where x1 * x2 >= 0."""
    X = rng.uniform(-5.0, 5.0, (n, 2))
    X += np.where(X > 0, 0.3, -0.3)  # a gap along the axes
    moved = X + rng.uniform(-5.0, 5.0, (n, 2)) * noise
    return X, (moved[:, 0] * moved[:, 1] >= 0).astype(np.int64)


def gauss(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and labels (n,): label 1 around (2, 2), label 0 around (-2, -2)."""
    variance = 0.5 + noise / 0.5 * 3.5
    n_pos, n_neg = _halves(n)
    centres = np.repeat([[2.0, 2.0], [-2.0, -2.0]], [n_pos, n_neg], axis=0)
    X = centres + rng.normal(0.0, np.sqrt(variance), (n, 2))
    return X, np.repeat([1, 0], [n_pos, n_neg]).astype(np.int64)


def spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and labels (n,): two spiral arms of 1.75 turns, label 1 and label 0."""
    parts = []
    for count, delta in zip(_halves(n), (0.0, np.pi)):
        i = np.arange(count) / count
        r, t = 5.0 * i, 1.75 * 2 * np.pi * i + delta
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    X = np.concatenate(parts) + rng.uniform(-1.0, 1.0, (n, 2)) * noise
    return X, np.repeat([1, 0], _halves(n)).astype(np.int64)


def plane(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and values (n,): the plane (x1 + x2) / 10."""
    X = rng.uniform(-6.0, 6.0, (n, 2))
    moved = X + rng.uniform(-6.0, 6.0, (n, 2)) * noise
    return X, moved.sum(axis=1) / 10.0


def multigauss(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and values (n,) in [-1, 1]: six bumps of alternating sign."""
    X = rng.uniform(-6.0, 6.0, (n, 2))
    moved = X + rng.uniform(-6.0, 6.0, (n, 2)) * noise
    d = np.hypot(moved[:, None, 0] - _BUMPS[:, 0], moved[:, None, 1] - _BUMPS[:, 1])  # (n, 6)
    values = _BUMPS[:, 2] * np.clip(1.0 - d / 2.0, 0.0, 1.0)
    # the bump of largest magnitude; argmax takes the first of equals, as the Playground's strict '>'
    return X, values[np.arange(n), np.abs(values).argmax(axis=1)]


@dataclass(frozen=True)
class DataSet:
    name: str
    task: str  # "binary" or "regression"
    make: Callable  # (rng, n, noise as a fraction 0-0.5) -> (X (n, 2), y (n,))
    about: str


DATASETS = {d.name: d for d in [
    DataSet("circle", "binary", circle, "a disc of class 1 inside a ring of class 0"),
    DataSet("xor", "binary", xor, "class 1 in two opposite quadrants, class 0 in the others"),
    DataSet("gauss", "binary", gauss, "two Gaussian clouds"),
    DataSet("spiral", "binary", spiral, "two interleaved spirals"),
    DataSet("plane", "regression", plane, "a tilted plane, (x1 + x2) / 10"),
    DataSet("multigauss", "regression", multigauss, "six Gaussian bumps of alternating sign"),
]}


def generate(name: str, n: int = 500, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a Playground data set: X (n, 2) and y (n,), shuffled. noise is in percent (0-50)."""
    from nncli.config import suggest

    if name not in DATASETS:
        raise UsageError(f"unknown data set '{name}'{suggest(name, DATASETS)} (known: {', '.join(DATASETS)})")
    if not 0.0 <= noise <= MAX_NOISE:
        raise UsageError(f"--noise: {noise:g} is out of range (a percentage from 0 to {MAX_NOISE:g})")
    if n < 2:
        raise UsageError(f"--n: {n} rows are too few (at least 2)")
    rng = np.random.default_rng(seed)
    X, y = DATASETS[name].make(rng, n, noise / 100.0)
    order = rng.permutation(n)
    return X[order], y[order]


def csv_text(X: np.ndarray, y: np.ndarray) -> str:
    """The rows as CSV text with the header x1,x2,label; class labels as integers.

    Numbers are formatted here, not by a library, so the same rows give the same bytes.
    """
    label = (lambda v: str(int(v))) if y.dtype.kind in "iu" else (lambda v: f"{v:.6f}")
    lines = [",".join(COLUMNS)] + [f"{a:.6f},{b:.6f},{label(v)}" for (a, b), v in zip(X, y)]
    return "\n".join(lines) + "\n"
