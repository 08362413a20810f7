"""Applying a trained model: probabilities, predictions, streaming `predict` and `evaluate`."""

import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nncli import features as derive
from nncli import metrics
from nncli.data import Table, read_table
from nncli.errors import DataError, OutputError
from nncli.model import Model, atomic_write
from nncli.preprocess import numeric_values
from nncli.train import logits

DEFAULT_CHUNK_ROWS = 100_000
CHUNKS_AHEAD = 2  # chunks whose work may be in the making or waiting to be taken (see _in_order)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


def softmax(Z: np.ndarray) -> np.ndarray:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def binary_labels(z: np.ndarray) -> np.ndarray:
    """The class index that probabilities() of a binary model gives the logits z, without them.

    There p1 = 0.5 * (1 + tanh(z / 2)) in float64 and the label is 1 where p1 > p0 = 1 - p1.
    For p1 >= 0.5, 1 - p1 is exact, so the label is 1 exactly where 1 + tanh(z / 2) > 1, that
    is where tanh(z / 2) > 2**-53 (1 + 2**-53 rounds to 1). tanh(x) is x for |x| that small, and
    z / 2 is exact: the label is z > 2**-52 (0 for NaN, as p1 > p0 is False there).
    """
    return (z > 2.0**-52).astype(np.intp)


