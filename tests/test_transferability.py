"""Transferability estimators: each against an independent computation on small data (the paper's
formula written out with loops, or scikit-learn / SciPy), regression handling and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from conftest import class_features
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from ptmbench.data.tokenized import subsample
from ptmbench.estimators import logme
from ptmbench.estimators import transferability as tr


def _score(name, F, y, task="mnli", **params):
    return tr.ESTIMATORS[name](F, y, task, **params)


def test_registry_names_kinds_and_defaults():
    assert list(tr.ESTIMATORS) == ["logme", "hscore", "transrate", "nleep", "sfda", "knn", "linear_probe",
                                   "gbc", "parc", "lfc", "silhouette", "pactran", "etran", "ncti"]
    for name in ("logme", "knn", "linear_probe", "parc", "lfc", "etran"):
        assert tr.APPLIES[name] == tr.KINDS, name
    for name in ("hscore", "transrate", "nleep", "sfda", "gbc", "silhouette", "pactran", "ncti"):
        assert tr.APPLIES[name] == ("classification",), name
    assert tr.DEFAULTS["knn"]["k"] == 10 and tr.DEFAULTS["transrate"]["eps"] == 1e-4


# ----------------------------------------------------------------------------------- each estimator


@pytest.mark.parametrize("task", ["mnli", "rte", "stsb"])
def test_logme_is_ptmbench_logme(task):
    F, y = class_features(C=3 if task == "mnli" else 2)
    F = F.astype(np.float32)
    labels = y + 0.5 * np.random.default_rng(1).standard_normal(len(y)) if task == "stsb" else y
    want = logme.logme(F, logme.targets(labels, task)).mean()
    assert _score("logme", F, labels, task) == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.parametrize("chunk_bytes", [8 * 21 * 7, 1 << 26])  # 7-row chunks: classes split across chunks
def test_gram_pass_grouped_against_direct_sums(chunk_bytes):
    """The one pass: per class F_k^T F_k, F_k^T 1 and counts, F^T Y and sum ||x - mean||^4, whatever
    the chunking; a class absent from a chunk (or from the data) is fine."""
    F, y = class_features(103, 21, C=4)
    y[y == 2] = 3  # class 2 absent
    Y = np.random.default_rng(0).standard_normal((103, 2))
    p = logme.gram_pass(F.astype(np.float32), Y, y, 4, moments=True, chunk_bytes=chunk_bytes)
    X = F.astype(np.float32).astype(np.float64)
    for k in range(4):
        Xk = X[y == k]
        np.testing.assert_allclose(p.class_gram[k], Xk.T @ Xk, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(p.class_sum[k], Xk.sum(axis=0), rtol=1e-12, atol=1e-12)
    assert p.counts.tolist() == np.bincount(y, minlength=4).tolist()
    np.testing.assert_allclose(p.gram, X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(p.xty, X.T @ Y, rtol=1e-12)
    q4 = np.sum(np.sum((X - X.mean(axis=0)) ** 2, axis=1) ** 2)
    assert p.q4 == pytest.approx(q4, rel=1e-6)  # row norms in the features' float32 precision
    p64 = logme.gram_pass(X, Y, y, 4, moments=True, chunk_bytes=chunk_bytes)  # float64 features: float64
    assert p64.q4 == pytest.approx(q4, rel=1e-10)
    # the q column (moments) leaves the other sums bit for bit as they are: LogME alone = the job's LogME
    plain = logme.gram_pass(F.astype(np.float32), None, y, 4, chunk_bytes=chunk_bytes)
    assert np.array_equal(plain.class_gram, p.class_gram) and np.array_equal(plain.class_sum, p.class_sum)
    G, B, yy = logme.gram(F, Y, chunk_bytes=chunk_bytes)  # LogME's statistics: the same function, one group
    np.testing.assert_allclose(G, F.T @ F, rtol=1e-12)
    np.testing.assert_allclose(B, F.T @ Y, rtol=1e-12)
    T = logme.targets(y, "mnli")  # one-vs-rest indicators: grouped by class, F^T Y = the class sums
    G, B, _ = logme.gram(F, T, chunk_bytes=chunk_bytes)
    assert np.array_equal(G, logme.gram_pass(F, None, y, 4, moments=True, chunk_bytes=chunk_bytes).gram)
    np.testing.assert_allclose(B, F.T @ T, rtol=1e-12)


def _hscore_direct(F, y):
    f = F - F.mean(axis=0)
    lw = LedoitWolf().fit(f)
    G = np.zeros_like(f)
    for c in np.unique(y):
        G[y == c] = f[y == c].mean(axis=0)
    return np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * G.T @ G / len(f)))


@pytest.mark.parametrize("shape", [(300, 20), (40, 60)])  # N > D and N < D
def test_hscore_against_sklearn_ledoit_wolf(shape):
    F, y = class_features(*shape)
    alpha, _ = tr.ledoit_wolf(tr.Stats(F, y, "mnli").cov, tr.Stats(F, y, "mnli").q4, len(F))
    assert alpha == pytest.approx(LedoitWolf().fit(F).shrinkage_, rel=1e-9)
    assert _score("hscore", F, y) == pytest.approx(_hscore_direct(F, y), rel=1e-8)


def _transrate_direct(F, y, eps=1e-4):
    def rate(Z):
        n, d = Z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))[1]

    Z = F - F.mean(axis=0)
    classes = np.unique(y)
    return rate(Z) - sum(rate(Z[y == c]) for c in classes) / len(classes)


@pytest.mark.parametrize("shape", [(300, 20), (40, 60)])
def test_transrate_against_slogdet(shape):
    F, y = class_features(*shape)
    assert _score("transrate", F, y) == pytest.approx(_transrate_direct(F, y), rel=1e-9)
    assert _score("transrate", F, y, eps=1e-2) == pytest.approx(_transrate_direct(F, y, 1e-2), rel=1e-9)


def _nleep_direct(F, y, cov="diag", seed=0):
    Z = PCA(n_components=0.8).fit_transform(F)
    K = len(np.unique(y))
    theta = GaussianMixture(5 * K, covariance_type=cov, random_state=seed).fit(Z).predict_proba(Z)
    joint = np.zeros((K, 5 * K))
    for i in range(len(y)):
        joint[y[i]] += theta[i] / len(y)
    cond = joint / joint.sum(axis=0)
    return np.mean([math.log(sum(cond[y[i], z] * theta[i, z] for z in range(5 * K))) for i in range(len(y))])


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_nleep_against_sklearn_pca_and_mixture(cov):
    F, y = class_features(400, 12, sep=2.0)
    got = _score("nleep", F, y, covariance_type=cov, max_examples=None)
    # the PCA (and a 'diag' mixture) run in float32, the features' precision: scikit-learn on float32
    # features; a 'full' mixture in float64
    assert got == pytest.approx(_nleep_direct(F.astype(np.float32), y, cov), rel=3e-5)
    assert got == pytest.approx(_nleep_direct(F, y, cov), rel=1e-4)  # and on float64
    assert -math.log(3) < got < 0  # better than chance on separable classes


def _sfda_direct(F, y):
    """The SFDA authors' procedure, step by step: generalised eigenvectors of (S_b, S_w^lambda)."""
    X = F.astype(np.float64).copy()
    classes = np.unique(y)
    K, n, D = len(classes), len(y), X.shape[1]
    priors = np.array([np.mean(y == c) for c in classes])

    def power(A):
        x = A.sum(axis=1)
        for _ in range(3):
            v = A @ x / np.linalg.norm(A @ x)
            x = A @ v / np.linalg.norm(A @ v)
        return x @ A @ v

    def fit_proba(X, lam):
        means = np.array([X[y == c].mean(axis=0) for c in classes])
        Sw = sum(p * np.cov(X[y == c].T, bias=True) for p, c in zip(priors, classes, strict=True))
        if lam is None:
            lam = max(math.exp(-5 * power(Sw)), 1e-10)
        St = np.cov(X.T, bias=True)
        St = (1 - lam) * St + lam * np.trace(St) / D * np.eye(D)
        Sw_l = (1 - lam) * Sw + lam * np.trace(Sw) / D * np.eye(D)
        evals, E = scipy.linalg.eigh(St - Sw_l, Sw_l)
        E = E[:, np.argsort(evals)[::-1]]
        coef = means @ E @ E.T
        scores = X @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
        P = np.exp(scores - scores.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True), lam, means

    P, lam, means = fit_proba(X, None)
    P = np.exp(P) / np.exp(P).sum(axis=1, keepdims=True)
    for c in classes:
        other = (means.sum(axis=0) - means[c]) / (K - 1)
        for i in np.flatnonzero(y == c):
            X[i] = P[i, c] * X[i] + (1 - P[i, c]) * other
    P2, _, _ = fit_proba(X, lam)
    return np.mean([P2[i, y[i]] for i in range(n)])


