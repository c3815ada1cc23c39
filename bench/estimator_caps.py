"""Rank stability of the subsampled estimators at their caps and at half of them (why the caps stay).

    python bench/estimator_caps.py            # 8 synthetic PTMs, 20,000 x 768, 3 classes, seeds 0-2

Eight feature matrices like bench/logme.py's whose class means are 0.16 ... 0.30 apart (close in
quality, so that the ranking is hard; the true order is the separation). Each subsampled estimator
(linear_probe, knn, nleep, sfda) scores every matrix at its default cap and at half of it, with three
subsample seeds. Printed per estimator and cap: Kendall tau of the scores with the true order (one per
seed), the mean standard deviation over seeds, and the mean CPU time of one score.
"""

from __future__ import annotations

import os
import sys
import time

CASES = {"linear_probe": (1000, 500), "knn": (2000, 1000), "nleep": (1000, 500), "sfda": (2000, 1000)}


def features(N, D, sep, seed, C=3):
    import numpy as np

    rng = np.random.default_rng(100 + seed)
    y = rng.integers(0, C, N)
    means = np.zeros((C, D))
    means[:, :8] = np.random.default_rng(7).standard_normal((C, 8)) * sep
    F = rng.standard_normal(D) * 2 + means[y] + rng.standard_normal((N, D)) * (1.0 + np.arange(D)) ** -0.5
    return F.astype(np.float32), y


def main(N=20000, D=768, seeds=(0, 1, 2)):
    import numpy as np
    from scipy.stats import kendalltau

    from ptmbench.estimators import transferability as tr

    seps = np.linspace(0.16, 0.30, 8)
    scores = {(n, cap): np.zeros((len(seeds), len(seps))) for n, caps in CASES.items() for cap in caps}
    cpu = dict.fromkeys(scores, 0.0)
    for j, sep in enumerate(seps):
        F, y = features(N, D, sep, j)
        st = tr.Stats(F, y, "mnli")
        for (name, cap), S in scores.items():
            for i, seed in enumerate(seeds):
                t0 = time.process_time()
                S[i, j] = tr.ESTIMATORS[name](F, y, "mnli", stats=st, max_examples=cap, seed=seed)
                cpu[name, cap] += time.process_time() - t0
    print(f"{'estimator':>13} {'cap':>5} {'tau with the true order (per seed)':>36} {'sd over seeds':>14} {'cpu s':>6}")
    for (name, cap), S in scores.items():
        taus = " ".join(f"{kendalltau(seps, row).statistic:.2f}" for row in S)
        print(f"{name:>13} {cap:>5} {taus:>36} {S.std(axis=0).mean():>14.4f} "
              f"{cpu[name, cap] / S.size:>6.3f}")


if __name__ == "__main__":
    if "numpy" in sys.modules:
        raise SystemExit("run as a script: BLAS threads must be set before numpy loads")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    main()
