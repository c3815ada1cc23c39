"""Time of each estimator module of ``ptmbench.estimators`` (GBC, PARC, LFC, silhouette, PACTran,
ETran, NCTI) and of LogME alone, on the same features, one after the other.

    python bench/estimators_more.py --threads 1 --repeats 3    # 100,000 x 768, 3 classes (seeded)
    python bench/estimators_more.py --size 20000x768 --json out.json

Features: those of bench/logme.py and bench/estimators.py (float32, a large common offset, an
anisotropic spectrum, 3 classes whose means differ in a few directions); the regression-capable
estimators are also timed on a regression target made from the same features (``--regression``).
Each computation runs ``--repeats`` times in turn (round-robin, so a load change hits all alike);
reported per computation: the score, the median and minimum wall time and the median CPU time of
this process (with one BLAS thread, the wall time of an idle machine), and the load average.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

NAMES = ("gbc", "parc", "lfc", "silhouette", "pactran", "etran", "ncti")


def bench_features(N, D, seed=0):
    spec = importlib.util.spec_from_file_location("bench_logme", Path(__file__).with_name("logme.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.features(N, D, seed=seed)


def run(N, D, repeats=3, regression=False):
    import numpy as np

    from ptmbench.estimators import logme

    F, labels = bench_features(N, D)
    jobs = {"logme": lambda: float(logme.logme(F, logme.targets(labels, "mnli")).mean())}
    for name in NAMES:
        fn = getattr(importlib.import_module(f"ptmbench.estimators.{name}"), name)
        jobs[name] = (lambda fn=fn: fn(F, labels))
        if regression and "regression" in importlib.import_module(f"ptmbench.estimators.{name}").KINDS:
            t = F[:, :8].astype(np.float64).sum(axis=1) + labels
            jobs[f"{name} (regression)"] = (lambda fn=fn, t=t: fn(F, t))
    wall = {k: [] for k in jobs}
    cpu = {k: [] for k in jobs}
    score, load = {}, []
    load_before = os.getloadavg()[0]
    for _ in range(max(1, repeats)):
        for name, job in jobs.items():
            w0, c0 = time.perf_counter(), time.process_time()
            score[name] = job()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
        load.append(os.getloadavg()[0])
    return {"N": N, "D": D, "repeats": max(1, repeats), "load_before": load_before,
            "load_median": statistics.median(load), "load_after": os.getloadavg()[0],
            "results": {k: {"score": float(score[k]), "median_s": statistics.median(wall[k]), "min_s": min(wall[k]),
                            "cpu_s": statistics.median(cpu[k]), "wall": wall[k]} for k in jobs}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100000x768", help="NxD")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (set before numpy loads)")
    ap.add_argument("--repeats", type=int, default=3, help="timings of each, round-robin")
    ap.add_argument("--regression", action="store_true", help="also time the regression-capable ones on a target")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if "numpy" in sys.modules:
        raise SystemExit("run bench/estimators_more.py as a script: BLAS threads must be set before numpy loads")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    N, D = (int(v) for v in args.size.lower().split("x"))
    r = run(N, D, args.repeats, args.regression)
    print(f"N x D = {N:,} x {D}, 3 classes, {args.threads} BLAS thread(s), {r['repeats']} repeats; load average "
          f"{r['load_before']:.1f} before, {r['load_median']:.1f} during (median), {r['load_after']:.1f} after "
          f"({os.cpu_count()} cores)")
    print(f"{'estimator':>24} {'score':>11} {'median s':>9} {'min s':>7} {'cpu s':>7}")
    for name, e in r["results"].items():
        print(f"{name:>24} {e['score']:>11.4f} {e['median_s']:>9.2f} {e['min_s']:>7.2f} {e['cpu_s']:>7.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, **r}, fh, indent=2)
    return r


if __name__ == "__main__":
    main()
