"""The cores a training run uses: mlp.train_epoch_split runs each half of a batch on a thread of
its own, with BLAS held to one thread meanwhile."""

import contextlib
import os
import threading

import numpy as np

from nncli.errors import ConfigError
from nncli.kernels import mlp, sync


def workers() -> int:
    """Threads for the halves of a split step: $NNCLI_THREADS if set, else the cores this process
    may run on; at most mlp.SPLIT. The model does not depend on it."""
    setting = os.environ.get("NNCLI_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ConfigError(f"NNCLI_THREADS: expected a whole number of at least 1, got '{setting}'")
        wanted = int(setting)
    else:
        wanted = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(wanted, mlp.SPLIT))


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
    """mlp.train_epoch_split on n_workers threads: this one runs thread 0, and one more thread (a
    Python thread; the kernel holds no GIL) runs thread 1 for the epoch. args: the kernel's
    arguments after tid, n_threads, sync and shared.

    If a thread fails before its kernel starts, it sets sync[ABORT]: the other leaves its barrier
    and returns, and the error is raised here, so that no thread waits for ever."""
    flags = np.zeros(mlp.sync_size(args[3].shape[0]), dtype=np.int64)
    shared = np.zeros(mlp.SPLIT + mlp.SHARES)
    if n_workers == 1 or len(args[8]) == 0:  # one thread, or the call that loads the kernel
        return mlp.train_epoch_split(0, 1, flags, shared, *args)
    failed = []

    def second():
        try:
            mlp.train_epoch_split(1, n_workers, flags, shared, *args)
        except BaseException as exc:  # handed to the first thread, which raises it
            failed.append(exc)
            flags[sync.ABORT] = 1

    other = threading.Thread(target=second, name="nncli-half", daemon=True)
    other.start()
    try:
        t = mlp.train_epoch_split(0, n_workers, flags, shared, *args)
    except BaseException:
        flags[sync.ABORT] = 1
        raise
    finally:
        other.join()
    if failed:
        raise failed[0]
    return t
