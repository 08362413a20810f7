"""Fitted preprocessing: text table -> float arrays, and predictions -> original labels.

Everything fitted here (column roles, imputation values, centres and scales, categories, label
order, target scaling) is plain JSON-able data, saved in the model file and applied unchanged at
eval and predict time.

Missing values: in numeric columns, any string in data.missing_values (and 0 in the columns of
data.zero_means_missing) is missing and filled by data.impute. In categorical columns only the
empty string is missing (filled with the most frequent category), so a category literally named
"NA" stays a category.

Derived features (data.derive, nncli.features) are numeric features computed from other numeric
columns of the file, then imputed and scaled like any other; their definitions are saved with the
model, so eval and predict compute them from the same columns.
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import chain

import numpy as np
import pandas as pd

from nncli import features as derive
from nncli.config import suggest
from nncli.data import Table, changed
from nncli.errors import ConfigError, DataError

TASKS = ("binary", "multiclass", "regression")
MAX_AUTO_CLASSES = 10  # an integer target with at most this many values is detected as classes
TRANSFORM_ROWS = 8192
COMPILED_TRANSFORM_CELLS = 1 << 16  # transform scales numeric columns of this many cells on in a compiled loop
SCAN_ROWS = 1 << 40  # read_table(chunk_rows=) of a file read block by block: each block one chunk


@dataclass
class Summary:
    """What fitting needs of a numeric column (float64, NaN = missing), so that a file too large to
    hold whole can be fitted block by block: counts, the first gap, the present values' mean and sum
    of squared deviations from it (merged by Chan, Golub and LeVeque's pairwise update), their range,
    and their median (whole columns only, for data.impute: median).

    Of one whole column without gaps, mean and m2 / rows are bit for bit numpy's mean and var.
    """

    rows: int = 0
    present: int = 0
    first_gap: int = -1  # position of the first missing value among the rows summarized
    mean: float = 0.0
    m2: float = 0.0
    lo: float = np.inf
    hi: float = -np.inf
    median: float | None = None

    @classmethod
    def of(cls, x: np.ndarray, median: bool = False) -> "Summary":
        present = _present(x)
        s = cls(rows=x.size, present=present.size)
        if present.size < x.size:
            s.first_gap = int(np.argmax(np.isnan(x)))
        if present.size:
            mean = present.mean()
            d = present - mean
            s.mean, s.m2 = float(mean), float(np.add.reduce(np.multiply(d, d, out=d)))
            s.lo, s.hi = float(np.minimum.reduce(present)), float(np.maximum.reduce(present))
            if median:
                s.median = float(np.median(present))
        return s

    def merge(self, other: "Summary") -> "Summary":
        """The summary of this summary's rows followed by other's."""
        if self.rows == 0:
            return other
        n = self.present + other.present
        out = Summary(self.rows + other.rows, n, self.first_gap if self.first_gap >= 0 else
                      (-1 if other.first_gap < 0 else self.rows + other.first_gap),
                      self.mean, self.m2, min(self.lo, other.lo), max(self.hi, other.hi))
        if other.present:
            delta = other.mean - self.mean
            out.mean = self.mean + delta * (other.present / n)
            out.m2 = self.m2 + other.m2 + delta * delta * (self.present * (other.present / n))
        return out

    def filled(self, fill: float) -> "Summary":
        """The summary of the column with every gap filled with `fill`."""
        gaps = self.rows - self.present
        return self.merge(Summary(gaps, gaps, -1, fill, 0.0, fill, fill)) if gaps else self

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.present)) if self.present else 0.0

    @property
    def range(self) -> list:
        return [self.lo, self.hi] if self.present else [0.0, 0.0]


@dataclass
class Feature:
    name: str
    kind: str  # "numeric" or "categorical"
    fill: float | str = 0.0  # imputation value (raw units) or most frequent category
    center: float = 0.0
    scale: float = 1.0
    categories: list = field(default_factory=list)
    zero_is_missing: bool = False
    derived: bool = False  # name is a data.derive entry, computed from the columns it names

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1


@dataclass
class Preprocessor:
    columns: list  # every column of the training file, in order (for headerless files)
    has_header: bool
    target: str
    task: str
    features: list  # of Feature
    labels: list = field(default_factory=list)  # class labels as canonical strings, in output order
    label_kind: str = "str"  # "int", "float" or "str": how to write labels back
    target_center: float = 0.0
    target_scale: float = 1.0
    missing_values: list = field(default_factory=list)
    unknown_categories: str = "error"
    zero_missing: list = field(default_factory=list)  # data.zero_means_missing, by name (for derived features)
    ranges: dict = field(default_factory=dict)  # numeric source column -> [min, max] seen in training

    # ----- fitting -----------------------------------------------------------------------------
    @classmethod
    def fit_target(cls, table: Table, data_cfg: dict) -> "Preprocessor":
        """Only the target's column, task and labels (no features), e.g. to stratify a split."""
        columns = table.columns
        target = resolve_column(data_cfg["target"], columns, table.path, "data.target")
        prep = cls(columns, table.has_header, target, "regression", [], missing_values=list(data_cfg["missing_values"]))
        prep._fit_target(table, data_cfg)
        return prep

    @classmethod
    def fit(cls, table: Table, data_cfg: dict) -> "Preprocessor":
        """Fit on a whole table, or on one that holds only summaries of its numeric columns
        (Table.summaries and Table.derived: see summarize)."""
        columns = table.columns
        target = resolve_column(data_cfg["target"], columns, table.path, "data.target")
        ignore = {resolve_column(c, columns, table.path, "data.ignore") for c in data_cfg["ignore"]}
        if data_cfg["features"] is None:
            names = [c for c in columns if c != target and c not in ignore]
        else:
            names = [resolve_column(c, columns, table.path, "data.features") for c in data_cfg["features"]]
            if target in names:
                raise DataError(f"{table.path}: data.features includes the target column '{target}'")
        if not names:
            raise DataError(f"{table.path}: no feature columns are left besides the target '{target}'")
        declared = None if data_cfg["categorical"] is None else {
            resolve_column(c, columns, table.path, "data.categorical") for c in data_cfg["categorical"]
        }
        zero_missing = {resolve_column(c, columns, table.path, "data.zero_means_missing")
                        for c in data_cfg["zero_means_missing"]}
        missing = list(data_cfg["missing_values"])
        median = data_cfg["impute"] == "median"
        features, ranges = [], {}
        for name in names:
            categorical = name in declared if declared is not None else not _mostly_numeric(table, name, missing)
            if categorical:
                features.append(_fit_categorical(name, table.text(name)))
            else:
                s = column_summary(table, name, missing, name in zero_missing, median)
                features.append(_fit_numeric(name, s, table, data_cfg, name in zero_missing))
                ranges[name] = s.range
        prep = cls(columns, table.has_header, target, "regression", features, missing_values=missing,
                   unknown_categories=data_cfg["unknown_categories"], zero_missing=sorted(zero_missing))
        for i, text in enumerate(data_cfg.get("derive", [])):
            spec = prep._derive_spec(text, f"data.derive[{i}]", table, declared)
            if any(f.derived and f.name == spec.text for f in prep.features):
                raise ConfigError(f"data.derive[{i}]: '{text}' is listed twice")
            s = table.derived.get(spec.text) or Summary.of(prep._derived_values(spec, table), median)
            prep.features.append(_fit_numeric(spec.text, s, table, data_cfg, False))
            prep.features[-1].derived = True
            for c in spec.columns:
                ranges[c] = column_summary(table, c, missing, c in zero_missing, False).range
        prep.ranges = ranges
        prep._fit_target(table, data_cfg)
        return prep

    def _derive_spec(self, text: str, key: str, table: Table, declared) -> derive.Derived:
        """A data.derive entry checked against the file: its columns exist, are numeric, are no target."""
        try:
            spec = derive.parse(text)
        except ValueError as exc:  # a config read by nncli.config is checked already; a dict may not be
            raise ConfigError(f"{key}: {exc}") from None
        columns = table.columns
        for c in spec.columns:
            if c not in columns:
                raise DataError(f"{table.path}: {key}: '{text}': no column named '{c}'{suggest(c, columns)}")
            if c == self.target:
                raise DataError(f"{table.path}: {key}: '{text}': '{c}' is the target column")
            if (declared is not None and c in declared) or not _mostly_numeric(table, c, self.missing_values):
                raise DataError(f"{table.path}: {key}: '{text}': column '{c}' is not numeric")
        return spec

    def _derived_values(self, spec: derive.Derived, table: Table) -> np.ndarray:
        """The derived feature of every row (n,), NaN where a column it uses is missing."""
        return spec.compute(*(numeric_values(table, c, self.missing_values, c in self.zero_missing)
                              for c in spec.columns))

    def _fit_target(self, table: Table, data_cfg: dict) -> None:
        if table.is_number(self.target):  # every cell a number or a missing-value string (NaN)
            numbers = table.frame[self.target]
            empty = numbers.isna()
        else:
            raw = table.text(self.target)
            # a missing-value string is missing in a numeric target, but may be a class ("NA") otherwise
            tokens = raw.isin(self.missing_values) & (raw != "")
            others = pd.to_numeric(raw[~raw.isin(self.missing_values)], errors="coerce")
            empty = (raw == "") | (tokens & bool(others.notna().all()))
            numbers = pd.to_numeric(raw, errors="coerce")
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{table.path}: line {table.line_of(row)}: the target '{self.target}' is missing")
        numeric = not numbers.isna().any()
        values = numbers.to_numpy()
        integer = numeric and bool(np.isfinite(values).all()) and bool(np.all(np.mod(values, 1) == 0))
        n_unique = table.text(self.target).nunique() if not numeric else numbers.nunique()
        task = data_cfg["task"]
        if task == "auto":
            if n_unique == 2:
                task = "binary"
            elif not numeric or (integer and n_unique <= MAX_AUTO_CLASSES):
                task = "multiclass"
            else:
                task = "regression"
        self.task = task
        if task == "regression":
            if not numeric:
                row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
                raise DataError(f"{table.path}: line {table.line_of(row)}: regression target "
                                f"'{self.target}' is not a number: {table.text(self.target).iloc[row]!r}")
            y = numbers.to_numpy(dtype=np.float64)
            _check_finite(y, table, self.target)
            if data_cfg["target_scaling"] == "standard":
                self.target_center = float(y.mean())
                self.target_scale = float(y.std()) or 1.0
            return
        if n_unique < 2:
            raise DataError(f"{table.path}: the target '{self.target}' has only one class "
                            f"({table.text(self.target).iloc[0]!r}); a classifier needs at least two")
        if task == "binary" and n_unique > 2:
            raise DataError(f"{table.path}: data.task is binary but the target '{self.target}' "
                            f"has {n_unique} classes; use multiclass")
        self.label_kind = "int" if integer else ("float" if numeric else "str")
        if numeric:
            labels = sorted(set(numbers.tolist()))
            self.labels = [canonical_number(v) for v in labels]
        else:
            self.labels = sorted(set(table.text(self.target).tolist()))

    # ----- applying -----------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def n_outputs(self) -> int:
        return len(self.labels) if self.task == "multiclass" else 1

    def source_columns(self) -> list[str]:
        """The file's columns the inputs are computed from, in input order, each once."""
        names = []
        for f in self.features:
            for c in derive.parse(f.name).columns if f.derived else (f.name,):
                if c not in names:
                    names.append(c)
        return names

    def input_names(self) -> list[str]:
        names = []
        for f in self.features:
            names += [f"{f.name}={c}" for c in f.categories] if f.kind == "categorical" else [f.name]
        return names

    def transform(self, table: Table, dtype=np.float64, out: np.ndarray | None = None) -> np.ndarray:
        """Features of every row, imputed, scaled and one-hot encoded: (n, n_inputs), written to
        `out` where given.

        Numeric features are written TRANSFORM_ROWS rows at a time, all columns of a block before
        the next block, so that the rows being written stay in cache (a whole column at a time
        walks all of X once per column).
        """
        n = len(table.frame)
        X = np.empty((n, self.n_inputs), dtype=dtype) if out is None else out
        numeric, j = [], 0
        for f in self.features:
            if f.kind == "categorical":
                X[:, j:j + f.width] = self._one_hot(f, table)
            elif f.derived:
                numeric.append((j, f, self._derived_values(derive.parse(f.name), table)))
            elif table.is_number(f.name) and not f.zero_is_missing:  # clean already: no copy needed
                numeric.append((j, f, table.numbers()[f.name]))
            else:
                numeric.append((j, f, numeric_values(table, f.name, self.missing_values, f.zero_is_missing)))
            j += f.width
        compiled = n * len(numeric) >= COMPILED_TRANSFORM_CELLS
        if compiled:
            from nncli.kernels.columns import standardize
        scratch = np.empty(min(n, TRANSFORM_ROWS))
        for start in range(0, n, TRANSFORM_ROWS):
            block = X[start:start + TRANSFORM_ROWS]
            z = scratch[:len(block)]
            for j, f, x in numeric:
                x = x[start:start + TRANSFORM_ROWS]
                fill = (np.float64(f.fill) - f.center) / f.scale  # a missing value: by the same arithmetic
                if compiled:  # one pass, bit for bit the lines below
                    standardize(np.ascontiguousarray(x), f.center, f.scale, fill, block, j)
                    continue
                np.divide(np.subtract(x, f.center, out=z), f.scale, out=z)
                if _gappy(z):  # (z is NaN where x is)
                    z[np.isnan(x)] = fill
                block[:, j] = z
        return X

    def _one_hot(self, f: Feature, table: Table) -> np.ndarray:
        cats = table.text(f.name).replace("", f.fill)
        codes = _codes(cats, f.categories)
        unknown = codes < 0
        if unknown.any() and self.unknown_categories == "error":
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{table.path}: line {table.line_of(row)}, column '{f.name}': category {cats.iloc[row]!r} "
                f"was not seen in training (known: {', '.join(map(repr, f.categories[:10]))}); "
                f"set data.unknown_categories: ignore to encode it as all zeros"
            )
        out = np.zeros((len(cats), f.width))
        rows = np.flatnonzero(~unknown)
        out[rows, codes[~unknown]] = 1.0
        return out

    def encode_target(self, table: Table, dtype=np.float64) -> np.ndarray:
        """Training targets: (n, 1) 0/1 for binary, (n, K) one-hot, (n, 1) scaled values."""
        if self.task == "regression":
            y = numeric_values(table, self.target, self.missing_values, False)
            _check_finite(y, table, self.target)
            return ((y - self.target_center) / self.target_scale).astype(dtype)[:, None]
        idx = self.target_indices(table)
        if self.task == "binary":
            return (idx == 1).astype(dtype)[:, None]
        return np.eye(len(self.labels), dtype=dtype)[idx]

    def target_indices(self, table: Table) -> np.ndarray:
        """The class index (into self.labels) of every row's target (n,)."""
        if self.label_kind != "str" and table.is_number(self.target):
            # numeric labels are canonical spellings of floats: equal floats, equal labels
            values = np.array([float(label) for label in self.labels])
            x = table.frame[self.target].to_numpy()
            idx = np.minimum(np.searchsorted(values, x), len(values) - 1)
            if np.all(values[idx] == x):
                return idx.astype(np.int64)
        return self.label_indices(table.text(self.target), table)  # and its error, naming the row

    def label_indices(self, raw: pd.Series, table: Table) -> np.ndarray:
        if self.label_kind != "str":
            raw = canonical_numbers(raw)
        codes = _codes(raw, self.labels)
        if (codes < 0).any():
            row = int(np.flatnonzero(codes < 0)[0])
            raise DataError(f"{table.path}: line {table.line_of(row)}: target {raw.iloc[row]!r} is not one of "
                            f"the classes seen in training ({', '.join(self.labels)})")
        return codes.astype(np.int64)

    def decode_labels(self, idx: np.ndarray) -> np.ndarray:
        labels = np.array(self.labels, dtype=object)[idx]
        if self.label_kind == "int":
            return labels.astype(np.int64)
        if self.label_kind == "float":
            return labels.astype(np.float64)
        return labels

    def unscale_target(self, z: np.ndarray) -> np.ndarray:
        return z * self.target_scale + self.target_center

    def match_columns(self, table: Table) -> Table:
        """Line a prediction/eval table up with the training schema: by name, or by position."""
        needed = self.source_columns()
        frame = table.frame
        if not table.has_header:
            width = frame.shape[1]
            if width == len(self.columns):
                frame.columns = self.columns
            elif width == len(self.columns) - 1:
                frame.columns = [c for c in self.columns if c != self.target]
            else:
                raise DataError(f"{table.path}: has {width} columns and no header; the model was trained on "
                                f"{len(self.columns)} columns ({len(self.columns) - 1} without the target)")
            return Table(frame, table.has_header, table.path, table.reread)  # renamed columns: a fresh text cache
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            hint = suggest(missing[0], frame.columns)
            raise DataError(f"{table.path}: missing column(s) the model needs: {', '.join(missing)}{hint}")
        return table

    # ----- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = asdict(self)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessor":
        d = dict(d)
        d["features"] = [Feature(**f) for f in d["features"]]
        return cls(**d)


