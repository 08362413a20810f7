"""Config reading: schema-typed values, defaults, overrides, and errors that name key and line."""

import pytest

from nncli import config
from nncli.errors import ConfigError
from nncli.kernels.activations import ACTIVATIONS
from nncli.kernels.optim import OPTIMIZERS
from nncli.schema import SCHEMA


def load_text(tmp_path, text, overrides=()):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return config.load(path, list(overrides))


def error_of(tmp_path, text, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, overrides)
    return info.value.message


def test_defaults_fill_every_key():
    cfg = config.load(None)
    assert set(cfg) == set(SCHEMA)
    assert cfg["train"]["optimizer"] == {"name": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                         "eps": 1e-8, "weight_decay": 0.0}
    assert [layer["units"] for layer in cfg["model"]["hidden"]] == [32, 16]
    assert cfg["data"]["target"] == -1


def test_values_are_typed_by_the_schema_not_by_yaml_1_1(tmp_path):
    cfg = load_text(tmp_path, "train:\n  optimizer: {name: sgd, lr: 1e-3}\ndata:\n  target: no\n")
    assert cfg["train"]["optimizer"]["lr"] == 0.001  # PyYAML alone reads 1e-3 as a string
    assert cfg["data"]["target"] == "no"  # and `no` as False


def test_shorthand_and_parameters(tmp_path):
    cfg = load_text(tmp_path, "model:\n  hidden:\n    - {units: 4, activation: elu}\n"
                              "    - {units: 3, activation: {name: leaky_relu, slope: 0.1}}\n")
    assert cfg["model"]["hidden"][0]["activation"] == {"name": "elu", "alpha": 1.0}
    assert cfg["model"]["hidden"][1]["activation"] == {"name": "leaky_relu", "slope": 0.1}


@pytest.mark.parametrize("text,expected", [
    ("train:\n  epoch: 3\n", "c.yaml:2: train.epoch: unknown key 'epoch'; did you mean 'epochs'?"),
    ("train:\n  epochs: 3\n  epochs: 4\n", "c.yaml:3: duplicate key 'epochs' (first at line 2)"),
    ("train:\n  epochs: many\n", "c.yaml:2: train.epochs: expected a whole number, got 'many'"),
    ("train:\n  epochs: 0\n", "c.yaml:2: train.epochs: 0 is out of range (must be >= 1)"),
    ("train:\n  val_split: 1.0\n", "train.val_split: 1.0 is out of range (must be >= 0.0 and < 1.0)"),
    ("train:\n  optimizer: {name: adamm}\n", "unknown optimizer 'adamm'; did you mean 'adam'?"),
    ("train:\n  optimizer: {name: sgd, beta1: 0.9}\n", "optimizer 'sgd' has no parameter 'beta1'"),
    ("train:\n  optimizer: {name: adam, lr: '0.01'}\n", "train.optimizer.lr: expected a number, got '0.01'"),
    ("model:\n  hidden:\n    - {units: 4, activation: step}\n", "'step' cannot be used in a trainable layer"),
    ("model:\n  hidden:\n    - {activation: relu}\n", "model.hidden[0].units: missing required key 'units'"),
    ("model:\n  hidden:\n    - {units: 4, activation: rleu}\n", "did you mean 'relu'?"),
    ("data: !!python/object:os.system ls\n", "c.yaml:1: the tag 'tag:yaml.org,2002:python/object:os.system'"),
    ("train: [1, 2]\n", "c.yaml:1: train: expected a mapping of keys"),
    ("data:\n  header: maybe\n", "data.header: 'maybe' is not one of auto, true, false"),
    ("train:\n  epochs: 3\n---\ntrain: {}\n", "only one YAML document is allowed"),
    ("train:\n  epochs: [3\n", "c.yaml:3: invalid YAML: expected ','"),
])
def test_errors_name_the_key_and_line(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_empty_config_is_an_error(tmp_path):
    assert "the config is empty" in error_of(tmp_path, "# nothing\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "absent.yaml")


def test_overrides_win_and_are_validated(tmp_path):
    text = "train:\n  optimizer: adam\n  epochs: 5\n"
    cfg = load_text(tmp_path, text, ["train.optimizer.lr=0.01", "train.epochs=7",
                                     "model.hidden=[{units: 3, activation: tanh}]"])
    assert cfg["train"]["optimizer"]["lr"] == 0.01 and cfg["train"]["optimizer"]["name"] == "adam"
    assert cfg["train"]["epochs"] == 7
    assert cfg["model"]["hidden"] == [{"units": 3, "activation": {"name": "tanh"}, "init": None, "dropout": 0.0,
                                       "batch_norm": "none", "bn_momentum": 0.1, "bn_eps": 1e-5}]
    assert "train.epochs: expected a whole number" in error_of(tmp_path, text, ["train.epochs=x"])
    assert "expected key.path=value" in error_of(tmp_path, text, ["train.epochs"])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_registered_activation_is_accepted_or_refused_with_a_reason(tmp_path, name):
    text = f"model:\n  hidden:\n    - {{units: 2, activation: {name}}}\n"
    if ACTIVATIONS[name].trainable:
        assert load_text(tmp_path, text)["model"]["hidden"][0]["activation"]["name"] == name
    else:
        assert "backpropagation cannot train it" in error_of(tmp_path, text)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_registered_optimizer_is_accepted_with_its_defaults(tmp_path, name):
    cfg = load_text(tmp_path, f"train:\n  optimizer: {name}\n")
    assert cfg["train"]["optimizer"] == {"name": name, **{k: v[1] for k, v in OPTIMIZERS[name].params.items()}}


def _keys(schema, prefix=""):
    for key, spec in schema.items():
        yield prefix + key
        if isinstance(spec, dict):
            yield from _keys(spec, f"{prefix}{key}.")


def test_every_schema_key_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    missing = [k for k in _keys(SCHEMA) if '.' in k and f"`{k.split('.', 1)[1]}`" not in doc]
    assert not missing, f"undocumented config keys: {missing}"
