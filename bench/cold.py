"""7. A fresh machine: the first `nncli train` on an empty kernel cache, and `nncli warmup`."""

import os
import subprocess

from bench.harness import Section, Stat, md_table, timed
from bench.workloads import PIMA_CONFIG, PIMA_MISSING, REPO, Env, nncli_command

GOAL_S = 8.0  # issue 5, goal 5: the first train on an empty cache
TITLE = "7. Cold start: an empty kernel cache"


def _run(cmd: list[str], cache, **settings) -> float:
    env = {**os.environ, "NNCLI_CACHE_DIR": str(cache), **settings}

    def call():
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")

    return timed(call)


def cold(env: Env) -> list[Section]:
    """Each round trains on a new, empty cache folder (NNCLI_CACHE_DIR), then again on the filled one.

    Compiling dominates and does not share the machine's cores with anything else nncli does, so
    there is nothing to alternate with: quick mode runs one round, full mode two, plus in each
    round the first train compiled in one process (NNCLI_PARALLEL_COMPILE=0, as before the
    helper process), the first run of a config that needs the full kernels
    (configs/pima_regularized.yaml) and `nncli warmup`.
    """
    if env.pima is None:
        return [Section(TITLE, PIMA_MISSING)]
    nncli = nncli_command()
    train = [*nncli, "train", str(env.pima), "--config", str(PIMA_CONFIG), "--quiet", "--out", str(env.tmp / "cold.npz")]
    rounds = 1 if env.settings.name == "quick" else 2
    first, second, alone, warmup = [], [], [], []
    for r in range(rounds):
        cache = env.tmp / f"cold-cache-{r}"
        first.append(_run(train, cache))
        second.append(_run(train, cache))
        if env.settings.name != "quick":
            alone.append(_run(train, env.tmp / f"cold-cache-alone-{r}", NNCLI_PARALLEL_COMPILE="0"))
    full = []
    if env.settings.name != "quick":
        regularized = [*train[:-5], "--config", str(PIMA_CONFIG.with_name("pima_regularized.yaml")), *train[-3:]]
        full.append(_run(regularized, env.tmp / "cold-cache-full"))
        warmup.append(_run([*nncli, "warmup"], env.tmp / "cold-cache-warmup"))
    rows = [["first `nncli train`, empty cache (compiles the float32 kernels, on two cores)", Stat(first)],
            ["the same command again, cache filled", Stat(second)]]
    if alone:
        rows.append(["first `nncli train`, empty cache, compiled in one process (`NNCLI_PARALLEL_COMPILE=0`)",
                     Stat(alone)])
    if full:
        rows.append(["first `nncli train` with configs/pima_regularized.yaml, empty cache (full kernels: batch "
                     "norm, input dropout)", Stat(full)])
    if warmup:
        rows.append(["`nncli warmup` on an empty cache (both variants and the two-core kernel, float32 and float64)",
                     Stat(warmup)])
    body = (f"`{' '.join(['nncli', *train[len(nncli):]])}` with `NNCLI_CACHE_DIR` set to a new empty folder, "
            f"{rounds} round(s); wall seconds of the whole process.\n\n"
            + md_table(["what", "seconds"], rows))
    compile_s = Stat(first).median - Stat(second).median
    first_s = Stat(first).median
    limits = (f"**7 (cold start).** The first `nncli train` on an empty cache takes {first_s:.1f} s "
              f"({'within' if first_s <= GOAL_S else 'over'} the {GOAL_S:.0f} s goal), ≈{compile_s:.1f} s of it compiling "
              "the plain training kernel: every option the Pima config uses is a run-time branch in it, so one "
              "compiled kernel serves every config of a dtype that needs no batch norm, gradient records, input "
              "augmentation, uncommon activation, loss other than bce, cross_entropy or mse, or optimizer other "
              "than sgd or adam (the full kernel, compiled for the others, has all of them). Later runs load the "
              "machine code from the cache folder. numba compiles one function at a time in a process, every "
              "jitted function into a module of its own, and links callees into their callers, so code deep in "
              "the call tree (train_epoch → forward → activation_forward → activate_rows) is turned into machine "
              "code once per level, and optimized again at every level but the top one: train_epoch links its "
              "callees' optimized code as it is (reoptimize_callees=False in nncli.kernels; 0.7-1.2 s less), and "
              "kernels that only other kernels call get no wrappers for calls from Python (about 10% less "
              "work). Compiling is single-threaded, so on a cold cache nncli splits it over two processes "
              "(nncli.kernels.precompile): a helper process compiles the forward pass, the clipping and the "
              "deferred weight gradient (and the prediction kernel of a run that validates) while the training "
              "process compiles the loss, the backward pass, the optimizer step and the weight penalty; train_epoch, "
              "compiled last, takes the helper's half from the cache."
              + (f" Compiled in one process, the same first train takes {Stat(alone).median:.1f} s." if alone else "")
              + " Inlining more levels (the forward and backward passes, the activation) did not make it faster: "
              "numba's inliner costs about what it saves.")
    return [Section(TITLE, body, limits)]
