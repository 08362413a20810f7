"""python -m bench [--quick | --full] [--only pima,sweep,large,aids,scaling,stream,cold] [--out FILE]"""

import argparse
import compileall
import datetime
import sys
import time
import traceback
from pathlib import Path

from bench.harness import OtherLoad, Section, md_table, machine
from bench.workloads import FULL, QUICK, WORKLOADS, make_env, temp_folder

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description="Benchmark nncli against PyTorch and "
                                 "scikit-learn; writes bench/RESULTS.md.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 rounds (fewer on a busy machine), smaller sizes, under 2 minutes (default)")
    mode.add_argument("--full", action="store_true", help="5 repeats, full sizes")
    ap.add_argument("--only", help=f"comma-separated subset of: {', '.join(WORKLOADS)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="report file (default: bench/RESULTS.md)")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"--only: unknown workload(s) {', '.join(unknown)}")
    return FULL if args.full else QUICK, names, args.out


def byte_compile_nncli() -> None:
    """Write nncli's bytecode cache, as `pip install` does for a regular install.

    An editable install is never byte-compiled, and with PYTHONDONTWRITEBYTECODE set (as on these
    machines) no run writes the cache either: every `nncli` process would then compile its own
    sources, about 0.05 s that an installed nncli does not pay.
    """
    import nncli

    compileall.compile_dir(Path(nncli.__file__).parent, quiet=1)


def run_workload(name, env) -> tuple[list[Section], bool]:
    """The workload's sections, each noting how busy the rest of the machine was meanwhile."""
    with OtherLoad() as other:
        try:
            sections, ok = WORKLOADS[name](env), True
        except Exception as exc:  # noqa: BLE001 - report the failure, go on with the other workloads
            traceback.print_exc()
            sections, ok = [Section(name, f"**FAILED**: `{type(exc).__name__}: {exc}`")], False
    if other.share is not None:
        for section in sections:
            section.body += f"\n\n*While this workload ran, other processes used {100 * other.share:.0f}% of the machine's CPU time.*"
    return sections, ok


def report(settings, sections, notes: list, started: str, seconds: float, other: float | None) -> str:
    busy = "" if other is None else f" Other processes used {100 * other:.0f}% of the machine's CPU time meanwhile."
    parts = [
        "# nncli benchmark results",
        f"Written by `python -m bench --{settings.name}` on {started}; the run took {seconds:.0f} s.{busy}",
        "Other work on this 2-core machine slows multi-threaded code most: a parallel region waits for a "
        "descheduled partner thread (PyTorch's intra-op threads, every BLAS call of two threads). Each workload "
        "notes how busy the rest of the machine was; in a busy run the *min* of a range is the figure closest to "
        "a quiet machine, and ratios against multi-threaded systems can be far off.",
        "Every figure is the **median (min–max)** over "
        f"{settings.repeats} rounds; in each round every system of a workload runs once, in turn "
        "(A B C A B C ...). A *time ratio X/nncli* is X's time over nncli's time in the same round "
        "(median and range over rounds): above 1, nncli is faster.",
        "Before the workloads the bench byte-compiles nncli's modules, as `pip install` does; an editable "
        "install skips that step, and so would every timed process without it.",
        *(f"*Skipped: {note}.*" for note in notes),
        "## Machine",
        md_table(["what", "value"], [list(r) for r in machine()]),
    ]
    for section in sections:
        parts += [f"## {section.title}", section.body]
    limits = [s.limits for s in sections if s.limits]
    if limits:
        parts += ["## What limits each workload",
                  "Generated from this run's numbers (so it is re-derived on every run)."] + limits
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> int:
    settings, names, out = parse(argv)
    start = time.perf_counter()
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"nncli bench, {settings.name} mode: {', '.join(names)}", flush=True)
    sections, ok = [], True
    byte_compile_nncli()
    with OtherLoad() as other, temp_folder() as tmp:
        env = make_env(settings, Path(tmp))
        for message in env.skipped:
            print(f"note: {message}", flush=True)
        for name in names:
            t0 = time.perf_counter()
            done, good = run_workload(name, env)
            ok &= good
            sections += done
            for section in done:
                print(f"\n## {section.title}  [{time.perf_counter() - t0:.0f} s]\n\n{section.body}\n", flush=True)
    seconds = time.perf_counter() - start
    out.write_text(report(settings, sections, env.skipped, started, seconds, other.share), encoding="utf-8")
    print(f"wrote {out} ({seconds:.0f} s in all)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
