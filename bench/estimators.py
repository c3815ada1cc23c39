"""Time of every transferability estimator together against LogME alone, on the same features, in one run.

    python bench/estimators.py --threads 1 --repeats 7     # N x D = 100,000 x 768, 3 classes (synthetic, seeded)
    python bench/estimators.py --size 20000x768 --threads 2 --repeats 3 --json out.json

Features: bench/harness.py's, as bench/logme.py's (float32, a large common offset, an anisotropic spectrum, 3 classes
whose means differ in a few directions). Two computations, timed in turn ``--repeats`` times (the
order alternates: A B, B A, ... so that a load that rises or falls during the run hits both alike):

- LogME alone: ``ptmbench.estimators.logme.logme(F, targets)``;
- all: ``ptmbench.estimators.transferability.score_all`` with every estimator of ``ESTIMATORS`` at its default
  parameters: what the ``logme`` job computes (LogME's score comes from it; one pass over F).

The machine may be shared, so one timing proves little. Reported per computation: the median and the
minimum of the wall-clock times and the median CPU time of this process (with one BLAS thread the CPU
time is the wall time of an idle machine: time spent waiting for a core does not count); the ratios
all / LogME of the medians, of the minimums and of the median CPU times (target <= 2, issue 22); the load
average (1 minute) before, during (median) and after. Each estimator's score and median time (the
shared pass is charged to the first estimator that needs it, LogME). Checks that score_all's LogME
equals LogME alone to 1e-12 relative.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from harness import blas_threads, features, result_path, write_result


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run(N, D, repeats=5, task="mnli"):
    from ptmbench.estimators import logme, transferability

    F, labels = features(N, D)
    Y = logme.targets(labels, task)
    jobs = {"logme": lambda: float(logme.logme(F, Y).mean()),
            "all": lambda: transferability.score_all(F, labels, task)}
    wall, cpu, load, per = {k: [] for k in jobs}, {k: [] for k in jobs}, [], []
    load_before = os.getloadavg()[0]
    for r in range(max(1, repeats)):
        for name in (("logme", "all") if r % 2 == 0 else ("all", "logme")):
            out, w, c = _timed(jobs[name])
            wall[name].append(w)
            cpu[name].append(c)
            if name == "all":
                per.append(out)
            else:
                alone = out
        load.append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    low = {k: min(v) for k, v in wall.items()}
    rel = abs(per[-1]["logme"]["score"] - alone) / abs(alone)
    if rel > 1e-12:
        raise SystemExit(f"score_all's LogME {per[-1]['logme']['score']} differs from LogME alone {alone} "
                         f"by {rel:.1e} relative")
    estimators = {name: {"score": e["score"], "time_s": statistics.median(p[name]["time_s"] for p in per)}
                  for name, e in per[-1].items()}
    return {"N": N, "D": D, "task": task, "repeats": len(per),
            "logme_s": med["logme"], "all_s": med["all"], "ratio": med["all"] / med["logme"],
            "logme_min_s": low["logme"], "all_min_s": low["all"], "ratio_min": low["all"] / low["logme"],
            "logme_cpu_s": med_cpu["logme"], "all_cpu_s": med_cpu["all"],
            "ratio_cpu": med_cpu["all"] / med_cpu["logme"],
            "load_before": load_before, "load_median": statistics.median(load), "load_after": os.getloadavg()[0],
            "logme_alone": alone, "logme_rel_diff": rel, "estimators": estimators, "wall": wall, "cpu": cpu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100000x768", help="NxD")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (set before numpy loads)")
    ap.add_argument("--repeats", type=int, default=5, help="timings of each, interleaved")
    ap.add_argument("--json", help="the JSON written (default: bench/results/estimators.json)")
    args = ap.parse_args(argv)
    blas_threads(args.threads, "bench/estimators.py")
    N, D = (int(v) for v in args.size.lower().split("x"))
    r = run(N, D, args.repeats)
    print(f"N x D = {N:,} x {D}, 3 classes, {args.threads} BLAS thread(s), {r['repeats']} interleaved repeats; "
          f"load average {r['load_before']:.1f} before, {r['load_median']:.1f} during (median), "
          f"{r['load_after']:.1f} after ({os.cpu_count()} cores)")
    print(f"{'estimator':>13} {'score':>10} {'median s':>9}")
    for name, e in r["estimators"].items():
        print(f"{name:>13} {e['score']:>10.4f} {e['time_s']:>9.3f}")
    label = {"logme": "LogME alone", "all": f"all {len(r['estimators'])}"}
    for key in ("logme", "all"):
        print(f"{label[key]:>11}: wall "
              + " ".join(f"{t:.2f}" for t in r["wall"][key]) + " s; cpu " + " ".join(f"{t:.2f}" for t in r["cpu"][key]))
    print(f"LogME alone {r['logme_s']:.2f} s, all {r['all_s']:.2f} s (medians): ratio {r['ratio']:.2f}; "
          f"of the minimums ({r['logme_min_s']:.2f}, {r['all_min_s']:.2f} s) {r['ratio_min']:.2f}; "
          f"of the median CPU times ({r['logme_cpu_s']:.2f}, {r['all_cpu_s']:.2f} s) {r['ratio_cpu']:.2f} "
          f"(target <= 2); score_all's LogME - LogME alone: {r['logme_rel_diff']:.1e} relative")
    write_result(result_path("estimators", args.json), {"threads": args.threads, **r})
    return r


if __name__ == "__main__":
    main()
