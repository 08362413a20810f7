"""The cores a training run uses: mlp.train_epoch_split runs each half of a batch on its own
thread (numba's threading layer), with BLAS held to one thread meanwhile."""

import contextlib
import os

import numba

from nncli.errors import ConfigError
from nncli.kernels import mlp


def workers() -> int:
    """Threads for the halves of a split step: $NNCLI_THREADS if set, else the cores this process
    may run on; at most mlp.SPLIT and numba's own thread count. The model does not depend on it."""
    setting = os.environ.get("NNCLI_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ConfigError(f"NNCLI_THREADS: expected a whole number of at least 1, got '{setting}'")
        wanted = int(setting)
    else:
        wanted = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(wanted, mlp.SPLIT, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def single_threaded_blas(n_workers: int):
    """With more than one worker, BLAS runs on one thread of its own (threadpoolctl; process-wide)
    until the block ends: two GEMMs at once into a two-thread OpenBLAS queue up for its one thread
    pool, and ran at a third of the speed of two single-threaded ones."""
    if n_workers <= 1:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def train_epoch_split(args: tuple, n_workers: int):
    """mlp.train_epoch_split(*args) on n_workers threads; numba's thread count is per calling
    thread, so it is set here, in the thread that runs the kernel."""
    numba.set_num_threads(n_workers)
    return mlp.train_epoch_split(*args)
