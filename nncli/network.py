"""The network's parameters as one flat vector, and the layout the kernels read.

Layer l holds W (n_in, width) and b (width,), where width = units * pieces (pieces > 1 only for
maxout); with batch norm also gamma and beta (units,), and with prelu its learned slopes alpha
(1 or units). Z = A_prev @ W + b and A = f(Z). All of them live in one contiguous vector theta,
layer by layer, so that optimizers, gradient clipping and norms work on one array. Batch norm's
running mean and variance are state, not parameters: they live in `running`.
`params()` gives named views (`layers.0.W`, `layers.0.gamma`), which are also the model file's keys.
"""

from dataclasses import dataclass

import numpy as np

from nncli.kernels.activations import ACTIVATIONS, LOOPED, N_PARAMS
from nncli.kernels.layout import (A_OFF, ACT, B_OFF, BN, BN_AFTER, BN_BEFORE, BN_EPS, BN_MOMENTUM, BN_NONE,
                                  DROPOUT, FAMILY, FAMILY_OTHER, FAMILY_RELU, FAMILY_SATURATING, G_OFF, LAYER_HP_COLS,
                                  LAYOUT_COLS, MAX_DERIV, N_A, N_IN, N_OUT, PIECES, R_OFF, W_OFF)


def _uniform(bound):
    return lambda rng, shape, fan_in, fan_out: rng.uniform(-bound(fan_in, fan_out), bound(fan_in, fan_out), shape)


def _normal(std):
    return lambda rng, shape, fan_in, fan_out: rng.normal(0.0, std(fan_in, fan_out), shape)


# name -> (draw W, draw b or None for zeros). "torch" is nn.Linear's default: U(+-1/sqrt(fan_in)).
INITIALIZERS = {
    "he_uniform": (_uniform(lambda i, o: np.sqrt(6.0 / i)), None),
    "he_normal": (_normal(lambda i, o: np.sqrt(2.0 / i)), None),
    "glorot_uniform": (_uniform(lambda i, o: np.sqrt(6.0 / (i + o))), None),
    "glorot_normal": (_normal(lambda i, o: np.sqrt(2.0 / (i + o))), None),
    "torch": (_uniform(lambda i, o: 1.0 / np.sqrt(i)), _uniform(lambda i, o: 1.0 / np.sqrt(i))),
}
BN_POSITIONS = {"none": BN_NONE, "before": BN_BEFORE, "after": BN_AFTER}
FAMILIES = {"other": FAMILY_OTHER, "relu": FAMILY_RELU, "saturating": FAMILY_SATURATING}


def default_init(activation: str) -> str:
    """He for the ReLU family (keeps the variance of Z through layers), Glorot otherwise."""
    return "he_uniform" if ACTIVATIONS[activation].family == "relu" else "glorot_uniform"


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str  # registry name; the output layer's is "linear" (folded into the loss)
    params: tuple  # activation parameters, N_PARAMS floats (prelu: init slope, per_unit)
    init: str
    dropout: float = 0.0  # probability of zeroing each of this layer's outputs while training
    batch_norm: str = "none"  # "none", "before" or "after" the activation
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5

    @property
    def pieces(self) -> int:
        return int(self.params[0]) if self.activation == "maxout" else 1

    @property
    def n_alpha(self) -> int:
        if self.activation != "prelu":
            return 0
        return self.units if self.params[1] else 1


