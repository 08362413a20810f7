"""Model files: round trip, byte-identical for the same seed, and refusal of damaged or foreign files."""

import io
import json
import zipfile

import numpy as np
import pytest

from nncli import config, model
from nncli.errors import ModelFileError
from nncli.predict import binary_labels, probabilities, sigmoid
from nncli.train import logits, train


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 120
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    y = np.where(x1 + x2 + (color == "red") > 0.5, "yes", "no")
    path = tmp_path_factory.mktemp("data") / "small.csv"
    lines = ["x1,x2,color,label"] + [f"{a:.4f},{b:.4f},{c},{d}" for a, b, c, d in zip(x1, x2, color, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def fit_small(path, seed=0):
    cfg = config.load(None, [f"train.seed={seed}", "train.epochs=5", "train.val_split=0.25",
                             "model.hidden=[{units: 6, activation: tanh}]"])
    return train(path, cfg)


def test_round_trip_keeps_weights_preprocessing_and_history(small_csv, tmp_path):
    result = fit_small(small_csv)
    path = tmp_path / "m.npz"
    model.save(result.model, path)
    loaded = model.load(path)
    np.testing.assert_array_equal(loaded.network.theta, result.model.network.theta)
    assert loaded.prep.to_dict() == result.model.prep.to_dict()
    assert loaded.history == result.model.history and len(loaded.history["val_loss"]) == 5
    assert loaded.config == result.model.config
    X = np.random.default_rng(1).normal(size=(4, loaded.network.n_inputs))
    np.testing.assert_array_equal(probabilities(loaded, X), probabilities(result.model, X))
    # the file is a plain npz: numpy reads every member without pickle
    with np.load(path, allow_pickle=False) as z:
        assert "layers.0.W" in z.files and z["layers.0.W"].shape == (loaded.network.n_inputs, 6)


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(small_csv, tmp_path):
    paths = []
    for i, seed in enumerate([3, 3, 4]):
        paths.append(tmp_path / f"m{i}.npz")
        model.save(fit_small(small_csv, seed).model, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


@pytest.fixture(scope="module")
def saved(small_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "good.npz"
    model.save(fit_small(small_csv).model, path)
    return path


def _rewrite(src, dst, change, resign=False):
    """Copy a model file with change(members) applied; resign recomputes the checksum, as a
    forger who knows the format would."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    change(members)
    if resign:
        del members["meta.sha256.npy"]
        members["meta.sha256.npy"] = _array_bytes(np.array(model._digest(members)))
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _array_bytes(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_a_changed_weight_fails_the_checksum(saved, tmp_path):
    def change(m):
        W = np.lib.format.read_array(io.BytesIO(m["layers.0.W.npy"]))
        W[0, 0] += 1.0
        m["layers.0.W.npy"] = _array_bytes(W)
    _rewrite(saved, tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        model.load(tmp_path / "bad.npz")


def test_truncated_foreign_and_pickled_files_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not an nncli model file"):
        model.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="no meta.json"):
        model.load(tmp_path / "foreign.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="not an nncli model file"):
        model.load(tmp_path / "text.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        model.load(tmp_path / "absent.npz")


def test_pickled_member_is_never_unpickled(saved, tmp_path):
    def change(m):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
        m["layers.0.W.npy"] = buf.getvalue()
    _rewrite(saved, tmp_path / "pickled.npz", change, resign=True)
    with pytest.raises(ModelFileError, match="layers.0.W is not a valid array"):
        model.load(tmp_path / "pickled.npz")


def test_newer_format_version_says_so(saved, tmp_path):
    def change(m):
        meta = json.loads(str(np.lib.format.read_array(io.BytesIO(m["meta.json.npy"]))))
        meta["format_version"] = model.FORMAT_VERSION + 1
        m["meta.json.npy"] = _array_bytes(np.array(json.dumps(meta)))
    _rewrite(saved, tmp_path / "newer.npz", change, resign=True)
    with pytest.raises(ModelFileError, match="newer than this nncli reads"):
        model.load(tmp_path / "newer.npz")


def test_save_is_atomic_and_leaves_no_temporary_files(saved, tmp_path):
    target = tmp_path / "m.npz"
    target.write_bytes(b"old model")
    good = model.load(saved)

    class Boom(Exception):
        pass

    def fail(_f):
        raise Boom()
    with pytest.raises(Boom):
        model.atomic_write(target, fail)
    assert target.read_bytes() == b"old model"
    model.save(good, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    np.testing.assert_array_equal(logits(model.load(target).network, np.zeros((1, good.network.n_inputs))),
                                  logits(good.network, np.zeros((1, good.network.n_inputs))))


def test_a_file_from_before_derived_features_still_loads(saved, tmp_path):
    """Files written before data.derive have no derive, derived, zero_missing or ranges keys."""
    def change(m):
        meta = json.loads(str(np.lib.format.read_array(io.BytesIO(m["meta.json.npy"]))))
        del meta["config"]["data"]["derive"]
        for key in ("zero_missing", "ranges"):
            del meta["preprocessing"][key]
        for f in meta["preprocessing"]["features"]:
            del f["derived"]
        m["meta.json.npy"] = _array_bytes(np.array(json.dumps(meta)))
        del m["meta.sha256.npy"]
        m["meta.sha256.npy"] = _array_bytes(np.array(model._digest(m)))
    _rewrite(saved, tmp_path / "old.npz", change)
    old, new = model.load(tmp_path / "old.npz"), model.load(saved)
    assert not any(f.derived for f in old.prep.features) and old.prep.ranges == {}
    assert old.prep.source_columns() == new.prep.source_columns()
    np.testing.assert_array_equal(old.network.theta, new.network.theta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_labels_are_the_labels_of_the_probabilities(dtype):
    """predict without --proba takes a binary model's label from the logit alone (binary_labels):
    the label the probabilities give (p1 > p0), also at the edge z = 2**-52, around zero, for NaN
    and for infinities."""
    rng = np.random.default_rng(0)
    edge = dtype(2.0**-52)
    around = [np.nextafter(edge, dtype(1)) * k for k in range(1, 40)] + [edge * k / 8 for k in range(-40, 40)]
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, edge, np.nextafter(edge, dtype(1)), np.nextafter(edge, dtype(0))]
    z = np.concatenate([np.array(special + around, dtype=dtype),
                        (rng.normal(size=20000) * 10.0 ** rng.integers(-20, 2, 20000)).astype(dtype)])
    p1 = sigmoid(z.astype(np.float64))
    expected = (p1 > 1.0 - p1).astype(np.intp)
    assert 0 < expected.sum() < len(z)
    np.testing.assert_array_equal(binary_labels(z), expected)