def summarize(tables: Iterator[Table], data_cfg: dict, rows: np.ndarray | None = None) -> Table | None:
    """A file's rows as Preprocessor.fit needs them, read block by block: a file too large to hold
    whole as float64 columns can be fitted in one pass and turned into arrays in a second one.

    `tables` are a file's chunks (read_table with chunk_rows=SCAN_ROWS). Returns the first chunk
    itself where it is the whole file (and `rows` is None). Otherwise a Table that holds whole only
    the target, the data.categorical columns and the columns read as text; every other column is
    in Table.summaries and every derived feature computed from those in Table.derived (a Summary
    each), with zeros already missing in the data.zero_means_missing columns. None where there is
    nothing to summarize, a median to impute (data.impute: median needs whole columns) or a
    column read as numbers in one block is text in a later one: the caller then reads the file
    whole. rows: a boolean mask of the data rows to take, e.g. the rows not held out for validation.
    """
    if data_cfg["impute"] == "median":
        return None
    first = next(tables)
    second = next(tables, None)
    if second is None and rows is None:
        return first
    from nncli.kernels.columns import moments
    names = first.columns

    def resolve(refs, key):
        return {resolve_column(c, names, first.path, key) for c in refs}

    target = resolve_column(data_cfg["target"], names, first.path, "data.target")
    declared = resolve(data_cfg["categorical"] or [], "data.categorical")
    zero = resolve(data_cfg["zero_means_missing"], "data.zero_means_missing")
    numeric = [n for n in names if n != target and n not in declared and first.is_number(n)]
    if not numeric:
        return None
    specs = []
    for text in data_cfg.get("derive", []):
        try:
            spec = derive.parse(text)
        except ValueError:
            continue  # Preprocessor.fit names the entry
        if all(c in numeric for c in spec.columns):
            specs.append(spec)
    kinds = [first.is_number(n) for n in names]
    whole = [n for n in names if n not in numeric]
    summaries = {n: Summary() for n in numeric}
    derived = {spec.text: Summary() for spec in specs}
    parts, rereads = [], []
    for chunk in chain([first], [second] if second is not None else [], tables):
        if [chunk.is_number(n) for n in names] != kinds:  # a column not clean in this block
            return None
        if rows is not None:
            lo, hi = int(chunk.frame.index[0]), int(chunk.frame.index[-1]) + 1
            if hi > len(rows):
                raise changed(first.path)
            chunk = chunk.subset(np.flatnonzero(rows[lo:hi]))
        values = chunk.numbers()
        values = {n: np.where(values[n] == 0, np.nan, values[n]) if n in zero else values[n] for n in numeric}
        for n, x in values.items():
            if len(x) and not _gappy(x):  # clean numbers hold no infinity: compiled, two passes
                s = Summary(len(x), len(x), -1, *(float(v) for v in moments(np.ascontiguousarray(x))))
            else:
                s = Summary.of(x)
            summaries[n] = summaries[n].merge(s)
        for spec in specs:
            x = spec.compute(*(values[c] for c in spec.columns))
            derived[spec.text] = derived[spec.text].merge(Summary.of(x))
        parts.append(chunk.frame[whole].copy())  # not a view that keeps the block's other columns
        rereads.append(chunk.reread)
    frame = pd.concat(parts) if len(parts) > 1 else parts[0]
    position = {n: j for j, n in enumerate(names)}

    def reread(j: int) -> pd.Series:
        return pd.concat([part(position[frame.columns[j]]) for part in rereads])

    return Table(frame, first.has_header, first.path, reread, summaries, derived, names)