def probabilities(model: Model, X: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K) for classifiers; predicted values (n, 1) for regression."""
    Z = logits(model.network, X).astype(np.float64)
    task = model.prep.task
    if task == "binary":
        p = sigmoid(Z[:, 0])
        return np.column_stack([1.0 - p, p])
    if task == "multiclass":
        return softmax(Z)
    return model.prep.unscale_target(Z)


def read_for_model(model: Model, path, chunk_rows=None, keep=()):
    """Read a CSV with the header and format settings the model was trained with; the columns the
    model reads as numbers (and a numeric target) are parsed as numbers, the kept ones as text."""
    cfg = model.config["data"]
    prep = model.prep
    wanted = {c for f in prep.features if f.kind == "numeric"
              for c in (derive.parse(f.name).columns if f.derived else (f.name,))}
    if prep.task == "regression" or prep.label_kind != "str":
        wanted.add(prep.target)
    wanted -= set(keep)

    def numbers(names: list[str], has_header: bool) -> list[str]:
        if has_header:
            return [n for n in names if n in wanted]
        schema = prep.columns if len(names) == len(prep.columns) else [c for c in prep.columns if c != prep.target]
        return [n for n, c in zip(names, schema) if c in wanted] if len(schema) == len(names) else []

    # a model trained with a header reads files with or without one (then by position)
    header = "auto" if prep.has_header else "false"
    return read_table(path, header=header, delimiter=cfg["delimiter"], encoding=cfg["encoding"],
                      expected_names=prep.source_columns() if prep.has_header else None,
                      chunk_rows=chunk_rows, numbers=numbers, missing=prep.missing_values)


def unused_columns(model: Model, data_path, keep=()) -> list[str]:
    """Columns of a file that the model does not use (neither a feature nor the target nor kept)."""
    first = next(iter(read_for_model(model, data_path, chunk_rows=1)))
    if not first.has_header:
        return []
    used = set(model.prep.source_columns()) | {model.prep.target} | set(keep)
    return [c for c in first.frame.columns if c not in used]


def predict(model: Model, data_path, out_path=None, *, proba: bool = False, keep=(),
            chunk_rows: int = DEFAULT_CHUNK_ROWS, stream=None) -> int:
    """Write predictions for every row of data_path as CSV, chunk by chunk; returns rows written.

    With out_path the file appears atomically when complete; otherwise rows go to `stream`
    (default stdout) as they are computed.
    """
    chunks = read_for_model(model, data_path, chunk_rows=chunk_rows, keep=keep)
    if out_path is not None:
        out_path = Path(out_path)
        if out_path.exists() and out_path.resolve() == Path(data_path).resolve():
            raise OutputError(f"{out_path}: the output would overwrite the input data file")
        count = [0]

        def write(f):
            count[0] = _write_chunks(model, chunks, f, proba, keep, binary=True)

        atomic_write(out_path, write)
        return count[0]
    return _write_chunks(model, chunks, stream or sys.stdout, proba, keep, binary=False)


def _write_chunks(model, chunks, f, proba, keep, binary) -> int:
    """Write the prediction lines of every chunk, in order; returns rows written."""
    def lines(table, first: bool):
        text = csv_text(output_columns(model, table, proba, list(keep)), header=first)
        return text.encode() if binary else text

    written = [0]

    def write(text, rows: int) -> None:
        f.write(text)
        written[0] += rows

    _in_order(chunks, lines, write)
    return written[0]


def _in_order(chunks, work, take) -> None:
    """take(work(table, first), rows) for every chunk, in order.

    work runs on a thread of its own (CHUNKS_AHEAD chunks at most wait to be taken) while this
    thread reads the next chunk: the preprocessing, the forward pass and numpy hold no GIL, so
    that work shares the cores with the file's parse threads (nncli.data) instead of taking turns
    with the reading. Errors come as when chunks went one at a time: a chunk whose work fails stops
    there (the chunks after it are never taken), and if reading fails, the chunks before are taken
    first, so that an error in one of them is the one raised."""
    pending = deque()

    def take_all_but(waiting: int) -> None:
        while len(pending) > waiting:
            job, rows = pending.popleft()
            take(job.result(), rows)

    with ThreadPoolExecutor(1, thread_name_prefix="nncli-predict") as pool:
        tables = enumerate(chunks)
        while True:
            try:
                i, table = next(tables)
            except StopIteration:
                break
            except Exception:
                take_all_but(0)
                raise
            pending.append((pool.submit(work, table, i == 0), len(table.frame)))
            take_all_but(CHUNKS_AHEAD)
        take_all_but(0)


def output_columns(model: Model, table: Table, proba: bool, keep: list[str]) -> dict:
    """The prediction file's columns for a table: kept input columns, the prediction, and with
    proba the class probabilities; class labels as indices into model.prep.labels."""
    table = model.prep.match_columns(table)
    X = model.prep.transform(table, model.network.dtype)
    labels_only = model.prep.task == "binary" and not proba
    P = None if labels_only else probabilities(model, X)
    out = {}
    for name in keep:
        if name not in table.frame.columns:
            raise DataError(f"{table.path}: --keep: no column named '{name}'")
        out[name] = table.frame[name].to_numpy()
    if model.prep.task == "regression":
        out["prediction"] = P[:, 0]
    else:
        if labels_only:
            idx = binary_labels(logits(model.network, X)[:, 0])
        else:  # argmax; for two classes the same index (the first of equals, 0 for NaN) by one comparison
            idx = (P[:, 1] > P[:, 0]).astype(np.intp) if P.shape[1] == 2 else P.argmax(axis=1)
        out["prediction"] = _Labels(idx, model.prep.decode_labels(np.arange(len(model.prep.labels))))
        if proba:
            for k, label in enumerate(model.prep.labels):
                out[f"proba_{label}"] = P[:, k]
    return out


@dataclass
class _Labels:
    idx: np.ndarray  # (n,) class indices
    values: np.ndarray  # (K,) the labels as decode_labels gives them


def csv_text(columns: dict, header: bool) -> str:
    """The text DataFrame(columns).to_csv(index=False, float_format="%.10g") writes, with "\n" line
    ends, made column by column: each class label is formatted once, each float by one %."""
    if len(columns) == 1 and isinstance(labels := next(iter(columns.values())), _Labels):
        head = _quote(str(next(iter(columns)))) + "\n" if header else ""
        return head + _label_lines(labels.idx, ['""' if c == "" else c for c in _cells(labels.values)])
    cells = [_cells(v) for v in columns.values()]
    if len(cells) == 1:  # the csv module quotes a lone empty field, so that it is not an empty line
        lines = ['""' if c == "" else c for c in cells[0]] if "" in cells[0] else cells[0]
    else:
        lines = list(map(",".join, zip(*cells)))
    if header:
        lines.insert(0, ",".join(_quote(str(name)) for name in columns))
    return "\n".join(lines) + "\n" if lines else ""


def _label_lines(idx: np.ndarray, cells: list[str]) -> str:
    """The lines cells[i] + newline for every i in idx, as one string, built in numpy instead of
    joined: whole rows of a byte table when every line has one length, else every line's bytes
    placed position by position (a pass over the rows per character of the longest line)."""
    lines = [(c + "\n").encode() for c in cells]
    table = np.zeros((len(lines), max(map(len, lines))), dtype=np.uint8)
    for k, line in enumerate(lines):
        table[k, :len(line)] = np.frombuffer(line, dtype=np.uint8)
    if len({len(line) for line in lines}) == 1:  # lines of one length: whole rows of the table, each
        # taken as one item (a row of bytes indexed as a 2-D array cost 13 instead of 1 ns a line)
        return table.view(np.dtype((np.void, table.shape[1])))[:, 0][idx].tobytes().decode()
    lengths = np.array([len(line) for line in lines])[idx]
    starts = np.cumsum(lengths) - lengths
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    shortest = int(lengths.min()) if len(idx) else 0
    for b in range(table.shape[1]):
        rows = slice(None) if b < shortest else np.flatnonzero(lengths > b)
        out[starts[rows] + b] = table[idx[rows], b]
    return out.tobytes().decode()


def _cells(values) -> list[str]:
    if isinstance(values, _Labels):
        return np.array(_cells(values.values), dtype=object)[values.idx].tolist()
    if values.dtype.kind == "f":
        cells = list(map("%.10g".__mod__, values.tolist()))
        for i in np.flatnonzero(np.isnan(values)):
            cells[i] = ""
        return cells
    if values.dtype.kind in "iub":
        return list(map(str, values.tolist()))
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else _quote(str(v)) for v in values.tolist()]


def _quote(cell: str) -> str:
    """A cell as the csv module's QUOTE_MINIMAL writes it (what DataFrame.to_csv does)."""
    if any(c in cell for c in ',"\n\r'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def evaluate(model: Model, data_path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> dict:
    """Metrics on labelled data; the target column must be present.

    The file is read chunk by chunk, as predict reads it: only the targets and the model's
    outputs of every row are kept for the metrics, not the table."""
    prep = model.prep

    def scored(table: Table, first: bool) -> tuple[np.ndarray, np.ndarray]:
        table = prep.match_columns(table)
        if prep.target not in table.frame.columns:
            raise DataError(f"{data_path}: no target column '{prep.target}' to evaluate against")
        P = probabilities(model, prep.transform(table, model.network.dtype))
        if prep.task == "regression":
            return prep.unscale_target(prep.encode_target(table, np.float64)[:, 0]), P[:, 0]
        return prep.target_indices(table).astype(np.min_scalar_type(len(prep.labels))), P

    kept = [], []  # the chunks' targets and outputs

    def keep(result, rows: int) -> None:
        for part, values in zip(kept, result):
            part.append(values)

    _in_order(read_for_model(model, data_path, chunk_rows=chunk_rows), scored, keep)
    y, P = (np.concatenate(part) for part in kept)
    del kept  # the chunks' arrays: the metrics below need memory of their own
    if prep.task == "regression":
        return {"task": "regression", **metrics.regression(y, P)}
    return {"task": prep.task, **metrics.classification(y, P, prep.labels)}


# ----- decision surfaces (what `nncli plot` draws) ------------------------------------------------
SURFACE_STEPS = 100  # grid points per axis
SURFACE_PAD = 0.05  # the grid reaches this share of each range beyond the data


def surface_columns(model: Model) -> list[str] | None:
    """The two numeric columns of the file the model reads, or None if it reads other than two."""
    prep = model.prep
    columns = prep.source_columns()
    if len(columns) != 2 or any(f.kind == "categorical" for f in prep.features):
        return None
    return columns


def points(model: Model, path) -> tuple[np.ndarray, np.ndarray | None]:
    """The surface columns of a CSV file's rows, xy (n, 2), and their targets (n,) if the file has them.

    Targets are class indices into model.prep.labels, or values for regression. Rows missing a
    coordinate are left out.
    """
    prep = model.prep
    table = prep.match_columns(read_for_model(model, path))
    columns = surface_columns(model)
    xy = np.column_stack([numeric_values(table, c, prep.missing_values, c in prep.zero_missing)
                          for c in columns])
    keep = ~np.isnan(xy).any(axis=1)
    y = None
    if prep.target in table.frame.columns:
        if prep.task == "regression":
            y = numeric_values(table, prep.target, prep.missing_values, False)
        else:
            y = prep.target_indices(table).astype(np.float64)
        y = y[keep]
    return xy[keep], y


def surface_extent(model: Model, xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """(lo, hi) of each surface column: the training range joined with the points xy (n, 2), padded."""
    prep = model.prep
    extent = []
    for j, c in enumerate(surface_columns(model)):
        values = list(prep.ranges.get(c, [])) + list(xy[:, j])
        if not values:  # a model file from before ranges were saved, and no points: mean +- 3 std
            f = next((f for f in prep.features if f.name == c and not f.derived), None)
            if f is None:
                raise DataError(f"the model file does not record the range of '{c}'; give points with --data")
            values = [f.center - 3 * f.scale, f.center + 3 * f.scale]
        lo, hi = min(values), max(values)
        pad = SURFACE_PAD * (hi - lo) if hi > lo else 1.0
        extent.append((lo - pad, hi + pad))
    return extent[0], extent[1]


def surface(model: Model, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The model's output over the grid x1 (m,) by x2 (k,): (k, m), row i at x2[i], column j at x1[j].

    Binary: the probability of the second label (labels[1]); multiclass: the predicted class
    index; regression: the predicted value, in the target's units.
    """
    c1, c2 = surface_columns(model)
    A, B = np.meshgrid(x1, x2)
    # through the same preprocessing as a CSV file: derived features are computed as for predict
    frame = pd.DataFrame({c1: A.ravel().astype(str), c2: B.ravel().astype(str)})
    P = probabilities(model, model.prep.transform(Table(frame, True, "<surface grid>"), model.network.dtype))
    task = model.prep.task
    values = P[:, 1] if task == "binary" else (P.argmax(axis=1) if task == "multiclass" else P[:, 0])
    return values.reshape(A.shape)
