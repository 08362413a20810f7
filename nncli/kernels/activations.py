"""Activation functions: the registry and the compiled function/derivative pairs.

Adding an elementwise activation touches only this file: give it a code, a registry entry and a
branch in `activate`, which returns the value A = f(Z) and the derivative dA/dZ side by side.
Three activations need the layer kernel's help (nncli.kernels.mlp): prelu's slope is a learned
parameter, rrelu draws a random slope while training, and maxout takes the max over k pieces. Config
validation, `nncli activations`, the help text and the tests all read `ACTIVATIONS`.

Derivatives at kinks follow PyTorch's autograd (relu'(0) = 0, leaky_relu'(0) = slope, ...), so
that reference values made with PyTorch match exactly.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from nncli.kernels import kernel


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    formula: str
    params: dict = field(default_factory=dict)  # parameter name -> default, in slot order
    family: str = "other"  # "relu": units can die; "saturating": derivative vanishes on tails
    trainable: bool = True
    why_not: str = ""
    max_derivative: float = 1.0  # sup |f'|, for saturation shares in gradient reports
    kind: str = "elementwise"  # or "learned" (prelu), "random" (rrelu), "pieces" (maxout)


LINEAR, SIGMOID, TANH, RELU, LEAKY_RELU, ELU, SELU, CELU = 0, 1, 2, 3, 4, 5, 6, 7
GELU, GELU_TANH, SILU, MISH, SOFTPLUS, SOFTSIGN, HARDTANH, HARDSIGMOID = 8, 9, 10, 11, 12, 13, 14, 15
HARDSWISH, PIECEWISE_LINEAR, TANHSHRINK, SOFTSHRINK, HARDSHRINK = 16, 17, 18, 19, 20
PRELU, RRELU, MAXOUT = 21, 22, 23
STEP, SIGN = 90, 91

_ZERO_GRADIENT = (
    "its derivative is zero almost everywhere, so backpropagation cannot train it; "
    "use sigmoid (a smooth step), tanh (a smooth sign), or hardsigmoid/hardtanh"
)

ACTIVATIONS = {
    a.name: a
    for a in [
        Activation("linear", LINEAR, "z"),
        Activation("sigmoid", SIGMOID, "1 / (1 + exp(-z))", family="saturating", max_derivative=0.25),
        Activation("tanh", TANH, "tanh(z)", family="saturating"),
        Activation("relu", RELU, "max(0, z)", family="relu"),
        Activation("leaky_relu", LEAKY_RELU, "z if z > 0 else slope*z", {"slope": 0.01}, family="relu"),
        Activation("elu", ELU, "z if z > 0 else alpha*(exp(z) - 1)", {"alpha": 1.0}),
        Activation("selu", SELU, "scale*(z if z > 0 else alpha*(exp(z) - 1)), alpha=1.6733, scale=1.0507"),
        Activation("celu", CELU, "max(0, z) + min(0, alpha*(exp(z/alpha) - 1))", {"alpha": 1.0}),
        Activation("gelu", GELU, "z/2 * (1 + erf(z/sqrt(2)))"),
        Activation("gelu_tanh", GELU_TANH, "z/2 * (1 + tanh(sqrt(2/pi)*(z + 0.044715*z^3)))"),
        Activation("silu", SILU, "z * sigmoid(z)  (swish)"),
        Activation("mish", MISH, "z * tanh(softplus(z))"),
        Activation(
            "softplus", SOFTPLUS, "log(1 + exp(beta*z))/beta; z where beta*z > threshold",
            {"beta": 1.0, "threshold": 20.0},
        ),
        Activation("softsign", SOFTSIGN, "z / (1 + |z|)", family="saturating"),
        Activation("hardtanh", HARDTANH, "clip(z, min, max)", {"min": -1.0, "max": 1.0}, family="saturating"),
        Activation(
            "hardsigmoid", HARDSIGMOID, "clip(z/6 + 1/2, 0, 1)", family="saturating", max_derivative=1 / 6
        ),
        Activation("hardswish", HARDSWISH, "z * clip(z/6 + 1/2, 0, 1)"),
        Activation(
            "piecewise_linear", PIECEWISE_LINEAR, "0 if z <= -1/2; z + 1/2 if |z| < 1/2; 1 if z >= 1/2",
            family="saturating",
        ),
        Activation("tanhshrink", TANHSHRINK, "z - tanh(z)"),
        Activation("softshrink", SOFTSHRINK, "z - lambda*sign(z) if |z| > lambda else 0", {"lambda": 0.5}),
        Activation("hardshrink", HARDSHRINK, "z if |z| > lambda else 0", {"lambda": 0.5}),
        Activation("prelu", PRELU, "z if z > 0 else a*z, a learned (one per layer, or per unit)",
                   {"init": 0.25, "per_unit": False}, family="relu", kind="learned"),
        Activation("rrelu", RRELU, "z if z > 0 else a*z, a ~ U(lower, upper) while training, (lower+upper)/2 after",
                   {"lower": 1 / 8, "upper": 1 / 3}, family="relu", kind="random"),
        Activation("maxout", MAXOUT, "max over k linear pieces: max_p (x @ W_p + b_p)", {"pieces": 2},
                   kind="pieces"),
        Activation("step", STEP, "[z > 0] (Heaviside)", trainable=False, why_not=_ZERO_GRADIENT),
        Activation("sign", SIGN, "sign(z)", trainable=False, why_not=_ZERO_GRADIENT),
    ]
}
ALIASES = {"swish": "silu", "identity": "linear", "heaviside": "step"}
N_PARAMS = 2  # activation parameter slots per layer in the kernels' layer_hp array

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@kernel()
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@kernel()
def _softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@kernel(inline="always")
def _linear(z):
    return z, 1.0


@kernel(inline="always")
def _relu(z):
    return (z, 1.0) if z > 0.0 else (0.0, 0.0)


@kernel(inline="always")
def leaky_relu(z, slope):
    return (z, 1.0) if z > 0.0 else (slope * z, slope)


@kernel(inline="always")
def _logistic(z):
    s = _sigmoid(z)
    return s, s * (1.0 - s)


@kernel(inline="always")
def _tanh(z):
    t = math.tanh(z)
    return t, 1.0 - t * t


@kernel()
def activate(code, z, p0, p1):
    """Return (f(z), f'(z)) for the activation `code` with parameters p0, p1."""
    if code == LINEAR:
        return _linear(z)
    if code == RELU:
        return _relu(z)
    if code == SIGMOID:
        return _logistic(z)
    if code == TANH:
        return _tanh(z)
    if code == LEAKY_RELU or code == PRELU:  # prelu: the kernel passes the learned slope as p0
        return leaky_relu(z, p0)
    if code == RRELU:  # at inference: the mean slope; while training the kernel draws one
        slope = 0.5 * (p0 + p1)
        return (z, 1.0) if z > 0.0 else (slope * z, slope)
    if code == ELU:
        if z > 0.0:
            return z, 1.0
        e = math.exp(z)
        return p0 * (e - 1.0), p0 * e
    if code == SELU:
        if z > 0.0:
            return _SELU_SCALE * z, _SELU_SCALE
        e = math.exp(z)
        return _SELU_SCALE * _SELU_ALPHA * (e - 1.0), _SELU_SCALE * _SELU_ALPHA * e
    if code == CELU:
        if z > 0.0:
            return z, 1.0
        e = math.exp(z / p0)
        return p0 * (e - 1.0), e
    if code == GELU:
        cdf = 0.5 * (1.0 + math.erf(z * _INV_SQRT_2))
        return z * cdf, cdf + z * _INV_SQRT_2PI * math.exp(-0.5 * z * z)
    if code == GELU_TANH:
        u = _SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)
        t = math.tanh(u)
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * z * z)
        return 0.5 * z * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du
    if code == SILU:
        s = _sigmoid(z)
        return z * s, s * (1.0 + z * (1.0 - s))
    if code == MISH:
        t = math.tanh(_softplus(z))
        return z * t, t + z * (1.0 - t * t) * _sigmoid(z)
    if code == SOFTPLUS:
        bz = p0 * z
        if bz > p1:
            return z, 1.0
        return _softplus(bz) / p0, _sigmoid(bz)
    if code == SOFTSIGN:
        d = 1.0 + abs(z)
        return z / d, 1.0 / (d * d)
    if code == HARDTANH:
        if z <= p0:
            return p0, 0.0
        if z >= p1:
            return p1, 0.0
        return z, 1.0
    if code == HARDSIGMOID:
        if z <= -3.0:
            return 0.0, 0.0
        if z >= 3.0:
            return 1.0, 0.0
        return z / 6.0 + 0.5, 1.0 / 6.0
    if code == HARDSWISH:
        if z <= -3.0:
            return 0.0, 0.0
        if z >= 3.0:
            return z, 1.0
        return z * (z + 3.0) / 6.0, z / 3.0 + 0.5
    if code == PIECEWISE_LINEAR:
        if z <= -0.5:
            return 0.0, 0.0
        if z >= 0.5:
            return 1.0, 0.0
        return z + 0.5, 1.0
    if code == TANHSHRINK:
        t = math.tanh(z)
        return z - t, t * t
    if code == SOFTSHRINK:
        if z > p0:
            return z - p0, 1.0
        if z < -p0:
            return z + p0, 1.0
        return 0.0, 0.0
    if code == HARDSHRINK:
        return (z, 1.0) if abs(z) > p0 else (0.0, 0.0)
    if code == STEP:
        return (1.0 if z > 0.0 else 0.0), 0.0
    if code == SIGN:
        return (1.0 if z > 0.0 else (-1.0 if z < 0.0 else 0.0)), 0.0
    return math.nan, math.nan