def _codes(values: pd.Series, categories: list) -> np.ndarray:
    """Position of each value in categories, -1 for a value not among them."""
    return pd.Index(categories, dtype=object).get_indexer(values)


def canonical_numbers(raw: pd.Series) -> pd.Series:
    """canonical_number of every cell that is a number; other cells unchanged."""
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    out = raw.to_numpy(dtype=object).copy()
    whole = np.isfinite(numbers) & (np.mod(numbers, 1) == 0)
    out[whole] = numbers[whole].astype(np.int64).astype(str)
    other = ~np.isnan(numbers) & ~whole
    out[other] = [canonical_number(v) for v in numbers[other]]
    return pd.Series(out, dtype=object)


def canonical_number(v: float) -> str:
    """One spelling per numeric label: 1, 1.0 and 1e0 all become '1'."""
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def resolve_column(ref, columns: list, path: str, key: str) -> str:
    if isinstance(ref, int):
        if not -len(columns) <= ref < len(columns):
            raise DataError(f"{path}: {key}: column index {ref} is out of range ({len(columns)} columns)")
        return columns[ref]
    if ref not in columns:
        raise DataError(f"{path}: {key}: no column named '{ref}'{suggest(ref, columns)}")
    return ref


def _mostly_numeric(table: Table, name: str, missing: list) -> bool:
    if table.is_number(name):
        return True
    text = table.text(name)
    present = text[~text.isin(missing)]
    if present.empty:
        return True
    return pd.to_numeric(present, errors="coerce").notna().mean() > 0.5


