"""Counter-based random numbers for the training kernels (dropout, rrelu, input noise).

Draw n of a stream is a hash of the stream's key and n: SplitMix64's output function (Steele,
Lea and Flood, 2014, as in Java's SplittableRandom) applied to key + (n + 1) * its Weyl constant,
which is SplitMix64's own sequence from the state `key`. A draw is a few integer operations
inlined where it is used, a step's stream needs no seeding, and nothing passes between steps or
threads: the draws of a step depend on the run's seed and the step alone, so that a resumed run
draws what an uninterrupted one does.

Keys are uint64 (any whole number is taken as one: mixed with an int64, numba would make a
uint64 a float64): step_key(seed, step) for a step, then stream(key, k) for the k-th use of it
(layer l's stream(key, l), in which stream(.., DROPOUT) and stream(.., RRELU); stream(key,
INPUTS) for the input noise and input dropout). Inside a stream, the element (i, j) of a (rows,
width) array is draw i * width + j; normal numbers come in pairs, (i, j) and (i, j + 1) for even
j from pair i * ceil(width / 2) + j / 2.
"""

import math

import numpy as np

from nncli.kernels import kernel

_U = np.uint64
_GAMMA = _U(0x9E3779B97F4A7C15)  # SplitMix64's Weyl constant: 2**64 / the golden ratio, odd
_STREAMS = _U(0xD1B54A32D192ED03)  # another odd constant, for deriving keys
_M1, _M2 = _U(0xBF58476D1CE4E5B9), _U(0x94D049BB133111EB)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53

DROPOUT, RRELU = 0, 1  # the streams of a layer's key
INPUTS = 1 << 20  # the stream of the inputs' draws (above any layer's number)
NOISE, INPUT_DROPOUT = 0, 1  # ... and the streams in it


@kernel(inline="always")
def _mix(z):
    """SplitMix64's output function: a bijection of uint64, every output bit depending on every input bit."""
    z = (z ^ (z >> _U(30))) * _M1
    z = (z ^ (z >> _U(27))) * _M2
    return z ^ (z >> _U(31))


@kernel(inline="always")
def step_key(seed, step):
    """The key of step `step` of a run seeded with `seed` (both whole numbers of at least 0)."""
    return _mix(_mix(_U(seed) * _STREAMS + _U(1)) + _U(step) * _GAMMA)


@kernel(inline="always")
def stream(key, k):
    """The key of the k-th stream of `key`."""
    return _mix(_U(key) ^ ((_U(k) + _U(1)) * _STREAMS))


@kernel(inline="always")
def uniform(key, n):
    """Draw n of stream `key`: a float64 in [0, 1), a multiple of 2**-53."""
    return float(_mix(_U(key) + (_U(n) + _U(1)) * _GAMMA) >> _U(11)) * _UNIT


@kernel(inline="always")
def normal_pair(key, m):
    """Two independent standard normal numbers from draws 2m and 2m + 1 of stream `key` (Box and
    Muller, 1958): one logarithm and square root for both."""
    radius = math.sqrt(-2.0 * math.log(1.0 - uniform(key, _U(2) * _U(m))))  # 1 - u in (0, 1]
    angle = 2.0 * math.pi * uniform(key, _U(2) * _U(m) + _U(1))
    return radius * math.cos(angle), radius * math.sin(angle)
