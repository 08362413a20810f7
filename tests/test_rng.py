"""nncli.kernels.rng, the counter-based random numbers of dropout, rrelu and input noise: against
SplitMix64 written out in plain Python (and its published first output), and the distributions
of many draws."""

import numpy as np
from numba import njit

from nncli.kernels import rng

MASK = 2**64 - 1
GAMMA = 0x9E3779B97F4A7C15


def splitmix64(state: int, count: int) -> list[int]:
    """Sebastiano Vigna's splitmix64.c, next() `count` times from `state`, in Python integers."""
    out = []
    for _ in range(count):
        state = (state + GAMMA) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


@njit
def uniforms(key, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.uniform(key, i)
    return out


@njit
def normals(key, n):
    out = np.empty((n, 2))
    for i in range(n):
        out[i] = rng.normal_pair(key, i)
    return out


@njit
def keys(seed, step, k):
    return rng.step_key(seed, step), rng.stream(rng.step_key(seed, step), k)


def key_of(seed, step, k):
    return np.uint64(keys(seed, step, k)[1])


def test_draws_are_splitmix64_from_the_key():
    assert splitmix64(0, 1) == [0xE220A8397B1DCDAF]  # the generator's published first output from 0
    for key in (0, 1, 0xDEADBEEF12345678, MASK):
        expected = [(z >> 11) * 2.0**-53 for z in splitmix64(key, 1000)]
        np.testing.assert_array_equal(uniforms(np.uint64(key), 1000), expected)


def test_uniform_draws_are_uniform_on_the_unit_interval():
    u = uniforms(key_of(7, 3, 0), 1_000_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.002 and abs(u.var() - 1 / 12) < 0.001
    counts = np.bincount((u * 100).astype(int), minlength=100)
    chi2 = float(((counts - 10_000) ** 2 / 10_000).sum())
    assert chi2 < 160  # 99 degrees of freedom: P(chi2 > 160) < 1e-4


def test_normal_draws_are_standard_normal_and_independent_in_pairs():
    pairs = normals(key_of(7, 3, 1), 500_000)
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 0.01
    assert abs(np.corrcoef(pairs[:, 0] ** 2, pairs[:, 1] ** 2)[0, 1]) < 0.01  # not only uncorrelated
    z = pairs.ravel()
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1.0) < 0.005
    assert abs(np.mean(np.abs(z) > 1.959964) - 0.05) < 0.002
    assert abs(np.mean(z**3)) < 0.02 and abs(np.mean(z**4) - 3.0) < 0.05  # skewness 0, kurtosis 3


def test_steps_and_streams_draw_unrelated_numbers():
    distinct = {*keys(1, 0, 0), *keys(1, 1, 0), *keys(2, 0, 0), *keys(1, 0, 1)}  # steps, seeds and streams
    assert len(distinct) == 7
    draws = [uniforms(np.uint64(key), 100_000) for key in distinct]
    for a in range(len(draws)):
        for b in range(a):
            assert abs(np.corrcoef(draws[a], draws[b])[0, 1]) < 0.015
    assert keys(1, 5, 2) == keys(1, 5, 2)  # and the same key draws the same numbers
    np.testing.assert_array_equal(uniforms(key_of(1, 5, 2), 3), uniforms(key_of(1, 5, 2), 3))
    # a key given as an int64 draws what the same bits as a uint64 draw
    np.testing.assert_array_equal(uniforms(np.int64(-1), 5), uniforms(np.uint64(MASK), 5))