class Network:
    """Layer specs plus the flat parameter vector theta and the kernels' layout arrays."""

    def __init__(self, n_inputs: int, layers: list[LayerSpec], dtype=np.float64, input_dropout: float = 0.0):
        self.n_inputs = n_inputs
        self.layers = layers
        self.input_dropout = input_dropout
        self.dtype = np.dtype(dtype)
        L = len(layers)
        self.layout = np.full((L, LAYOUT_COLS), -1, dtype=np.int64)
        self.layer_hp = np.zeros((L, LAYER_HP_COLS), dtype=np.float64)
        pos, run, n_in = 0, 0, n_inputs
        for l, spec in enumerate(layers):
            width = spec.units * spec.pieces
            row = self.layout[l]
            row[[N_IN, N_OUT, PIECES, ACT, BN, N_A]] = (n_in, spec.units, spec.pieces,
                                                          ACTIVATIONS[spec.activation].code,
                                                          BN_POSITIONS[spec.batch_norm], spec.n_alpha)
            row[W_OFF] = pos
            row[B_OFF] = pos + n_in * width
            pos += n_in * width + width
            if spec.batch_norm != "none":
                row[G_OFF] = pos  # gamma, then beta
                row[R_OFF] = run  # running mean, then running variance
                pos += 2 * spec.units
                run += 2 * spec.units
            if spec.n_alpha:
                row[A_OFF] = pos
                pos += spec.n_alpha
            self.layer_hp[l, :N_PARAMS] = spec.params
            act = ACTIVATIONS[spec.activation]
            self.layer_hp[l, [DROPOUT, BN_MOMENTUM, BN_EPS, FAMILY, MAX_DERIV]] = (
                spec.dropout, spec.bn_momentum, spec.bn_eps, FAMILIES[act.family], act.max_derivative)
            n_in = spec.units
        self.theta = np.zeros(pos, dtype=self.dtype)
        self.running = np.zeros(max(run, 1), dtype=self.dtype)
        for l, spec in enumerate(layers):
            if spec.batch_norm != "none":
                r = self.layout[l, R_OFF]
                self.running[r + spec.units:r + 2 * spec.units] = 1.0  # running variance starts at 1

    @property
    def n_params(self) -> int:
        return self.theta.size

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    @property
    def has_batch_norm(self) -> bool:
        return any(s.batch_norm != "none" for s in self.layers)

    @property
    def plain(self) -> bool:
        """Runs on the plain kernels (nncli.kernels.mlp, extras=None): no batch norm, and only
        activations with a loop of their own."""
        return not self.has_batch_norm and all(ACTIVATIONS[s.activation].code in LOOPED for s in self.layers)

    @property
    def stochastic(self) -> bool:
        """Draws random numbers while training (dropout or rrelu)."""
        return self.input_dropout > 0 or any(s.dropout > 0 or s.activation == "rrelu" for s in self.layers)

    def params(self, theta=None) -> dict[str, np.ndarray]:
        """Named views into theta (or another vector of the same layout) and the running stats."""
        theta = self.theta if theta is None else theta
        out = {}
        for l, row in enumerate(self.layout):
            n_in, units, pieces = row[N_IN], row[N_OUT], row[PIECES]
            width = units * pieces
            out[f"layers.{l}.W"] = theta[row[W_OFF]:row[W_OFF] + n_in * width].reshape(n_in, width)
            out[f"layers.{l}.b"] = theta[row[B_OFF]:row[B_OFF] + width]
            if row[G_OFF] >= 0:
                out[f"layers.{l}.gamma"] = theta[row[G_OFF]:row[G_OFF] + units]
                out[f"layers.{l}.beta"] = theta[row[G_OFF] + units:row[G_OFF] + 2 * units]
            if row[A_OFF] >= 0:
                out[f"layers.{l}.alpha"] = theta[row[A_OFF]:row[A_OFF] + row[N_A]]
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Named views of batch norm's running statistics (not trained by gradients)."""
        out = {}
        for l, row in enumerate(self.layout):
            if row[R_OFF] >= 0:
                r, units = row[R_OFF], row[N_OUT]
                out[f"layers.{l}.running_mean"] = self.running[r:r + units]
                out[f"layers.{l}.running_var"] = self.running[r + units:r + 2 * units]
        return out

    def weight_mask(self) -> np.ndarray:
        """1 where theta holds a weight of W (what L1/L2 penalties act on), 0 elsewhere."""
        mask = np.zeros(self.theta.size, dtype=self.dtype)
        for row in self.layout:
            mask[row[W_OFF]:row[B_OFF]] = 1.0
        return mask

    def initialize(self, rng: np.random.Generator, gain: float = 1.0) -> None:
        """Draw every layer's W and b with its initializer, layer by layer from one generator;
        W is multiplied by `gain`."""
        views = self.params()
        for l, spec in enumerate(self.layers):
            draw_W, draw_b = INITIALIZERS[spec.init]
            W = views[f"layers.{l}.W"]
            n_in, width = W.shape
            # maxout: each piece is a linear unit with fan-out `units`
            W[:] = gain * draw_W(rng, W.shape, n_in, spec.units)
            views[f"layers.{l}.b"][:] = 0.0 if draw_b is None else draw_b(rng, (width,), n_in, spec.units)
            if spec.batch_norm != "none":
                views[f"layers.{l}.gamma"][:] = 1.0
                views[f"layers.{l}.beta"][:] = 0.0
            if spec.n_alpha:
                views[f"layers.{l}.alpha"][:] = spec.params[0]

    def folded(self) -> "Network":
        """The same function at inference with every batch norm folded into a dense layer.

        Before the activation: y = gamma*(z - mu)/s + beta with z = a@W + b, so W' = W*gamma/s and
        b' = (b - mu)*gamma/s + beta (the lecture's Algorithm 2). After the activation, the affine
        map a -> gamma*(a - mu)/s + beta is folded into the next layer's W and b instead.
        s = sqrt(running_var + eps).
        """
        plain = [LayerSpec(s.units, s.activation, s.params, s.init) for s in self.layers]
        out = Network(self.n_inputs, plain, dtype=self.dtype)
        src, dst, state = self.params(), out.params(), self.state()
        for name in dst:
            dst[name][:] = src[name]
        for l, spec in enumerate(self.layers):
            if spec.batch_norm == "none":
                continue
            scale = src[f"layers.{l}.gamma"] / np.sqrt(state[f"layers.{l}.running_var"] + spec.bn_eps)
            shift = src[f"layers.{l}.beta"] - state[f"layers.{l}.running_mean"] * scale
            if spec.batch_norm == "before":
                dst[f"layers.{l}.W"][:] *= scale
                dst[f"layers.{l}.b"][:] = dst[f"layers.{l}.b"] * scale + shift
            else:
                W_next = dst[f"layers.{l + 1}.W"]
                dst[f"layers.{l + 1}.b"][:] += shift @ W_next
                W_next[:] *= scale[:, None]
        return out

    def describe(self) -> list[dict]:
        """One dict per layer, for reports and `nncli info`."""
        rows = []
        views = self.params()
        for l, spec in enumerate(self.layers):
            n = sum(v.size for k, v in views.items() if k.startswith(f"layers.{l}."))
            rows.append({
                "layer": l, "n_in": int(self.layout[l, N_IN]), "n_out": spec.units, "activation": spec.activation,
                "params": int(n), "init": spec.init, "dropout": spec.dropout, "batch_norm": spec.batch_norm,
            })
        return rows
