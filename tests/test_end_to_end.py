"""Whole runs of the installed `nncli` command on real and sample data: train, eval, predict, info.

Each data set is split here with numpy into train and test CSVs (stratified for classes), so the
figures are held-out ones. Metrics from `nncli eval` are checked against scikit-learn's, computed
on `nncli predict`'s output; the accuracy and R^2 thresholds are what the configs reach with a
margin (measured values in the comments).
"""

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from conftest import ROOT, shared_csv

CONFIGS = ROOT / "configs"
SAMPLES = ROOT / "sample_data"
ENV = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR")}


def run_many(commands: dict) -> dict:
    """Run `nncli` commands side by side; each must succeed. Returns {key: stdout}."""
    exe = shutil.which("nncli")
    if exe is None:
        pytest.fail("the nncli command is not on PATH (pip install -e .)")
    procs = {key: subprocess.Popen([exe, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=ENV)
             for key, args in commands.items()}
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"nncli {' '.join(map(str, commands[key]))}: {stderr}"
        assert stderr == "", stderr  # every command here runs with --json, --quiet or CSV output
        out[key] = stdout
    return out


@dataclass
class Split:
    train: Path
    test: Path
    y_test: np.ndarray  # the test rows' target cells, as text


def split_csv(path: Path, folder: Path, seed: int, *, header: bool, stratify: bool, fraction=0.25) -> Split:
    """Hold out round(fraction * n) rows (per class when stratified); lines are copied unchanged."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    y = np.array([row.rsplit(",", 1)[1] for row in rows])
    rng = np.random.default_rng(seed)
    test = np.zeros(len(rows), dtype=bool)
    for idx in [np.flatnonzero(y == v) for v in np.unique(y)] if stratify else [np.arange(len(rows))]:
        test[rng.permutation(idx)[: round(fraction * len(idx))]] = True
    folder.mkdir(parents=True, exist_ok=True)
    for name, keep in (("train.csv", ~test), ("test.csv", test)):
        (folder / name).write_text("\n".join(head + [r for r, k in zip(rows, keep) if k]) + "\n")
    return Split(folder / "train.csv", folder / "test.csv", y[test])


def predictions(csv_text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(csv_text), dtype={"prediction": str}, keep_default_na=False)


def train_and_eval(data, config, tmp_path, seeds, *predict_args):
    """Train `config` on a stratified 25% split per seed, eval each model on its test part, and
    predict the first seed's test part; returns (splits, eval results, predict output)."""
    splits = {s: split_csv(data, tmp_path / str(s), s, header=False, stratify=True) for s in seeds}
    run_many({s: ("train", splits[s].train, "-c", CONFIGS / config, "--seed", s,
                  "-o", tmp_path / f"{s}.npz", "-q") for s in seeds})
    out = run_many({**{s: ("eval", tmp_path / f"{s}.npz", splits[s].test, "--json") for s in seeds},
                    "predict": ("predict", tmp_path / "0.npz", splits[0].test, *predict_args)})
    return splits, [json.loads(out[s]) for s in seeds], out["predict"]


# ----- (a) the lecture's Pima example ------------------------------------------------------------
def test_pima_lecture_config_reaches_75_percent(tmp_path):
    """configs/pima.yaml, 5 seeds of a stratified 25% test split: 0.7667 mean test accuracy."""
    splits, results, predicted = train_and_eval(shared_csv("pima-indians-diabetes.csv"), "pima.yaml", tmp_path,
                                                range(5))
    assert [r["n"] for r in results] == [192] * 5  # 125 of 500 negatives + 67 of 268 positives
    correct = sum(round(r["accuracy"] * r["n"]) for r in results)  # whole rows: no rounding at 0.75
    assert correct / (192 * 5) >= 0.75
    pred = predictions(predicted)["prediction"]
    assert results[0]["accuracy"] == pytest.approx(skm.accuracy_score(splits[0].y_test, pred))
    assert results[0]["roc_auc"] > 0.75


# ----- (b) iris: multiclass with string labels -----------------------------------------------------
IRIS = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]


def test_iris_multiclass_with_string_labels(tmp_path):
    """configs/iris.yaml, 3 seeds of a stratified 25% split (36 rows): 0.917, 0.972, 1.0."""
    splits, results, predicted = train_and_eval(shared_csv("iris.csv"), "iris.yaml", tmp_path, range(3), "--proba")
    assert np.mean([r["accuracy"] for r in results]) > 0.9  # chance is 1/3
    pred = predictions(predicted)
    assert list(pred.columns) == ["prediction"] + [f"proba_{label}" for label in IRIS]
    assert set(pred["prediction"]) <= set(IRIS)  # the original strings come back
    y_true = splits[0].y_test
    assert results[0]["accuracy"] == pytest.approx(skm.accuracy_score(y_true, pred["prediction"]))
    assert results[0]["confusion_matrix"] == skm.confusion_matrix(y_true, pred["prediction"], labels=IRIS).tolist()
    assert list(results[0]["per_class"]) == IRIS


