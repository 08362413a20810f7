"""Every config key nncli understands: type, default, range and help, declared once.

Activation, loss and optimizer names and parameters come from the kernel registries, so a new
entry there is accepted here without an edit.
"""

from nncli.config import Ctx, Opt, read_list, read_named
from nncli.features import FORMS, canonical
from nncli.kernels.activations import ACTIVATIONS, ALIASES
from nncli.kernels.losses import LOSSES
from nncli.kernels.optim import OPTIMIZERS
from nncli.network import BN_POSITIONS, INITIALIZERS
from nncli.schedules import SCHEDULES

DEFAULT_MISSING = ["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "none"]

_read_activation = read_named(
    {name: act.params for name, act in ACTIVATIONS.items()}, "activation", "relu", ALIASES
)


def _activation(node, ctx: Ctx, path: str):
    spec = _read_activation(node, ctx, path)
    act = ACTIVATIONS[spec["name"]]
    line = getattr(node, "line", None)
    if not act.trainable:
        ctx.fail(path, line, f"'{act.name}' cannot be used in a trainable layer: {act.why_not}")
    if act.name == "maxout" and (spec["pieces"] < 2 or spec["pieces"] != int(spec["pieces"])):
        ctx.fail(f"{path}.pieces", line, f"maxout needs a whole number of pieces >= 2, got {spec['pieces']}")
    if act.name == "rrelu" and not 0 <= spec["lower"] <= spec["upper"]:
        ctx.fail(path, line, "rrelu needs 0 <= lower <= upper")
    return spec


DATA = {
    "target": Opt("column", -1, "target column: a name, or a 0-based index (-1 = last)"),
    "header": Opt("choice", "auto", "does the first row hold column names", choices=("auto", "true", "false")),
    "features": Opt("columns", None, "feature columns (default: all but the target and `ignore`)", nullable=True),
    "ignore": Opt("columns", [], "columns to leave out, such as ids"),
    "derive": Opt("strings", [], "derived numeric features added to the inputs: "
                  + ", ".join(f.syntax for f in FORMS.values()) + " of column names a, b", check=canonical),
    "categorical": Opt("columns", None, "categorical columns, one-hot encoded (default: the non-numeric ones)",
                       nullable=True),
    "task": Opt("choice", "auto", "binary, multiclass or regression (default: detected from the target)",
                choices=("auto", "binary", "multiclass", "regression")),
    "missing_values": Opt("strings", DEFAULT_MISSING, "strings that mean missing in numeric columns"),
    "zero_means_missing": Opt("columns", [], "numeric columns in which 0 stands for a missing value"),
    "impute": Opt("choice", "mean", "how missing numeric values are filled: mean, median, zero, or error",
                  choices=("mean", "median", "zero", "error")),
    "scaling": Opt("choice", "standard", "numeric feature scaling", choices=("standard", "minmax", "none")),
    "target_scaling": Opt("choice", "standard", "regression target scaling", choices=("standard", "none")),
    "unknown_categories": Opt("choice", "error", "a category unseen in training at predict time",
                              choices=("error", "ignore")),
    "delimiter": Opt("str", ",", "field separator"),
    "encoding": Opt("str", "utf-8", "text encoding of the CSV files"),
}

HIDDEN_LAYER = {
    "units": Opt("int", None, "units in the layer", lo=1),
    "activation": _activation,
    "init": Opt("choice", None, "weight initialization (default: model.init)", choices=("auto", *INITIALIZERS),
                nullable=True),
    "dropout": Opt("float", 0.0, "probability of zeroing each output of the layer while training",
                   lo=0.0, hi=1.0, hi_open=True),
    "batch_norm": Opt("choice", "none", "batch normalization before or after the activation",
                      choices=tuple(BN_POSITIONS)),
    "bn_momentum": Opt("float", 0.1, "weight of the newest batch in batch norm's running statistics",
                       lo=0.0, hi=1.0),
    "bn_eps": Opt("float", 1e-5, "added to the variance in batch norm", lo=0.0, lo_open=True),
}

MODEL = {
    "hidden": read_list(HIDDEN_LAYER, [{"units": 32, "activation": "relu"}, {"units": 16, "activation": "relu"}]),
    "init": Opt("choice", "auto", "weight initialization: auto = he_uniform for the relu family, "
                "glorot_uniform otherwise; torch = PyTorch's nn.Linear default", choices=("auto", *INITIALIZERS)),
    "input_dropout": Opt("float", 0.0, "dropout on the inputs while training (acts like feature selection)",
                         lo=0.0, hi=1.0, hi_open=True),
    "init_gain": Opt("float", 1.0, "multiplies every initial weight (large values show exploding gradients)",
                     lo=0.0, lo_open=True),
}

REGULARIZATION = {
    "l1": Opt("float", 0.0, "adds l1 * sum|W| to the loss (weights only, not biases)", lo=0.0),
    "l2": Opt("float", 0.0, "adds l2 * sum W^2 to the loss (weights only; see also optimizer weight_decay)",
              lo=0.0),
    "entropy": Opt("float", 0.0, "confidence penalty: the loss becomes L - entropy * H(p_hat); > 0 penalizes "
                   "over-confident outputs, < 0 rewards confidence (the lecture's L + lambda*H)"),
}

AUGMENT = {
    "noise": Opt("float", 0.0, "std of Gaussian noise added to the standardized inputs while training", lo=0.0),
    "mixup": Opt("float", 0.0, "mixup alpha for classification: mix rows and targets with lambda ~ "
                 "Beta(alpha, alpha) (0 = off)", lo=0.0),
}

EARLY_STOPPING = {
    "enabled": Opt("bool", False, "stop when the monitored metric stops improving"),
    "monitor": Opt("choice", "auto", "metric to watch, also by the plateau schedule (auto: val_loss with "
                   "validation data, else train_loss)",
                   choices=("auto", "train_loss", "val_loss", "val_accuracy", "val_rmse")),
    "patience": Opt("int", 10, "epochs without improvement before stopping", lo=1),
    "min_delta": Opt("float", 0.0, "smallest change that counts as an improvement", lo=0.0),
    "restore_best": Opt("bool", True, "put back the weights of the best epoch at the end"),
}

TRAIN = {
    "epochs": Opt("int", 100, "passes over the training data", lo=1),
    "batch_size": Opt("int", 32, "rows per gradient step", lo=1),
    "optimizer": read_named(
        {name: {k: v[1] for k, v in opt.params.items()} for name, opt in OPTIMIZERS.items()}, "optimizer", "adam"
    ),
    "loss": Opt("choice", "auto", "loss (auto: bce for binary, cross_entropy for multiclass, mse for regression)",
                choices=("auto", *LOSSES)),
    "huber_delta": Opt("float", 1.0, "Huber loss threshold", lo=0.0, lo_open=True),
    "seed": Opt("int", 0, "seed of every random draw (init, split, shuffling)", lo=0),
    "shuffle": Opt("bool", True, "shuffle rows every epoch"),
    "val_split": Opt("float", 0.0, "share of rows held out for validation (stratified for classes)",
                     lo=0.0, hi=1.0, hi_open=True),
    "val_file": Opt("str", None, "a separate validation CSV (instead of val_split)", nullable=True),
    "early_stopping": EARLY_STOPPING,
    "schedule": read_named(SCHEDULES, "schedule", "constant"),
    "regularization": REGULARIZATION,
    "augment": AUGMENT,
    "class_weight": Opt("any", "none", "none, balanced (n / (classes * count)), or a mapping label: weight"),
    "clip_norm": Opt("float", 0.0, "clip the global gradient norm to this (0 = off)", lo=0.0),
    "clip_value": Opt("float", 0.0, "clip every gradient element to +-this (0 = off)", lo=0.0),
    "dtype": Opt("choice", "float32", "floating-point precision of training", choices=("float32", "float64")),
}

SCHEMA = {"data": DATA, "model": MODEL, "train": TRAIN}
