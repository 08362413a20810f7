"""nncli.data: reading CSV files as text, header detection, errors that name the file and line."""

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, shared_csv
from nncli.data import read_table, split_rows
from nncli.errors import ConfigError, DataError

SHARED = ["abalone.csv", "banknote_authentication.csv", "housing.csv", "iris.csv", "pima-indians-diabetes.csv",
          "sonar.csv", "winequality-red.csv"]
SAMPLES = sorted((ROOT / "sample_data").glob("*.csv"))


def write(folder: Path, name: str, text: str, mode: str = "w") -> Path:
    path = folder / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def rows_of(path: Path) -> list[list[str]]:
    """The independent reading: Python's csv module, blank lines dropped."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [row for row in csv.reader(f) if row]


# ----- header detection ------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHARED)
def test_headerless_shared_files_keep_every_row(name):
    path = shared_csv(name)
    table = read_table(path)
    expected = rows_of(path)
    assert not table.has_header
    assert table.frame.shape == (len(expected), len(expected[0]))
    assert table.frame.iloc[0].tolist() == expected[0]  # the first data row was not taken as names
    assert list(table.frame.columns) == [f"col{j}" for j in range(len(expected[0]))]


def test_sample_data_exists():
    assert [p.name for p in SAMPLES] == ["churn.csv", "fruit.csv", "house_prices.csv"]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_data_headers_are_detected(path):
    table = read_table(path)
    expected = rows_of(path)
    assert table.has_header
    assert list(table.frame.columns) == expected[0]
    assert table.frame.to_numpy().tolist() == expected[1:]


@pytest.mark.parametrize("text, has_header", [
    ("a,b,y\n1,2,x\n3,4,z\n", True),
    ("yes,no,no\nno,yes,no\nyes,yes,yes\n", False),  # first-row cells recur below: data, not names
    ("R,0.1,0.2\nM,0.3,0.4\n", False),  # a number in the first row: data
    ("a,,y\n1,2,3\n", False),  # an empty cell: data
    ("x,x,y\n1,2,3\n", False),  # duplicate names: not a header without --header
])
def test_header_auto_detection(tmp_path, text, has_header):
    table = read_table(write(tmp_path, "t.csv", text))
    assert table.has_header is has_header
    assert len(table.frame) == text.count("\n") - int(has_header)


def test_header_can_be_forced_either_way(tmp_path):
    path = write(tmp_path, "t.csv", "yes,no\nno,yes\nyes,yes\n")
    assert read_table(path, header="true").frame.columns.tolist() == ["yes", "no"]
    assert len(read_table(path, header="false").frame) == 3


def test_header_with_expected_names_found_in_any_order(tmp_path):
    path = write(tmp_path, "t.csv", "b,a\n1,2\n")
    assert read_table(path, expected_names=["a", "b"]).has_header
    headerless = write(tmp_path, "h.csv", "1,2\n3,4\n")
    assert not read_table(headerless, expected_names=["a", "b"]).has_header


def test_byte_order_mark_is_stripped(tmp_path):
    path = write(tmp_path, "bom.csv", "\ufeffa,b,y\n1,2,x\n3,4,z\n")
    assert read_table(path).frame.columns.tolist() == ["a", "b", "y"]
    headerless = write(tmp_path, "bom2.csv", "\ufeff1,2\n3,4\n")
    assert read_table(headerless).frame.iloc[0].tolist() == ["1", "2"]


def test_cells_are_kept_as_text(tmp_path):
    path = write(tmp_path, "t.csv", "id,v,c\n007,1.50,NA\n8, 2 ,\n")
    frame = read_table(path).frame
    assert frame.to_numpy().tolist() == [["007", "1.50", "NA"], ["8", " 2 ", ""]]


def test_quoted_fields_with_delimiters_and_newlines(tmp_path):
    path = write(tmp_path, "q.csv", 'name,v\n"Smith, J",1\n"two\nlines",2\n')
    assert read_table(path).frame["name"].tolist() == ["Smith, J", "two\nlines"]


# ----- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("delimiter, shown", [(";", ";"), ("\t", "\\t"), ("|", "|")])
def test_wrong_delimiter_is_named(tmp_path, delimiter, shown):
    path = write(tmp_path, "t.csv", delimiter.join(["a", "b", "y"]) + "\n" + delimiter.join("120") + "\n")
    with pytest.raises(DataError, match=f"rows contain '{re.escape(shown)}': is it the delimiter.*data.delimiter"):
        read_table(path)


def test_other_delimiter_reads(tmp_path):
    path = write(tmp_path, "t.csv", "a;b\n1;2\n")
    assert read_table(path, delimiter=";").frame.to_numpy().tolist() == [["1", "2"]]


def test_multi_character_delimiter_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.delimiter: must be one character"):
        read_table(write(tmp_path, "t.csv", "a;;b\n1;;2\n"), delimiter=";;")


@pytest.mark.parametrize("text, line, fields", [
    ("a,b,y\n1,2,0\n3,4\n5,6,1\n", 3, 2),  # short row: pandas would pad it with empty cells
    ("a,b,y\n1,2,0\n\n3\n", 4, 1),  # a blank line does not shift the line number
    ('a,b,y\n1,"x\ny",0\n3,4\n', 4, 2),  # nor does a quoted newline
    ("1,2,0\n3,4,1\n5,6\n", 3, 2),
])
def test_short_row_names_its_line(tmp_path, text, line, fields):
    with pytest.raises(DataError, match=f"line {line} has {fields} fields where the first row has 3"):
        read_table(write(tmp_path, "t.csv", text))


def test_long_row_names_its_line(tmp_path):
    path = write(tmp_path, "t.csv", "a,b,y\n1,2,0\n3,4,1,9\n5,6,1\n")
    with pytest.raises(DataError, match="line 3 has 4 fields where earlier rows have 3"):
        read_table(path)


def test_short_row_in_a_later_chunk(tmp_path):
    path = write(tmp_path, "t.csv", "a,b\n" + "1,2\n" * 500 + "3\n")
    with pytest.raises(DataError, match="line 502 has 1 fields"):
        list(read_table(path, chunk_rows=100))


def test_duplicate_column_names(tmp_path):
    path = write(tmp_path, "dup.csv", "a,b,a,b,y\n1,2,3,4,5\n")
    with pytest.raises(DataError, match="duplicate column name.*: a, b"):
        read_table(path, header="true")


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("\n\n  \n", "the file is empty"),
    ("a,b,y\n", "has a header row but no data rows"),
])
def test_empty_and_header_only_files(tmp_path, text, message):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_header_only_file_chunked(tmp_path):
    with pytest.raises(DataError, match="has a header row but no data rows"):
        list(read_table(write(tmp_path, "t.csv", "a,b,y\n"), header="true", chunk_rows=10))


def test_binary_file(tmp_path):
    path = write(tmp_path, "model.csv", b"PK\x03\x04\x00\x00binary", mode="wb")
    with pytest.raises(DataError, match="looks like a binary file"):
        read_table(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_wrong_encoding_far_into_the_file_names_its_line(tmp_path):
    """Beyond pandas' read buffer (256 KiB), its own offsets no longer count from the file start."""
    path = write(tmp_path, "big.csv", b"name,v\n" + b"abc,1\n" * 60000 + b"caf\xe9,1\n", mode="wb")
    with pytest.raises(DataError, match=r"at line 60002 \(byte 0xe9\)"):
        read_table(path)
    with pytest.raises(DataError, match=r"at line 60002 \(byte 0xe9\)"):
        list(read_table(path, chunk_rows=1000))