def numeric_values(table: Table, name: str, missing: list, zero_is_missing: bool):
    """Column `name` as float64 with NaN for missing; a non-number is an error naming its line."""
    if table.is_number(name):  # parsed already, and clean: what the text path below would give
        numbers = table.numbers()[name].copy()
        if zero_is_missing:
            numbers[numbers == 0] = np.nan
        return numbers
    text = table.text(name)
    is_missing = text.isin(missing).to_numpy()
    numbers = np.array(pd.to_numeric(text.where(~is_missing, None), errors="coerce"), dtype=np.float64)
    bad = np.isnan(numbers) & ~is_missing
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cell = text.iloc[row]
        hint = ""
        if "," in cell:
            hint = " (a decimal comma or thousands separator? nncli reads 1234.5)"
        elif table.line_of(row) == 1 and not table.has_header:
            hint = " (if line 1 holds column names, set data.header: true, or pass --header to nncli train)"
        raise DataError(
            f"{table.path}: line {table.line_of(row)}, column '{name}': {cell!r} is not a number{hint}; "
            f"add it to data.missing_values or list the column in data.categorical"
        )
    if np.isinf(numbers).any():
        row = int(np.flatnonzero(np.isinf(numbers))[0])
        raise DataError(f"{table.path}: line {table.line_of(row)}, column '{name}': {text.iloc[row]!r} is not finite")
    if zero_is_missing:
        numbers[numbers == 0] = np.nan
    return numbers


