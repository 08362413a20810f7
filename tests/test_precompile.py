"""A cold kernel cache compiled by two processes (nncli.kernels.precompile).

Each run is a fresh process on a new, empty cache folder, so that kernels compiled by other tests
cannot stand in for the helper's."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

FIT = """
import json, sys
import numpy as np
from numba.core import event
from nncli import config
from nncli.train import Arrays, build_network, fit

compiles, open_ = [], []

class Compiles(event.Listener):
    def on_start(self, ev):
        func = ev.data["dispatcher"].py_func  # nncli's kernels, not numba's own overloads (np.random.seed...)
        ours = func.__module__.startswith("nncli.")
        if ours:
            compiles.append({"name": func.__name__, "inside": list(open_)})
        open_.append(func.__name__ if ours else None)

    def on_end(self, ev):
        open_.pop()

event.register("numba:compile", Compiles())
overrides, validate, task, every = json.loads(sys.argv[1]), sys.argv[2] == "validate", sys.argv[3], int(sys.argv[4])
cfg = config.load(None, overrides)
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 3))
data = Arrays(X, (X[:, :1] > 0).astype(float) if task == "binary" else X[:, :1] * 2.0, np.ones(64))
net = build_network(3, 1, cfg["model"], np.dtype(cfg["train"]["dtype"]))
net.initialize(rng)
fit(net, data, data if validate else None, cfg["train"], task, every=every)
from nncli.kernels import mlp
print(json.dumps({"compiles": compiles, "theta": net.theta.astype(float).tolist(),
                  "hits": {k.py_func.__name__: sum(k.stats.cache_hits.values())
                           for k in (mlp.forward, mlp.predict_logits)}}))
"""

PLAIN = ["train.epochs=3", "train.batch_size=16", "train.dtype=float32", "model.hidden=[{units: 5, activation: relu}]"]
FULL = ["train.epochs=3", "train.batch_size=16", "train.dtype=float64", "train.optimizer.name=adamw",
        "model.input_dropout=0.1", "model.hidden=[{units: 5, activation: elu, batch_norm: before, dropout: 0.2}]"]
RECORDS = ["train.epochs=2", "train.batch_size=16", "train.dtype=float32", "train.loss=mae",
           "model.hidden=[{units: 5, activation: tanh}]"]  # gradient records and a loss the plain kernels leave out
CASES = {"plain": (PLAIN, False, "binary", 0), "full-validated": (FULL, True, "binary", 0),
         "records-mae-validated": (RECORDS, True, "regression", 2)}


def _fit(tmp_path, name, case, parallel, cwd=None):
    """FIT run as a script file (as the nncli command is: the current folder is not on sys.path)."""
    overrides, validate, task, every = case
    script = tmp_path / "fit.py"
    script.write_text(FIT, encoding="utf-8")
    env = dict(os.environ, NNCLI_CACHE_DIR=str(tmp_path / name), NNCLI_PARALLEL_COMPILE=parallel)
    done = subprocess.run([sys.executable, str(script), json.dumps(overrides), "validate" if validate else "-", task,
                           str(every)], capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_helper_compiles_what_train_epoch_then_loads(tmp_path, case):
    """With the helper, compiling train_epoch compiles none of its callees (every signature in
    nncli.kernels.precompile matches what train_epoch passes), this process loads the forward pass
    and the prediction kernel from the cache instead of compiling them, and the weights are those
    of a run compiled in one process."""
    validate = case[1]
    split = _fit(tmp_path, "split", case, "1")
    names = [c["name"] for c in split["compiles"]]
    assert "train_epoch" in names  # the cache was cold
    assert [c["name"] for c in split["compiles"] if "train_epoch" in c["inside"]] == []
    assert "forward" not in names and "predict_logits" not in names, names
    assert split["hits"]["forward"] >= 1 and split["hits"]["predict_logits"] == int(validate)
    alone = _fit(tmp_path, "alone", case, "0")
    alone_names = [c["name"] for c in alone["compiles"]]
    assert "forward" in alone_names and [c for c in alone["compiles"] if "train_epoch" in c["inside"]] != []
    np.testing.assert_allclose(split["theta"], alone["theta"], rtol=1e-6, atol=1e-7)


def test_a_split_compile_leaves_a_whole_cache(tmp_path):
    """What the two processes cached serves the next run entirely: it compiles nothing."""
    first = _fit(tmp_path, "cache", CASES["full-validated"], "1")
    second = _fit(tmp_path, "cache", CASES["full-validated"], "1")
    assert first["compiles"] and second["compiles"] == []


def test_the_helper_imports_the_nncli_of_the_training_process(tmp_path):
    """From a folder holding another package named nncli (another checkout, say), the helper still
    imports the training process's nncli: the forward pass is a cache hit, not compiled here."""
    shadow = tmp_path / "other" / "nncli"
    (shadow / "kernels").mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('the wrong nncli')\n")
    (shadow / "kernels" / "__init__.py").write_text("")
    split = _fit(tmp_path, "cache", CASES["plain"], "1", cwd=tmp_path / "other")
    assert "forward" not in [c["name"] for c in split["compiles"]] and split["hits"]["forward"] >= 1


def test_parallel_compile_setting_is_checked(monkeypatch):
    from nncli.errors import ConfigError
    from nncli.kernels import precompile

    monkeypatch.setenv("NNCLI_PARALLEL_COMPILE", "yes")
    with pytest.raises(ConfigError, match="NNCLI_PARALLEL_COMPILE: expected 0 or 1, got 'yes'"):
        precompile._wanted()
    monkeypatch.setenv("NNCLI_PARALLEL_COMPILE", "0")
    assert precompile._wanted() is False
    monkeypatch.setenv("NNCLI_PARALLEL_COMPILE", "1")
    assert precompile._wanted() is True


def test_cold_reads_the_cache_index(tmp_path):
    """cold() is True for a signature neither compiled nor cached, False once it is cached."""
    script = ("import json, numba\nfrom nncli.kernels import mlp, precompile\n"
              "sig = (numba.typeof(mlp.np.zeros((1, 9), dtype=mlp.np.int64)), numba.int64,\n"
              "       numba.typeof(mlp.np.zeros(8, dtype=mlp.np.int64)))\n"
              "before = precompile.cold(mlp.fill_offsets, sig)\nmlp.fill_offsets.compile(sig)\n"
              "print(json.dumps([before, precompile.cold(mlp.fill_offsets, sig)]))")
    env = dict(os.environ, NNCLI_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]
    assert [json.loads(r.stdout) for r in runs] == [[True, False], [False, False]], [r.stderr[-500:] for r in runs]
