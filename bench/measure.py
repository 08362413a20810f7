"""Helpers of the data-path workloads (scaling.py, streaming.py): generated CSV files and commands
timed as a user runs them, with the peak memory of that one process."""

import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TILE_ROWS = 100_000  # distinct rows; larger files repeat them (the parser's work is the same)


@dataclass
class Run:
    seconds: float  # wall time, start to exit
    peak_mb: float  # the process's peak resident memory (ru_maxrss), in MiB
    stdout: str


# A small process that runs the command and reports its wall time and peak memory. Measured from
# the bench process itself, a child's ru_maxrss would start at the bench's own size: Linux carries
# the parent's high-water mark into a forked child across exec.
LAUNCHER = ("import json, os, subprocess, sys, time; start = time.perf_counter(); child = subprocess.Popen(sys.argv[2:]); "
            "_, status, usage = os.wait4(child.pid, 0); child.returncode = os.waitstatus_to_exitcode(status); "
            "open(sys.argv[1], 'w').write(json.dumps([time.perf_counter() - start, usage.ru_maxrss, child.returncode]))")


def run(cmd: list[str], cwd: Path, pythonpath: Path) -> Run:
    """Run cmd to its end; its wall time and its own peak memory (ru_maxrss of that process).

    PYTHONPATH starts with `pythonpath`, so that a work tree's bench measures its own nncli even
    when the installed console script points at another checkout.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="nncli-run-") as tmp:
        report = Path(tmp) / "run.json"
        done = subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *map(str, cmd)], cwd=cwd, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0 or not report.exists():
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        seconds, maxrss_kib, code = json.loads(report.read_text())
        if code != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {code}: {done.stderr.strip()[-2000:]}")
    return Run(seconds, maxrss_kib / 1024, done.stdout)


def write_csv(path: Path, rows: int, columns: int, target: str, seed: int = 0) -> Path:
    """A CSV with a header, `columns` float features x0.. (7 significant digits, as float32 prints)
    and target y: "binary" (0/1 from a linear rule) or "regression" (tanh of it, plus noise).
    TILE_ROWS seeded rows are made once and repeated up to `rows`."""
    rng = np.random.default_rng(seed)
    tile = min(rows, TILE_ROWS)
    X = rng.standard_normal((tile, columns)).astype(np.float32)
    z = X @ (rng.standard_normal(columns).astype(np.float32) / np.float32(np.sqrt(columns)))
    if target == "binary":
        y, fmt = (z > 0).astype(np.float32), ["%.7g"] * columns + ["%d"]
    else:
        y, fmt = np.tanh(z) + np.float32(0.1) * rng.standard_normal(tile, dtype=np.float32), ["%.7g"] * (columns + 1)
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([X, y]), delimiter=",", fmt=fmt)
    text = buf.getvalue()
    with open(path, "w", encoding="ascii") as f:
        f.write(",".join([f"x{j}" for j in range(columns)] + ["y"]) + "\n")
        f.writelines(text for _ in range(rows // tile))
        rest = rows % tile
        if rest:
            f.write("".join(text.splitlines(keepends=True)[:rest]))
    return path


READ_CSV = ("import sys, time; import pandas; start = time.perf_counter(); frame = pandas.read_csv(sys.argv[1]); "
            "print(time.perf_counter() - start, len(frame))")
