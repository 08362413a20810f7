"""Reading CSV files: the only module that touches pandas' CSV reader.

Files are read as text (every cell a string, nothing guessed by pandas), so that nncli, not the
parser, decides what is missing, what is a number and what is a category; see nncli.preprocess.
Errors name the file and the line (1-based, as an editor shows it).
"""

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nncli.errors import ConfigError, DataError

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|nan)\s*", re.IGNORECASE)


@dataclass
class Table:
    frame: pd.DataFrame  # every cell a str; index = data row number, 0-based; not to be reassigned
    has_header: bool
    path: str
    _text: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def text(self, name: str) -> pd.Series:
        """Column `name` with surrounding white space stripped, computed once per table."""
        if name not in self._text:
            self._text[name] = self.frame[name].str.strip()
        return self._text[name]

    def subset(self, rows) -> "Table":
        """A table of the rows at these positions (their line numbers kept)."""
        return Table(self.frame.iloc[rows], self.has_header, self.path)

    def line_of(self, pos: int) -> int:
        """The file's 1-based line number of the row at position `pos` of the frame.

        Counts one line per row: a quoted field holding a newline shifts later rows.
        """
        return int(self.frame.index[pos]) + 1 + int(self.has_header)


def looks_numeric(text: str) -> bool:
    return bool(_NUMBER.fullmatch(text))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a CSV file")
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    if not head.strip():
        raise DataError(f"{path}: the file is empty")
    if b"\x00" in head:
        raise DataError(f"{path}: looks like a binary file, not a CSV text file")


def _encoding(encoding: str) -> str:
    # utf-8-sig strips a byte-order mark and reads plain UTF-8 unchanged
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _header_decision(first: list[str], body: pd.DataFrame) -> bool:
    """Auto-detect a header row without ever swallowing a data row.

    The first row is a header only if every cell is a non-empty, non-numeric, distinct string and
    no column's first cell appears again among that column's values, as a data row's categories
    (a label such as "M" or "Iris-setosa") would.
    """
    if any(cell.strip() == "" or looks_numeric(cell) for cell in first) or len(set(first)) != len(first):
        return False
    return not any((body.iloc[:, j] == name).any() for j, name in enumerate(first))


def _read(path: Path, *, delimiter: str, encoding: str, **kwargs):
    """pandas.read_csv with every cell as text, its errors turned into DataErrors."""
    try:
        return pd.read_csv(path, header=None, dtype=str, na_filter=False, sep=delimiter,
                           encoding=_encoding(encoding), skip_blank_lines=True, engine="c", **kwargs)
    except UnicodeDecodeError:
        raise _decode_error(path, encoding) from None
    except LookupError:
        raise DataError(f"{path}: unknown text encoding '{encoding}'") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: {_parser_message(str(exc))}") from None


def _decode_error(path: Path, encoding: str) -> DataError:
    """Name the first line that does not decode (pandas' offsets count from its read buffer)."""
    where = ""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode(_encoding(encoding))
            except UnicodeDecodeError as exc:
                where = f" at line {number} (byte {raw[exc.start]:#04x})"
                break
    return DataError(f"{path}: not valid {encoding} text{where}; give the file's encoding with --encoding "
                     f"(e.g. --encoding latin-1) or data.encoding")


