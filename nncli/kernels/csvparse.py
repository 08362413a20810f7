"""A compiled parser for blocks of CSV lines whose every cell is a plain decimal number or a
missing-value string: nncli.data's fast path for large files.

It gives exactly what pandas' parser, and nncli's checks after it, give for such a block, or it
declines the whole block (returns -1 rows) and pandas parses it as before. A cell is taken only
if it is one of the missing strings, as written (NaN), or a number [+-]? digits, a point and
digits (either side may be empty, not both), and an exponent (e|E)[+-]? of 1-4 digits, with at
most 17 digits in all (leading zeros included), at most 2**53 as the integer of its digits and a
power of ten of at most 22 either way. Such a number is that integer, exact in float64, times or
divided by an exact power of ten: one correctly rounded IEEE operation, which is what pandas
returns too (fast_float in pandas 3.1; precise_xstrtod before, which reads up to 17 digits, leading
zeros included, into a float64, exactly while the integer stays within 2**53). Everything else
declines: quotes, spaces, blank lines, a line with other than `width` cells, a carriage return
other than before a newline, -0 (the pandas path reads it as 0 in a column of integers and as text
in a column of floats), longer or larger numbers; and whole files whose delimiter can be part of a
number, or whose missing strings hold a line end or a quote. It holds no GIL, so two blocks parse
at once on two threads.
"""

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from nncli.kernels import jit

_POWERS = np.array([float(f"1e{k}") for k in range(23)])  # exact in float64
_EXACT = np.uint64(2**53)  # integers up to here are exact in float64
_DIGITS = 17  # digits in a number at most, leading zeros included (as pandas 2's precise_xstrtod keeps)
_NEWLINE, _RETURN, _QUOTE, _PLUS, _MINUS, _DOT, _ZERO, _NINE = 10, 13, 34, 43, 45, 46, 48, 57


_U = np.uint64
_ASCII_ZEROS, _LOW7, _TO_TEN, _HIGH = _U(0x3030303030303030), _U(0x7F7F7F7F7F7F7F7F), _U(0x7676767676767676), \
    _U(0x8080808080808080)
_PAIRS, _MIX_A, _MIX_B = _U(0x000000FF000000FF), _U(100 + (1000000 << 32)), _U(1 + (10000 << 32))  # 8 digits' value
_INT_POWERS = np.array([10**k for k in range(9)], dtype=np.uint64)


@jit(inline="always")
def _load8(data, j):
    """The eight bytes data[j:j + 8] as one little-endian uint64 (j unsigned: no wraparound check,
    so that LLVM makes the eight loads one)."""
    return (_U(data[j]) | (_U(data[j + _U(1)]) << _U(8)) | (_U(data[j + _U(2)]) << _U(16))
            | (_U(data[j + _U(3)]) << _U(24)) | (_U(data[j + _U(4)]) << _U(32))
            | (_U(data[j + _U(5)]) << _U(40)) | (_U(data[j + _U(6)]) << _U(48))
            | (_U(data[j + _U(7)]) << _U(56)))


@jit(inline="always")
def _digit_run(word):
    """(count, value): how many of the eight bytes in `word` (ASCII, little-endian) are digits before
    the first that is not (8 if all are), and the number those digits make."""
    x = word ^ _ASCII_ZEROS  # a digit byte: its value
    count = trailing_zeros((((x & _LOW7) + _TO_TEN) | x) & _HIGH) >> _U(3)  # top bit: not a digit
    x = x << ((_U(64) - _U(8) * count) & _U(63))  # the digits as the last of eight
    x = x * _U(10) + (x >> _U(8))
    x = ((x & _PAIRS) * _MIX_A + ((x >> _U(16)) & _PAIRS) * _MIX_B) >> _U(32)
    return count, x if count else _U(0)


