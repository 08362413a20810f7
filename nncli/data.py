"""Reading CSV files: the only module that touches pandas' CSV reader.

Files are read as text (every cell a string, nothing guessed by pandas), so that nncli, not the
parser, decides what is missing, what is a number and what is a category; see nncli.preprocess.
Errors name the file and the line (1-based, as an editor shows it).

The fast path: columns a caller asks for as numbers are parsed by pandas' C parser straight to
float64 (a missing-value string gives NaN), which is many times faster and smaller than text. A
column is kept as numbers only where that gives exactly what the text path would (nncli.preprocess
.numeric_values): every cell an int or a finite float, no -0.0, no True/False; otherwise that
block of the file is parsed again as text, so every error message comes from the text path.
The file is parsed in blocks of whole lines (BLOCK_BYTES), which lets a block be parsed again,
keeps ragged-row checks to one count of delimiters per block, and lets two blocks be parsed at once
in threads (pandas' parser releases the GIL), also while the caller works on the blocks before.
Blocks from COMPILED_PARSE_BYTES on whose every column is wanted as numbers go first through
nncli's compiled parser (nncli.kernels.csvparse, about twice pandas' speed): it takes a block only
where its values are exactly those of the pandas path and the checks above, else pandas parses it.
"""

import codecs
import csv
import hashlib
import io
import os
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nncli.errors import ConfigError, DataError

BLOCK_BYTES = 4 << 20  # bytes of whole lines parsed at a time (two at once: see PARSE_THREADS)
BLOCKS_AT_LEAST = 16  # ... and at most this share of a file (not below COMPILED_PARSE_BYTES), so that
# the blocks in flight, up to four, weigh on a small file's memory no more than on a large one's
FIRST_BLOCK_BYTES = 128 << 10
LINE_ROOM = 64 << 10  # room past a block's bytes for the rest of its last line
COMPILED_PARSE_BYTES = 1 << 20  # blocks from this size on try nncli's compiled parser first
PARSE_THREADS = min(2, os.cpu_count() or 1)  # blocks parsed at once
GRID_CELLS = 1 << 21  # Table.numbers takes a frame of at most this many cells as one 2D array
QUEUE = 1  # blocks read ahead that wait for a parse thread, beyond the PARSE_THREADS being parsed
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|nan)\s*", re.IGNORECASE)


@dataclass
class Table:
    # every cell a str, or a float64 column for one read as numbers (NaN: a missing value);
    # index = data row number, 0-based; not to be reassigned
    frame: pd.DataFrame
    has_header: bool
    path: str
    reread: Callable[[int], pd.Series] | None = None  # the cells of the column at a position as text
    # a table too large to hold whole (nncli.preprocess.summarize): its numeric columns that are
    # not in frame, each as a preprocess.Summary, and the derived features' (data.derive) Summaries
    summaries: dict = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
    names: list | None = None  # every column of the file, where frame lacks the summarized ones
    _text: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _numbers: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns) if self.names is None else self.names

    def is_number(self, name: str) -> bool:
        """Whether column `name` was read as numbers (see the module docstring)."""
        return name in self.summaries or name in self.numbers()

    def numbers(self) -> dict[str, np.ndarray]:
        """The columns read as numbers, by name, as float64 arrays (not to be written to).

        A block's frame whose every column is a number comes as one 2D array, so its columns are
        views of it: cheaper than pandas' lookup of a column (tens of µs each) for every column
        of every chunk."""
        if self._numbers is None:
            frame, self._numbers = self.frame, {}
            if self.reread is None:
                return self._numbers
            floats = [kind == np.float64 for kind in frame.dtypes]
            if all(floats) and frame.size <= GRID_CELLS:
                grid = frame.to_numpy()  # a view of the block's values, or a copy of at most GRID_CELLS
                self._numbers = {name: grid[:, j] for j, name in enumerate(frame.columns)}
            else:
                self._numbers = {name: frame[name].to_numpy() for name, number in zip(frame.columns, floats) if number}
        return self._numbers

    def text(self, name: str) -> pd.Series:
        """Column `name` with surrounding white space stripped, computed once per table."""
        if name not in self._text:
            cells = self.frame[name]
            if self.is_number(name):  # the cells as written, parsed again (errors, labels, categories)
                cells = self.reread(self.frame.columns.get_loc(name))
            self._text[name] = cells.str.strip()
        return self._text[name]

    def subset(self, rows) -> "Table":
        """A table of the rows at these positions (their line numbers kept)."""
        reread = None if self.reread is None else (lambda j, parent=self.reread: parent(j).iloc[rows])
        return Table(self.frame.iloc[rows], self.has_header, self.path, reread)

    def line_of(self, pos: int) -> int:
        """The file's 1-based line number of the row at position `pos` of the frame.

        Counts one line per row: a quoted field holding a newline shifts later rows.
        """
        return int(self.frame.index[pos]) + 1 + int(self.has_header)


