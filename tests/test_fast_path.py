"""The float fast path of nncli.data (columns parsed as numbers, block by block) against the text
path it replaces: the text path is the oracle, cell by cell, table by table, model by model.

BLOCK_BYTES is made tiny in most tests, so that a file of a few hundred rows spans many blocks and
the bad cell, the short row or the column that stops being clean is in a later block. Every test
runs twice: with pandas' parser alone, and with nncli's compiled parser tried on every block (it
takes blocks from COMPILED_PARSE_BYTES on; made 0 here).
"""

import io

import numpy as np
import pandas as pd
import pytest

import nncli.data
import nncli.predict
import nncli.train
from nncli.config import load
from nncli.data import read_table
from nncli.errors import DataError
from nncli.model import save
from nncli.predict import csv_text, evaluate, predict
from nncli.preprocess import numeric_values
from nncli.schema import DEFAULT_MISSING

# cells the text path reads as numbers, as missing, or refuses; the C parser must agree or step aside
ODD_CELLS = ["1", "-3", " 2 ", "\t7", "1.50", "1e5", "1E-5", ".5", "5.", "+3", "-0", "-0.0", "0", "inf", "-inf",
             "Infinity", "nan", "NaN", "NA", " NA ", "", "?", "null", "None", "1e", "1_000", "0x10", "1.2.3",
             "abc", "True", "False", "TRUE", "1e400", "1e-400", "12345678901234567890", "9007199254740993",
             "0.1000000000000000055511151231257827", "-", "+", "-999", "-999.0", "1,5"]


def every(names, has_header):
    return names


def write(folder, text, name="t.csv"):
    path = folder / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture(autouse=True, params=["pandas", "compiled"])
def parser(request, monkeypatch):
    """Which parser reads the blocks whose every column is wanted as numbers."""
    monkeypatch.setattr(nncli.data, "COMPILED_PARSE_BYTES", 1 << 62 if request.param == "pandas" else 0)
    return request.param


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(nncli.data, "BLOCK_BYTES", 64)


def outcome(fn):
    """fn()'s value, or the DataError message it raised."""
    try:
        return fn()
    except DataError as exc:
        return f"DataError: {exc}"