@pytest.mark.parametrize("shape", [(300, 20), (40, 60)])
def test_sfda_against_the_generalised_eigenproblem(shape):
    F, y = class_features(*shape, offset=0.0)
    got = _score("sfda", F, y, max_examples=None)
    assert got == pytest.approx(_sfda_direct(F, y), rel=1e-7)
    assert 1 / 3 < got <= 1


def _knn_direct(F, y, k, regression=False):
    Z = F - F.mean(axis=0)
    pred = []
    for i in range(len(y)):
        sims = [(-(Z[i] @ Z[j]) / (np.linalg.norm(Z[i]) * np.linalg.norm(Z[j])), j) for j in range(len(y)) if j != i]
        nb = [j for _, j in sorted(sims)[:k]]
        if regression:
            pred.append(np.mean(y[nb]))
        else:
            counts = np.bincount(y[nb], minlength=y.max() + 1)
            pred.append(int(np.argmax(counts)))  # ties: the smallest class
    pred = np.array(pred)
    return np.corrcoef(pred, y)[0, 1] if regression else np.mean(pred == y)


@pytest.mark.parametrize("k", [1, 4, 10])
def test_knn_against_an_explicit_loop(k):
    F, y = class_features(150, 10)
    assert _score("knn", F, y, k=k, max_examples=None) == pytest.approx(_knn_direct(F, y, k), abs=1e-12)


