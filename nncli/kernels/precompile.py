"""A cold kernel cache compiled on two cores.

numba compiles one function at a time in a process, and a first `nncli train` on an empty cache
spends most of its seconds compiling train_epoch's callees (the forward pass, the loss, the
backward pass, the optimizer step) before train_epoch itself. Every kernel is cached on disk on its
own, and numba compiling a caller takes a callee from that cache when it is there (its machine
code and the IR it links in). So when train_epoch is not in the cache and a second core is free,
`training` starts a helper process (a `python -c` that runs `_main`) that compiles the forward
pass, the clipping and the deferred weight gradient (and the prediction kernel when the run
validates), while this process compiles the loss, the backward pass, the optimizer step and the
weight penalty (the full variant: the helper takes the penalty, and this process the input
augmentation and the gradient records). nncli.train opens `training` before its first compiled
call, so that the helper's start and numba's set-up in each process overlap. Once the helper
says its callees are cached, compiling train_epoch finds them there, while the helper goes on
with the prediction kernel.

The callees' signatures are written out below, as numba types of what train_epoch passes them,
for each dtype and kernel variant. A test checks that compiling train_epoch after the split
compiles no callee again: a signature that drifts from train_epoch's code costs the time it
saved, never a wrong result.

NNCLI_PARALLEL_COMPILE=0 turns the helper off and =1 uses it even on one core; by default it runs
when the process may use two cores or more (its CPU affinity; a container's CPU quota is not seen).
"""

import contextlib
import json
import os
import subprocess
import sys
import threading

import numba
from numba.core import types

from nncli.errors import ConfigError
from nncli.kernels import CACHE, CACHE_DIR, mlp, record

HELPER_TIMEOUT_S = 600  # for the helper's validation kernels; then this process compiles them itself


def _signatures(dtype: str, extras, validation) -> tuple[list, list, list]:
    """Three lists of (kernel, argument types) jobs: the helper's share of train_epoch's callees in
    variant `extras` (None or True), then the helper's kernels that score validation data (with
    validation = (extras of the prediction kernel, extras of the validation loss); else none), then
    this process's share, validation loss included."""
    f, i, real = types.float64, types.int64, getattr(types, dtype)
    vec, mat = types.Array(real, 1, "C"), types.Array(real, 2, "C")
    f1, f2, i1, i2 = (types.Array(t, n, "C") for t, n in ((f, 1), (f, 2), (i, 1), (i, 2)))
    flag = types.none if extras is None else types.boolean
    net = (vec, vec, i2, f2)  # theta, running (or grad), layout, layer_hp
    helper = [(mlp.forward, (*net, mat, vec, i1, i, types.literal(True), flag, types.uint64)),
              (mlp.clip_gradient, (vec, f, f)),
              (mlp._weight_gradient, (vec, i1, i2, vec, i, types.literal(0), types.literal(1), i))]
    own = [(mlp.loss_and_delta, (i, f1, mat, mat, vec, mat, flag)),
           (mlp.backward, (*net, mat, vec, i1, i, flag)),
           (mlp.apply_updates, (i, f1, vec, vec, vec, vec, i, flag))]
    penalty = (mlp.weight_penalty, (vec, vec, i2, f, f))
    if extras is None:  # the helper starts its first compile about 0.5 s later (its imports, numba's set-up)
        own.append(penalty)
    else:  # the full variant's own share is the larger one
        helper.append(penalty)
        own += [(mlp._augment, (mat, mat, vec, vec, f1, f1, types.uint64)),
                (mlp._record_step, (f1, *net, vec, i1, i, f, i, i)),
                (record.record_update, (f1, vec, vec, i2))]
    scoring = []
    if validation is not None:
        predict, loss = (types.none if e is None else types.boolean for e in validation)
        scoring.append((mlp.predict_logits, (*net, mat, mat, vec, i, predict)))
        if loss != flag:
            own.append((mlp.loss_and_delta, (i, f1, mat, mat, vec, mat, loss)))
    return helper, scoring, own