# The activations with a loop of their own in activate_rows: the only ones the plain kernels know.
LOOPED = frozenset({RELU, LEAKY_RELU, TANH, SIGMOID, LINEAR})


@kernel()
def activate_rows(code, Z, A, D, p0, p1, extras):
    """A = f(Z) and D = f'(Z) over (n, u) arrays.

    The common activations (LOOPED) get a loop of their own, so that the branch on `code` is
    taken once rather than per element: through `activate` a Pima step spent a third of its time
    choosing the activation. The others go through `activate`, which the plain kernels
    (extras=None, see nncli.kernels.mlp) leave out: there they give NaN, which stops training.
    """
    n, u = A.shape
    if code == RELU:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = _relu(Z[i, j])
    elif code == LEAKY_RELU:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = leaky_relu(Z[i, j], p0)
    elif code == TANH:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = _tanh(Z[i, j])
    elif code == SIGMOID:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = _logistic(Z[i, j])
    elif code == LINEAR:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = _linear(Z[i, j])
    elif extras is not None:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = activate(code, Z[i, j], p0, p1)
    else:
        for i in range(n):
            for j in range(u):
                A[i, j], D[i, j] = math.nan, math.nan


@kernel(from_python=True)
def activate_array(code, p0, p1, Z, A, D):
    """Elementwise over 1-D arrays: A = f(Z) and D = f'(Z). Used by tests and `nncli activations`."""
    activate_rows(code, Z.reshape(1, -1), A.reshape(1, -1), D.reshape(1, -1), p0, p1, True)


def curve(name: str, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A = f(Z) and D = f'(Z), each (n,), of an elementwise activation at its default parameters.

    prelu uses its initial slope and rrelu its inference slope (lower + upper) / 2; maxout is
    no function of one z and has no curve.
    """
    act = ACTIVATIONS[ALIASES.get(name, name)]
    if act.kind == "pieces":
        raise ValueError(f"{act.name} takes the max over several pre-activations; it has no curve f(z)")
    p = [float(v) for v in act.params.values()] + [0.0] * N_PARAMS
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    A, D = np.empty_like(Z), np.empty_like(Z)
    activate_array(act.code, p[0], p[1], Z, A, D)
    return A, D