# ----- (c) housing: regression ---------------------------------------------------------------------
def test_housing_regression_r2(tmp_path):
    """configs/housing.yaml, 3 seeds of a random 25% split: R^2 0.91, 0.83, 0.71 (linear model: 0.77,
    0.62, 0.62; a 200-tree random forest: 0.92, 0.81, 0.73)."""
    data = shared_csv("housing.csv")
    seeds = range(3)
    splits = {s: split_csv(data, tmp_path / str(s), s, header=False, stratify=False) for s in seeds}
    run_many({s: ("train", splits[s].train, "-c", CONFIGS / "housing.yaml", "--seed", s,
                  "-o", tmp_path / f"{s}.npz", "-q") for s in seeds})
    out = run_many({**{s: ("eval", tmp_path / f"{s}.npz", splits[s].test, "--json") for s in seeds},
                    "predict": ("predict", tmp_path / "0.npz", splits[0].test)})
    results = [json.loads(out[s]) for s in seeds]
    assert [(r["task"], r["n"]) for r in results] == [("regression", 126)] * 3
    assert np.mean([r["r2"] for r in results]) > 0.7
    y_true = splits[0].y_test.astype(float)
    y_pred = predictions(out["predict"])["prediction"].astype(float)
    assert results[0]["r2"] == pytest.approx(skm.r2_score(y_true, y_pred), rel=1e-6)
    assert results[0]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y_true, y_pred)), rel=1e-6)
    assert results[0]["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), rel=1e-6)


# ----- (d) abalone: a categorical first column ----------------------------------------------------
def test_abalone_one_hot_encodes_sex(tmp_path):
    """configs/abalone.yaml, one random 25% split: R^2 0.55 (rings are hard to predict from size)."""
    split = split_csv(shared_csv("abalone.csv"), tmp_path, 0, header=False, stratify=False)
    model = tmp_path / "abalone.npz"
    run_many({"train": ("train", split.train, "-c", CONFIGS / "abalone.yaml", "-o", model, "-q")})
    out = run_many({"eval": ("eval", model, split.test, "--json"), "predict": ("predict", model, split.test),
                    "info": ("info", model, "--json")})
    info = json.loads(out["info"])
    sex = info["features"][0]
    assert (sex["name"], sex["kind"], sex["categories"]) == ("col0", "categorical", ["F", "I", "M"])
    assert [f["kind"] for f in info["features"][1:]] == ["numeric"] * 7
    assert info["inputs"] == 3 + 7 and info["task"] == "regression"
    y_pred = predictions(out["predict"])["prediction"].astype(float)
    assert len(y_pred) == len(split.y_test) == 1044
    result = json.loads(out["eval"])
    assert result["r2"] == pytest.approx(skm.r2_score(split.y_test.astype(float), y_pred), rel=1e-6)
    assert result["r2"] > 0.45


# ----- (e) the sample data sets, with configs from `nncli init` ------------------------------------
SAMPLE_CASES = {  # file: (stratify, metric, threshold); measured on seed 0: 0.79, 0.81, 0.95
    "churn.csv": (True, "accuracy", 0.7),  # always "no": 0.64
    "fruit.csv": (True, "accuracy", 0.75),  # chance: 1/3
    "house_prices.csv": (False, "r2", 0.85),
}


def test_sample_data_init_train_eval_predict(tmp_path):
    splits = {name: split_csv(SAMPLES / name, tmp_path / name, 0, header=True, stratify=stratify)
              for name, (stratify, _, _) in SAMPLE_CASES.items()}
    configs = run_many({name: ("init", splits[name].train) for name in SAMPLE_CASES})
    for name, text in configs.items():
        (tmp_path / name / "config.yaml").write_text(text)
    run_many({name: ("train", splits[name].train, "-c", tmp_path / name / "config.yaml",
                     "-o", tmp_path / name / "m.npz", "-q") for name in SAMPLE_CASES})
    out = run_many({**{("eval", n): ("eval", tmp_path / n / "m.npz", splits[n].test, "--json") for n in SAMPLE_CASES},
                    **{("predict", n): ("predict", tmp_path / n / "m.npz", splits[n].test) for n in SAMPLE_CASES}})
    for name, (_, metric, threshold) in SAMPLE_CASES.items():
        result = json.loads(out["eval", name])
        pred = predictions(out["predict", name])["prediction"]
        y_true = splits[name].y_test
        assert len(pred) == len(y_true)
        if metric == "accuracy":
            assert set(pred) <= set(y_true) | set(pd.read_csv(splits[name].train).iloc[:, -1])
            assert result[metric] == pytest.approx(skm.accuracy_score(y_true, pred))
        else:
            assert result[metric] == pytest.approx(skm.r2_score(y_true.astype(float), pred.astype(float)), rel=1e-6)
        assert result[metric] > threshold, name


def test_sample_data_is_reproducible(tmp_path):
    """make_samples.py rewrites the shipped CSVs byte for byte."""
    subprocess.run([sys.executable, SAMPLES / "make_samples.py", tmp_path], check=True, env=ENV, timeout=60)
    shipped = sorted(p.name for p in SAMPLES.glob("*.csv"))
    assert shipped == sorted(p.name for p in tmp_path.glob("*.csv")) == ["churn.csv", "fruit.csv",
                                                                          "house_prices.csv"]
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
        assert (SAMPLES / name).stat().st_size < 40_000