def every_column(names: list[str], has_header: bool) -> list[str]:
    """read_table(numbers=every_column): every column as numbers where it is clean."""
    return names


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
               expected_names: list[str] | None = None, chunk_rows: int | None = None,
               numbers: Callable[[list[str], bool], list[str]] | None = None, missing: list[str] = ()):
    """Read a CSV file: a Table, or with chunk_rows an iterator of Tables.

    header: "true", "false" or "auto". With expected_names (the training schema), "auto" means:
    a header if the first row holds those names, else headerless. Chunks share the first
    chunk's column names; their frame index counts data rows from the start of the file.
    Every cell is text, except that numbers(names, has_header) may name columns to read as
    float64 wherever that is exact (see the module docstring), with `missing` the strings that
    mean a missing value.
    """
    path = Path(path)
    if len(delimiter) != 1:
        raise ConfigError(f"data.delimiter: must be one character, got {delimiter!r}")
    _check_file(path)
    start = _data_start(path, delimiter, encoding)
    fast = start is not None
    head = _read(path, delimiter=delimiter, encoding=encoding, nrows=200 if fast or chunk_rows else None)
    if head.empty:
        raise DataError(f"{path}: the file is empty")
    if not fast:
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
    if fast:
        wanted = set(numbers(names, has_header)) if numbers is not None else set()
        blocks = _Blocks(path, start[1] if has_header else start[0], len(names),
                         {j for j, n in enumerate(names) if n in wanted}, list(missing), delimiter, encoding)
        if chunk_rows is None:
            frame, reread = blocks.whole()
            return _table(frame, names, has_header, path, delimiter, 0, reread)
        if has_header and head.shape[0] == 1:
            raise DataError(f"{path}: has a header row but no data rows")
        return (_table(frame, names, has_header, path, delimiter, first_row, reread)
                for frame, first_row, reread in blocks.chunks(chunk_rows))
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


_BYTE_ENCODINGS = ("utf-8", "ascii", "latin-1", "iso8859", "cp125", "cp437", "cp850", "mac-roman")


def _data_start(path: Path, delimiter: str, encoding: str) -> tuple[int, int] | None:
    """Byte offsets where the first row starts and where the row after it starts, or None where
    blocks of lines cannot be cut from the bytes: an encoding whose newline, quote and delimiter
    are not those ASCII bytes, a delimiter that is not ASCII, a carriage return without a newline,
    or a first row that may go on past its line (an odd count of quotes)."""
    try:
        name = codecs.lookup(_encoding(encoding)).name
    except LookupError:
        return None
    if not name.startswith(_BYTE_ENCODINGS) or not delimiter.isascii() or delimiter in "\"\r\n":
        return None
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip(b" \t\r\n\xef\xbb\xbf"):
                if line.count(b'"') % 2 or b"\r" in line.rstrip(b"\r\n"):
                    return None
                return offset, offset + len(line)
            offset += len(line)
    return None


@dataclass
class _Block:
    """Whole lines of the file: bytes [offset, offset + size), holding data rows [first, first + rows)."""

    offset: int
    size: int
    first: int
    rows: int