def test_knn_regression_is_pearson_of_the_neighbour_mean():
    F, y = class_features(150, 10, C=2)
    target = F[:, 0] + 0.3 * np.random.default_rng(2).standard_normal(len(F))
    got = _score("knn", F, target, "stsb", k=5, max_examples=None)
    assert got == pytest.approx(_knn_direct(F, target, 5, regression=True), rel=1e-9)


def test_linear_probe_logistic_matches_sklearn():
    F, y = class_features(300, 15)
    fold = tr.folds_of(y, 5, 0, stratify=True)
    assert np.bincount(fold).tolist() == [60] * 5  # stratified, balanced
    correct = 0
    for f in range(5):
        tr_, te = fold != f, fold == f
        sc = StandardScaler().fit(F[tr_])
        m = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(sc.transform(F[tr_]), y[tr_])
        W, b, _ = tr._logistic_fit(sc.transform(F[tr_]), y[tr_], 3, 1.0, 10_000, tol=1e-10)
        # same objective: same probabilities (the softmax is invariant to a shift of W's columns)
        p_sk = m.predict_proba(sc.transform(F[te]))
        z = sc.transform(F[te]) @ W + b
        p_ours = np.exp(z - z.max(axis=1, keepdims=True))
        np.testing.assert_allclose(p_ours / p_ours.sum(axis=1, keepdims=True), p_sk, atol=1e-4)
        correct += np.sum(m.predict(sc.transform(F[te])) == y[te])
    got = _score("linear_probe", F, y, max_examples=None)
    assert abs(got - correct / len(y)) <= 2 / len(y)  # default stopping rule: at most 2 of 300 differ
    assert got > 0.5


