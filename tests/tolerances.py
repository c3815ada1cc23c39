"""How the reference tests compare results across machines: what must be bit-identical, what agrees to
a tolerance, and why (docs/reproducibility.md says the same for users).

The committed references (``tests/reference/``) are made on one machine and checked on any other:
another x86-64 CPU (AVX2 only, or AVX-512 with native bf16) or an ARM one. BLAS, LAPACK and PyTorch
pick kernels for the CPU's instruction set at run time, and those kernels sum in different orders, so
any result that goes through a matrix product, a reduction or an eigen-solver may differ in its last
bits. Precision is pinned to fp32 in config/test.yaml (``finetune.precision``, ``logme.precision``), so
no machine trains or extracts features in bf16. Then:

exact (bit-identical on every machine)
    - what no floating-point kernel touches: names, file layouts, counts, graph structure, which
      estimators apply, the padding of the eigenvalue features (zeros written by ``pad``);
    - results of exactly rounded elementwise operations on identical inputs: the merge
      (``(1 - r) * a + r * b`` per element, each operation rounded once, in the same order everywhere);
    - metrics that count discrete predictions (accuracy, F1 of labels, Matthews correlation, SQuAD's
      exact match and its F1 of predicted spans): the same predictions give the same numbers. They are
      compared exactly; a prediction that flips on another machine would be a logit margin below the
      rounding, which the tiny run does not have (and which would deserve a look).

to a tolerance
    - eigenvalue features: :data:`EIGEN_RTOL` of the head's spectral scale (its largest |lambda|), after
      matching the two multisets of eigenvalues (canonical order is by real part, and a rounding
      difference may swap two eigenvalues whose real parts are within it, e.g. a conjugate pair);
      measured: at most 1.4e-5 between AVX-512 and AVX2 kernels (MKL_ENABLE_INSTRUCTIONS=AVX2,
      ATEN_CPU_CAPABILITY=avx2) on the six tiny families, whose heads are 8 x 8 products of 32-wide
      weights; float32's unit roundoff is 6e-8, and eigenvalues of these non-normal products amplify
      perturbations by their condition number;
    - LogME and the other estimators: :data:`RTOL` relative plus :data:`ATOL` absolute; measured
      between a one-thread AVX-512 run and a two-thread AVX2 run of the tiny configuration: LogME
      2e-8, the iterative linear probe 5e-6 relative;
    - what a fine-tuned model's continuous outputs give (losses, Pearson / Spearman of regression
      outputs, the tables and the report built from them): :data:`FINETUNED_RTOL`. A fine-tune carries
      the rounding difference through every step, so these drift more than a single product does
      (measured in the same pair of runs: Pearson on stsb 4.9e-5 relative).

A change that alters the science (another head order, a merge ratio moved by 1e-3, a weight changed by
1e-3, a LogME formula) moves these values by orders of magnitude more than the tolerances, so it still
fails the reference tests.
"""

from __future__ import annotations

import math
import re

import numpy as np

EIGEN_RTOL = 2e-4  # eigenvalues: x the head's spectral scale (measured across kernels: 1.4e-5 at most)
RTOL = 1e-4  # LogME and the estimators (measured across kernels and threads: 5e-6 at most): relative ...
ATOL = 1e-6  # ... plus absolute, for values near zero
FINETUNED_RTOL = 1e-3  # losses and correlations of a fine-tuned model's outputs (measured: 4.9e-5 at most)

# Metrics of discrete predictions: compared exactly (see the module docstring).
_EXACT_METRIC = re.compile(r"(^|_)(accuracy|acc|f1|matthews_correlation|exact|total)$")


def is_exact_metric(key: str) -> bool:
    """Whether a metric key counts discrete predictions (compared exactly)."""
    return bool(_EXACT_METRIC.search(key))


