"""nncli's compiled CSV parser (nncli.kernels.csvparse) against two oracles: Python's float(), which
rounds correctly, cell by cell; and pandas' parser with nncli's checks after it (what nncli.data did
before), block by block. The parser may decline a block, never give it other values."""

import numpy as np
import pandas as pd
import pytest

import nncli.data
from nncli.data import _Blocks, read_table
from nncli.kernels.csvparse import parse_block
from nncli.schema import DEFAULT_MISSING


def compiled(text: str | bytes, width: int, missing=DEFAULT_MISSING, delimiter=","):
    data = bytearray(text.encode() if isinstance(text, str) else text)  # as nncli.data passes blocks
    values, rows = parse_block(data, width, delimiter, [m.encode() for m in missing])
    return None if rows < 0 else values[:, :rows].T


def same_bits(a, b):
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes() or (np.array_equal(a, b, equal_nan=True)
                                          and np.array_equal(np.signbit(a), np.signbit(b)))


def plain_number(rng) -> str:
    """A number as people and programs write them: up to 15 significant digits, a small exponent."""
    digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 16))))
    point = int(rng.integers(0, len(digits) + 1))
    cell = digits[:point] + ("." + digits[point:] if point < len(digits) or rng.random() < 0.2 else "")
    if cell.startswith("."):
        cell = ("0" if rng.random() < 0.5 else "") + cell
    if rng.random() < 0.3:
        cell += f"{rng.choice(['e', 'E'])}{rng.choice(['', '+', '-'])}{int(rng.integers(0, 7))}"
    if rng.random() < 0.5 and float(cell) != 0:  # (-0 is declined: nncli reads it as text)
        cell = rng.choice(["-", "+"]) + cell
    return cell


def test_every_number_taken_is_pythons_correctly_rounded_float():
    rng = np.random.default_rng(0)
    cells = [plain_number(rng) for _ in range(20_000)]
    cells += ["0.1", "0.2", "0.3", "1e22", "9007199254740992", "9007199254740993", "123456789012345678",
              "1.7976931348623157", "4.9406564584124654e-5", "5e-22", "0.000001", "00000.5", "1.", ".5", "+.5", "-7"]
    got = {}
    for cell in cells:
        value = compiled(cell + "\n", 1)
        if value is not None:
            got[cell] = value[0, 0]
            assert value[0, 0] == float(cell) and np.signbit(value[0, 0]) == np.signbit(float(cell)), cell
    significant = [c for c in cells if len(c.split("e")[0].split("E")[0].lstrip("+-").replace(".", "").lstrip("0")) <= 15
                   and float(c) != 0]
    assert set(significant) <= set(got)  # every plain number is taken, not declined
    assert "9007199254740993" not in got and "123456789012345678" not in got  # past 2**53: declined
    # one block of them all: most cells now go the parser's short way (it needs 24 bytes ahead)
    taken = list(got)
    values = compiled("\n".join(taken) + "\n", 1)
    same_bits(values[:, 0], np.array([float(cell) for cell in taken]))


@pytest.mark.parametrize("cell", ["-0", "-0.0", "-.0e5", " 1", "1 ", "1e400", "1e-400", "1e23", "0x10", "1_000",
                                  "inf", "nan", "1e", "1.2.3", "--1", "+", "-", ".", "e5", "1,5", "True",
                                  "12345678901234567890", "0.1000000000000000055511151231257827", '"1"', "1\r2",
                                  "99999999.99999999"])
def test_cells_outside_the_grammar_decline_the_block(cell):
    assert compiled("1,2\n" + f"3,{cell}\n", 2, missing=[]) is None
    assert compiled(f"{cell},3\n", 2, missing=[]) is None
    more = "1,2\n" * 8  # lines after it: the cell is read by the parser's short way first
    assert compiled(f"3,{cell}\n" + more, 2, missing=[]) is None
    assert compiled(f"{cell},3\n" + more, 2, missing=[]) is None


