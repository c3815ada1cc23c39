"""Speed of our LogME against the straightforward computation, on GLUE-sized features, in one run.

    python bench/logme.py                       # N x D = 100,000 x 768 and 400,000 x 1,024 (MNLI-sized)
    python bench/logme.py --sizes 20000x768 --threads 2 --json out.json   # default: bench/results/logme.json

Features are float32 with a realistic structure: a large common offset (transformer features are not
centred), an anisotropic spectrum and 3 classes whose means differ in a few directions. Both methods
score the same features and one-vs-rest targets:

- ours (``ptmbench.estimators.logme.logme``): one chunked float64 pass for F^T F and F^T Y, eigendecomposition,
  fixed point on D-vectors for all targets at once;
- baseline (``ptmbench.estimators.logme.logme_baseline``): F cast to float64, SVD of F^T F, U = F V S^-1 formed
  explicitly, per-target fixed point with N-sized vectors (residual y - F m at every step).

Reports the best time of each over ``--repeats`` interleaved runs (the machine may be shared), the ratio, and the largest relative difference of the per-target evidence.
"""

from __future__ import annotations

import argparse
import time

from harness import blas_threads, features, result_path, write_result


def run(N, D, repeats=1):
    import numpy as np

    from ptmbench.estimators import logme

    F, labels = features(N, D)
    Y = logme.targets(labels, "mnli")

    times, scores = {"ours": [], "baseline": []}, {}
    for _ in range(max(1, repeats)):  # interleaved, best of `repeats`: the machine may be shared
        for name, fn in (("ours", logme.logme), ("baseline", logme.logme_baseline)):
            t0 = time.perf_counter()
            scores[name] = fn(F, Y)
            times[name].append(time.perf_counter() - t0)
    ours, base = scores["ours"], scores["baseline"]
    t_ours, t_base = min(times["ours"]), min(times["baseline"])
    rel = float(np.max(np.abs(ours - base) / np.abs(base)))
    return {"N": N, "D": D, "targets": Y.shape[1], "ours_s": t_ours, "baseline_s": t_base,
            "ratio": t_base / t_ours, "max_rel_diff": rel, "score": float(ours.mean()),
            "score_baseline": float(base.mean())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000x768,400000x1024", help="comma-separated NxD")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (set before numpy loads)")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many (interleaved) timings")
    ap.add_argument("--json", help="the JSON written (default: bench/results/logme.json)")
    args = ap.parse_args(argv)
    blas_threads(args.threads, "bench/logme.py")
    rows = []
    print(f"{'N':>9} {'D':>5} {'ours s':>8} {'baseline s':>11} {'ratio':>6} {'max rel diff':>13}  score")
    for size in args.sizes.split(","):
        N, D = (int(v) for v in size.lower().split("x"))
        r = run(N, D, args.repeats)
        rows.append(r)
        print(f"{N:>9} {D:>5} {r['ours_s']:>8.2f} {r['baseline_s']:>11.2f} {r['ratio']:>6.2f} "
              f"{r['max_rel_diff']:>13.2e}  {r['score']:.6f}", flush=True)
    write_result(result_path("logme", args.json), {"threads": args.threads, "results": rows})
    return rows


if __name__ == "__main__":
    main()
