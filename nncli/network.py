"""The network's parameters as one flat vector, and the layout the kernels read.

Layer l holds W (n_in, n_out) and b (n_out,); Z = A_prev @ W + b and A = f(Z). All of them live
in one contiguous vector theta, W then b for each layer in turn, so that optimizers, gradient
clipping and norms work on one array. `params()` gives named views (`layers.0.W`), which are also
the model file's keys.
"""

from dataclasses import dataclass

import numpy as np

from nncli.kernels.activations import ACTIVATIONS, N_PARAMS
from nncli.kernels.mlp import ACT, B_OFF, N_IN, N_OUT, W_OFF


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


def default_init(activation: str) -> str:
    """He for the ReLU family (keeps the variance of Z through layers), Glorot otherwise."""
    return "he_uniform" if ACTIVATIONS[activation].family == "relu" else "glorot_uniform"


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str  # registry name; the output layer's is "linear" (folded into the loss)
    params: tuple  # activation parameters, N_PARAMS floats
    init: str


class Network:
    """Layer specs plus the flat parameter vector theta and the kernels' layout arrays."""

    def __init__(self, n_inputs: int, layers: list[LayerSpec], dtype=np.float64):
        self.n_inputs = n_inputs
        self.layers = layers
        self.dtype = np.dtype(dtype)
        L = len(layers)
        self.layout = np.zeros((L, 5), dtype=np.int64)
        self.act_params = np.zeros((L, N_PARAMS), dtype=np.float64)
        pos, n_in = 0, n_inputs
        for l, spec in enumerate(layers):
            self.layout[l, [N_IN, N_OUT, W_OFF, B_OFF, ACT]] = (
                n_in, spec.units, pos, pos + n_in * spec.units, ACTIVATIONS[spec.activation].code,
            )
            self.act_params[l] = spec.params
            pos += n_in * spec.units + spec.units
            n_in = spec.units
        self.theta = np.zeros(pos, dtype=self.dtype)

    @property
    def n_params(self) -> int:
        return self.theta.size

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    def params(self, theta=None) -> dict[str, np.ndarray]:
        """Named views into theta (or another vector of the same layout): layers.<l>.W / .b."""
        theta = self.theta if theta is None else theta
        out = {}
        for l, (n_in, n_out, w_off, b_off, _) in enumerate(self.layout):
            out[f"layers.{l}.W"] = theta[w_off:w_off + n_in * n_out].reshape(n_in, n_out)
            out[f"layers.{l}.b"] = theta[b_off:b_off + n_out]
        return out

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw every layer's W and b with its initializer, layer by layer from one generator."""
        views = self.params()
        for l, spec in enumerate(self.layers):
            draw_W, draw_b = INITIALIZERS[spec.init]
            n_in, n_out = self.layout[l, N_IN], self.layout[l, N_OUT]
            views[f"layers.{l}.W"][:] = draw_W(rng, (n_in, n_out), n_in, n_out)
            views[f"layers.{l}.b"][:] = 0.0 if draw_b is None else draw_b(rng, (n_out,), n_in, n_out)

    def describe(self) -> list[dict]:
        """One dict per layer, for reports and `nncli info`."""
        rows = []
        for l, spec in enumerate(self.layers):
            n_in, n_out = int(self.layout[l, N_IN]), int(self.layout[l, N_OUT])
            rows.append({
                "layer": l, "n_in": n_in, "n_out": n_out, "activation": spec.activation,
                "params": n_in * n_out + n_out, "init": spec.init,
            })
        return rows