def _check_finite(y: np.ndarray, table: Table, name: str) -> None:
    bad = ~np.isfinite(y)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{table.path}: line {table.line_of(row)}: target '{name}' is not a finite number")


def _gappy(x: np.ndarray) -> bool:
    """Whether x may hold a NaN: surely where it does (one pass, nothing allocated)."""
    return bool(np.isnan(np.add.reduce(x)))


def _present(x: np.ndarray) -> np.ndarray:
    """The values of x that are not NaN: x itself when none is (no copy of a column without gaps)."""
    if not _gappy(x):
        return x
    gaps = np.isnan(x)
    return x[~gaps] if gaps.any() else x


def column_summary(table: Table, name: str, missing: list, zero_is_missing: bool, median: bool) -> Summary:
    """The Summary of numeric column `name`: the table's own where it holds the column only summarized."""
    if name in table.summaries:
        return table.summaries[name]
    return Summary.of(numeric_values(table, name, missing, zero_is_missing), median)


def _fit_numeric(name: str, s: Summary, table: Table, cfg: dict, zero_is_missing: bool) -> Feature:
    """Imputation value, centre and scale of one numeric feature from the Summary of its values."""
    if s.present == 0:
        raise DataError(f"{table.path}: column '{name}' has no values (all missing)")
    if s.present < s.rows and cfg["impute"] == "error":
        raise DataError(f"{table.path}: line {table.line_of(s.first_gap)}, column '{name}': missing value "
                        f"(data.impute is 'error')")
    fill = {"mean": s.mean, "median": s.median, "zero": 0.0, "error": 0.0}[cfg["impute"]]
    x = s.filled(fill)
    if cfg["scaling"] == "standard":
        center, scale = x.mean, x.std
    elif cfg["scaling"] == "minmax":
        center, scale = x.lo, x.hi - x.lo
    else:
        center, scale = 0.0, 1.0
    return Feature(name, "numeric", float(fill), float(center), float(scale) or 1.0, zero_is_missing=zero_is_missing)


def _fit_categorical(name: str, cats: pd.Series) -> Feature:
    present = cats[cats != ""]
    if present.empty:
        raise DataError(f"column '{name}' has no values (all missing)")
    fill = present.value_counts().index[0]
    return Feature(name, "categorical", fill=str(fill), categories=sorted(set(present.tolist())))
