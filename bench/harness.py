"""The measuring machinery shared by every workload: timing, alternation, statistics, tables."""

import importlib
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable


def timed(fn: Callable[[], object]) -> float:
    """Seconds that one call of fn takes (time.perf_counter)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Timings(dict):
    """name -> seconds per round, plus a note when a time budget cut the rounds short."""

    note = ""


# A pause before each system's run: OpenBLAS's idle threads spin for about 2^28 cycles (0.1 s)
# after a call before they sleep, and on two cores a spinning thread of the previous system took a
# fifth to a quarter of the speed of a two-thread run that followed at once (83-91 against
# 110-115 GFLOP/s in workload 3's kernel).
SETTLE_S = 0.3


def alternate(systems: dict[str, Callable[[], float | dict]], repeats: int, label: str = "",
              budget: float | None = None) -> Timings:
    """Run every system once per round, in turn (A B C A B C ...), for `repeats` rounds, each
    after a pause of SETTLE_S.

    Each callable does its own untimed setup and returns the seconds of its timed part, or a dict
    of named seconds when one run yields several figures, so the systems share the machine's
    state (caches, clocks, other load) as evenly as rounds allow. With a budget (seconds), no
    new round starts that would likely end past it; at least one round always runs.
    """
    seconds, start = Timings(), time.perf_counter()
    for r in range(repeats):
        for name, run in systems.items():
            time.sleep(SETTLE_S)
            result = run()
            for key, value in (result.items() if isinstance(result, dict) else [(name, result)]):
                seconds.setdefault(key, []).append(value)
        elapsed = time.perf_counter() - start
        if label:
            print(f"  {label}: round {r + 1}/{repeats} done ({elapsed:.0f} s)", file=sys.stderr, flush=True)
        if budget is not None and r + 1 < repeats and elapsed * (r + 2) / (r + 1) > budget:
            seconds.note = (f"\n\n*Only {r + 1} of {repeats} rounds: the next would have overrun this workload's "
                            f"{budget:.0f} s budget in quick mode (the machine was busy, see below).*")
            break
    return seconds


@dataclass
class Stat:
    """A figure over repeats: median with min-max."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def __str__(self) -> str:
        return f"{num(self.median)} ({num(min(self.values))}–{num(max(self.values))})"

    def map(self, fn: Callable[[float], float]) -> "Stat":
        return Stat([fn(v) for v in self.values])


def ratio(numerator: list[float], denominator: list[float]) -> Stat:
    """Per-round ratios of two alternated systems' times (paired by round)."""
    return Stat([a / b for a, b in zip(numerator, denominator)])


def num(x: float) -> str:
    """Three significant digits, thousands separated, no exponent for everyday sizes."""
    if x == 0 or not (1e-3 <= abs(x) < 1e9):
        return f"{x:.3g}"
    digits = max(0, 2 - int(f"{abs(x):e}".split("e")[1]))
    return f"{round(x, digits):,.{digits}f}"


def md_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Section:
    """One workload's part of the report."""

    title: str
    body: str  # markdown: what was run, tables, notes
    limits: str = ""  # markdown: what limits this workload, from the numbers


def optional_import(name: str):
    """The module, or (None, why) when it cannot be imported: the bench then skips its systems."""
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # noqa: BLE001 - any failure to import means "skip"
        return None, f"{name} is not importable ({type(exc).__name__}: {exc}); its systems are skipped"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class OtherLoad:
    """Context manager: the share of the machine's CPU time that other processes used meanwhile.

    Busy time of all CPUs (/proc/stat) minus this process's and its waited-for children's CPU
    time, over wall time x cores. None where /proc/stat is missing.
    """

    share: float | None = None

    def __enter__(self):
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc):
        end = self._snapshot()
        if self._start and end:
            wall, busy, own = (e - s for e, s in zip(end, self._start))
            self.share = max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat", encoding="utf-8") as f:
                user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
        except (OSError, ValueError):
            return None
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
        return time.perf_counter(), busy, own


def machine() -> list[tuple[str, str]]:
    """(what, value) rows describing the machine and the software versions."""
    import numpy

    rows = [("CPU", cpu_model()), ("cores (os.cpu_count)", str(os.cpu_count())),
            ("OS", f"{platform.system()} {platform.release()}"),
            ("python", platform.python_version()), ("numpy", numpy.__version__)]
    for name in ("numba", "torch", "sklearn", "nncli"):
        module, _ = optional_import(name)
        rows.append((name, getattr(module, "__version__", "?") if module else "not importable"))
    for name, what in (("numpy", "numpy BLAS"), ("scipy", "scipy BLAS (numba's np.dot)")):
        blas = _blas(name)
        if blas:
            rows.append((what, blas))
    torch, _ = optional_import("torch")
    if torch is not None:
        rows.append(("torch threads", str(torch.get_num_threads())))
    return rows


def _blas(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
        info = module.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older releases have no dict mode
        return ""
