"""The command line: in-process with typer's CliRunner, and as the installed `nncli` command.

The subprocess tests run `nncli` the way a shell script would, and check what such a script relies
on: exit codes by error class, one-line errors, stdout holding only data, quiet pipes.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import nncli
import nncli.data
from conftest import ENV, ROOT, nncli_cmd, nncli_exe, nncli_many, shared_csv
from nncli.cli import app
from nncli.errors import CONFIG, DATA, MODEL_FILE, OUTPUT, USAGE

SAMPLES = ROOT / "sample_data"
CHURN = SAMPLES / "churn.csv"
ANSI = re.compile(r"\x1b\[")
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(stderr: str) -> str:
    """The error message of a failed command, checking it is exactly one `nncli: error:` line."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert stderr.startswith("nncli: error: "), stderr
    assert "Traceback" not in stderr
    return stderr


def churn_with(path, row: int, column: str, value: str):
    """The churn sample with one cell changed, written to path."""
    churn = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    churn.loc[row, column] = value
    churn.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """A small trained churn model and the bad inputs the error tests use."""
    d = tmp_path_factory.mktemp("cli")
    model = d / "churn.npz"
    result = invoke("train", CHURN, "--epochs", 3, "--seed", 1, "-o", model, "--quiet")
    assert result.exit_code == 0, result.stderr
    (d / "bad.yaml").write_text("train:\n  epochs: 5\n  epoks: 3\n")
    (d / "garbage.npz").write_text("not a model\n")
    (d / "truncated.npz").write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    (d / "ragged.csv").write_text("a,b,y\n1,2,0\n3,4\n")
    churn_with(d / "unknown_category.csv", 3, "contract", "ten-year")
    return {"dir": d, "data": CHURN, "model": model, "bad_config": d / "bad.yaml", "garbage": d / "garbage.npz",
            "truncated": d / "truncated.npz", "ragged": d / "ragged.csv", "missing": d / "nope.csv",
            "unknown_category": d / "unknown_category.csv", "no_dir": d / "no" / "such" / "folder"}


# (id, arguments with {file} placeholders, exit code, part of the message)
ERRORS = [
    ("usage-unknown-option", ["train", "{data}", "--bogus"], USAGE, "No such option: --bogus"),
    ("usage-bad-value", ["train", "{data}", "--epochs", "many"], USAGE, "--epochs"),
    ("usage-missing-argument", ["eval", "{model}"], USAGE, "Missing argument"),
    ("usage-unknown-command", ["fly"], USAGE, "No such command 'fly'"),
    ("usage-val-twice", ["train", "{data}", "--val", "{data}", "--val-split", "0.2"], USAGE, "not both"),
    ("config-unknown-key", ["train", "{data}", "-c", "{bad_config}"], CONFIG,
     "bad.yaml:3: train.epoks: unknown key 'epoks'; did you mean 'epochs'?"),
    ("config-bad-set", ["train", "{data}", "--set", "train.epochs=many"], CONFIG, "expected a whole number"),
    ("config-missing-file", ["train", "{data}", "-c", "{missing}"], CONFIG, "no such config file"),
    ("config-bad-delimiter", ["train", "{data}", "--set", "data.delimiter=;;"], CONFIG, "one character"),
    ("data-missing-file", ["train", "{missing}"], DATA, "nope.csv: no such file"),
    ("data-ragged", ["train", "{ragged}"], DATA, "line 3 has 2 fields where the first row has 3"),
    ("data-missing-target", ["train", "{data}", "--target", "churn"], DATA, "no column named 'churn'"),
    ("data-unknown-category", ["predict", "{model}", "{unknown_category}"], DATA,
     "line 5, column 'contract': category 'ten-year' was not seen in training"),
    ("model-not-a-zip", ["eval", "{garbage}", "{data}"], MODEL_FILE, "not an nncli model file"),
    ("model-truncated", ["info", "{truncated}"], MODEL_FILE, "truncated.npz: "),
    ("model-missing", ["predict", "{missing}", "{data}"], MODEL_FILE, "no such model file"),
    ("output-no-folder", ["predict", "{model}", "{data}", "-o", "{no_dir}/p.csv"], OUTPUT, "does not exist"),
]