def _wanted() -> bool:
    setting = os.environ.get("NNCLI_PARALLEL_COMPILE", "").strip()
    if setting not in ("", "0", "1"):
        raise ConfigError(f"NNCLI_PARALLEL_COMPILE: expected 0 or 1, got '{setting}'")
    if setting:
        return setting == "1"
    return len(os.sched_getaffinity(0)) >= 2 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) >= 2


def cold(kernel, argument_types) -> bool:
    """Whether calling `kernel` with these argument types would compile it: neither compiled in
    this process nor in the cache. Reads numba's cache index (numba's own Cache internals); if
    that fails, says False, and the caller compiles in one process as numba always does."""
    if tuple(argument_types) in kernel.overloads:
        return False
    try:
        cache = kernel._cache
        key = cache._index_key(tuple(argument_types), kernel.targetctx.codegen())
        return key not in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001  (only an optimization depends on it)
        return False


def _flag(extras) -> str:
    return "none" if extras is None else "true"


@contextlib.contextmanager
def training(epoch_args: tuple, validation=None):
    """Around the first call of mlp.train_epoch with `epoch_args`: if that call compiles (a cold
    cache) and the helper is wanted, first compile the callees in two processes (module
    docstring); the helper goes on with the validation kernels while train_epoch compiles, and
    the block ends when it is done. Otherwise it does nothing. validation: None, or (prediction
    extras, validation-loss extras) of the run."""
    helper = _start(epoch_args, validation)
    try:
        yield
        if helper is not None:
            try:
                helper.wait(timeout=HELPER_TIMEOUT_S)
            except subprocess.TimeoutExpired:  # stopped below: this process compiles what it lacks
                pass
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait()


# The helper's program: SIGINT ignored before anything else (Ctrl-C reaches the terminal's whole
# process group; this process, which stops at the first step once its kernel is compiled, gets
# there sooner with the helper's half), then the importing process's own sys.path, so that it
# imports the same nncli from the same path (numba names cache files after the source's path).
_HELPER = ("import json, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
           "sys.path[:] = json.loads(sys.argv[1]); from nncli.kernels.precompile import _main; _main(sys.argv[2:])")
READY = "callees cached"  # what the helper prints once its callees are in the cache


def _start(epoch_args: tuple, validation):
    """The helper process, once this process has compiled its share and the helper its callees;
    None where no helper is wanted or it could not start."""
    if not CACHE or not _wanted() or not cold(mlp.train_epoch, [numba.typeof(a) for a in epoch_args]):
        return None
    dtype, extras = epoch_args[0].dtype.name, epoch_args[-1]
    argv = [dtype, _flag(extras)] + ([] if validation is None else [_flag(e) for e in validation])
    env = {**os.environ, "NNCLI_CACHE_DIR": str(CACHE_DIR.parent)}
    try:
        helper = subprocess.Popen([sys.executable, "-c", _HELPER, json.dumps(sys.path), *argv], env=env, text=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    stuck = threading.Timer(HELPER_TIMEOUT_S, helper.kill)  # then the wait below ends at EOF
    try:
        for kernel, argument_types in _signatures(dtype, extras, validation)[2]:
            with contextlib.suppress(Exception):  # a signature that drifted: train_epoch compiles its own
                kernel.compile(argument_types)
        stuck.start()
        for line in helper.stdout:  # until the helper's callees are cached, or it ended
            if line.strip() == READY:
                break
        helper.stdout.close()
    except BaseException:
        helper.kill()
        helper.wait()
        raise
    finally:
        stuck.cancel()
    return helper


def _main(argv: list[str]) -> None:
    """The helper: compile its share for DTYPE EXTRAS [PREDICT_EXTRAS LOSS_EXTRAS] (_start's argv)."""
    flags = [None if a == "none" else True for a in argv[1:]]
    callees, scoring, _ = _signatures(argv[0], flags[0], tuple(flags[1:3]) if len(flags) == 3 else None)
    for kernel, argument_types in callees:
        kernel.compile(argument_types)
    print(READY, flush=True)
    for kernel, argument_types in scoring:
        kernel.compile(argument_types)
