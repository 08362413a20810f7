"""`nncli init`: a starter config for a CSV file, every section commented."""

import json
import re

from nncli.data import read_table
from nncli.preprocess import Preprocessor
from nncli.schema import DATA, DEFAULT_MISSING

_TEMPLATE = """\
# nncli config for {file}: {n_rows} rows, {n_cols} columns{header_note}.
# Detected task: {task}{task_note}. Change anything below; `nncli train {file} --config THIS.yaml`.

data:
  header: {header}            # does the first row hold column names: auto, true or false
  target: {target}            # target column: a name, or a 0-based index (-1 = last)
  task: auto              # auto (detected: {task}), binary, multiclass or regression
  # features: [...]       # feature columns; default: all but the target and `ignore`
  ignore: []              # columns to leave out, such as row ids
  # derive: [a^2, a*b, sin(a)]  # derived inputs from numeric columns a, b (the Playground's X1², X1·X2)
  categorical: {categorical}  # one-hot encoded columns; default: the non-numeric ones
  missing_values: {missing}  # strings that mean missing (numeric columns)
  zero_means_missing: []  # numeric columns where 0 stands for missing
  impute: mean            # fill missing numbers with: mean, median, zero, or error
  scaling: standard       # numeric features: standard (z-score), minmax, or none

model:
  # hidden layers, input to output; the output layer follows from the task ({output})
  hidden:
    - {{units: {h1}, activation: relu}}
    - {{units: {h2}, activation: relu}}
  init: auto              # auto: he_uniform for relu-like, glorot_uniform otherwise

train:
  epochs: 100
  batch_size: 32
  optimizer: {{name: adam, lr: 0.001}}   # sgd, adagrad, rmsprop, adam or adamw
  loss: auto              # {loss} for this task
  seed: 0                 # the same seed gives the same model file, byte for byte
  shuffle: true
  val_split: {val_split}          # share of rows held out for validation (stratified for classes)
  early_stopping: {{enabled: {early}, patience: 10, restore_best: true}}
  dtype: float32          # or float64
"""


def _name(column: str) -> str:
    """A column name as YAML: plain when that reads back as the same string, else double-quoted."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", column) and column.lower() not in ("null", "true", "false")
    return column if plain else json.dumps(column, ensure_ascii=False)


def starter_config(path, target=None, header: str = "auto") -> str:
    table = read_table(path, header=header)
    cfg = {key: opt.default for key, opt in DATA.items()}
    cfg["header"] = header
    if target is not None:
        cfg["target"] = int(target) if str(target).lstrip("-").isdigit() else target
    prep = Preprocessor.fit(table, cfg)
    cats = [f.name for f in prep.features if f.kind == "categorical"]
    width = prep.n_inputs
    h1 = min(128, max(8, 1 << (2 * width - 1).bit_length()))  # a power of two >= twice the inputs
    output = {"binary": "one sigmoid unit", "multiclass": f"{len(prep.labels)} softmax units",
              "regression": "one linear unit"}[prep.task]
    loss = {"binary": "bce", "multiclass": "cross_entropy", "regression": "mse"}[prep.task]
    task_note = f" with classes {', '.join(prep.labels)}" if prep.labels else ""
    target_text = _name(prep.target) if table.has_header else str(prep.columns.index(prep.target))
    return _TEMPLATE.format(
        file=path, n_rows=len(table.frame), n_cols=len(prep.columns),
        header_note=", with a header row" if table.has_header else ", no header row",
        header="true" if table.has_header else "false", target=target_text, task=prep.task, task_note=task_note,
        categorical="[" + ", ".join(map(_name, cats)) + "]" if cats else "null",
        missing="[" + ", ".join(f'"{m}"' for m in DEFAULT_MISSING) + "]",
        output=output, h1=h1, h2=max(4, h1 // 2), loss=loss,
        # too few rows to hold some out: train on all, without early stopping
        val_split=0.2 if len(table.frame) >= 50 else 0.0, early="true" if len(table.frame) >= 50 else "false",
    )
