"""Python calls of kernels that only other kernels call.

Such kernels (nncli.kernels.kernel without from_python=True) have no entry point for Python; a
test calls one through a jitted trampoline, which numba compiles once per kernel and signature.
"""

import functools

import numba


@functools.cache
def from_python(kernel):
    """A function that calls `kernel` with its arguments, from compiled code."""

    @numba.njit
    def call(*args):
        return kernel(*args)

    return call
