"""Statistics of a block of one numeric column without gaps, for a fit that reads a large file
block by block (nncli.preprocess.summarize): the mean, the sum of squared deviations from it, the
minimum and the maximum in two vectorized passes (numpy takes five, with a temporary array).
"""

import numba

from nncli.kernels import CACHE

# no NaN and no infinity, so that LLVM may vectorize the minimum and maximum as well as the sums
_FAST = {"reassoc", "contract", "nsz", "nnan", "ninf", "arcp"}


@numba.njit(cache=CACHE, nogil=True, error_model="numpy", fastmath=_FAST)
def moments(x):
    """(mean, sum of squared deviations from it, min, max) of x: a contiguous float64 array of at
    least one value, none of them NaN or infinite (the results are undefined otherwise)."""
    total, lo, hi = 0.0, x[0], x[0]
    for i in range(x.shape[0]):
        v = x[i]
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
    mean = total / x.shape[0]
    m2 = 0.0
    for i in range(x.shape[0]):
        d = x[i] - mean
        m2 += d * d
    return mean, m2, lo, hi