@jit(nogil=True)
def parse_numbers(data, out, delimiter, missing, lengths):
    """Parse `data` (uint8 bytes of whole lines) into out, a float64 array (width, lines) with a
    column for each line (lines = newlines + 1; the caller allocates it: np.empty in a kernel
    would make every process that loads this one import numba.np.arrayobj, 0.03 s); returns the
    number of rows it holds: columns [:, :rows] are the cells, NaN where a missing string
    (missing[k, :lengths[k]]) stands, or -1 where the block is not one this parser takes (the
    module docstring).

    One flat function: numba passes an array to a compiled callee with a reference count update,
    which cost more than the parsing itself here (the helpers above are inlined in numba's IR).
    Digits go eight at a time: which bytes of one uint64 are digits, and their value, take a few
    integer operations (SWAR), not a byte-by-byte loop whose exit the branch predictor misses on
    every cell. A cell of up to 8 digits either side of a point, the common one, takes a short way
    with no loop and one branch that depends on the cell (whether it has a point); any other cell
    goes the general way, which reads any number this parser takes.
    """
    n = data.shape[0]
    width = out.shape[0]
    if _ZERO <= delimiter <= _NINE or delimiter in (_PLUS, _MINUS, _DOT, 101, 69):  # can be part of a number
        return -1  # ("-1-2" would be two numbers here, three cells to pandas)
    for k in range(lengths.shape[0]):  # a missing string that pandas would split or unquote
        for t in range(lengths[k]):
            if missing[k, t] == _NEWLINE or missing[k, t] == _RETURN or missing[k, t] == _QUOTE:
                return -1
    pos, row, col = 0, 0, 0
    while pos < n or col:  # a cell at a time (the last cell of a line may start at the end: "1,")
        last = col == width - 1
        if pos + 24 <= n:  # the short way: [+-]digits[.digits], at most 8 digits either side
            p = _U(pos)
            negative = data[p] == _MINUS
            q = p + _U(negative | (data[p] == _PLUS))
            whole, mantissa = _digit_run(_load8(data, q))
            e = q + whole
            fraction = _U(0)
            if data[e] == _DOT:
                fraction, after = _digit_run(_load8(data, e + _U(1)))
                e += _U(1) + fraction
                mantissa = mantissa * _INT_POWERS[fraction] + after
            end = data[e]
            crlf = last and end == _RETURN and data[e + _U(1)] == _NEWLINE
            # (a ninth digit either side is not the point or the cell's end: the general way reads it)
            if ((whole + fraction > _U(0)) & (mantissa <= _EXACT) & ((mantissa != _U(0)) | (not negative))
                    & ((end == _NEWLINE) | crlf if last else end == delimiter)):
                # the general way's value, by the same one correctly rounded division (by 1 for no point)
                out[col, row] = float(mantissa) / _POWERS[fraction] * (1.0 - 2.0 * negative)
                pos = numba.int64(e) + 1 + crlf
                col += 1
                if col == width:
                    col, row = 0, row + 1
                continue
        i = pos
        # bitwise, not `and`/`or`: a branch on the sign would be mispredicted on every other cell
        negative = i < n and data[i] == _MINUS
        i += negative | (i < n and data[i] == _PLUS)
        mantissa, digits, scale = _U(0), 0, 0
        for part in range(2):  # the digits before a point, then those after it
            start = i
            while i + 8 <= n:
                count, value = _digit_run(_load8(data, _U(i)))
                mantissa = mantissa * _INT_POWERS[count] + value
                i += numba.int64(count)
                if count < 8:
                    break
            else:
                while i < n and _ZERO <= data[i] <= _NINE:
                    mantissa = mantissa * _U(10) + _U(data[i] - _ZERO)
                    i += 1
            digits += i - start
            if part == 1:
                scale = start - i
            if part == 1 or i >= n or data[i] != _DOT:
                break
            i += 1
        ok = 0 < digits <= _DIGITS
        if ok and i < n and (data[i] == 101 or data[i] == 69):  # e, E
            i += 1
            sign = 1
            if i < n and (data[i] == _PLUS or data[i] == _MINUS):
                sign = -1 if data[i] == _MINUS else 1
                i += 1
            exponent, start = 0, i
            while i < n and _ZERO <= data[i] <= _NINE and i - start < 5:
                exponent = exponent * 10 + (data[i] - _ZERO)
                i += 1
            ok = 0 < i - start <= 4
            scale += sign * exponent
        ok = ok & (mantissa <= _EXACT) & ((mantissa != 0) | (not negative)) & (-22 <= scale) & (scale <= 22)
        if ok:
            ended = not last and i < n and data[i] == delimiter
            if last:
                if i < n and data[i] == _RETURN and i + 1 < n and data[i + 1] == _NEWLINE:
                    i += 1
                ended = i >= n or data[i] == _NEWLINE
            if ended:
                value = float(mantissa)
                value = value * _POWERS[scale] if scale >= 0 else value / _POWERS[-scale]
                out[col, row] = value * (1.0 - 2.0 * negative)  # exact
                pos = i + 1
                col += 1
                if col == width:
                    col, row = 0, row + 1
                continue
        # not a number this parser takes, or more follows: the whole cell, a missing string?
        end = pos
        while end < n and data[end] != delimiter and data[end] != _NEWLINE:
            end += 1
        if last == (end < n and data[end] == delimiter):  # too few or too many cells
            return -1
        stop = end - 1 if last and end > pos and data[end - 1] == _RETURN else end  # \r\n
        if width == 1 and stop == pos:  # a blank line: pandas skips it
            return -1
        found = False
        for k in range(lengths.shape[0]):
            if lengths[k] == stop - pos:
                found = True
                for t in range(lengths[k]):
                    if data[pos + t] != missing[k, t]:
                        found = False
                        break
                if found:
                    break
        if not found:
            return -1
        out[col, row] = np.nan
        pos = end + 1
        col += 1
        if col == width:
            col, row = 0, row + 1
    return row


def parse_block(data: bytearray, width: int, delimiter: str, missing: list[bytes]) -> tuple[np.ndarray, int]:
    """parse_numbers of a block of whole lines (writable bytes, as nncli.data reads them) into a
    new array: the array (width, lines) and the rows it holds, or -1."""
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((width, count_lines(buf)))
    return out, parse_numbers(buf, out, ord(delimiter), *missing_table(missing))


@jit(nogil=True)
def count_lines(data):
    """1 + the newlines in data (uint8), without the GIL, which the parse threads and predict's
    thread share: bytes.count holds it (2.6 ms a 4 MiB block), and numpy's count of `data == 10`
    (0.56 ms) first writes a 4 MiB array of booleans."""
    lines = 1
    for i in range(data.shape[0]):
        lines += data[i] == _NEWLINE
    return lines


def missing_table(missing: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The missing strings as parse_numbers takes them: (k, longest) uint8 and their lengths."""
    table = np.zeros((len(missing), max([len(m) for m in missing] + [1])), dtype=np.uint8)
    for k, m in enumerate(missing):
        table[k, :len(m)] = np.frombuffer(m, dtype=np.uint8)
    return table, np.array([len(m) for m in missing], dtype=np.int64)