def test_linear_probe_ridge_matches_sklearn():
    F, y = class_features(200, 15, C=2)
    target = F[:, :3].sum(axis=1) + 0.5 * np.random.default_rng(3).standard_normal(len(F))
    fold = tr.folds_of(target, 4, 7, stratify=False)
    pred = np.empty(len(F))
    for f in range(4):
        tr_, te = fold != f, fold == f
        sc = StandardScaler().fit(F[tr_])
        pred[te] = Ridge(alpha=2.0).fit(sc.transform(F[tr_]), target[tr_]).predict(sc.transform(F[te]))
    got = _score("linear_probe", F, target, "stsb", folds=4, alpha=2.0, seed=7, max_examples=None)
    assert got == pytest.approx(np.corrcoef(pred, target)[0, 1], rel=1e-9)


# ------------------------------------------------------------------------ subsampling, score_all


@pytest.mark.parametrize("name", ["sfda", "knn", "linear_probe"])
def test_subsampled_estimators_use_the_seeded_subsample(name):
    F, y = class_features(500, 10)
    idx = subsample(len(F), 200, 3)
    full = _score(name, F[idx], y[idx], max_examples=None, seed=3)
    assert _score(name, F, y, max_examples=200, seed=3) == pytest.approx(full, rel=1e-9)


def test_nleep_pca_on_every_example_mixture_on_the_subsample():
    F, y = class_features(500, 12)
    idx = subsample(len(F), 200, 3)
    Z = PCA(n_components=0.8).fit(F).transform(F[idx])
    theta = GaussianMixture(15, covariance_type="diag", random_state=3).fit(Z).predict_proba(Z)
    ys = y[idx]
    joint = np.stack([theta[ys == c].sum(axis=0) for c in range(3)]) / len(ys)
    want = np.mean(np.log(np.sum(theta * (joint / joint.sum(axis=0))[ys], axis=1)))
    got = _score("nleep", F, y, max_examples=200, seed=3)
    assert got == pytest.approx(want, rel=1e-5) and -math.log(3) < got < 0


def test_score_all_classification_and_regression():
    F, y = class_features(300, 20)
    res = tr.score_all(F.astype(np.float32), y, "mnli")
    assert list(res) == list(tr.ESTIMATORS)
    assert all(isinstance(r["score"], float) and math.isfinite(r["score"]) and r["applicable"]
               and r["note"] is None for r in res.values())
    target = F[:, 0] + np.random.default_rng(0).standard_normal(len(F))
    res = tr.score_all(F, target, "stsb", names=["logme", "hscore", "knn", "linear_probe", "sfda"])
    for name in ("hscore", "sfda"):
        assert res[name]["score"] is None and res[name]["applicable"] is False
        assert "stsb" in res[name]["note"] and "regression" in res[name]["note"]
    for name in ("logme", "knn", "linear_probe"):
        assert math.isfinite(res[name]["score"])


def test_score_all_params_and_unknown_names():
    F, y = class_features(200, 10)
    res = tr.score_all(F, y, "mnli", names=["knn"], params={"knn": {"k": 1, "max_examples": None}})
    assert res["knn"]["score"] == pytest.approx(_knn_direct(F, y, 1))
    with pytest.raises(ValueError, match=r"unknown transferability estimator\(s\) \['leep'\].*hscore"):
        tr.score_all(F, y, "mnli", names=["knn", "leep"])
    with pytest.raises(TypeError, match=r"knn: unknown parameter\(s\) \['K'\]"):
        tr.score_all(F, y, "mnli", names=["knn"], params={"knn": {"K": 3}})