def same_numbers(a, b):
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
@pytest.mark.parametrize("missing", [DEFAULT_MISSING, ["NA"], [], ["-999", " NA "]])
def test_each_odd_cell_reads_as_the_text_path_reads_it(tmp_path, monkeypatch, block_bytes, missing):
    monkeypatch.setattr(nncli.data, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    for cell in ODD_CELLS:
        rows = [f"{rng.normal():.6g},{k % 3}" for k in range(40)]
        rows[rng.integers(5, 40)] = f'"{cell}",1'
        path = write(tmp_path, "x,y\n" + "\n".join(rows) + "\n")
        text = read_table(path)
        fast = read_table(path, numbers=every, missing=missing)
        same_numbers(outcome(lambda t=fast: numeric_values(t, "x", missing, False)),
                     outcome(lambda t=text: numeric_values(t, "x", missing, False)))
        assert fast.text("x").tolist() == text.text("x").tolist()


def test_clean_columns_are_numbers_and_others_text(tmp_path):
    path = write(tmp_path, "a,b,c,d\n1,x,1.5,007\n2,y,NA,008\n")
    table = read_table(path, numbers=lambda names, h: ["a", "c"], missing=["NA"])
    assert [table.is_number(c) for c in "abcd"] == [True, False, True, False]
    assert table.frame["d"].tolist() == ["007", "008"]
    assert table.text("a").tolist() == ["1", "2"]  # the cells as written, parsed again
    assert table.text("c").tolist() == ["1.5", "NA"]


def test_a_column_that_stops_being_clean_in_a_later_block_is_text_throughout(tmp_path, small_blocks):
    rows = [f"{k},{k * 0.5}" for k in range(300)]
    rows[250] = "250,oops"
    path = write(tmp_path, "a,b\n" + "\n".join(rows) + "\n")
    fast = read_table(path, numbers=every, missing=["NA"])
    text = read_table(path)
    assert fast.is_number("a") and not fast.is_number("b")
    assert fast.frame["b"].tolist() == text.frame["b"].tolist()
    with pytest.raises(DataError, match=r"line 252, column 'b': 'oops' is not a number"):
        numeric_values(fast, "b", ["NA"], False)
    # chunks of at most 100 rows within a block: numbers up to the block that holds row 250, text from it on
    chunks = list(read_table(path, chunk_rows=100, numbers=every, missing=["NA"]))
    sizes = [len(c.frame) for c in chunks]
    assert sum(sizes) == 300 and max(sizes) <= 100
    starts = np.cumsum([0] + sizes[:-1])
    bad = next(i for i, (start, size) in enumerate(zip(starts, sizes)) if start <= 250 < start + size)
    assert [c.is_number("b") for c in chunks] == [True] * bad + [False] * (len(chunks) - bad)
    assert pd.concat([c.frame for c in chunks])["a"].tolist() == list(range(300))
    # a chunk never gathers rows of two blocks, however many rows it may hold
    whole_file = list(read_table(path, chunk_rows=1000, numbers=every, missing=["NA"]))
    assert len(whole_file) > 1 and [len(c.frame) for c in whole_file] == [len(c.frame) for c in chunks]
    with pytest.raises(DataError, match=r"line 252, column 'b': 'oops' is not a number"):
        numeric_values(chunks[bad], "b", ["NA"], False)


@pytest.mark.parametrize("chunk_rows", [None, 7, 64])
def test_tables_match_the_text_path_row_for_row(tmp_path, small_blocks, chunk_rows):
    rng = np.random.default_rng(1)
    lines = []
    for k in range(200):
        lines.append(f'{rng.normal():.5g},{rng.choice(["a", "b", "NA", ""])},"q{k}, with comma",{k % 2}')
        if k % 37 == 0:
            lines.append("")  # blank lines are skipped and move the line numbers on
    path = write(tmp_path, "x,c,s,y\n" + "\n".join(lines) + "\n")

    def tables(**kw):
        got = read_table(path, chunk_rows=chunk_rows, **kw)
        return [got] if chunk_rows is None else list(got)

    fast, text = tables(numbers=every, missing=DEFAULT_MISSING), tables()
    assert [len(t.frame) for t in fast] == [len(t.frame) for t in text]
    for f, t in zip(fast, text):
        assert f.frame.index.tolist() == t.frame.index.tolist()
        assert [f.line_of(i) for i in range(len(f.frame))] == [t.line_of(i) for i in range(len(t.frame))]
        for name in ("x", "c", "s", "y"):
            assert f.text(name).tolist() == t.text(name).tolist()
        np.testing.assert_array_equal(numeric_values(f, "x", DEFAULT_MISSING, False),
                                      numeric_values(t, "x", DEFAULT_MISSING, False))


@pytest.mark.parametrize("last", ["1", "x", "NA"])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_short_row_in_a_later_block_names_its_line(tmp_path, small_blocks, last, quoted):
    q = '"' if quoted else ""
    rows = [f"{q}{k}{q},{k},{last}" for k in range(120)]
    rows[90] = "90,9"
    path = write(tmp_path, "a,b,y\n" + "\n".join(rows) + "\n")
    for chunk_rows in (None, 25):
        with pytest.raises(DataError, match="line 92 has 2 fields where the first row has 3"):
            got = read_table(path, chunk_rows=chunk_rows, numbers=every, missing=["NA"])
            list(got) if chunk_rows else None


def test_a_long_row_in_a_later_block_names_its_line(tmp_path, small_blocks):
    rows = [f"{k},{k}" for k in range(120)]
    rows[100] = "1,2,3"
    path = write(tmp_path, "a,b\n\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="line 103 has 3 fields where earlier rows have 2"):
        read_table(path, numbers=every)


def test_a_quoted_header_and_quoted_cells(tmp_path, small_blocks):
    rows = [f'"{k}","{k * 0.25}",' + ('"a, b"' if k % 2 else '"x"') for k in range(80)]
    path = write(tmp_path, '"a","b","c"\n' + "\n".join(rows) + "\n")
    fast, text = read_table(path, numbers=every), read_table(path)
    assert list(fast.frame.columns) == ["a", "b", "c"] and fast.is_number("a") and fast.is_number("b")
    for name in "abc":
        assert fast.text(name).tolist() == text.text(name).tolist()


def test_a_quoted_newline_never_splits_a_block(tmp_path, small_blocks):
    rows = [f'{k},"two\nlines, {k}"' for k in range(60)]
    path = write(tmp_path, "a,b\n" + "\n".join(rows) + "\n")
    fast = read_table(path, numbers=every)
    assert fast.frame["b"].tolist() == [f"two\nlines, {k}" for k in range(60)]
    assert fast.is_number("a")


def test_a_wrong_encoding_in_a_later_block_names_its_line(tmp_path, small_blocks):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 300 + b"caf\xe9,1\n")
    with pytest.raises(DataError, match=r"at line 302 \(byte 0xe9\)"):
        read_table(path, numbers=every)


# ----- training and predicting: the fast path gives the text path's model and predictions -------
DATA = ("x1,x2,color,zip,y\n" + "".join(
    f"{np.sin(k):.6g},{'NA' if k % 11 == 0 else f'{np.cos(3 * k) * 100:.4f}'},{'rgb'[k % 3]},{k % 7:03d},"
    f"{'yes' if np.sin(k) + np.cos(3 * k) > 0 else 'no'}\n" for k in range(400)))
CONFIG = ["data.target=y", "data.categorical=[color, zip]", "data.derive=[x1*x2]", "train.epochs=3", "train.val_split=0.25",
          "train.dtype=float64", "model.hidden=[{units: 5, activation: tanh}]"]


def text_only(read):
    """read_table as it was: every cell text."""
    def read_text(*args, numbers=None, missing=(), **kwargs):
        return read(*args, **kwargs)
    return read_text


@pytest.mark.parametrize("overrides", [[], ["data.target=x1", "data.categorical=[color, zip, y]", "data.derive=[x2^2]"]],
                         ids=["binary", "regression"])
def test_training_on_numbers_gives_the_text_paths_model(tmp_path, monkeypatch, small_blocks, overrides):
    """Read whole (no block summaries: see tests/test_summaries.py), the fast path's model is the
    text path's, byte for byte."""
    path = write(tmp_path, DATA)
    cfg = load(None, CONFIG + overrides)
    monkeypatch.setattr(nncli.train, "summarize", lambda *args, **kwargs: None)
    fast = nncli.train.train(path, cfg).model
    monkeypatch.setattr(nncli.train, "read_table", text_only(nncli.train.read_table))
    text = nncli.train.train(path, cfg).model
    assert fast.prep.to_dict() == text.prep.to_dict()
    np.testing.assert_array_equal(fast.network.theta, text.network.theta)
    save(fast, tmp_path / "fast.npz")
    save(text, tmp_path / "text.npz")
    assert (tmp_path / "fast.npz").read_bytes() == (tmp_path / "text.npz").read_bytes()


@pytest.mark.parametrize("options", [{}, {"proba": True, "keep": ["zip", "x1"]}], ids=["plain", "proba-keep"])
def test_predictions_on_numbers_are_the_text_paths(tmp_path, monkeypatch, small_blocks, options):
    path = write(tmp_path, DATA)
    model = nncli.train.train(path, load(None, CONFIG)).model
    fast, text = io.StringIO(), io.StringIO()
    predict(model, path, chunk_rows=64, stream=fast, **options)
    fast_metrics = evaluate(model, path)
    monkeypatch.setattr(nncli.predict, "read_table", text_only(nncli.predict.read_table))
    predict(model, path, chunk_rows=64, stream=text, **options)
    assert fast.getvalue() == text.getvalue()
    assert fast_metrics == evaluate(model, path)


def test_a_non_number_in_a_later_chunk_names_line_and_column(tmp_path, small_blocks):
    path = write(tmp_path, DATA)
    model = nncli.train.train(path, load(None, CONFIG)).model
    bad = DATA.splitlines()
    bad[350] = bad[350].replace(bad[350].split(",")[1], "1,5", 1).replace("1,5", '"1,5"', 1)
    new = write(tmp_path, "\n".join(bad) + "\n", "new.csv")
    with pytest.raises(DataError, match=r"new.csv: line 351, column 'x2': '1,5' is not a number \(a decimal comma"):
        predict(model, new, chunk_rows=50, stream=io.StringIO())


def test_headerless_files_read_numbers_by_position(tmp_path, small_blocks):
    path = write(tmp_path, DATA)
    model = nncli.train.train(path, load(None, CONFIG)).model
    body = write(tmp_path, "".join(line.rsplit(",", 1)[0] + "\n" for line in DATA.splitlines()[1:]), "nohead.csv")
    with_header = io.StringIO()
    predict(model, path, stream=with_header)
    without = io.StringIO()
    predict(model, body, stream=without)
    assert without.getvalue() == with_header.getvalue()


# ----- writing predictions --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_csv_text_is_what_to_csv_writes(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    floats = rng.normal(size=n) * 10.0 ** rng.integers(-12, 12, n)
    floats[rng.random(n) < 0.2] = np.nan
    labels = np.array(["a", "b,c", 'say "hi"', "two\nlines", ""], dtype=object)
    idx = rng.integers(0, len(labels), n)
    columns = {"id": np.array([f"{k:03d}" for k in range(n)], dtype=object),
               "prediction": nncli.predict._Labels(idx, labels), "proba_b,c": floats,
               "count": rng.integers(-5, 5, n), "value": np.round(floats, 2)}
    frame = pd.DataFrame({k: (v.values[v.idx] if isinstance(v, nncli.predict._Labels) else v)
                          for k, v in columns.items()})
    for header in (True, False):
        assert csv_text(columns, header) == frame.to_csv(index=False, header=header, lineterminator="\n",
                                                         float_format="%.10g")
    lone = {"prediction": np.array([1.5, np.nan])}
    assert csv_text(lone, True) == pd.DataFrame(lone).to_csv(index=False, lineterminator="\n", float_format="%.10g")


@pytest.mark.parametrize("labels", [["no", "yes", "maybe so"], ["", "b,c", 'say "hi"', "été"], ["0", "1"], ["x"]],
                         ids=["lengths", "quoted-empty-unicode", "one-length", "one-class"])
def test_a_lone_label_column_is_what_to_csv_writes(labels):
    """The prediction column alone (predict without --proba or --keep) is built in numpy, not
    joined line by line: the same text as DataFrame.to_csv, with or without rows."""
    labels = np.array(labels, dtype=object)
    for idx in (np.random.default_rng(0).integers(0, len(labels), 200), np.array([], dtype=np.intp)):
        columns = {"prediction": nncli.predict._Labels(idx, labels)}
        for header in (True, False):
            expected = pd.DataFrame({"prediction": labels[idx]}).to_csv(index=False, header=header,
                                                                        lineterminator="\n")
            assert csv_text(columns, header) == expected


def test_int_and_float_labels_are_written_as_to_csv_would(tmp_path):
    for labels in (np.array([0, 1]), np.array([0.5, 2.0])):
        columns = {"prediction": nncli.predict._Labels(np.array([1, 0, 1]), labels)}
        expected = pd.DataFrame({"prediction": labels[[1, 0, 1]]}).to_csv(index=False, lineterminator="\n",
                                                                          float_format="%.10g")
        assert csv_text(columns, True) == expected
