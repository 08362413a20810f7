"""inspect-grads: recorded statistics against PyTorch and finite differences, and the verdicts
on networks built to show each problem, through the CLI as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncli import config
from nncli.gradients import Thresholds, analyse
from nncli.kernels import record
from nncli.network import LayerSpec, Network
from nncli.train import Arrays, fit

REF = np.load(Path(__file__).parent / "reference" / "torch_reference.npz", allow_pickle=False)


def reference_net(prefix, hidden):
    layers = [LayerSpec(7, hidden, (0.0, 0.0), "glorot_normal"), LayerSpec(6, hidden, (0.0, 0.0), "glorot_normal"),
              LayerSpec(REF[prefix + "W2"].shape[1], "linear", (0.0, 0.0), "glorot_normal")]
    net = Network(5, layers, dtype=np.float64)
    for l in range(3):
        net.params()[f"layers.{l}.W"][:] = REF[prefix + f"W{l}"]
        net.params()[f"layers.{l}.b"][:] = REF[prefix + f"b{l}"]
    return net


def record_one_step(net, X, Y, loss, task):
    cfg = config.load(None, [f"train.batch_size={len(X)}", "train.epochs=1", "train.shuffle=false",
                             "train.optimizer={name: sgd, lr: 0.0}", f"train.loss={loss}", "train.dtype=float64"])
    result = fit(net, Arrays(X, Y, np.ones(len(X))), None, cfg["train"], task, every=1)
    assert len(result.records) == 1
    return result.records[0]


@pytest.mark.parametrize("hidden", ["tanh", "relu", "sigmoid"])
def test_recorded_gradient_norms_equal_pytorchs(hidden):
    p = f"loss.bce.{hidden}."
    rec = record_one_step(reference_net(p, hidden), REF[p + "X"], REF[p + "Y"], "bce", "binary")
    for l in range(3):
        o = record.N_COMMON + record.N_LAYER * l
        assert rec[o + record.GRAD_W_NORM] == pytest.approx(np.linalg.norm(REF[p + f"dW{l}"]), rel=1e-12)
        assert rec[o + record.GRAD_W_MAX] == pytest.approx(np.abs(REF[p + f"dW{l}"]).max(), rel=1e-12)
        assert rec[o + record.GRAD_B_NORM] == pytest.approx(np.linalg.norm(REF[p + f"db{l}"]), rel=1e-12)
        assert rec[o + record.W_NORM] == pytest.approx(np.linalg.norm(REF[p + f"W{l}"]), rel=1e-12)
    all_grads = np.concatenate([REF[p + f"d{k}{l}"].ravel() for l in range(3) for k in "Wb"])
    assert rec[record.GRAD_NORM] == pytest.approx(np.linalg.norm(all_grads), rel=1e-12)
    assert rec[record.LOSS] == pytest.approx(REF[p + "loss"][0], rel=1e-12)


def test_recorded_norms_equal_finite_difference_gradients():
    rng = np.random.default_rng(4)
    net = Network(3, [LayerSpec(4, "softplus", (1.0, 20.0), "glorot_normal"),
                      LayerSpec(2, "linear", (0.0, 0.0), "glorot_normal")], dtype=np.float64)
    net.initialize(rng)
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    theta0 = net.theta.copy()
    rec = record_one_step(net, X, Y, "mse", "regression")

    def loss(theta):
        W0, b0 = theta[:12].reshape(3, 4), theta[12:16]
        W1, b1 = theta[16:24].reshape(4, 2), theta[24:26]
        return np.mean((np.logaddexp(0, X @ W0 + b0) @ W1 + b1 - Y) ** 2)

    fd = np.array([(loss(theta0 + h) - loss(theta0 - h)) / 2e-6 for h in np.eye(theta0.size) * 1e-6])
    assert rec[record.N_COMMON + record.GRAD_W_NORM] == pytest.approx(np.linalg.norm(fd[:12]), rel=1e-7)
    assert rec[record.N_COMMON + record.N_LAYER + record.GRAD_W_NORM] == pytest.approx(
        np.linalg.norm(fd[16:24]), rel=1e-7)


def test_dead_and_saturated_shares_are_counted_per_unit_and_entry():
    net = Network(2, [LayerSpec(4, "relu", (0.0, 0.0), "glorot_normal"),
                      LayerSpec(3, "sigmoid", (0.0, 0.0), "glorot_normal"),
                      LayerSpec(1, "linear", (0.0, 0.0), "glorot_normal")], dtype=np.float64)
    v = net.params()
    v["layers.0.W"][:] = [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    v["layers.0.b"][:] = [0.0, 0.0, 0.0, -1.0]  # unit 3 is 0 for every row: dead
    v["layers.1.W"][:] = 0.0
    v["layers.1.b"][:] = [20.0, 0.0, -20.0]  # units 0 and 2 sit far on sigmoid's tails
    X = np.array([[1.0, 1.0], [2.0, -1.0], [-1.0, 3.0]])
    rec = record_one_step(net, X, np.ones((3, 1)), "mse", "regression")
    assert rec[record.N_COMMON + record.DEAD] == 0.25  # units 0-2 are alive on some row
    assert rec[record.N_COMMON + record.N_LAYER + record.SATURATED] == pytest.approx(2 / 3)


# ---- verdicts through the CLI --------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grads")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 6))
    y_cls = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    y_reg = 3 * X[:, 0] + X[:, 1] ** 2 + rng.normal(size=1000)
    header = "a,b,c,d,e,f,y"
    np.savetxt(folder / "cls.csv", np.column_stack([X, y_cls]), delimiter=",", fmt="%.5f", header=header,
               comments="")
    np.savetxt(folder / "reg.csv", np.column_stack([X, y_reg]), delimiter=",", fmt="%.5f", header=header,
               comments="")
    return folder


def hidden(n, activation):
    return "model.hidden=[" + ", ".join([f"{{units: 16, activation: {activation}}}"] * n) + "]"


def inspect_cli(data_file, *overrides, fail_on="vanishing,exploding,nan,dead"):
    cmd = [sys.executable, "-m", "nncli", "inspect-grads", str(data_file), "--json", "--fail-on", fail_on]
    for o in overrides:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return proc, json.loads(proc.stdout) if proc.stdout else None


def kinds(report):
    return {v["kind"] for v in report["verdicts"]}


def test_deep_sigmoid_net_is_called_vanishing(data):
    proc, report = inspect_cli(data / "cls.csv", hidden(10, "sigmoid"), "train.epochs=10")
    assert kinds(report) == {"vanishing"}
    assert report["layers"][0]["ratio_to_output"] < 1e-3
    assert proc.returncode == 8 and "vanishing" in proc.stderr


def test_the_same_net_with_relu_and_he_init_is_healthy(data):
    proc, report = inspect_cli(data / "cls.csv", hidden(10, "relu"), "model.init=he_uniform", "train.epochs=10")
    assert kinds(report) == {"healthy"}
    assert proc.returncode == 0


EXPLODING = ["model.hidden=[{units: 32, activation: relu}, {units: 32, activation: relu}, "
             "{units: 32, activation: relu}]", "train.optimizer={name: sgd, lr: 0.01}", "model.init_gain=2.5",
             "train.epochs=5"]


def test_large_weights_and_a_high_learning_rate_explode_and_reach_nan(data):
    proc, report = inspect_cli(data / "reg.csv", *EXPLODING)
    assert {"exploding", "nan"} <= kinds(report)
    nan = next(v for v in report["verdicts"] if v["kind"] == "nan")
    assert nan["step"] == report["diverged"]["global_step"] and "step" in nan["message"]
    assert proc.returncode == 8


def test_gradient_clipping_tames_the_same_run(data):
    proc, report = inspect_cli(data / "reg.csv", *EXPLODING, "train.clip_norm=1.0")
    assert kinds(report) == {"healthy"}


def test_relu_net_pushed_into_dead_units_is_called_dead(data):
    proc, report = inspect_cli(data / "cls.csv", hidden(2, "relu"), "train.optimizer={name: adam, lr: 0.5}",
                               "train.epochs=30")
    assert "dead" in kinds(report)
    dead = [v for v in report["verdicts"] if v["kind"] == "dead"]
    assert all(v["share"] >= 0.5 for v in dead)


def test_fail_on_only_fails_on_the_named_problems(data):
    proc, report = inspect_cli(data / "cls.csv", hidden(10, "sigmoid"), "train.epochs=3", fail_on="dead")
    assert "vanishing" in kinds(report) and proc.returncode == 0


def test_thresholds_change_the_verdict():
    records = np.zeros((3, record.n_fields(2)))
    records[:, record.GRAD_NORM] = [1.0, 2.0, 3.0]
    records[:, record.N_COMMON + record.GRAD_W_NORM] = 1e-4
    records[:, record.N_COMMON + record.N_LAYER + record.GRAD_W_NORM] = 1.0
    net = Network(2, [LayerSpec(3, "tanh", (0.0, 0.0), "glorot_normal"),
                      LayerSpec(1, "linear", (0.0, 0.0), "glorot_normal")])
    assert {v["kind"] for v in analyse(records, net, Thresholds(), None).verdicts} == {"vanishing"}
    assert {v["kind"] for v in analyse(records, net, Thresholds(vanishing=1e-5), None).verdicts} == {"healthy"}
    assert {v["kind"] for v in analyse(records, net, Thresholds(vanishing=1e-5, exploding=2.5), None).verdicts} == {
        "exploding"}
