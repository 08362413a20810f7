"""inspect-grads: record gradient statistics while training, and say what they mean.

The lecture's signs of trouble, turned into verdicts with numbers and the lecture's remedies:
- vanishing: the first hidden layer's gradient is a tiny fraction of the last layer's
  (saturating sigmoid/tanh stacks: sigmoid' <= 0.25, ~0 on its tails);
- exploding: the global gradient norm grows by orders of magnitude (and weights with it);
- nan: the loss or a gradient became NaN or infinite (the step is named);
- dead: most relu units of a layer output 0 for every row of a batch, so they get no gradient.
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from nncli.kernels import record
from nncli.kernels.activations import ACTIVATIONS
from nncli.train import TrainResult, fit, train

VERDICTS = ("vanishing", "exploding", "nan", "dead")


@dataclass
class Thresholds:
    vanishing: float = 1e-3  # first hidden layer's median gradient norm / the output layer's, below this
    exploding: float = 1e3  # max global gradient norm / its first recorded value, above this
    dead: float = 0.5  # share of dead units in a relu-family layer over the last tenth of the run
    saturated: float = 0.5  # share of saturated entries worth naming in a vanishing verdict


@dataclass
class GradReport:
    columns: list  # names of the record fields: epoch, step, ..., layers.<l>.<field>
    records: np.ndarray  # (n_records, len(columns))
    layers: list  # one summary dict per layer
    verdicts: list  # dicts: kind, layer (or None), message
    diverged: dict | None
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def problems(self) -> set:
        return {v["kind"] for v in self.verdicts} - {"healthy"}

    def to_dict(self) -> dict:
        return {"columns": self.columns, "records": self.records.tolist(), "layers": self.layers,
                "verdicts": self.verdicts, "diverged": self.diverged, "thresholds": asdict(self.thresholds)}


def columns(n_layers: int) -> list[str]:
    return list(record.COMMON) + [f"layers.{l}.{f}" for l in range(n_layers) for f in record.LAYER_FIELDS]


def inspect(data_path, config: dict, *, every: int = 0, thresholds: Thresholds | None = None, model=None,
            callback=None) -> tuple[GradReport, TrainResult | None]:
    """Train as `nncli train` would, recording every `every` steps (0: about 400 records over the run).

    With `model`, do not train: one pass over the data with the model's weights and a zero
    learning rate, recording every batch.
    """
    thresholds = thresholds or Thresholds()
    if model is not None:
        return _inspect_model(model, data_path, config, thresholds), None
    result = train(data_path, config, callback=callback, every=every or -1, stop_on_divergence=True)
    report = analyse(result.fit.records, result.model.network, thresholds, result.fit.diverged)
    return report, result


def _inspect_model(model, data_path, config: dict, thresholds: Thresholds) -> GradReport:
    from nncli.predict import read_for_model
    from nncli.train import Arrays

    table = model.prep.match_columns(read_for_model(model, data_path))
    dtype = model.network.dtype
    arrays = Arrays(model.prep.transform(table, dtype), model.prep.encode_target(table, dtype),
                    np.ones(len(table.frame), dtype=dtype))
    train_cfg = dict(config["train"], epochs=1, shuffle=False, early_stopping=dict(config["train"]["early_stopping"],
                                                                                   enabled=False))
    train_cfg["optimizer"] = {"name": "sgd", "lr": 0.0, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                              "weight_decay": 0.0}
    network = model.network  # a zero learning rate leaves the weights as they are
    result = fit(network, arrays, None, train_cfg, model.prep.task, every=1, stop_on_divergence=True)
    return analyse(result.records, network, thresholds, result.diverged)


def _layer_series(records: np.ndarray, n_layers: int, name: str) -> np.ndarray:
    """(n_records, n_layers) values of one per-layer field."""
    j = record.LAYER_FIELDS.index(name)
    idx = [record.N_COMMON + record.N_LAYER * l + j for l in range(n_layers)]
    return records[:, idx]


def _tail(values: np.ndarray) -> np.ndarray:
    """The last tenth of a run's records (at least one)."""
    return values[-max(1, len(values) // 10):]


def analyse(records: np.ndarray, network, thresholds: Thresholds, diverged: dict | None) -> GradReport:
    L = len(network.layers)
    cols = columns(L)
    layers, verdicts = [], []
    if len(records) == 0:
        return GradReport(cols, records, layers, [{"kind": "healthy", "layer": None,
                                                   "message": "no steps were recorded"}], diverged, thresholds)
    g = _layer_series(records, L, "grad_W_norm")
    finite = np.where(np.isfinite(g), g, np.nan)
    med = np.nanmedian(finite, axis=0)
    dead = np.nanmedian(_tail(_layer_series(records, L, "dead")), axis=0)
    sat = np.nanmedian(_tail(_layer_series(records, L, "saturated")), axis=0)
    upd = np.nanmedian(_layer_series(records, L, "update_ratio"), axis=0)
    for l, spec in enumerate(network.layers):
        layers.append({
            "layer": l, "activation": spec.activation if l < L - 1 else "output",
            "first": float(g[0, l]), "last": float(g[-1, l]), "min": float(np.nanmin(finite[:, l])),
            "median": float(med[l]), "max": float(np.nanmax(finite[:, l])),
            "ratio_to_output": float(med[l] / med[-1]) if med[-1] > 0 else float("nan"),
            "dead": float(dead[l]), "saturated": float(sat[l]), "update_ratio": float(upd[l]),
            "log10_norms": np.log10(np.maximum(g[:, l], 1e-300)).tolist(),
        })
    verdicts += _nan_verdict(records, diverged)
    verdicts += _vanishing_verdict(layers, network, thresholds)
    verdicts += _exploding_verdict(records, L, thresholds)
    verdicts += _dead_verdict(layers, network, thresholds)
    if not verdicts:
        ratio = layers[0]["ratio_to_output"]
        verdicts.append({"kind": "healthy", "layer": None, "message": (
            f"healthy: the first layer gets {ratio:.2g} of the output layer's gradient, the global gradient "
            f"norm stays between {np.nanmin(records[:, record.GRAD_NORM]):.2g} and "
            f"{np.nanmax(records[:, record.GRAD_NORM]):.2g}, no layer has dead or saturated units to speak of")})
    return GradReport(cols, records, layers, verdicts, diverged, thresholds)


def _nan_verdict(records, diverged):
    bad = (records[:, record.NONFINITE_GRAD] > 0) | (records[:, record.NONFINITE_WEIGHT] > 0) | \
        ~np.isfinite(records[:, record.LOSS])
    if diverged is None and not bad.any():
        return []
    if diverged is not None:
        where = f"epoch {diverged['epoch']}, step {diverged['step']} (step {diverged['global_step']} overall)"
        what = diverged["what"]
    else:
        first = records[np.argmax(bad)]
        where = f"epoch {int(first[record.EPOCH])}, step {int(first[record.STEP])} overall"
        what = "gradient"
    return [{"kind": "nan", "layer": None, "step": diverged["global_step"] if diverged else int(first[record.STEP]),
             "message": f"NaN/Inf: the {what} became non-finite at {where}; training stopped there. Lower the "
                        f"learning rate, clip gradients (train.clip_norm), or use batch norm"}]


def _vanishing_verdict(layers, network, thresholds):
    if len(layers) < 2:
        return []
    ratio = layers[0]["ratio_to_output"]
    if not ratio < thresholds.vanishing:
        return []
    worst = max(range(len(layers) - 1), key=lambda l: layers[l]["saturated"])
    act = network.layers[0].activation
    saturated = ""
    if layers[worst]["saturated"] >= thresholds.saturated:
        saturated = (f"; layer {worst}'s {network.layers[worst].activation} units are "
                     f"{layers[worst]['saturated']:.0%} saturated")
    hint = ("Try relu or leaky_relu with He initialization, batch norm, or fewer layers"
            if ACTIVATIONS[act].family == "saturating" else "Try batch norm, He initialization, or fewer layers")
    return [{"kind": "vanishing", "layer": 0, "ratio": ratio, "message": (
        f"vanishing gradients: layer 0 gets {ratio:.1e} of the output layer's (layer {len(layers) - 1}) "
        f"gradient{saturated}. {hint}")}]


def _exploding_verdict(records, L, thresholds):
    norms = records[:, record.GRAD_NORM]
    finite = norms[np.isfinite(norms)]
    if len(finite) < 2 or finite[0] <= 0:
        return []
    growth = float(finite.max() / finite[0])
    if not growth > thresholds.exploding:
        return []
    w = _layer_series(records, L, "W_norm")
    start = w[0] > 0
    w_growth = float(np.max(w[-1][start] / w[0][start])) if start.any() else float("nan")
    return [{"kind": "exploding", "layer": None, "growth": growth, "message": (
        f"exploding gradients: the global gradient norm grew {growth:.1e}-fold (from {finite[0]:.2g} to "
        f"{finite.max():.2g}) and the largest layer's weights {w_growth:.2g}-fold. Lower the learning rate, clip "
        f"gradients (train.clip_norm), use batch norm, or start from smaller weights")}]


def _dead_verdict(layers, network, thresholds):
    out = []
    for l, spec in enumerate(network.layers[:-1]):
        share = layers[l]["dead"]
        if ACTIVATIONS[spec.activation].family == "relu" and share >= thresholds.dead:
            out.append({"kind": "dead", "layer": l, "share": share, "message": (
                f"dead units: {share:.0%} of layer {l}'s {spec.activation} units output 0 for every row of a batch "
                f"and get no gradient. Try leaky_relu or prelu, a lower learning rate, or He initialization")})
    return out


def records_csv(report: GradReport) -> str:
    lines = [",".join(report.columns)]
    for row in report.records:
        lines.append(",".join(f"{v:.10g}" for v in row))
    return "\n".join(lines) + "\n"
