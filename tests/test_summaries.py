"""Training from block summaries (nncli.preprocess.Summary and summarize): a file larger than its
first block is fitted from per-block summaries of its numeric columns and read a second time into
the arrays, so that its float64 columns are never held whole.

Oracles: numpy over the whole column for every statistic, and the whole-table path (the file read
whole, every statistic computed over whole columns) for the fitted preprocessing, the arrays and
the trained weights. BLOCK_BYTES is made tiny so that a file of a few hundred rows spans many blocks.
"""

import numpy as np
import pytest

import nncli.data
import nncli.train
from nncli.config import load
from nncli.errors import DataError
from nncli.preprocess import Preprocessor, Summary


@pytest.fixture(autouse=True, params=["pandas", "compiled"])
def small_blocks(request, monkeypatch):
    """Blocks of about two rows, parsed by pandas or (for every block) by nncli's compiled parser."""
    monkeypatch.setattr(nncli.data, "BLOCK_BYTES", 64)
    monkeypatch.setattr(nncli.data, "COMPILED_PARSE_BYTES", 1 << 62 if request.param == "pandas" else 0)


def whole_reads(monkeypatch):
    """Train as without summaries: the file read whole (the oracle)."""
    monkeypatch.setattr(nncli.train, "summarize", lambda *args, **kwargs: None)


# ----- Summary against numpy over the whole column ----------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_merged_block_summaries_are_numpys_statistics_of_the_whole_column(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    x = rng.normal(loc=rng.choice([0, 1e4, -3e6]), scale=rng.choice([1e-3, 1, 50]), size=n)
    if seed % 2:
        x[rng.random(n) < 0.1] = np.nan
    cuts = np.sort(rng.integers(0, n + 1, size=int(rng.integers(0, 12))))
    s = Summary()
    for part in np.split(x, cuts):  # empty parts included
        s = s.merge(Summary.of(part))
    present = x[~np.isnan(x)]
    assert (s.rows, s.present) == (n, present.size)
    gaps = np.flatnonzero(np.isnan(x))
    assert s.first_gap == (gaps[0] if gaps.size else -1)
    if present.size == 0:
        return
    assert (s.lo, s.hi) == (present.min(), present.max())
    # merging rounds each block's mean to within eps * |mean|, so the deviation's relative error
    # grows with |mean| / std (3e9 here at most: data whose spread is in its last digits)
    assert s.mean == pytest.approx(present.mean(), rel=1e-12)
    assert s.std == pytest.approx(present.std(), rel=1e-12 + 8 * np.finfo(float).eps * abs(s.mean) / s.std)
    for fill in (s.mean, 0.0, -7.5):
        filled = np.where(np.isnan(x), fill, x)
        f = s.filled(fill)
        assert f.mean == pytest.approx(filled.mean(), rel=1e-12, abs=1e-12)
        assert f.std == pytest.approx(filled.std(), rel=1e-12 + 8 * np.finfo(float).eps * abs(f.mean) / f.std)
        assert (f.lo, f.hi) == (filled.min(), filled.max())


def test_one_block_without_gaps_is_numpy_bit_for_bit():
    x = np.random.default_rng(1).normal(5, 3, size=10_001)
    s = Summary.of(x)
    assert s.mean == x.mean() and s.std == x.std() and s.filled(s.mean) is s


def test_an_all_missing_block_leaves_the_statistics_alone():
    s = Summary.of(np.array([1.0, 2.0])).merge(Summary.of(np.full(3, np.nan))).merge(Summary.of(np.array([3.0])))
    assert (s.rows, s.present, s.first_gap, s.mean, s.lo, s.hi) == (6, 3, 2, 2.0, 1.0, 3.0)
    assert s.m2 == pytest.approx(2.0)