def fill(args: list, files: dict) -> list:
    return [a.format(**{k: str(v) for k, v in files.items()}) for a in args]


@pytest.mark.parametrize("args, code, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_exit_codes_in_process(files, args, code, message):
    result = invoke(*fill(args, files))
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    if code != USAGE:  # usage errors in-process come from typer's own (boxed) error display
        one_line_error(result.stderr)


# each `nncli` process spends about a second importing numba and pandas: one case per class
SHELL_ERRORS = [e for e in ERRORS if e[2] == USAGE or e[0] in (
    "config-unknown-key", "data-ragged", "model-not-a-zip", "output-no-folder")]


@pytest.mark.parametrize("args, code, message", [e[1:] for e in SHELL_ERRORS], ids=[e[0] for e in SHELL_ERRORS])
def test_error_exit_codes_of_the_command(files, args, code, message):
    proc = nncli_cmd(*fill(args, files))
    assert proc.returncode == code, proc.stderr
    assert message in one_line_error(proc.stderr)
    assert proc.stdout == ""


def test_usage_error_points_at_the_command_help():
    proc = nncli_cmd("train", "--bogus")
    assert one_line_error(proc.stderr).endswith("(see nncli train --help)\n")
    assert nncli_cmd("fly").stderr.endswith("(see nncli --help)\n")


def test_internal_error_is_one_line_unless_debug(files, monkeypatch, capsys):
    """A bug (here: an unexpected exception while loading) exits 1 with one line, not a traceback."""
    from nncli import cli

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("nncli.model.load", broken)
    monkeypatch.setattr("sys.argv", ["nncli", "info", str(files["model"])])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    expected = "nncli: internal error: RuntimeError: boom (rerun with --debug for a traceback)\n"
    assert capsys.readouterr().err == expected
    monkeypatch.setattr("sys.argv", ["nncli", "--debug", "info", str(files["model"])])
    with pytest.raises(RuntimeError, match="boom"):
        cli.main()


# ----- version and help ------------------------------------------------------------------------
def test_version():
    assert invoke("--version").stdout == f"nncli {nncli.__version__}\n"
    proc = nncli_cmd("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"nncli {nncli.__version__}\n", "")


@pytest.mark.parametrize("user", [None, "12"])
def test_the_cli_shortens_openblas_idle_spin_before_numpy_loads(user):
    """An idle OpenBLAS worker spins 2**28 cycles by default; the CLI sets 2**20 before numpy or
    scipy can load OpenBLAS (which reads the variable once), and keeps a value the user set."""
    env = {k: v for k, v in ENV.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user
    probe = ("import os, sys; import nncli.cli; "
             "print('numpy' in sys.modules, 'scipy' in sys.modules, os.environ['OPENBLAS_THREAD_TIMEOUT'])")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.split() == ["False", "False", user or "20"], proc.stderr


def test_commands_are_the_expected_ones():
    assert sorted(COMMANDS) == ["activations", "eval", "info", "init", "inspect-grads", "make-data", "plot", "predict",
                                "train", "warmup"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(command):
    for flag in ("--help", "-h"):
        result = invoke(command, flag)
        assert result.exit_code == 0
        assert f"nncli {command}" in result.stdout and "Example: nncli" in result.stdout
    proc = nncli_cmd(command, "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert f"Usage: nncli {command}" in proc.stdout
    assert not ANSI.search(proc.stdout)


def test_root_help_lists_commands_and_exit_codes():
    proc = nncli_cmd("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    for command in COMMANDS:
        assert re.search(rf"^\W*{command}\s", proc.stdout, re.MULTILINE), command
    assert "3 bad config file" in " ".join(proc.stdout.split())
    assert not ANSI.search(proc.stdout)


def test_help_is_plain_text_when_not_a_terminal():
    """Help in a pipe or a file is click's plain layout: no box drawing, no escape codes (and no
    import of rich's markdown and syntax modules, which typer's boxed layout needs)."""
    proc = nncli_cmd("train", "--help")
    assert proc.returncode == 0 and "-c, --config <path>" in proc.stdout
    assert not set("\u256d\u2502\u2500\x1b") & set(proc.stdout)
    probe = "import sys; sys.argv = ['nncli', '--help']; from nncli.cli import main\ntry:\n main()\nexcept SystemExit:\n pass\n" \
            "print('rich.markdown' in sys.modules, file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=120)
    assert "Usage: nncli [OPTIONS] COMMAND" in proc.stdout and proc.stderr.strip() == "False"


def test_no_arguments_prints_help_and_exits_with_usage():
    proc = nncli_cmd()
    assert proc.returncode == USAGE
    assert "Usage: nncli" in proc.stdout
    assert proc.stderr == ""


# ----- what a shell script sees ------------------------------------------------------------------
@pytest.fixture(scope="module")
def shell(tmp_path_factory) -> dict:
    """One run of each command as a script would make it; the tests below check different things."""
    d = tmp_path_factory.mktemp("shell")
    train = ("train", CHURN, "--epochs", 4, "--val-split", 0.25)
    runs = nncli_many({
        "train_json": (*train, "--seed", 7, "-o", d / "a.npz", "--json"),
        "train_again": (*train, "--seed", 7, "-o", d / "b.npz", "--quiet"),
        "train_other_seed": (*train, "--seed", 8, "-o", d / "c.npz"),  # progress and summary on stderr
        "init": ("init", CHURN),
        "error": ("eval", d / "none.npz", CHURN),
    })
    runs.update(nncli_many({
        "eval_json": ("eval", d / "a.npz", CHURN, "--json"),
        "eval": ("eval", d / "a.npz", CHURN),
        "info_json": ("info", d / "a.npz", "--json"),
        "info": ("info", d / "a.npz"),
        "predict": ("predict", d / "a.npz", CHURN),
    }))
    return {"dir": d, **runs}


def test_json_is_the_only_thing_on_stdout(shell):
    for name in ("train_json", "eval_json", "info_json"):
        assert shell[name].returncode == 0 and shell[name].stderr == "", name
        assert isinstance(json.loads(shell[name].stdout), dict)
    summary = json.loads(shell["train_json"].stdout)
    assert summary["model"] == str(shell["dir"] / "a.npz") and summary["epochs_run"] == 4
    assert (summary["n_train"], summary["n_val"]) == (450, 150)
    assert len(summary["history"]["train_loss"]) == 4
    metrics = json.loads(shell["eval_json"].stdout)
    assert metrics["task"] == "binary" and metrics["n"] == 600 and metrics["labels"] == ["no", "yes"]


def test_json_in_process(files):
    result = invoke("eval", files["model"], CHURN, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout)["n"] == 600


def test_no_ansi_escapes_when_not_a_terminal(shell, files):
    assert "epoch 4/4" in shell["train_other_seed"].stderr and "training summary" in shell["train_other_seed"].stderr
    assert "accuracy" in shell["eval"].stderr
    assert shell["error"].returncode == MODEL_FILE
    for name in ("train_other_seed", "eval", "info", "predict", "init", "error"):
        assert not ANSI.search(shell[name].stdout) and not ANSI.search(shell[name].stderr), name
    in_process = invoke("train", CHURN, "--epochs", 2, "-o", files["dir"] / "plain.npz")
    assert in_process.exit_code == 0 and "epoch 2/2" in in_process.stderr
    assert not ANSI.search(in_process.output)


def test_reports_go_to_stderr_and_data_to_stdout(shell, files):
    assert shell["eval"].stdout == "" and shell["info"].stdout == ""
    assert shell["predict"].stdout.startswith("prediction\n") and shell["predict"].stderr == ""
    assert shell["init"].stdout.startswith("# nncli config") and shell["init"].stderr == ""
    result = invoke("info", files["model"])
    assert result.stdout == ""
    for name in ("churned", "tenure_months", "monthly_charges", "support_calls"):  # never cut to "…"
        assert name in result.stderr and name in shell["info"].stderr


def test_the_executable_delivers_all_of_stdout_before_its_fast_exit(shell):
    """`nncli` ends with os._exit (no interpreter teardown): what it buffered must still arrive
    whole. With buffered stdout, 600 predictions fit in one buffer: only the final flush sends them."""
    env = {k: v for k, v in ENV.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([nncli_exe(), "predict", str(shell["dir"] / "a.npz"), str(CHURN)], capture_output=True,
                          text=True, env=env, timeout=300)
    result = invoke("predict", shell["dir"] / "a.npz", CHURN)
    assert proc.returncode == 0 and result.exit_code == 0
    assert proc.stdout == result.stdout and proc.stdout.count("\n") == 601


def test_same_seed_gives_a_byte_identical_model_file(shell):
    assert [shell[n].returncode for n in ("train_json", "train_again", "train_other_seed")] == [0, 0, 0]
    first, again, other = ((shell["dir"] / name).read_bytes() for name in ("a.npz", "b.npz", "c.npz"))
    assert first == again
    assert first != other


# ----- init, train, info -------------------------------------------------------------------------
@pytest.mark.parametrize("data", ["churn.csv", "fruit.csv", "house_prices.csv", "iris.csv"])
def test_init_writes_a_config_that_train_accepts(tmp_path, data):
    path = shared_csv(data) if data == "iris.csv" else SAMPLES / data
    init = invoke("init", path)
    assert init.exit_code == 0 and init.stderr == ""
    assert ("header: false" in init.stdout) is (data == "iris.csv")
    config = tmp_path / "starter.yaml"
    config.write_text(init.stdout)
    train = invoke("train", path, "--config", config, "--epochs", 2, "-o", tmp_path / "m.npz", "--json")
    assert train.exit_code == 0, train.stderr
    expected_task = {"churn.csv": "binary", "fruit.csv": "multiclass", "iris.csv": "multiclass",
                     "house_prices.csv": "regression"}[data]
    assert json.loads(train.stdout)["task"] == expected_task


def test_init_quotes_column_names_that_yaml_would_misread(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["id,weight: kg,colour [main],#tag,null"] + [
        f"{i},{rng.normal():.2f},{rng.choice(['red', 'blue'])},{rng.choice(['a', 'b'])},{rng.choice(['x', 'y'])}"
        for i in range(40)]
    data = tmp_path / "odd.csv"
    data.write_text("\n".join(lines) + "\n")
    init = invoke("init", data, "--target", "null")
    assert init.exit_code == 0, init.stderr
    assert 'categorical: ["colour [main]", "#tag"]' in init.stdout and 'target: "null"' in init.stdout
    (tmp_path / "odd.yaml").write_text(init.stdout)
    train = invoke("train", data, "-c", tmp_path / "odd.yaml", "--epochs", 1, "-o", tmp_path / "m.npz", "-q")
    assert train.exit_code == 0, train.stderr
    info = json.loads(invoke("info", tmp_path / "m.npz", "--json").stdout)
    assert info["target"] == "null" and info["labels"] == ["x", "y"]
    assert [(f["name"], f["kind"]) for f in info["features"]] == [
        ("id", "numeric"), ("weight: kg", "numeric"), ("colour [main]", "categorical"), ("#tag", "categorical")]


def test_lr_option_without_an_optimizer_in_the_config(tmp_path):
    result = invoke("train", CHURN, "--lr", 0.01, "--epochs", 1, "-o", tmp_path / "m.npz", "-q")
    assert result.exit_code == 0, result.stderr


def test_init_then_train_in_a_shell_script(tmp_path):
    iris = shared_csv("iris.csv")
    script = f"set -e; nncli init {iris} > iris.yaml; nncli train {iris} -c iris.yaml --epochs 2 -q; ls"
    proc = subprocess.run(script, shell=True, executable=shutil.which("bash"), capture_output=True, text=True,
                          env=ENV, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.split() == ["iris.npz", "iris.yaml"]  # the model is named after the config


def test_default_model_path_is_named_after_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", CHURN, "--epochs", 1, "-q")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert (tmp_path / "churn.npz").is_file()


def test_info(files):
    result = invoke("info", files["model"], "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["task"] == "binary" and info["target"] == "churned" and info["labels"] == ["no", "yes"]
    assert [f["name"] for f in info["features"]] == ["tenure_months", "contract", "payment", "monthly_charges",
                                                     "support_calls"]
    contract = info["features"][1]
    assert contract["kind"] == "categorical" and contract["categories"] == ["month-to-month", "one-year", "two-year"]
    # 3 numeric + 3 + 3 one-hot inputs; default hidden layers 32 and 16; one output
    assert info["inputs"] == 9
    assert info["parameters"] == 9 * 32 + 32 + 32 * 16 + 16 + 16 + 1
    assert info["epochs"] == 3


# ----- predict ---------------------------------------------------------------------------------
def test_predict_writes_one_row_per_input_row(files):
    result = invoke("predict", files["model"], CHURN, "--proba", "--keep", "tenure_months")
    assert result.exit_code == 0 and result.stderr == ""
    out = pd.read_csv(io.StringIO(result.stdout), dtype={"prediction": str})
    data = pd.read_csv(CHURN)
    assert list(out.columns) == ["tenure_months", "prediction", "proba_no", "proba_yes"]
    assert len(out) == len(data)
    np.testing.assert_array_equal(out["tenure_months"], data["tenure_months"])
    np.testing.assert_allclose(out["proba_no"] + out["proba_yes"], 1.0, atol=1e-9)
    np.testing.assert_array_equal(out["prediction"], np.where(out["proba_yes"] > out["proba_no"], "yes", "no"))


def test_predict_writes_integer_labels_as_integers(tmp_path):
    path = shared_csv("pima-indians-diabetes.csv")
    model = tmp_path / "pima.npz"
    assert invoke("train", path, "--no-header", "--epochs", 2, "-o", model, "-q").exit_code == 0
    result = invoke("predict", model, path)
    lines = result.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 769
    assert set(lines[1:]) <= {"0", "1"}


def test_predict_columns_in_another_order_and_without_header(files, tmp_path):
    data = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    data[data.columns[::-1]].to_csv(tmp_path / "reversed.csv", index=False)
    data.drop(columns=["churned"]).to_csv(tmp_path / "headerless.csv", index=False, header=False)
    expected = invoke("predict", files["model"], CHURN, "--proba").stdout
    assert expected.count("\n") == 601
    for path in (tmp_path / "reversed.csv", tmp_path / "headerless.csv"):
        result = invoke("predict", files["model"], path, "--proba")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected


def test_predict_headerless_file_with_a_model_trained_with_header_true(tmp_path):
    """`nncli init` writes `header: true` for a file with names; predict must still match by position."""
    model = tmp_path / "m.npz"
    assert invoke("train", CHURN, "--header", "--epochs", 1, "-o", model, "-q").exit_code == 0
    data = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    data.drop(columns=["churned"]).to_csv(tmp_path / "headerless.csv", index=False, header=False)
    with_header = invoke("predict", model, CHURN)
    without = invoke("predict", model, tmp_path / "headerless.csv")
    assert without.exit_code == 0, without.stderr
    assert without.stdout == with_header.stdout and with_header.stdout.count("\n") == 601


def test_predict_names_a_missing_column(files, tmp_path):
    pd.read_csv(CHURN).drop(columns=["payment"]).to_csv(tmp_path / "m.csv", index=False)
    result = invoke("predict", files["model"], tmp_path / "m.csv")
    assert result.exit_code == DATA
    assert "missing column(s) the model needs: payment" in one_line_error(result.stderr)


def test_predict_output_file_is_written_atomically(files, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    ok = invoke("predict", files["model"], CHURN, "-o", out_dir / "p.csv", "--chunk-rows", 100)
    assert ok.exit_code == 0 and ok.stdout == "" and ok.stderr == ""
    assert sorted(p.name for p in out_dir.iterdir()) == ["p.csv"]
    assert len(pd.read_csv(out_dir / "p.csv")) == 600
    # an unseen category in a later chunk: the chunks before it are never left as a partial file
    failed = invoke("predict", files["model"], files["unknown_category"], "-o", out_dir / "q.csv", "--chunk-rows", 2)
    assert failed.exit_code == DATA
    assert sorted(p.name for p in out_dir.iterdir()) == ["p.csv"]


def test_predict_reports_the_first_bad_chunk_though_the_next_is_read_meanwhile(files, tmp_path):
    """A chunk's predictions are made on a thread while the next chunk is read. An unseen category
    in the first block and a short row in the second: the category's error is the one reported,
    as when chunks went one at a time, though the short row was read first; and lines come in
    file order."""
    churn = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    big = pd.concat([churn] * 20, ignore_index=True)  # 12,000 rows: blocks of 128 KiB, then 512 KiB
    path = tmp_path / "big.csv"
    big.to_csv(path, index=False)
    assert invoke("predict", files["model"], path, "--chunk-rows", 7).stdout == invoke(
        "predict", files["model"], path).stdout
    big.loc[10, "contract"] = "ten-year"
    lines = big.to_csv(index=False).splitlines(keepends=True)
    assert sum(map(len, lines[:5001])) > nncli.data.FIRST_BLOCK_BYTES + 1000  # row 5000 is in the second block
    lines[5001] = lines[5001].split(",", 1)[0] + "\n"
    path.write_text("".join(lines))
    result = invoke("predict", files["model"], path, "--chunk-rows", 100_000)  # a chunk a block
    assert result.exit_code == DATA
    assert "line 12, column 'contract': category 'ten-year' was not seen" in one_line_error(result.stderr)
    assert result.stdout == ""


def test_predict_to_stdout_stops_at_the_chunk_that_fails(files, tmp_path):
    """An unseen category in the third chunk: its error is reported, the two chunks before it are
    on stdout, and nothing of the chunks after it, though their lines were made meanwhile."""
    path = churn_with(tmp_path / "third_chunk.csv", 250, "contract", "ten-year")
    result = invoke("predict", files["model"], path, "--chunk-rows", 100)
    assert result.exit_code == DATA
    assert "line 252, column 'contract'" in one_line_error(result.stderr)
    whole = invoke("predict", files["model"], CHURN).stdout
    assert result.stdout == "".join(whole.splitlines(keepends=True)[:201])  # the header and 200 rows


def test_eval_reads_chunk_by_chunk_and_agrees_with_its_predictions(files, tmp_path):
    """eval reads a file as predict does, a chunk at a time (7 rows; or each block, of 128 KiB
    and then 512 KiB), and keeps only the targets and the outputs: its metrics are scikit-learn's
    on the probabilities predict writes for the same file."""
    from sklearn import metrics as skm

    churn = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    path = tmp_path / "big.csv"
    pd.concat([churn] * 20, ignore_index=True).to_csv(path, index=False)  # 12,000 rows, 4 blocks
    got = {rows: json.loads(invoke("eval", files["model"], path, "--json", "--chunk-rows", rows).stdout)
           for rows in (7, 100_000)}
    # the same up to float32 rounding: a row's output can change in the last bit with the rows
    # computed alongside it (BLAS blocks the rows of a chunk)
    assert got[7]["confusion_matrix"] == got[100_000]["confusion_matrix"]
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert got[7][metric] == pytest.approx(got[100_000][metric], rel=1e-6), metric
    proba = pd.read_csv(io.StringIO(invoke("predict", files["model"], path, "--proba").stdout))
    y = (pd.read_csv(path)["churned"] == "yes").to_numpy()
    p_yes = proba["proba_yes"].to_numpy()
    assert got[7]["n"] == len(y) == 12_000
    assert got[7]["accuracy"] == pytest.approx(skm.accuracy_score(y, proba["prediction"] == "yes"), abs=1e-12)
    assert got[7]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p_yes), rel=1e-9)
    assert got[7]["log_loss"] == pytest.approx(skm.log_loss(y, p_yes), rel=1e-8)  # (10 digits written)
    assert got[7]["confusion_matrix"] == skm.confusion_matrix(y, proba["prediction"] == "yes").tolist()


@pytest.mark.parametrize("sample", ["fruit.csv", "house_prices.csv"])
def test_eval_in_chunks_of_a_multiclass_and_a_regression_model_agrees_with_its_predictions(sample, tmp_path):
    """As the churn test above, for the other tasks: multiclass and regression metrics from
    chunks of 7 rows are scikit-learn's on what predict writes for the same file."""
    from sklearn import metrics as skm

    model = tmp_path / "m.npz"
    assert invoke("train", SAMPLES / sample, "--epochs", 3, "--seed", 1, "-o", model, "--quiet").exit_code == 0
    got = json.loads(invoke("eval", model, SAMPLES / sample, "--json", "--chunk-rows", 7).stdout)
    predicted = pd.read_csv(io.StringIO(invoke("predict", model, SAMPLES / sample, "--proba").stdout))
    y = pd.read_csv(SAMPLES / sample).iloc[:, -1]
    assert got["n"] == len(y) == len(predicted)
    if got["task"] == "regression":  # (predict writes 10 significant digits)
        assert got["mse"] == pytest.approx(skm.mean_squared_error(y, predicted["prediction"]), rel=1e-6)
        assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted["prediction"]), rel=1e-6)
        assert got["r2"] == pytest.approx(skm.r2_score(y, predicted["prediction"]), rel=1e-6)
    else:
        assert got["task"] == "multiclass"
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted["prediction"]), abs=1e-12)
        assert got["macro_f1"] == pytest.approx(skm.f1_score(y, predicted["prediction"], average="macro"), rel=1e-9)
        proba = predicted[[f"proba_{label}" for label in got["labels"]]].to_numpy()
        # float32 rounding, as in the test above: predict computes these rows in one chunk, eval in
        # chunks of 7, and a row's output can change in the last bit with the rows BLAS computes alongside
        assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=got["labels"]), rel=1e-6)


def test_eval_names_the_line_of_a_bad_target_in_a_later_chunk(files, tmp_path):
    path = churn_with(tmp_path / "bad_target.csv", 250, "churned", "maybe")
    result = invoke("eval", files["model"], path, "--chunk-rows", 100)
    assert result.exit_code == DATA
    assert "line 252: target 'maybe' is not one of" in one_line_error(result.stderr)
    assert result.stdout == ""


def test_predict_output_file_has_the_usual_permissions(files, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    assert invoke("predict", files["model"], CHURN, "-o", tmp_path / "p.csv").exit_code == 0
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_predict_refuses_to_overwrite_its_input(files, tmp_path):
    copy = tmp_path / "copy.csv"
    shutil.copy(CHURN, copy)
    result = invoke("predict", files["model"], copy, "-o", copy)
    assert result.exit_code == OUTPUT
    assert copy.read_bytes() == CHURN.read_bytes()


def test_predict_into_a_closed_pipe_exits_quietly(files, tmp_path):
    big = tmp_path / "big.csv"
    data = pd.read_csv(CHURN, dtype=str, keep_default_na=False)
    pd.concat([data] * 40).to_csv(big, index=False)  # 24000 rows, about 1 MB of output with --proba
    proc = subprocess.run(
        f"set -o pipefail; nncli predict {files['model']} {big} --proba --chunk-rows 1000 | head -1",
        shell=True, executable=shutil.which("bash"), capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.stdout == "prediction,proba_no,proba_yes\n"
    assert proc.stderr == ""
    assert proc.returncode == 0  # with pipefail: nncli's own exit status too


# After a 4 MiB block is freed, is a 2 MiB array mapped from the system (mallinfo2's hblkhd grows)
# rather than carved from the heap? Prints True or False; argv[1] == "1" applies the CLI's policy.
_FRESH_PAGES = """
import ctypes, sys
import numpy as np
from nncli import cli
libc = ctypes.CDLL(None)
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
if sys.argv[1] == "1":
    cli._return_freed_blocks()
block = np.ones(1 << 22, np.uint8)
del block
before = libc.mallinfo2().hblkhd
array = np.ones(1 << 21, np.uint8)
print(libc.mallinfo2().hblkhd - before >= 1 << 21)
"""


def test_commands_that_hold_a_training_array_give_freed_blocks_back(monkeypatch, files, tmp_path):
    """train and inspect-grads set glibc's mmap threshold (the scaling bench's peak memory):
    a freed block no longer raises it, so the next large allocation is mapped, not kept in a heap."""
    import ctypes

    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    seen = [subprocess.run([sys.executable, "-c", _FRESH_PAGES, flag], capture_output=True, text=True, env=ENV,
                           check=True).stdout.strip() for flag in ("0", "1")]
    assert seen == ["False", "True"]
    calls = []
    monkeypatch.setattr("nncli.cli._return_freed_blocks", lambda: calls.append(1))
    assert invoke("train", CHURN, "--epochs", 1, "-o", tmp_path / "m.npz", "--quiet").exit_code == 0
    assert invoke("inspect-grads", CHURN, "--epochs", 1, "--json").exit_code == 0
    assert invoke("predict", files["model"], CHURN, "-o", tmp_path / "p.csv").exit_code == 0
    assert len(calls) == 2  # not predict, which streams


def test_warmup_compiles_the_kernels_for_both_dtypes_and_names_the_cache():
    from nncli.kernels import CACHE_DIR

    result = invoke("warmup", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["cache_dir"] == str(CACHE_DIR) and info["dtypes"] == ["float32", "float64"]


WARMED = """
import json
from nncli.train import warmup
from nncli.kernels import csvparse, losses, mlp
warmup(("float32",))
print(json.dumps({k.py_func.__name__: [[str(t) for t in key[0]] for key in k._cache._cache_file._load_index()]
                  for k in (mlp.train_epoch, mlp.train_epoch_split, mlp.predict_logits, losses.loss_and_delta,
                            csvparse.parse_numbers)}))
"""


def test_warmup_fills_an_empty_cache_with_every_variant(tmp_path):
    """What warmup leaves in a new cache folder (numba's index of each kernel on disk), so that
    kernels compiled by other tests in this process cannot stand in for it."""
    env = dict(os.environ, NNCLI_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", WARMED], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads(done.stdout)
    for name in ("train_epoch", "predict_logits", "loss_and_delta"):  # plain (none) and full (bool) variants
        assert {sig[-1] for sig in saved[name]} == {"none", "bool"}, (name, saved[name])
    assert [sig[4] for sig in saved["train_epoch_split"]] == ["array(float32, 1d, C)"]  # theta: large steps in halves
    assert saved["parse_numbers"] == [["array(uint8, 1d, C)", "array(float64, 2d, C)", "int64",
                                       "array(uint8, 2d, C)", "array(int64, 1d, C)"]]  # as nncli.data passes blocks


def test_an_infinite_target_is_one_line_without_numpy_warnings(tmp_path):
    """inf in the target: the one-line error, and no RuntimeWarning from numpy on the way (it
    printed two lines of warning before the error)."""
    import warnings

    path = tmp_path / "inf.csv"
    path.write_text("a,y\n1,inf\n2,1\n3,2\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = invoke("train", path, "--quiet", "--out", tmp_path / "m.npz")
    assert result.exit_code == 4, result.stderr
    assert "line 2: target 'y' is not a finite number" in one_line_error(result.stderr)