class _Blocks:
    """The data rows of a file from byte `start`, parsed block by block (see the module docstring)."""

    def __init__(self, path: Path, start: int, width: int, numbers: set, missing: list, delimiter: str,
                 encoding: str):
        # the text path compares stripped cells with the missing strings, pandas compares the cells as
        # written, and a numeric missing string also as a number (-999 would take -999.0 too)
        self.missing = [m for m in missing if m == m.strip()]
        if any(np.isfinite(_float(m)) for m in self.missing):
            numbers = ()
        self.path, self.start, self.width, self.numbers = path, start, width, set(numbers)
        share = (path.stat().st_size - start) // BLOCKS_AT_LEAST
        self.block_bytes = min(BLOCK_BYTES, max(COMPILED_PARSE_BYTES, share))
        self.delimiter, self.encoding = delimiter, encoding
        self.missing_bytes = self._compiled_parser_missing()

    def _compiled_parser_missing(self) -> list[bytes] | None:
        """The missing strings as the file's bytes, for the compiled parser; None if the encoding
        cannot hold one (the parser itself declines what else it cannot read as pandas does)."""
        encoding = "utf-8" if codecs.lookup(_encoding(self.encoding)).name == "utf-8-sig" else self.encoding
        try:
            return [m.encode(encoding) for m in self.missing]  # (utf-8-sig would add a BOM)
        except UnicodeEncodeError:
            return None

    def _bytes(self, block: _Block) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(block.offset)
            return f.read(block.size)

    def _cuts(self):
        """(offset, bytearray) of successive blocks of whole lines, never cut inside a quoted field."""
        with open(self.path, "rb") as f:
            f.seek(self.start)
            offset, size = self.start, FIRST_BLOCK_BYTES
            while True:
                # a bytearray read in place and extended to the line end within its spare room: no
                # copy of the block (a line longer than LINE_ROOM grows it)
                want = min(size, self.block_bytes)
                data = bytearray(want + LINE_ROOM)
                got = f.readinto(memoryview(data)[:want])
                if not got:
                    return
                size *= 4  # a small first block: the first rows (a header check, a small file) come fast
                tail = f.readline()  # to the end of the last line
                if len(tail) <= LINE_ROOM:
                    data[got:got + len(tail)] = tail
                    del data[got + len(tail):]
                else:
                    del data[got:]
                    data += tail
                quotes = data.count(b'"') if b'"' in data else 0
                while quotes % 2:  # inside a quoted field: on to a line end outside it
                    line = f.readline()
                    if not line:
                        break
                    data += line
                    quotes += line.count(b'"')
                yield offset, data
                offset += len(data)

    def parse(self, data: bytearray, block_start: int, numbers: set, usecols=None) -> pd.DataFrame:
        """One block as a frame with columns 0..width-1: `numbers` parsed by inference with the
        missing strings as NaN, the others as text."""
        try:
            return pd.read_csv(io.BytesIO(data), header=None, names=range(self.width), index_col=False,
                               usecols=usecols, dtype={j: str for j in range(self.width) if j not in numbers},
                               na_filter=bool(numbers), keep_default_na=False,
                               na_values={j: self.missing for j in numbers}, sep=self.delimiter,
                               encoding=_encoding(self.encoding), skip_blank_lines=True, engine="c")
        except UnicodeDecodeError:
            raise _decode_error(self.path, self.encoding) from None
        except pd.errors.EmptyDataError:
            return pd.DataFrame({j: pd.Series([], dtype=str) for j in (usecols or range(self.width))})
        except pd.errors.ParserError as exc:
            raise DataError(f"{self.path}: {_parser_message(str(exc), self._lines_before(block_start))}") from None

    def parse_numbers(self, data: bytearray, block_start: int, numbers: frozenset) -> tuple[pd.DataFrame, bool]:
        """parse(data, block_start, numbers), and whether the frame is already known to be what
        _settle would make of it: a large block whose every column is wanted as numbers goes
        through nncli's compiled parser (nncli.kernels.csvparse), which takes only cells it reads
        exactly as pandas and the checks do, or declines the block."""
        if (len(data) >= COMPILED_PARSE_BYTES and len(numbers) == self.width and self.missing_bytes is not None
                and b'"' not in data):
            from nncli.kernels.csvparse import parse_block

            values, rows = parse_block(data, self.width, self.delimiter, self.missing_bytes)
            if rows > 0:
                return pd.DataFrame(values[:, :rows].T, copy=False), True
        return self.parse(data, block_start, set(numbers)), False

    def _lines_before(self, offset: int) -> int:
        with open(self.path, "rb") as f:
            return f.read(offset).count(b"\n")

    def blocks(self):
        """(frame, block) of every block, in order; a column of self.numbers that is not clean in a
        block is text there, and in every later block. PARSE_THREADS blocks are parsed at once
        (both parsers release the GIL), also while the caller works on the ones before; one more
        waits in the queue, so that a thread that finishes goes on without waiting for the caller."""
        first = 0
        with ThreadPoolExecutor(PARSE_THREADS) as pool:
            jobs, cuts = deque(), self._cuts()
            while True:
                while len(jobs) < PARSE_THREADS + QUEUE and (cut := next(cuts, None)) is not None:
                    asked = frozenset(self.numbers)  # a snapshot: later blocks may take columns out
                    held = [cut[1]]
                    jobs.append((cut[0], len(cut[1]), held, asked, pool.submit(self._parse_held, held, cut[0], asked)))
                    cut = None
                if not jobs:
                    return
                offset, size, held, asked, job = jobs.popleft()
                frame = self._settle(*job.result(), held[0], _Block(offset, size, first, 0), asked)
                if len(frame):
                    yield frame, _Block(offset, size, first, len(frame))
                    first += len(frame)

    def _parse_held(self, held: list, block_start: int, numbers: frozenset) -> tuple[pd.DataFrame, bool]:
        """parse_numbers of the bytes in held[0], which it lets go where they are not needed again:
        a block the compiled parser took is clean (so blocks parsed ahead hold only their values)."""
        frame, checked = self.parse_numbers(held[0], block_start, numbers)
        if checked:
            held[0] = None
        return frame, checked

    def _settle(self, frame: pd.DataFrame, checked: bool, data: bytearray | None, block: _Block,
                asked: frozenset) -> pd.DataFrame:
        """A parsed block checked for short rows, with its columns that are not clean, or no longer
        wanted as numbers (an earlier block found them not clean), parsed again as text. A frame
        from the compiled parser is `checked`: known to have no short rows and clean columns (and
        its bytes, None here, are read again only for such a column)."""
        offset = block.offset
        if not checked:
            self._check_short_rows(data, frame, offset)
        dirty = [j for j in sorted(self.numbers & asked) if len(frame) and not checked and not _clean(frame, j)]
        self.numbers -= set(dirty)
        again = sorted(set(dirty) | (asked - self.numbers)) if len(frame) else []
        if again:
            text = self.parse(self._bytes(block) if data is None else data, offset, set(), usecols=again)
            for j in again:
                frame[j] = text[j]
        return frame

    def text(self, block: _Block, j: int) -> pd.Series:
        return self.parse(self._bytes(block), block.offset, set(), usecols=[j])[j]

    def _reread(self, pieces: list) -> Callable[[int], pd.Series]:
        """The text of column j over pieces [(block, first row, last row + 1 within the block)]."""
        def reread(j: int) -> pd.Series:
            parts = [self.text(block, j).iloc[lo:hi] for block, lo, hi in pieces]
            return pd.concat(parts, ignore_index=True).set_axis(range(pieces[0][0].first + pieces[0][1],
                                                                      pieces[0][0].first + pieces[0][1]
                                                                      + sum(hi - lo for _, lo, hi in pieces)))
        return reread

    def whole(self) -> tuple[pd.DataFrame, Callable]:
        """Every data row as one frame. Each numeric column goes straight into one array sized for
        the most rows the file can hold (a row has at least width - 1 delimiters and a newline, or
        a character and a newline): its pages are only touched as rows arrive, and no block's copy
        outlives its block."""
        capacity = (self.path.stat().st_size - self.start) // max(self.width, 2) + 1
        numbers = {j: np.empty(capacity) for j in self.numbers}
        text = {j: [] for j in range(self.width) if j not in self.numbers}
        pieces, n = [], 0
        for frame, block in self.blocks():
            for j in list(numbers):
                if j in self.numbers:
                    numbers[j][n:n + len(frame)] = frame[j].to_numpy()
                else:  # not clean in this block: text from here on, and for the blocks before it
                    text[j] = [self.text(earlier, j) for earlier, _, _ in pieces]
                    del numbers[j]
            for j, parts in text.items():
                parts.append(frame[j])
            pieces.append((block, 0, block.rows))
            n += len(frame)
            del frame
        if not pieces:
            return pd.DataFrame({j: pd.Series([], dtype=str) for j in range(self.width)}), None
        columns = {j: numbers[j][:n] if j in numbers else
                   (pd.concat(text[j], ignore_index=True) if len(text[j]) > 1 else text[j][0])
                   for j in range(self.width)}
        return pd.DataFrame(columns, copy=False), self._reread(pieces)

    def _as_text(self, frame: pd.DataFrame, block: _Block) -> pd.DataFrame:
        """The block's frame with the columns that later blocks found not clean as text."""
        for j in frame.columns:
            if j not in self.numbers and frame[j].dtype == np.float64:
                frame[j] = self.text(block, j)
        return frame

    def chunks(self, rows: int):
        """(frame, first data row, reread) of successive chunks of at most `rows` rows, each within
        one block: rows of two blocks are never copied together into one chunk."""
        for frame, block in self.blocks():
            frame = self._as_text(frame, block)
            for lo in range(0, len(frame), rows):
                part = frame.iloc[lo:lo + rows].reset_index(drop=True)
                yield part, block.first + lo, self._reread([(block, lo, lo + len(part))])

    def _check_short_rows(self, data: bytearray, frame: pd.DataFrame, offset: int) -> None:
        """pandas pads a short row with empty cells; a short row has fewer delimiters (a long one is
        pandas' own error). A clean numeric last column without NaN has no padding at all."""
        last = frame[self.width - 1] if len(frame) else None
        if last is None or (last.dtype.kind in "if" and not last.isna().any()):
            return
        if b'"' not in data and data.count(self.delimiter.encode("latin-1")) == (self.width - 1) * len(frame):
            return
        text = data.decode(_encoding(self.encoding), errors="replace")
        _short_rows(io.StringIO(text, newline=""), self.path, self.delimiter, self.width,
                    self._lines_before(offset) + 1)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _clean(frame: pd.DataFrame, j: int) -> bool:
    """Whether column j parsed to what the text path makes of it, turning ints into float64 in place."""
    column = frame[j]
    if column.dtype == np.int64:
        frame[j] = column.astype(np.float64)
        return True
    if column.dtype != np.float64:
        return False
    x = column.to_numpy()
    return not (np.isinf(x).any() or (np.signbit(x) & (x == 0)).any())