def _chunks(reader, path: Path, encoding: str):
    """Iterate a chunked reader, translating errors raised while parsing later chunks."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise _decode_error(path, encoding) from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: {_parser_message(str(exc))}") from None


def read_table(path, *, header: str = "auto", delimiter: str = ",", encoding: str = "utf-8",
               expected_names: list[str] | None = None, chunk_rows: int | None = None):
    """Read a CSV file as text: a Table, or with chunk_rows an iterator of Tables.

    header: "true", "false" or "auto". With expected_names (the training schema), "auto" means:
    a header if the first row holds those names, else headerless. Chunks share the first
    chunk's column names; their frame index counts data rows from the start of the file.
    """
    path = Path(path)
    if len(delimiter) != 1:
        raise ConfigError(f"data.delimiter: must be one character, got {delimiter!r}")
    _check_file(path)
    head = _read(path, delimiter=delimiter, encoding=encoding, nrows=None if chunk_rows is None else 200)
    if head.empty:
        raise DataError(f"{path}: the file is empty")
    _check_short_rows(path, delimiter, encoding, head.shape[1])
    first = [str(x) for x in head.iloc[0].tolist()]
    if header == "auto" and expected_names is not None:
        # a header that lacks some of the names is still a header: match_columns names the missing ones
        has_header = (set(expected_names) <= {c.strip() for c in first}
                      or _header_decision(first, head.iloc[1:]))
    elif header == "auto":
        has_header = _header_decision(first, head.iloc[1:])
    else:
        has_header = header == "true"
    if has_header:
        names = [c.strip() for c in first]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"{path}: duplicate column name(s) in the header: {', '.join(dupes)}")
    else:
        names = [f"col{j}" for j in range(head.shape[1])]
    if chunk_rows is None:
        return _table(head.iloc[1:] if has_header else head, names, has_header, path, delimiter, 0)
    if has_header and len(head) == 1:  # pandas would call the file empty once the header is skipped
        raise DataError(f"{path}: has a header row but no data rows")

    def tables():
        # the header row is dropped from the first chunk: skiprows would count blank lines too
        reader = _read(path, delimiter=delimiter, encoding=encoding, chunksize=chunk_rows)
        start = 0
        for i, frame in enumerate(_chunks(reader, path, encoding)):
            if i == 0 and has_header:
                frame = frame.iloc[1:]
            if frame.empty:
                continue
            yield _table(frame, names, has_header, path, delimiter, start)
            start += len(frame)

    return tables()


def _table(frame: pd.DataFrame, names: list, has_header: bool, path: Path, delimiter: str, start: int) -> Table:
    if frame.shape[1] != len(names):
        raise DataError(f"{path}: rows have {frame.shape[1]} fields where the first row has {len(names)}")
    frame = frame.reset_index(drop=True)
    frame.index += start
    frame.columns = names
    if frame.empty and start == 0:
        raise DataError(f"{path}: has a header row but no data rows")
    table = Table(frame, has_header, str(path))
    _check_shape(table, delimiter)
    return table


def _parser_message(message: str) -> str:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m:
        return f"line {m.group(2)} has {m.group(3)} fields where earlier rows have {m.group(1)}"
    return f"cannot parse as CSV: {message.strip().splitlines()[-1]}"


def _check_short_rows(path: Path, delimiter: str, encoding: str, width: int) -> None:
    """pandas pads a row with too few fields with empty cells, which would pass as missing values.

    So count the fields of every row (Python's csv module quotes as pandas does); too many fields
    is pandas' own error. Undecodable bytes are left for pandas to report.
    """
    with open(path, newline="", encoding=_encoding(encoding), errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        line = 1
        for row in reader:
            if row and len(row) < width:
                raise DataError(f"{path}: line {line} has {len(row)} fields where the first row has {width}")
            line = reader.line_num + 1


def _check_shape(table: Table, delimiter: str) -> None:
    frame = table.frame
    if frame.shape[1] == 1:
        cell = str(frame.iloc[0, 0])
        for other in (";", "\t", "|"):
            if other != delimiter and other in cell:
                shown = "\\t" if other == "\t" else other
                raise DataError(f"{table.path}: only one column was found, but the rows contain '{shown}': "
                                f"is it the delimiter? Pass --delimiter '{shown}' or set data.delimiter")


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (to tell that a resumed run reads the same data)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_rows(n: int, fraction: float, rng: np.random.Generator, strata: np.ndarray | None):
    """Indices (train, held_out) with round(fraction * n) rows held out, stratified by strata."""
    if strata is None:
        perm = rng.permutation(n)
        k = int(round(fraction * n))
        return np.sort(perm[k:]), np.sort(perm[:k])
    held = []
    for value in np.unique(strata):
        idx = np.flatnonzero(strata == value)
        idx = idx[rng.permutation(idx.size)]
        held.append(idx[: int(round(fraction * idx.size))])
    held = np.sort(np.concatenate(held))
    mask = np.ones(n, dtype=bool)
    mask[held] = False
    return np.flatnonzero(mask), held
