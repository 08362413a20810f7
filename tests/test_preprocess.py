"""nncli.preprocess: fitted values against pandas recomputations, encodings, labels, column matching."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, shared_csv
from nncli.config import load
from nncli.data import read_table
from nncli.errors import DataError
from nncli.preprocess import Preprocessor

CHURN = ROOT / "sample_data" / "churn.csv"


def data_cfg(**overrides) -> dict:
    """The resolved `data` section, with `key=value` overrides as on the command line."""
    return load(None, [f"data.{key}={value}" for key, value in overrides.items()])["data"]


def fit(path, **overrides) -> tuple[Preprocessor, object]:
    cfg = data_cfg(**overrides)
    table = read_table(path, header=cfg["header"])
    return Preprocessor.fit(table, cfg), table


def write(folder: Path, text: str, name: str = "t.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ----- numeric columns: imputation and scaling against pandas ------------------------------------
PIMA_ZERO_MISSING = [1, 2, 3, 4, 5]  # glucose, blood pressure, skin fold, insulin, BMI


@pytest.mark.parametrize("impute", ["mean", "median", "zero"])
@pytest.mark.parametrize("scaling", ["standard", "minmax", "none"])
def test_pima_imputation_and_scaling_match_pandas(impute, scaling):
    path = shared_csv("pima-indians-diabetes.csv")
    prep, table = fit(path, header="false", zero_means_missing=str(PIMA_ZERO_MISSING), impute=impute,
                      scaling=scaling)
    df = pd.read_csv(path, header=None).iloc[:, :8].astype(float)
    df[PIMA_ZERO_MISSING] = df[PIMA_ZERO_MISSING].replace(0.0, np.nan)
    fills = {"mean": df.mean(), "median": df.median(), "zero": pd.Series(0.0, index=df.columns)}[impute]
    filled = df.fillna(fills)
    center = {"standard": filled.mean(), "minmax": filled.min(), "none": 0.0 * filled.mean()}[scaling]
    scale = {"standard": filled.std(ddof=0), "minmax": filled.max() - filled.min(),
             "none": 0.0 * filled.mean() + 1.0}[scaling]
    for j, f in enumerate(prep.features):
        assert f.kind == "numeric"
        assert f.zero_is_missing is (j in PIMA_ZERO_MISSING)
        if j in PIMA_ZERO_MISSING or impute != "zero":
            assert f.fill == pytest.approx(fills[j])
        assert f.center == pytest.approx(center[j])
        assert f.scale == pytest.approx(scale[j])
    expected = ((filled - center) / scale).to_numpy()
    np.testing.assert_allclose(prep.transform(table), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_is_the_formula_bit_for_bit_across_row_blocks(tmp_path, dtype):
    """(x, or the fill where x is missing, - center) / scale in float64, then cast: over more rows
    than one block of the transform (TRANSFORM_ROWS), with gaps on both sides of a block's edge."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.normal(size=n) * 1e3 + 7
    gaps = rng.random(n) < 0.1
    gaps[8190:8195] = True
    cells = np.where(gaps, "NA", np.char.mod("%.9g", x))
    path = write(tmp_path, "x,z,y\n" + "".join(f"{c},{v:.6g},{k % 2}\n" for k, (c, v) in enumerate(zip(cells, x))))
    prep, table = fit(path, impute="median")
    X = prep.transform(table, dtype)
    values = np.where(gaps, np.nan, np.where(gaps, "0", cells).astype(float))
    f = prep.features[0]
    expected = ((np.where(np.isnan(values), f.fill, values) - f.center) / f.scale).astype(dtype)
    assert f.fill == np.median(values[~gaps]) and X.dtype == dtype
    assert X[:, 0].tobytes() == expected.tobytes()


def test_missing_markers_are_imputed_in_numeric_columns(tmp_path):
    path = write(tmp_path, "x,y\n1,a\n?,b\nNA,a\n5,b\n,a\n6,b\n")
    prep, table = fit(path)
    # present values 1, 5, 6: mean 4; filled column 1,4,4,5,4,6
    filled = np.array([1, 4, 4, 5, 4, 6.0])
    assert prep.features[0].fill == 4.0
    np.testing.assert_allclose(prep.transform(table)[:, 0], (filled - filled.mean()) / filled.std())


def test_impute_error_names_the_line(tmp_path):
    path = write(tmp_path, "x,y\n1,a\n2,b\n?,a\n")
    with pytest.raises(DataError, match="line 4, column 'x': missing value"):
        fit(path, impute="error")


def test_constant_column_gets_scale_one(tmp_path):
    prep, table = fit(write(tmp_path, "x,z,y\n3,1,a\n3,2,b\n3,3,a\n"))
    assert (prep.features[0].center, prep.features[0].scale) == (3.0, 1.0)
    np.testing.assert_array_equal(prep.transform(table)[:, 0], 0.0)


