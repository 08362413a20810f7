"""A barrier for compiled code on several threads: mlp.train_epoch_split's threads meet at it twice
a step (three times when the run clips by norm), and claim work from each other with atomic_cas.

Each thread is a Python thread that calls the same nogil kernel (nncli.kernels.threads), so the
threads share one int64 array, `sync`, with the barrier's counter and generation and two flags.
numba has no atomics of its own; the intrinsics below emit LLVM's sequentially consistent atomic
load, store and add, which also order the plain loads and stores around them: what one thread
wrote before a barrier, the others read after it.

A numba parallel region (prange) did the same job before: it cost about 6 us to start and join
on this machine (a barrier here: 0.3 us), and numba compiled every region as a function of its
own, re-optimizing what it inlines: the kernel took 8.7 s to compile, and now takes about 4
(its callees cached).

A waiting thread spins, and after SPINS turns gives its core away (sched_yield) before it spins
again: on a machine whose cores are all busy, the thread it waits for may be waiting for a core.
"""

import sys

from numba import types
from numba.extending import intrinsic

from nncli.kernels import arrayobj, kernel

# Slots of sync, a cache line (8 int64) apart so that the waiting threads' reads of GEN do not
# share a line with the counter the arriving ones write.
COUNT, GEN, STOP, ABORT = 0, 8, 16, 24
SIZE = 32
SPINS = 2000  # about 10-40 us of spinning before the first yield
# Where the threads' cores can be given away from compiled code (and so split steps run).
SUPPORTED = sys.platform != "win32"

_sched_yield = types.ExternalFunction("sched_yield", types.int32())


def _int64_vector(arr) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1 and arr.layout == "C"


def _codegen(emit):
    """Code for an intrinsic on arr[i] (arguments arr, i and any values): emit(builder, address of
    arr[i], *values as int64) returns the result, or None for no result."""

    def codegen(context, builder, sig, args):
        array = arrayobj().make_array(sig.args[0])(context, builder, args[0])
        address = builder.gep(array.data, [context.cast(builder, args[1], sig.args[1], types.intp)])
        values = [context.cast(builder, v, t, types.int64) for v, t in zip(args[2:], sig.args[2:])]
        result = emit(builder, address, *values)
        return context.get_dummy_value() if result is None else result

    return codegen


def _store(builder, address, value):
    builder.store_atomic(value, address, "seq_cst", 8)


@intrinsic
def atomic_add(typingctx, arr, i, v):
    """arr[i] += v as one atomic step; returns the value before."""
    if _int64_vector(arr):
        return types.int64(arr, i, v), _codegen(lambda builder, at, v: builder.atomic_rmw("add", at, v, "seq_cst"))


@intrinsic
def atomic_load(typingctx, arr, i):
    """arr[i], read atomically (never hoisted out of a loop)."""
    if _int64_vector(arr):
        return types.int64(arr, i), _codegen(lambda builder, at: builder.load_atomic(at, "seq_cst", 8))


@intrinsic
def atomic_store(typingctx, arr, i, v):
    """arr[i] = v, written atomically."""
    if _int64_vector(arr):
        return types.none(arr, i, v), _codegen(_store)


@intrinsic
def atomic_cas(typingctx, arr, i, expected, v):
    """arr[i] = v if arr[i] == expected, as one atomic step; returns whether it did."""
    if _int64_vector(arr):
        def emit(builder, at, expected, v):
            return builder.extract_value(builder.cmpxchg(at, expected, v, "seq_cst", "seq_cst"), 1)

        return types.boolean(arr, i, expected, v), _codegen(emit)


@kernel(inline="always")
def wait(spins):
    """One turn of a waiting thread's loop; returns the turns so far (spins + 1, or 0 after it gave
    its core away)."""
    spins += 1
    if spins == SPINS:
        _sched_yield()
        return 0
    return spins


@kernel(inline="always")
def barrier(sync, n):
    """Wait until all n threads have reached a barrier (a no-op for n = 1). Returns True when a
    thread gave up (sync[ABORT] set: its kernel never started), and the caller must return."""
    if n == 1:
        return False
    gen = atomic_load(sync, GEN)
    if atomic_add(sync, COUNT, 1) == n - 1:  # the last to arrive lets the others go
        atomic_store(sync, COUNT, 0)
        atomic_add(sync, GEN, 1)
    else:
        spins = 0
        while atomic_load(sync, GEN) == gen:
            if atomic_load(sync, ABORT) != 0:
                return True
            spins = wait(spins)
    return atomic_load(sync, ABORT) != 0