@pytest.mark.parametrize("text,width", [("1,2\n\n3,4\n", 2), ("1\n\n2\n", 1), ("1,2\n3\n", 2), ("1,2\n3,4,5\n", 2),
                                        ("1,2\n3", 2), ("1,2\r3,4\n", 2), ("1,2\n 3,4\n", 2), ("1,2,3,4\n", 2),
                                        ("1\n2\n", 2)])
def test_blank_short_and_long_lines_decline_the_block(text, width):
    assert compiled(text, width) is None
    if text.endswith("\n"):  # and with lines after them: their cells go the parser's short way first
        assert compiled(text + (",".join(["1"] * width) + "\n") * 8, width) is None


def test_line_ends_missing_strings_and_a_last_line_without_newline():
    got = compiled("1.5,NA,-2\r\n,?,3e2\n4,5,.25", 3)
    same_bits(got, np.array([[1.5, np.nan, -2.0], [np.nan, np.nan, 300.0], [4.0, 5.0, 0.25]]))
    same_bits(compiled("7;8\n", 2, delimiter=";"), np.array([[7.0, 8.0]]))
    lines = [["-1.5", "2", ".25"], ["+3.", "NA", "-0.0000001"], ["1234567.7654321", "", "0"]] * 4  # the short way too
    for end in ("\n", "\r\n"):
        same_bits(compiled(end.join(",".join(cells) for cells in lines) + end, 3, missing=["", "NA"]),
                  np.array([[float(c) if c not in ("", "NA") else np.nan for c in cells] for cells in lines]))
    assert compiled("1,NA\n", 2, missing=["?"]) is None  # not a missing string of this file
    same_bits(compiled("", 3), np.empty((0, 3)))


ODD = ["1", "-3", " 2 ", "1.50", "1e5", "1E-5", ".5", "5.", "+3", "-0", "-0.0", "0", "inf", "nan", "NA", "", "?",
       "1e400", "12345678901234567890", "9007199254740993", "abc", "True", "-999", "1e", "007", "0.1"]


@pytest.mark.parametrize("seed", range(4))
def test_blocks_read_as_pandas_and_nncli_checks_read_them(tmp_path, seed):
    """Random blocks of plain numbers with now and then an odd cell, a \\r\\n or no last newline:
    whatever the compiled parser takes equals the pandas path's frame bit for bit, and it takes
    every block the pandas path reads as clean numbers with cells of its grammar."""
    rng = np.random.default_rng(seed)
    taken = declined = 0
    for trial in range(150):
        width = int(rng.integers(1, 5))
        missing = [DEFAULT_MISSING, ["NA"], []][trial % 3]
        odd = rng.random() < 0.5
        rows = []
        for _ in range(int(rng.integers(1, 30))):
            cells = [plain_number(rng) for _ in range(width)]
            if odd and rng.random() < 0.1:
                cells[int(rng.integers(width))] = str(rng.choice(ODD))
            rows.append(",".join(cells))
        end = "\r\n" if rng.random() < 0.2 else "\n"
        data = (end.join(rows) + (end if rng.random() < 0.8 else "")).encode()
        path = tmp_path / "block.csv"
        path.write_bytes(data)
        blocks = _Blocks(path, 0, width, set(range(width)), missing, ",", "utf-8")
        asked = frozenset(range(width))
        try:
            frame = blocks._settle(blocks.parse(data, 0, set(asked)), False, data, nncli.data._Block(0, len(data), 0, 0), asked)
            reference = None if len(blocks.numbers) < width else frame[list(range(width))].to_numpy()
        except nncli.data.DataError:
            reference = None
        got = compiled(data, width, missing)
        if got is None:
            declined += 1
            assert odd or reference is None, rows
        else:
            taken += 1
            assert reference is not None, rows
            same_bits(got, reference)
    assert taken > 50 and declined > 10