@pytest.mark.parametrize("cell, line", [("x4", 3), ("1,5", 4)])
def test_non_number_in_numeric_column_names_line_and_column(tmp_path, cell, line):
    rows = [["1", "2", "0"], ["3", "4", "1"], ["5", "6", "0"], ["7", "8", "1"]]
    rows[line - 2][1] = f'"{cell}"'
    path = write(tmp_path, "a,b,y\n" + "".join(",".join(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=f"line {line}, column 'b': '{cell}' is not a number"):
        fit(path)


def test_non_number_on_line_one_hints_at_a_header(tmp_path):
    path = write(tmp_path, "a,a,y\n1,2,0\n3,4,1\n")  # duplicate names: auto-detection says no header
    with pytest.raises(DataError, match="line 1, column 'col0': 'a' is not a number.*data.header: true"):
        fit(path)


# ----- categorical columns ---------------------------------------------------------------------
def test_abalone_sex_is_one_hot_encoded():
    path = shared_csv("abalone.csv")
    prep, table = fit(path, header="false", categorical="[0]")
    sex = prep.features[0]
    assert (sex.name, sex.kind, sex.categories) == ("col0", "categorical", ["F", "I", "M"])
    df = pd.read_csv(path, header=None)
    assert sex.fill == df[0].mode()[0]
    X = prep.transform(table)
    assert X.shape == (len(df), 3 + 7)
    np.testing.assert_array_equal(X[:, :3], pd.get_dummies(df[0]).reindex(columns=["F", "I", "M"]).to_numpy(float))
    assert prep.input_names()[:4] == ["col0=F", "col0=I", "col0=M", "col1"]


def test_non_numeric_columns_are_detected_as_categorical():
    prep, table = fit(CHURN)
    kinds = {f.name: f.kind for f in prep.features}
    assert kinds == {"tenure_months": "numeric", "contract": "categorical", "payment": "categorical",
                     "monthly_charges": "numeric", "support_calls": "numeric"}
    df = pd.read_csv(CHURN)
    contract = next(f for f in prep.features if f.name == "contract")
    assert contract.categories == sorted(df["contract"].unique())
    charges = next(f for f in prep.features if f.name == "monthly_charges")
    assert df["monthly_charges"].isna().any()
    assert charges.fill == pytest.approx(df["monthly_charges"].mean())


def test_na_as_a_category_stays_a_category(tmp_path):
    # "NA" is North America here, not a missing value; only the empty cell is missing
    path = write(tmp_path, "region,y\nNA,a\nEU,b\nNA,a\n,b\nAS,a\nNA,b\n")
    prep, table = fit(path)
    region = prep.features[0]
    assert region.kind == "categorical"
    assert region.categories == ["AS", "EU", "NA"]
    assert region.fill == "NA"  # most frequent: fills the empty cell
    np.testing.assert_array_equal(prep.transform(table), [[0, 0, 1], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0],
                                                          [0, 0, 1]])


def test_declared_categorical_numbers(tmp_path):
    path = write(tmp_path, "zip,y\n1000,a\n2000,b\n1000,a\n3000,b\n")
    prep, table = fit(path, categorical="[zip]")
    assert prep.features[0].categories == ["1000", "2000", "3000"]
    np.testing.assert_array_equal(prep.transform(table), np.eye(3)[[0, 1, 0, 2]])


def test_unknown_category(tmp_path):
    prep, _ = fit(write(tmp_path, "c,y\nred,a\nblue,b\nred,b\n"))
    new = read_table(write(tmp_path, "c,y\nblue,a\ngreen,b\n", "new.csv"))
    with pytest.raises(DataError, match="line 3, column 'c': category 'green' was not seen in training"):
        prep.transform(new)
    prep.unknown_categories = "ignore"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the user's stderr (pandas deprecations included)
        np.testing.assert_array_equal(prep.transform(new), [[1, 0], [0, 0]])


# ----- targets and labels ----------------------------------------------------------------------
@pytest.mark.parametrize("name, task, labels, label_kind", [
    ("pima-indians-diabetes.csv", "binary", ["0", "1"], "int"),
    ("sonar.csv", "binary", ["M", "R"], "str"),
    ("iris.csv", "multiclass", ["Iris-setosa", "Iris-versicolor", "Iris-virginica"], "str"),
    ("winequality-red.csv", "multiclass", ["3", "4", "5", "6", "7", "8"], "int"),
    ("housing.csv", "regression", [], "str"),
    ("abalone.csv", "regression", [], "str"),
])
def test_task_and_labels_are_detected(name, task, labels, label_kind):
    prep, _ = fit(shared_csv(name), header="false")
    assert (prep.task, prep.labels, prep.label_kind) == (task, labels, label_kind)


@pytest.mark.parametrize("name", ["pima-indians-diabetes.csv", "sonar.csv", "iris.csv", "winequality-red.csv"])
def test_labels_round_trip(name):
    path = shared_csv(name)
    prep, table = fit(path, header="false")
    raw = table.frame[prep.target].str.strip()
    decoded = prep.decode_labels(prep.label_indices(raw, table))
    original = pd.read_csv(path, header=None).iloc[:, -1].to_numpy()  # ints for 0/1, strings for R/M
    np.testing.assert_array_equal(decoded, original)
    assert type(decoded[0]) is type(original[0])


def test_binary_target_encoding_uses_the_second_label_as_positive():
    prep, table = fit(shared_csv("sonar.csv"), header="false")
    Y = prep.encode_target(table)
    expected = (pd.read_csv(shared_csv("sonar.csv"), header=None).iloc[:, -1] == "R").to_numpy(float)
    np.testing.assert_array_equal(Y[:, 0], expected)


def test_multiclass_target_is_one_hot():
    prep, table = fit(shared_csv("iris.csv"), header="false")
    species = pd.read_csv(shared_csv("iris.csv"), header=None).iloc[:, -1]
    np.testing.assert_array_equal(prep.encode_target(table), pd.get_dummies(species).to_numpy(float))


def test_numeric_labels_have_one_spelling(tmp_path):
    prep, _ = fit(write(tmp_path, "x,y\n1,1\n2,0.0\n3,1.0\n4,0\n"))
    assert (prep.task, prep.labels, prep.label_kind) == ("binary", ["0", "1"], "int")
    table = read_table(write(tmp_path, "x,y\n5,1e0\n6,0\n", "new.csv"))
    np.testing.assert_array_equal(prep.label_indices(table.frame["y"], table), [1, 0])


def test_regression_target_scaling_round_trips():
    path = shared_csv("housing.csv")
    prep, table = fit(path, header="false")
    medv = pd.read_csv(path, header=None).iloc[:, -1]
    assert prep.target_center == pytest.approx(medv.mean())
    assert prep.target_scale == pytest.approx(medv.std(ddof=0))
    Y = prep.encode_target(table)
    np.testing.assert_allclose(Y[:, 0], (medv - medv.mean()) / medv.std(ddof=0))
    np.testing.assert_allclose(prep.unscale_target(Y[:, 0]), medv)


def test_unseen_class_at_eval_names_the_line(tmp_path):
    prep, _ = fit(write(tmp_path, "x,y\n1,cat\n2,dog\n3,cat\n"))
    table = read_table(write(tmp_path, "x,y\n1,dog\n2,cow\n", "new.csv"))
    with pytest.raises(DataError, match="line 3: target 'cow' is not one of the classes seen in training"):
        prep.label_indices(table.frame["y"], table)


def test_missing_target_names_the_line(tmp_path):
    with pytest.raises(DataError, match="line 3: the target 'y' is missing"):
        fit(write(tmp_path, "x,y\n1,a\n2,\n3,b\n"))


# ----- column matching at eval/predict time ----------------------------------------------------
def transform_any(prep: Preprocessor, path: Path) -> np.ndarray:
    table = read_table(path, header="auto", expected_names=[f.name for f in prep.features])
    return prep.transform(prep.match_columns(table))


def test_columns_in_another_order_give_the_same_features(tmp_path):
    prep, table = fit(CHURN)
    df = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    shuffled = df[list(np.random.default_rng(0).permutation(df.columns))]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    np.testing.assert_array_equal(transform_any(prep, tmp_path / "shuffled.csv"), prep.transform(table))


@pytest.mark.parametrize("drop_target", [False, True])
def test_headerless_file_is_matched_by_position(tmp_path, drop_target):
    prep, table = fit(CHURN)
    df = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    (df.drop(columns=["churned"]) if drop_target else df).to_csv(tmp_path / "h.csv", index=False, header=False)
    np.testing.assert_array_equal(transform_any(prep, tmp_path / "h.csv"), prep.transform(table))


def test_headerless_file_with_a_wrong_width(tmp_path):
    prep, _ = fit(CHURN)
    path = write(tmp_path, "1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="has 3 columns and no header; the model was trained on 6 columns"):
        transform_any(prep, path)


def test_missing_column_is_named(tmp_path):
    prep, _ = fit(CHURN)
    df = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    df.drop(columns=["payment"]).rename(columns={"contract": "Contract"}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataError, match="missing column\\(s\\) the model needs: contract, payment; "
                                        "did you mean 'Contract'"):
        transform_any(prep, tmp_path / "m.csv")


def test_preprocessor_survives_json():
    prep, table = fit(CHURN)
    again = Preprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert again == prep
    np.testing.assert_array_equal(again.transform(table), prep.transform(table))