# ----- training from summaries against training on the whole table -----------------------------
def table_text(n=420, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["x1,x2,x3,color,zip,w,y"]
    for k in range(n):
        x1, x2 = rng.normal(), rng.normal(1e3, 40)
        x3 = 0 if k % 13 == 0 else rng.integers(1, 50)  # 0 means missing (data.zero_means_missing)
        y = ["lo", "mid", "hi"][int(x1 > 0) + int(x2 > 1e3)]
        rows.append(f"{x1:.6f},{'NA' if k % 17 == 5 else f'{x2:.3f}'},{x3},{'rgb'[k % 3]},{k % 5:03d},"
                    f"{rng.uniform(-1, 1):.4f},{y}")
    return "\n".join(rows) + "\n"


CONFIG = ["data.target=y", "data.categorical=[color, zip]", "data.zero_means_missing=[x3]", "data.derive=[x1*x2, x3^2]",
          "train.epochs=3", "train.batch_size=16", "train.dtype=float64", "model.hidden=[{units: 6, activation: tanh}]"]
CASES = {
    "classes, val_split": ["train.val_split=0.25", "train.class_weight=balanced"],
    "regression": ["data.target=w", "data.categorical=[color, zip, y]"],
    "minmax, impute zero": ["data.scaling=minmax", "data.impute=zero", "train.val_split=0.1"],
}


def close_preps(a: Preprocessor, b: Preprocessor):
    da, db = a.to_dict(), b.to_dict()
    fa, fb = da.pop("features"), db.pop("features")
    ra, rb = da.pop("ranges"), db.pop("ranges")
    assert da == db and ra == rb  # ranges are exact: min and max do not round
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        assert {k: v for k, v in x.items() if k not in ("fill", "center", "scale")} == \
               {k: v for k, v in y.items() if k not in ("fill", "center", "scale")}
        for key in ("fill", "center", "scale"):
            if isinstance(x[key], str):
                assert x[key] == y[key]
            else:
                assert x[key] == pytest.approx(y[key], rel=1e-12, abs=1e-12), (x["name"], key)


@pytest.mark.parametrize("case", CASES)
def test_training_from_summaries_gives_the_whole_tables_model(tmp_path, monkeypatch, case):
    path = tmp_path / "t.csv"
    path.write_text(table_text())
    cfg = load(None, CONFIG + CASES[case])
    arrays = []
    real_fit = nncli.train.fit
    monkeypatch.setattr(nncli.train, "fit", lambda net, train, val, *a, **k: (arrays.append((train, val)),
                                                                             real_fit(net, train, val, *a, **k))[1])
    lean = nncli.train.train(path, cfg)
    whole_reads(monkeypatch)
    whole = nncli.train.train(path, cfg)
    close_preps(lean.model.prep, whole.model.prep)
    assert (lean.n_train, lean.n_val) == (whole.n_train, whole.n_val)
    for a, b in zip(*arrays):  # train and validation arrays
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.X, b.X, rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(a.Y, b.Y)
            np.testing.assert_array_equal(a.sw, b.sw)
    np.testing.assert_allclose(lean.model.network.theta, whole.model.network.theta, rtol=1e-9, atol=1e-12)


def test_summaries_hold_no_numeric_column_whole(tmp_path, monkeypatch):
    """The point of it: neither the whole table nor a whole numeric column of it is ever built."""
    path = tmp_path / "t.csv"
    path.write_text(table_text())
    kept = []
    real = nncli.train.summarize
    monkeypatch.setattr(nncli.train, "summarize", lambda *a, **k: (kept.append(real(*a, **k)), kept[-1])[1])
    monkeypatch.setattr(nncli.data._Blocks, "whole", lambda self: pytest.fail("the file was read whole"))
    nncli.train.train(path, load(None, CONFIG + CASES["classes, val_split"]))
    assert len(kept) == 2  # the split's pass over every row, then the fit's over the training rows
    for table in kept:
        assert sorted(table.frame.columns) == ["color", "y", "zip"]  # the text columns and the target
        assert sorted(table.summaries) == ["w", "x1", "x2", "x3"] and sorted(table.derived) == ["x1*x2", "x3^2"]


def test_a_median_needs_whole_columns(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text(table_text())
    real = nncli.data._Blocks.whole
    whole = []
    monkeypatch.setattr(nncli.data._Blocks, "whole", lambda self: (whole.append(1), real(self))[1])
    model = nncli.train.train(path, load(None, CONFIG + ["data.impute=median"])).model
    assert whole
    x2 = np.array([float(r.split(",")[1]) for r in table_text().splitlines()[1:] if r.split(",")[1] != "NA"])
    assert model.prep.features[1].fill == np.median(x2)


def test_a_small_file_is_read_once(tmp_path, monkeypatch):
    """A file that fits in its first block is that block's table: read once, fitted as before."""
    monkeypatch.setattr(nncli.data, "BLOCK_BYTES", 4 << 20)
    monkeypatch.setattr(nncli.data, "BLOCKS_AT_LEAST", 1)
    path = tmp_path / "t.csv"
    path.write_text(table_text())
    reads = []
    real = nncli.train.read_table
    monkeypatch.setattr(nncli.train, "read_table", lambda *a, **k: (reads.append(k.get("chunk_rows")), real(*a, **k))[1])
    lean = nncli.train.train(path, load(None, CONFIG)).model
    assert len(reads) == 1
    whole_reads(monkeypatch)
    assert lean.prep.to_dict() == nncli.train.train(path, load(None, CONFIG)).model.prep.to_dict()


@pytest.mark.parametrize("cell", ["-0", "1e400", "abc"])
def test_a_column_that_stops_being_clean_is_read_whole(tmp_path, monkeypatch, cell):
    """A numeric column with a cell the fast path does not take (in a late block) is text from there
    on: the file is then read whole, and the outcome (model or error) is the whole path's."""
    lines = table_text().splitlines()
    lines[300] = ",".join([cell] + lines[300].split(",")[1:])
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    cfg = load(None, CONFIG)

    def outcome():
        try:
            return nncli.train.train(path, cfg).model.prep.to_dict()
        except DataError as exc:
            return str(exc)

    lean = outcome()
    whole_reads(monkeypatch)
    assert lean == outcome()
    if cell == "abc":
        assert lean.endswith("line 301, column 'x1': 'abc' is not a number; add it to data.missing_values "
                             "or list the column in data.categorical")


def test_a_gap_in_a_late_block_is_named_by_its_line(tmp_path):
    text = table_text().replace("NA", "0.5")
    lines = text.splitlines()
    lines[377] = ",".join(lines[377].split(",")[:1] + [""] + lines[377].split(",")[2:])
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"t\.csv: line 378, column 'x2': missing value \(data\.impute is 'error'\)"):
        nncli.train.train(path, load(None, CONFIG + ["data.impute=error", "data.zero_means_missing=[]"]))


def test_a_file_rewritten_between_the_passes_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text(table_text())
    real = Preprocessor.fit

    def fit_then_append(table, cfg):
        with open(path, "a") as f:
            f.write(table_text().splitlines()[1] + "\n")
        return real(table, cfg)

    monkeypatch.setattr(Preprocessor, "fit", staticmethod(fit_then_append))
    with pytest.raises(DataError, match=r"t\.csv: the file changed while nncli read it"):
        nncli.train.train(path, load(None, CONFIG))


@pytest.mark.parametrize("n", [1, 2, 7, 12_701])
def test_compiled_moments_are_numpys(n):
    """nncli.kernels.columns.moments, which summarize uses for a block without gaps."""
    from nncli.kernels.columns import moments

    x = np.random.default_rng(n).normal(-40, 3, size=n)
    mean, m2, lo, hi = moments(x)
    assert (lo, hi) == (x.min(), x.max())
    assert mean == pytest.approx(x.mean(), rel=1e-14)
    assert m2 == pytest.approx(np.sum((x - x.mean()) ** 2), rel=1e-10, abs=1e-12)


def test_a_block_is_at_most_a_sixteenth_of_the_file(tmp_path, monkeypatch):
    """So that the blocks in flight weigh on a small file's memory no more than on a large one's."""
    from nncli.data import every_column, read_table

    monkeypatch.setattr(nncli.data, "BLOCK_BYTES", 4 << 20)
    monkeypatch.setattr(nncli.data, "FIRST_BLOCK_BYTES", 4 << 20)
    monkeypatch.setattr(nncli.data, "COMPILED_PARSE_BYTES", 1024)  # the least block (1 MiB) scaled down
    path = tmp_path / "t.csv"
    path.write_text(table_text(2000))
    chunks = list(read_table(path, chunk_rows=1 << 40, numbers=every_column))
    assert len(chunks) in (16, 17) and sum(len(c.frame) for c in chunks) == 2000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_scaling_is_numpys_bit_for_bit(tmp_path, monkeypatch, dtype):
    """transform scales large tables' numeric columns in a compiled loop (nncli.kernels.columns
    .standardize) and small ones with numpy: the same arrays, gaps and fills included."""
    import nncli.preprocess

    path = tmp_path / "t.csv"
    path.write_text(table_text())
    cfg = load(None, CONFIG + ["data.impute=zero"])
    table = nncli.data.read_table(path, numbers=nncli.data.every_column)
    prep = Preprocessor.fit(table, cfg["data"])
    outputs = []
    for cells in (0, 1 << 62):
        monkeypatch.setattr(nncli.preprocess, "COMPILED_TRANSFORM_CELLS", cells)
        outputs.append(prep.transform(table, dtype))
    assert np.isnan(nncli.preprocess.numeric_values(table, "x2", prep.missing_values, False)).any()  # gaps to fill
    np.testing.assert_array_equal(*outputs)
    assert outputs[0].tobytes() == outputs[1].tobytes()