def close(a: float, b: float, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """``|a - b| <= atol + rtol * |b|`` (NaN equals NaN: a not-applicable score stays one)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= atol + rtol * abs(b)


def compare_values(got, ref, where: str = "", exact_key=lambda key: False, rtol: float = RTOL) -> list[str]:
    """Differences between two JSON-like values: structure, strings, ints and bools exactly; floats
    with :func:`close` (``rtol``) unless ``exact_key(key)`` says the key is exact. Returns problems
    (empty: equal)."""
    if isinstance(ref, dict):
        if not isinstance(got, dict) or list(got) != list(ref):
            return [f"{where}: keys {list(got) if isinstance(got, dict) else type(got).__name__} != {list(ref)}"]
        return [p for k in ref for p in compare_values(got[k], ref[k], f"{where}/{k}", exact_key, rtol)]
    if isinstance(ref, list):
        if not isinstance(got, list) or len(got) != len(ref):
            return [f"{where}: {got!r:.80} != {ref!r:.80}"]
        return [p for i, (g, r) in enumerate(zip(got, ref, strict=True))
                for p in compare_values(g, r, f"{where}[{i}]", exact_key, rtol)]
    if isinstance(ref, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        key = where.rsplit("/", 1)[-1]
        if exact_key(key) and not (got == ref or (math.isnan(got) and math.isnan(ref))):
            return [f"{where}: {got!r} != {ref!r} (exact: a metric of discrete predictions)"]
        if not close(float(got), ref, rtol):
            return [f"{where}: {got!r} != {ref!r} (rtol {rtol}, atol {ATOL})"]
        return []
    if got != ref or type(got) is not type(ref):
        return [f"{where}: {got!r:.80} != {ref!r:.80}"]
    return []


def spectrum(values) -> np.ndarray:
    """Eigenvalues (complex) of a feature vector of interleaved (re, im) pairs."""
    v = np.asarray(values, dtype=np.float64)
    return v[0::2] + 1j * v[1::2]


def canonical(ev: np.ndarray) -> bool:
    """Whether ``ev`` is in the features' canonical order: real part descending, ties by imaginary part
    ascending (:func:`ptmbench.stages.graph.sort_eigenvalues`)."""
    keys = list(zip(-ev.real, ev.imag, strict=True))
    return keys == sorted(keys)


def compare_features(got: dict, ref: dict, where: str = "") -> list[str]:
    """Eigenvalue features ``{node: values}`` against a reference ``{node: values}`` that holds each
    node's eigenvalues (interleaved, without the padding). Exact: the node names and their order, the
    length (``len(got[node])`` may be longer: the rest must be zeros, exactly), the canonical order of
    ``got``. Within :data:`EIGEN_RTOL` x the head's spectral scale: each eigenvalue, after matching
    the two spectra (the assignment that minimises the largest distance)."""
    from scipy.optimize import linear_sum_assignment

    if list(got) != list(ref):
        return [f"{where}: feature keys differ: {len(got)} keys, first {list(got)[:3]}; reference {len(ref)}, "
                f"first {list(ref)[:3]}"]
    problems = []
    for key, r in ref.items():
        g = np.asarray(got[key], dtype=np.float64)
        n = len(r)
        if len(g) < n or np.any(g[n:] != 0):
            problems.append(f"{where}/{key}: {len(g)} values, not {n} eigenvalue parts and zero padding")
            continue
        eg, er = spectrum(g[:n]), spectrum(r)
        if not canonical(eg):
            problems.append(f"{where}/{key}: eigenvalues not in canonical order")
        dist = np.abs(eg[:, None] - er[None, :])
        rows, cols = linear_sum_assignment(dist)
        scale = max(np.abs(er).max(), np.finfo(np.float32).tiny)
        worst = dist[rows, cols].max() / scale
        if worst > EIGEN_RTOL:
            problems.append(f"{where}/{key}: eigenvalues differ by {worst:.2e} of the spectral scale "
                            f"(tolerance {EIGEN_RTOL})")
    return problems


def eigenvalue_parts(features: dict, head_dim: int) -> dict:
    """``{node: the first 2 x head_dim values}`` (a head's eigenvalues, interleaved; the rest is
    padding) of a features dict (tensors or lists): what the references store."""
    return {k: [float(x) for x in list(v)[:2 * head_dim]] for k, v in features.items()}


_NUMBER = re.compile(r"-?\d+(?:\.(\d+))?(?:e[-+]?\d+)?")


def compare_rows(got: list[dict], ref: list[dict], where: str = "", rtol: float = FINETUNED_RTOL) -> list[str]:
    """Two CSV tables read as rows of strings: the same columns and rows; a cell that reads as a number
    in both within ``rtol``, every other cell exactly."""
    if len(got) != len(ref) or (ref and list(got[0]) != list(ref[0])):
        return [f"{where}: {len(got)} rows / columns {list(got[0]) if got else []} != {len(ref)} rows / "
                f"{list(ref[0]) if ref else []}"]
    problems = []
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        for col, want in r.items():
            try:
                ok = close(float(g[col]), float(want), rtol)
            except ValueError:
                ok = g[col] == want
            if not ok:
                problems.append(f"{where} row {i} {col}: {g[col]!r} != {want!r}")
    return problems


def compare_text(got: str, ref: str, where: str = "", rtol: float = FINETUNED_RTOL) -> list[str]:
    """Two texts with numbers in them (a summary): the words exactly, each number within ``rtol`` or
    one unit of its last printed digit (a value on a rounding boundary may print either way)."""
    g_nums, r_nums = _NUMBER.findall(got), list(_NUMBER.finditer(ref))
    if _NUMBER.sub("#", got) != _NUMBER.sub("#", ref) or len(g_nums) != len(r_nums):
        return [f"{where}: the text differs beyond its numbers"]
    problems = []
    for g, m in zip(_NUMBER.finditer(got), r_nums, strict=True):
        a, b = float(g.group()), float(m.group())
        unit = 10.0 ** -len(m.group(1)) if m.group(1) else 0.0
        if "e" in m.group().lower():
            unit = 0.0
        if not (abs(a - b) <= unit * 1.0000001 or close(a, b, rtol)):
            problems.append(f"{where}: {g.group()} != {m.group()}")
    return problems