def test_score_all_names_the_estimator_that_fails():
    """A failure on bad input stops score_all with the estimator and task named; none is recorded as NaN."""
    F, y = class_features(40, 10)
    with pytest.raises(tr.EstimatorError, match=r"estimator 'knn' on task 'mnli': knn.k must be in \[1, 39\]") as err:
        tr.score_all(F, y, "mnli", names=["logme", "knn"], params={"knn": {"k": 40}})
    assert err.value.name == "knn"
    with pytest.raises(tr.EstimatorError, match=r"estimator 'nleep' on task 'mnli': .*raise nleep.max_examples"):
        tr.score_all(F, y, "mnli", names=["nleep"], params={"nleep": {"max_examples": 10}})


def test_not_applicable_is_an_exception_not_zero():
    F, y = class_features(100, 5)
    with pytest.raises(tr.NotApplicable, match="transrate is defined for classification tasks; 'stsb'"):
        _score("transrate", F, y.astype(float), "stsb")


# -------------------------------------------------------------------------------------- edge cases


def test_a_missing_class_is_left_out():
    F, y = class_features(300, 10)
    y2 = np.where(y == 1, 2, y)  # classes 0 and 2 only: class 1 of mnli has no example
    relabelled = np.where(y2 == 2, 1, y2)
    for name in ("hscore", "transrate", "sfda", "knn"):
        assert _score(name, F, y2, "mnli") == pytest.approx(_score(name, F, relabelled, "mnli"), rel=1e-12)


def test_one_class_is_an_error_naming_the_task():
    F, _ = class_features(50, 5)
    for name in tr.ESTIMATORS:
        with pytest.raises(ValueError, match=r"task 'sst2': only class \[1\] is present"):
            _score(name, F, np.ones(50, int), "sst2")


def test_bad_features_and_labels_are_named():
    F, y = class_features(50, 5)
    bad = F.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at row 7, column 3\)"):
        _score("hscore", bad, y)
    with pytest.raises(ValueError, match=r"50 feature rows but labels of shape \(49,\)"):
        _score("knn", F, y[:49])
    with pytest.raises(ValueError, match="N x D matrix"):
        _score("knn", F[:, 0], y)
    with pytest.raises(ValueError, match="label -1"):
        _score("knn", F, np.where(y == 0, -1, y))


@pytest.mark.parametrize("name", ["hscore", "transrate", "nleep", "sfda"])
def test_constant_features_are_an_error(name):
    F = np.tile(np.arange(6.0), (60, 1))
    y = np.arange(60) % 2
    with pytest.raises(ValueError, match=f"{name} on task 'sst2': the features are constant"):
        _score(name, F, y, "sst2")


def test_duplicate_and_constant_columns_are_handled():
    F, y = class_features(200, 10)
    G = np.hstack([F, F[:, :4], np.full((200, 3), 5.0)])  # duplicated and constant columns: singular S
    assert _score("hscore", G, y) == pytest.approx(_hscore_direct(G, y), rel=1e-7)
    assert _score("transrate", G, y) == pytest.approx(_transrate_direct(G, y), rel=1e-9)
    assert _score("sfda", G, y, max_examples=None) == pytest.approx(_sfda_direct(G, y), rel=1e-6)
    for name in ("nleep", "knn", "linear_probe"):
        assert math.isfinite(_score(name, G, y))


def test_n_below_d_all_estimators_finite():
    F, y = class_features(40, 60)
    res = tr.score_all(F, y, "mnli", params={"linear_probe": {"folds": 3}})
    assert all(math.isfinite(r["score"]) for r in res.values()), res


def test_too_few_examples_per_fold_or_component_are_named():
    F, y = class_features(40, 5)
    y[:] = 0
    y[:3] = 1  # class 1 has 3 examples
    with pytest.raises(ValueError, match=r"linear_probe \(folds=5.*counts per class \[37, 3\]"):
        _score("linear_probe", F, y, "sst2")
    with pytest.raises(ValueError, match=r"nleep: 8 examples for a mixture of 10 components"):
        _score("nleep", F[:8], np.arange(8) % 2, "sst2")
    with pytest.raises(ValueError, match=r"knn.k must be in \[1, 7\]"):
        _score("knn", F[:8], np.arange(8) % 2, "sst2", k=8)