def _table(frame: pd.DataFrame, names: list, has_header: bool, path: Path, delimiter: str, start: int,
           reread=None) -> Table:
    if frame.shape[1] != len(names):
        raise DataError(f"{path}: rows have {frame.shape[1]} fields where the first row has {len(names)}")
    frame = frame.reset_index(drop=True)
    frame.index += start
    frame.columns = names
    if frame.empty and start == 0:
        raise DataError(f"{path}: has a header row but no data rows")
    table = Table(frame, has_header, str(path), reread)
    _check_shape(table, delimiter)
    return table


def _parser_message(message: str, lines_before: int = 0) -> str:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m:
        return f"line {int(m.group(2)) + lines_before} has {m.group(3)} fields where earlier rows have {m.group(1)}"
    return f"cannot parse as CSV: {message.strip().splitlines()[-1]}"


def _check_short_rows(path: Path, delimiter: str, encoding: str, width: int) -> None:
    """pandas pads a row with too few fields with empty cells, which would pass as missing values.

    So count the fields of every row (Python's csv module quotes as pandas does); too many fields
    is pandas' own error. Undecodable bytes are left for pandas to report.
    """
    with open(path, newline="", encoding=_encoding(encoding), errors="replace") as f:
        _short_rows(f, path, delimiter, width, 1)


def _short_rows(f, path, delimiter: str, width: int, line: int) -> None:
    """Raise for the first row of text file f (whose first line is file line `line`) with fewer
    than `width` fields."""
    reader = csv.reader(f, delimiter=delimiter)
    first = line
    for row in reader:
        if row and len(row) < width:
            raise DataError(f"{path}: line {line} has {len(row)} fields where the first row has {width}")
        line = first + reader.line_num


def _check_shape(table: Table, delimiter: str) -> None:
    frame = table.frame
    if frame.shape[1] == 1:
        cell = str(frame.iloc[0, 0])
        for other in (";", "\t", "|"):
            if other != delimiter and other in cell:
                shown = "\\t" if other == "\t" else other
                raise DataError(f"{table.path}: only one column was found, but the rows contain '{shown}': "
                                f"is it the delimiter? Pass --delimiter '{shown}' or set data.delimiter")


def changed(path) -> DataError:
    """The error for a file that changed between two reads of it (a fit that reads a file twice)."""
    return DataError(f"{path}: the file changed while nncli read it")


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
