"""Compiled work on the numeric columns of a large file's blocks (nncli.preprocess): the block
statistics a fit from summaries needs, and the scaling of a column into the input array. Each
takes one pass or two over a column where numpy takes several, with temporary arrays.
"""

import math

from nncli.kernels import jit

# no NaN and no infinity, so that LLVM may vectorize the minimum and maximum as well as the sums
_FAST = {"reassoc", "contract", "nsz", "nnan", "ninf", "arcp"}


@jit(nogil=True, fastmath=_FAST)
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


@jit(nogil=True)
def standardize(x, center, scale, fill, X, j):
    """X[i, j] = (x[i] - center) / scale for every row i, `fill` where that is NaN (x missing): the
    same IEEE operations as numpy's, in float64, then rounded to X's dtype (no fast-math here)."""
    for i in range(x.shape[0]):
        z = (x[i] - center) / scale
        X[i, j] = fill if math.isnan(z) else z
