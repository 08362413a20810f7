"""Nothing lost, nothing run, nothing silent: signals and resume, divergence, damaged model files,
unwritable caches, and property-based tests that random input only ever gives nncli's own errors."""

import io
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nncli import model as model_file
from nncli.cli import app
from nncli.errors import CONFIG, DATA, DIVERGED, INTERRUPTED, MODEL_FILE, OK, TERMINATED, USAGE, ModelFileError

NNCLI = [sys.executable, "-m", "nncli"]
runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robust")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    np.savetxt(folder / "d.csv", np.column_stack([X, y]), delimiter=",", fmt="%.4f", header="a,b,c,d,e,f,y",
               comments="")
    (folder / "c.yaml").write_text(
        "model:\n  hidden: [{units: 32, activation: relu, dropout: 0.1}, {units: 16, activation: tanh}]\n"
        "train: {epochs: 40, batch_size: 8, seed: 5, val_split: 0.1}\n")
    return folder


def train_cmd(folder, out, *extra):
    return NNCLI + ["train", str(folder / "d.csv"), "-c", str(folder / "c.yaml"), "-o", str(out), *extra]


def interrupt_after_two_epochs(cmd, signum):
    """Start training, wait until it has reported two epochs (plain lines on stderr), signal it."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("epoch 2/"):
            proc.send_signal(signum)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    return proc.returncode, "".join(lines) + rest


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, INTERRUPTED), (signal.SIGTERM, TERMINATED)])
def test_signal_stops_saves_a_checkpoint_and_resume_gives_the_same_model(data, tmp_path, signum, code):
    # the kernels in the cache first: a run that compiles them can differ in the last bits (see
    # test_a_run_that_compiles_the_kernels_gives_the_model_of_one_that_loads_them)
    subprocess.run(train_cmd(data, tmp_path / "warm.npz", "-q"), check=True, timeout=300)
    subprocess.run(train_cmd(data, tmp_path / "full.npz", "-q"), check=True, timeout=300)
    out = tmp_path / "part.npz"
    out.write_bytes(b"an older model")
    rc, err = interrupt_after_two_epochs(train_cmd(data, out), signum)
    assert rc == code
    checkpoint = tmp_path / "part.ckpt.npz"
    assert f"checkpoint saved to {checkpoint}" in err and "Traceback" not in err
    assert out.read_bytes() == b"an older model"  # nothing written over the good file
    subprocess.run(train_cmd(data, out, "-q", "--resume", str(checkpoint)), check=True, timeout=300)
    assert out.read_bytes() == (tmp_path / "full.npz").read_bytes()


def test_resuming_with_another_config_or_data_is_refused(data, tmp_path):
    out = tmp_path / "m.npz"
    rc, _ = interrupt_after_two_epochs(train_cmd(data, out), signal.SIGINT)
    assert rc == INTERRUPTED
    checkpoint = str(tmp_path / "m.ckpt.npz")
    changed = subprocess.run(train_cmd(data, out, "--resume", checkpoint, "--epochs", "41"), capture_output=True,
                             text=True, timeout=300)
    assert changed.returncode == CONFIG and "train.epochs: 40 then, 41 now" in changed.stderr
    other = tmp_path / "d.csv"
    other.write_text((data / "d.csv").read_text().replace("0.1", "0.2", 1))
    cmd = NNCLI + ["train", str(other), "-c", str(data / "c.yaml"), "-o", str(out), "--resume", checkpoint]
    moved = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert moved.returncode == CONFIG and "is not the data the checkpoint was trained on" in moved.stderr
    assert not out.exists()


def test_divergence_names_the_step_and_keeps_the_existing_model(data, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(b"a good model")
    proc = subprocess.run(train_cmd(data, out, "--set", "train.optimizer={name: sgd, lr: 1e3}",
                                    "--set", "model.init_gain=30", "--set", "data.task=regression"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == DIVERGED
    assert "became non-finite at epoch 1, step" in proc.stderr and "clip_norm" in proc.stderr
    assert len(proc.stderr.strip().splitlines()[-1:]) == 1 and "Traceback" not in proc.stderr
    assert out.read_bytes() == b"a good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_an_interrupted_caller_stops_the_training_thread():
    """KeyboardInterrupt in the calling thread (no signal handler, as in a notebook) must stop the
    worker through the control flag, not leave it training in the background."""
    import _thread
    import signal
    import threading
    import time

    from nncli.train import run_interruptible

    control = np.zeros(1, dtype=np.int64)
    steps, stopped = [], threading.Event()

    def loop():
        while control[0] == 0:
            steps.append(1)
            time.sleep(0.001)
        stopped.set()

    # interrupt_main does nothing where SIGINT is ignored, as in a job a shell started in the background
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.2, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            run_interruptible(loop, control)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stopped.is_set() and control[0] == 1
    done = len(steps)
    time.sleep(0.05)
    assert len(steps) == done  # nothing runs after the exception has reached the caller


def test_cache_falls_back_when_folders_are_not_writable(tmp_path):
    code = "import nncli.kernels as k; print(k.CACHE, k.CACHE_DIR)"
    env = dict(os.environ, NNCLI_CACHE_DIR="/proc/nncli-no", XDG_CACHE_HOME="/proc/nncli-no", HOME="/proc/nncli-no")
    env.pop("NUMBA_CACHE_DIR", None)
    fallback = subprocess.run([sys.executable, "-c", code], env=dict(env, TMPDIR=str(tmp_path)), capture_output=True,
                              text=True, check=True)
    assert fallback.stdout.startswith(f"True {tmp_path}/nncli-")


def test_with_no_writable_folder_kernels_compile_in_memory_and_training_works(tmp_path, monkeypatch):
    import nncli.kernels as kernels

    monkeypatch.setattr(kernels, "_writable", lambda folder: False)
    assert kernels._choose_cache_dir() is None
    # what nncli.kernels then does: CACHE = False before any kernel module is imported
    code = ("import sys, nncli.kernels as k; k.CACHE = False; from nncli.cli import main; "
            "sys.argv = ['nncli', 'train', sys.argv[1], '--epochs', '1', '-q', '-o', sys.argv[2]]; main()")
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{i % 5},{i % 3},{i % 2}\n" for i in range(30)))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.csv"), str(tmp_path / "m.npz")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.npz").exists()


# ---- property-based: random input only ever gives nncli's own errors ------------------------------
def one_line_error(result, allowed):
    assert result.exit_code in allowed, (result.exit_code, result.stderr, repr(result.exception))
    if result.exit_code != OK:
        assert result.stderr.startswith("nncli: error: ") and result.stderr.count("\n") == 1, result.stderr


cells = st.one_of(st.integers(-5, 5).map(str), st.floats(-10, 10, allow_nan=False).map(lambda x: f"{x:.3g}"),
                  st.sampled_from(["", "NA", "a", "b", "x y", "?", "inf", "1,5", '"q,uoted"', "é"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.booleans(), width=st.integers(1, 4),
       rows=st.lists(st.lists(cells, min_size=1, max_size=5), min_size=0, max_size=12))
def test_random_csv_contents_never_give_a_traceback(tmp_path_factory, header, width, rows):
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    lines = ([",".join(f"c{j}" for j in range(width))] if header else []) + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    result = runner.invoke(app, ["train", str(path), "--epochs", "1", "-o", str(path.with_suffix(".npz")), "-q",
                                 "--set", "model.hidden=[{units: 2, activation: tanh}]"])
    one_line_error(result, {OK, CONFIG, DATA})


yaml_values = st.one_of(st.integers(-3, 300).map(str), st.sampled_from(
    ["1e-3", "no", "yes", "null", "[]", "{}", "relu", "adam", "'x'", "[1, 2]", "{name: sgd}", "-1", "0.5", "~",
     "!!python/object:os.system ls", "{units: 3}", "[{units: 2, activation: elu}]"]))
yaml_keys = st.sampled_from(["data.target", "data.header", "data.task", "data.scaling", "model.hidden", "model.init",
                             "train.epochs", "train.batch_size", "train.optimizer", "train.optimizer.lr",
                             "train.loss", "train.val_split", "train.schedule", "train.regularization.entropy",
                             "train.augment.mixup", "train.class_weight", "train.dtype", "train.epoch", "bogus"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(yaml_keys, yaml_values), max_size=4))
def test_random_configs_never_give_a_traceback(tmp_path_factory, items):
    folder = tmp_path_factory.mktemp("cfg")
    data = folder / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40)))
    args = ["train", str(data), "-o", str(folder / "m.npz"), "-q", "--set", "train.epochs=1"]
    for key, value in items:
        args += ["--set", f"{key}={value}"]
    one_line_error(runner.invoke(app, args), {OK, USAGE, CONFIG, DATA})


@pytest.fixture(scope="module")
def good_model(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "good.npz"
    subprocess.run(NNCLI + ["train", str(data / "d.csv"), "-o", str(path), "-q", "--epochs", "1"], check=True,
                   timeout=300)
    return path.read_bytes()


def test_ten_thousand_byte_mutations_only_give_model_file_errors(good_model, tmp_path):
    """Every mutated copy is refused with ModelFileError (or, where the change is invisible, loads
    the same weights); none hangs, none writes a file."""
    rng = np.random.default_rng(0)
    (tmp_path / "good.npz").write_bytes(good_model)
    weights = model_file.load(tmp_path / "good.npz").network.theta
    (tmp_path / "good.npz").unlink()
    path = tmp_path / "mutant.npz"
    refused = 0
    for i in range(10_000):
        data = bytearray(good_model)
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(len(data))] = rng.integers(256)
        if i % 10 == 0:
            data = data[: rng.integers(len(data))]
        path.write_bytes(bytes(data))
        try:
            loaded = model_file.load(path)
        except ModelFileError:
            refused += 1
        else:  # a byte outside every member's content (zip bookkeeping): the same model
            np.testing.assert_array_equal(loaded.network.theta, weights)
    assert refused >= 9_900  # only changes that zip and the checksum cannot see load
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mutant.npz"]


def test_a_mutated_model_file_through_the_cli_is_one_line(good_model, tmp_path):
    bad = bytearray(good_model)
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(bad))
    result = runner.invoke(app, ["info", str(tmp_path / "bad.npz")])
    one_line_error(result, {MODEL_FILE})
    assert result.exit_code == MODEL_FILE


def test_zip_members_in_any_order_are_read(good_model, tmp_path):
    with zipfile.ZipFile(io.BytesIO(good_model)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(tmp_path / "r.npz", "w") as z:
        for name in reversed(sorted(members)):
            z.writestr(name, members[name])
    assert model_file.load(tmp_path / "r.npz").network.n_params > 0


def test_extra_columns_are_ignored_with_a_note_and_order_does_not_matter(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y\n" + "".join(f"{i % 5},{i % 3},{i % 2}\n" for i in range(30)))
    assert runner.invoke(app, ["train", str(tmp_path / "t.csv"), "-q", "--epochs", "2",
                               "-o", str(tmp_path / "m.npz")]).exit_code == OK
    (tmp_path / "u.csv").write_text("extra,b,a\n" + "".join(f"9,{i % 3},{i % 5}\n" for i in range(30)))
    plain = runner.invoke(app, ["predict", str(tmp_path / "m.npz"), str(tmp_path / "t.csv"), "--proba"])
    moved = runner.invoke(app, ["predict", str(tmp_path / "m.npz"), str(tmp_path / "u.csv"), "--proba"])
    assert moved.exit_code == OK and moved.stdout == plain.stdout
    assert moved.stderr == f"nncli: note: {tmp_path / 'u.csv'}: ignoring column(s) the model does not use: extra\n"
    assert plain.stderr == ""


def test_a_run_that_compiles_the_kernels_gives_the_model_of_one_that_loads_them(data, tmp_path):
    """The same seed gives the same model file whether the run compiled its kernels (with the
    helper process) or loaded them from the cache (README, Training: Reproducible)."""
    env = {**os.environ, "NNCLI_CACHE_DIR": str(tmp_path / "cache")}  # empty: the first run compiles
    for name in ("compiled", "loaded"):
        subprocess.run(train_cmd(data, tmp_path / f"{name}.npz", "-q"), check=True, timeout=600, env=env)
    assert (tmp_path / "compiled.npz").read_bytes() == (tmp_path / "loaded.npz").read_bytes()