def test_numbers_of_more_than_17_digits_decline():
    """pandas before 3.1 reads at most 17 digits, leading zeros included, into its float: past
    that its value may differ from the correctly rounded one, so the parser leaves such cells
    to pandas."""
    for cell in ("0.01234567890123457", "00095584.3655063171", "123456789012345678"):
        assert compiled(f"1,{cell}\n", 2) is None
    for cell in ("0.0123456789012345", "0000000000000001.5", "0.9007199254740992"):  # 17 digits, at most 2**53
        same_bits(compiled(f"1,{cell}\n", 2), np.array([[1.0, float(cell)]]))


@pytest.mark.parametrize("delimiter", ["-", "+", ".", "e", "E", "0", "7"])
def test_a_delimiter_that_can_be_part_of_a_number_leaves_the_file_to_pandas(tmp_path, monkeypatch, delimiter):
    """With such a delimiter the parser would read "-1-2" as the numbers -1 and 2 where pandas
    sees three cells; nncli.data does not use it then, and the errors are pandas' own."""
    monkeypatch.setattr(nncli.data, "COMPILED_PARSE_BYTES", 0)
    monkeypatch.setattr(nncli.data, "BLOCK_BYTES", 64)
    rows = f"3{delimiter}3\n" * 40
    path = tmp_path / "d.csv"
    path.write_text(f"a{delimiter}b\n" + rows + f"-1{delimiter}2{delimiter}5\n" + rows)
    assert compiled(rows, 2, delimiter=delimiter) is None
    with pytest.raises(nncli.data.DataError, match=r"line 42 has [34] fields where earlier rows have 2"):
        read_table(path, delimiter=delimiter, numbers=lambda names, header: names, missing=["NA"])


def test_missing_strings_the_parser_cannot_match_as_pandas_does_leave_the_file_to_pandas(tmp_path):
    for missing in (["a\rb"], ['"NA"'], ["N\nA"]):  # pandas would end a line or unquote
        assert compiled("1,2\n3,4\n", 2, missing=["NA", *missing]) is None
    assert compiled("1,2\n3,NA\n", 2, missing=["NA", "?"]) is not None
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    assert _Blocks(path, 0, 2, {0, 1}, ["NA", "–"], ",", "utf-8-sig").missing_bytes == [b"NA", "–".encode()]
    assert _Blocks(path, 0, 2, {0, 1}, ["NA", "–"], ",", "ascii").missing_bytes is None  # the file cannot hold it


def test_a_large_file_goes_through_the_compiled_parser_and_reads_as_before(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)  # (b + 0.0: no "-0", which the parser declines)
    X = rng.standard_normal((160_000, 4))
    frame = pd.DataFrame({"a": X[:, 0], "b": np.round(X[:, 1] * 1000) + 0.0, "c": X[:, 2].astype(np.float32), "y": X[:, 3] > 0})
    frame["y"] = frame["y"].astype(int)
    text = frame.to_csv(index=False, float_format="%.7g")
    lines = text.splitlines(keepends=True)
    lines[140_000] = "NA,1,?,0\n"  # missing values, in a block the compiled parser reads
    path = tmp_path / "big.csv"
    path.write_text("".join(lines))
    calls = []
    real = nncli.data._Blocks.parse_numbers

    def spy(self, data, start, numbers):
        frame, checked = real(self, data, start, numbers)
        calls.append(checked)
        return frame, checked

    monkeypatch.setattr(nncli.data._Blocks, "parse_numbers", spy)
    fast = read_table(path, numbers=lambda names, header: names, missing=DEFAULT_MISSING)
    assert sum(calls) >= 2  # the blocks of 1 MiB and more
    monkeypatch.setattr(nncli.data, "COMPILED_PARSE_BYTES", 1 << 62)
    before = read_table(path, numbers=lambda names, header: names, missing=DEFAULT_MISSING)
    assert list(fast.frame.columns) == list(before.frame.columns)
    for name in fast.frame.columns:
        assert fast.is_number(name) and before.is_number(name)
        same_bits(fast.frame[name].to_numpy(), before.frame[name].to_numpy())
    assert fast.text("a").iloc[140_000 - 1] == "NA" and np.isnan(fast.frame["c"].iloc[140_000 - 1])
