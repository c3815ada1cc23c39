"""Time of every transferability estimator together against LogME alone, on the same features, in one run.

    python bench/estimators.py                   # N x D = 100,000 x 768, 3 classes (synthetic, seeded)
    python bench/estimators.py --size 20000x768 --threads 2 --repeats 3 --json out.json

Features: those of bench/logme.py (float32, a large common offset, an anisotropic spectrum, 3 classes
whose means differ in a few directions). Two timings, interleaved, best of ``--repeats`` (the machine may
be shared):

- LogME alone: ``ptmbench.logme.logme(F, targets)``, today's stage computation;
- all: ``ptmbench.transferability.score_all`` with every estimator of ``ESTIMATORS`` at its default
  parameters (one shared pass over F, subsampled estimators at their default caps).

Prints each estimator's score and time (the shared pass is charged to the first estimator that needs it,
LogME), the ratio all / LogME (target <= 1.5), and checks that score_all's LogME equals LogME alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path


def bench_features(N, D, seed=0):
    spec = importlib.util.spec_from_file_location("bench_logme", Path(__file__).with_name("logme.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.features(N, D, seed=seed)


def run(N, D, repeats=2, task="mnli"):
    from ptmbench import logme, transferability

    F, labels = bench_features(N, D)
    times = {"logme": [], "all": []}
    for _ in range(max(1, repeats)):  # interleaved, best of `repeats`
        t0 = time.perf_counter()
        alone = float(logme.logme(F, logme.targets(labels, task)).mean())
        times["logme"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        results = transferability.score_all(F, labels, task)
        times["all"].append(time.perf_counter() - t0)
        if "best" not in locals() or times["all"][-1] == min(times["all"]):
            best = results
    t_logme, t_all = min(times["logme"]), min(times["all"])
    rel = abs(best["logme"]["score"] - alone) / abs(alone)
    if rel > 1e-9:
        raise SystemExit(f"score_all's LogME {best['logme']['score']} differs from LogME alone {alone}")
    return {"N": N, "D": D, "task": task, "logme_s": t_logme, "all_s": t_all, "ratio": t_all / t_logme,
            "logme_alone": alone, "estimators": best, "times": times}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100000x768", help="NxD")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (set before numpy loads)")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many (interleaved) timings")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if "numpy" in sys.modules:
        raise SystemExit("run bench/estimators.py as a script: BLAS threads must be set before numpy loads")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    N, D = (int(v) for v in args.size.lower().split("x"))
    r = run(N, D, args.repeats)
    print(f"N x D = {N:,} x {D}, 3 classes, {args.threads} BLAS threads, best of {args.repeats}")
    print(f"{'estimator':>13} {'score':>10} {'time s':>7}")
    for name, e in r["estimators"].items():
        print(f"{name:>13} {e['score']:>10.4f} {e['time_s']:>7.2f}")
    print(f"LogME alone {r['logme_s']:.2f} s, all estimators {r['all_s']:.2f} s, ratio {r['ratio']:.2f} "
          f"(target <= 1.5)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, **r}, fh, indent=2)
    return r


if __name__ == "__main__":
    main()
