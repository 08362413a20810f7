"""nncli's benchmark: `python -m bench --quick` (under 2 minutes) or `python -m bench --full`.

Compares nncli with PyTorch and scikit-learn (both optional: skipped with a message when not
importable) on the lecture's Pima workload, a batch-size sweep and a large synthetic workload,
measures the data path (training from 10 thousand to 2 million rows; streaming predictions against
pandas.read_csv alone) and the first run on an empty kernel cache, prints a table per workload and writes bench/RESULTS.md. It installs nothing.

harness.py times, alternates and summarises; workloads.py defines the workloads (scaling.py and
streaming.py the data-path ones, cold.py the cold start, with measure.py's generated files and per-process memory); lecture_torch.py
and lecture_sklearn.py are the standalone lecture scripts (timed whole, and reporting their own
training-loop time). Quick mode gives each workload a time budget, so on a busy machine it may
run fewer than 3 rounds, and says so in the report.
"""