def test_wrong_encoding_names_the_byte(tmp_path):
    path = write(tmp_path, "latin.csv", "name,v\ncaf\xe9,1\n".encode("latin-1"), mode="wb")
    with pytest.raises(DataError, match=r"not valid utf-8 text at line 2 \(byte 0xe9\).*data.encoding"):
        read_table(path)
    assert read_table(path, encoding="latin-1").frame["name"].tolist() == ["café"]


# ----- chunks and line numbers ---------------------------------------------------------------
def test_chunks_concatenate_to_the_whole_table(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 1000, (250, 3))
    path = write(tmp_path, "t.csv", "a,b,c\n" + "".join(f"{x},{y},{z}\n" for x, y, z in values))
    whole = read_table(path)
    chunks = list(read_table(path, chunk_rows=64))
    assert len(chunks) == 4 and all(len(c.frame) <= 64 for c in chunks)
    joined = pd.concat([c.frame for c in chunks])
    pd.testing.assert_frame_equal(joined, whole.frame)
    assert joined.to_numpy().astype(int).tolist() == values.tolist()
    before = np.cumsum([0] + [len(c.frame) for c in chunks])
    assert [c.line_of(0) for c in chunks] == [2 + int(b) for b in before[:-1]]  # header line, rows before


def test_chunked_header_after_a_blank_line(tmp_path):
    path = write(tmp_path, "t.csv", "\nname,v\nabc,1\nx,2\n")
    for chunk_rows in (1, 10):
        chunks = list(read_table(path, chunk_rows=chunk_rows))
        assert pd.concat([c.frame for c in chunks]).to_numpy().tolist() == [["abc", "1"], ["x", "2"]]


@pytest.mark.parametrize("has_header", [True, False])
def test_line_of(tmp_path, has_header):
    text = ("a,b\n" if has_header else "") + "1,2\n3,4\n5,6\n"
    table = read_table(write(tmp_path, "t.csv", text))
    assert [table.line_of(i) for i in range(3)] == ([2, 3, 4] if has_header else [1, 2, 3])


# ----- splitting -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_stratified_split_keeps_class_shares(seed):
    rng = np.random.default_rng(seed)
    strata = rng.choice(np.array(["a", "b", "c"]), 301, p=[0.6, 0.3, 0.1])
    keep, held = split_rows(len(strata), 0.25, np.random.default_rng(seed), strata)
    assert np.intersect1d(keep, held).size == 0
    np.testing.assert_array_equal(np.union1d(keep, held), np.arange(301))
    for value in "abc":
        assert np.sum(strata[held] == value) == round(0.25 * np.sum(strata == value))


def test_plain_split_is_seeded():
    a = split_rows(100, 0.3, np.random.default_rng(5), None)
    b = split_rows(100, 0.3, np.random.default_rng(5), None)
    c = split_rows(100, 0.3, np.random.default_rng(6), None)
    assert len(a[1]) == 30 and len(a[0]) == 70
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
