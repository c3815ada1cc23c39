"""The seven estimator modules of ``ptmbench.estimators`` (GBC, PARC, LFC, mean silhouette,
PACTran-Gaussian, ETran, NCTI): each against an independent computation on small data (the paper's
formula written out directly, O(N^2) matrices and loops over classes, or scikit-learn / SciPy), edge
cases (N < D, a class with no example, constant or duplicate features, bad input) and a sanity
property (separated classes score above shuffled labels)."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
import scipy.special
import scipy.stats
from conftest import class_features
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from ptmbench.data.tokenized import subsample
from ptmbench.estimators import _common
from ptmbench.estimators.etran import etran
from ptmbench.estimators.gbc import gbc
from ptmbench.estimators.lfc import lfc
from ptmbench.estimators.ncti import NCTITerms, ncti, ncti_terms, ncti_zoo
from ptmbench.estimators.pactran import pactran
from ptmbench.estimators.parc import parc
from ptmbench.estimators.silhouette import silhouette

NAMES = ("gbc", "parc", "lfc", "silhouette", "pactran", "etran", "ncti")
FUNCS = {"gbc": gbc, "parc": parc, "lfc": lfc, "silhouette": silhouette, "pactran": pactran, "etran": etran,
         "ncti": ncti}
REGRESSION = ("parc", "lfc", "etran")


def _regression(N=300, D=20, seed=0):
    rng = np.random.default_rng(seed)
    F = 1.0 + rng.standard_normal((N, D))
    t = F[:, 0] - 0.5 * F[:, 1] + 0.3 * rng.standard_normal(N)
    return F, t


def _module(name):
    return importlib.import_module(f"ptmbench.estimators.{name}")


# ------------------------------------------------------------------------------ registry metadata


@pytest.mark.parametrize("name", NAMES)
def test_kinds_and_defaults_match_the_signature(name):
    mod = _module(name)
    assert mod.KINDS == (("classification", "regression") if name in REGRESSION else ("classification",))
    params = inspect.signature(FUNCS[name]).parameters
    assert list(params)[:2] == ["features", "labels"]
    assert {k: v.default for k, v in list(params.items())[2:]} == mod.DEFAULTS


def test_subsample_is_the_projects_draw():
    for n, k, seed in [(1000, 200, 0), (50, 49, 3), (10, None, 0), (10, 10, 1)]:
        a, b = _common.subsample(n, k, seed, "x"), subsample(n, k, seed)
        assert (a is None and b is None) or np.array_equal(a, b)
    with pytest.raises(ValueError, match="x.max_examples"):
        _common.subsample(10, 1, 0, "x")


# ------------------------------------------------------------------------------------------- GBC


def _gbc_reference(F, y, d, gaussian_type):
    X = PCA(n_components=d, svd_solver="full").fit_transform(F)
    classes = np.unique(y)
    stats = []
    for c in classes:
        Xc = X[y == c]
        v = np.maximum(Xc.var(axis=0), 1e-4)
        if gaussian_type == "spherical":
            v = np.full(X.shape[1], np.maximum(Xc.var(axis=0), 1e-4).mean())
        stats.append((Xc.mean(axis=0), np.diag(v)))
    total = 0.0
    for i, (mi, Si) in enumerate(stats):
        for j, (mj, Sj) in enumerate(stats):
            if i == j:
                continue
            S = (Si + Sj) / 2
            diff = mi - mj
            db = diff @ np.linalg.solve(S, diff) / 8 + 0.5 * (np.linalg.slogdet(S)[1]
                                                            - 0.5 * (np.linalg.slogdet(Si)[1] + np.linalg.slogdet(Sj)[1]))
            total += np.exp(-db)
    return -total


@pytest.mark.parametrize("gaussian_type", ["spherical", "diagonal"])
def test_gbc_matches_the_formula_on_sklearn_pca(gaussian_type):
    F, y = class_features(N=400, D=80, C=4, sep=0.6)
    assert gbc(F, y, gaussian_type=gaussian_type) == pytest.approx(_gbc_reference(F, y, 64, gaussian_type), rel=1e-8)
    assert gbc(F, y, n_components=8, gaussian_type=gaussian_type) == pytest.approx(
        _gbc_reference(F, y, 8, gaussian_type), rel=1e-8)


def test_gbc_n_below_d_and_a_singleton_class():
    F, y = class_features(N=40, D=100, C=3, sep=2.0)
    y[0] = 3  # a class with one example: its variance is the floor
    assert gbc(F, y, gaussian_type="diagonal") == pytest.approx(_gbc_reference(F, y, 39, "diagonal"), rel=1e-7)
    assert gbc(F, y) == pytest.approx(_gbc_reference(F, y, 39, "spherical"), rel=1e-7)


def test_gbc_bounds():
    F, y = class_features(N=300, D=20, C=3, sep=50.0)
    assert gbc(F, y) == pytest.approx(0.0, abs=1e-12)  # separated classes: every BC is 0
    F = np.random.default_rng(0).standard_normal((600, 10))
    y = np.repeat([0, 1], 300)
    assert -2.0 <= gbc(F, y) < -1.9  # same distribution: both BC close to 1


def test_gbc_rejects_an_unknown_gaussian_type():
    F, y = class_features()
    with pytest.raises(ValueError, match="gaussian_type"):
        gbc(F, y, gaussian_type="full")


# ------------------------------------------------------------------------------------------ PARC


def _parc_reference(F, labels, d, regression=False):
    X = StandardScaler().fit_transform(PCA(n_components=d, svd_solver="full").fit_transform(F))
    rdm_f = 1 - np.corrcoef(X)
    if regression:
        rdm_y = np.abs(labels[:, None] - labels[None, :])
    else:
        # rounded: 1 - corrcoef leaves +-1e-16 on equal one-hot rows, which would split the exact ties
        rdm_y = np.round(1 - np.corrcoef(np.eye(labels.max() + 1)[labels]), 12)
    iu = np.triu_indices(len(F), 1)
    return 100 * scipy.stats.spearmanr(rdm_f[iu], rdm_y[iu])[0]


def test_parc_matches_scipy_spearman_of_the_rdms():
    F, y = class_features(N=250, D=60, C=4, sep=0.8)
    assert parc(F, y, max_examples=None) == pytest.approx(_parc_reference(F, y, 32), rel=1e-9)
    assert parc(F, y, n_components=5, max_examples=None) == pytest.approx(_parc_reference(F, y, 5), rel=1e-9)


def test_parc_regression_uses_target_distances():
    F, t = _regression(N=200, D=40)
    assert parc(F, t, max_examples=None) == pytest.approx(_parc_reference(F, t, 32, regression=True), rel=1e-9)
    rng = np.random.default_rng(0)
    F = 1 + rng.standard_normal((200, 40))
    t = F[:, :10].sum(axis=1) + 0.3 * rng.standard_normal(200)  # the target follows 10 of 40 directions
    assert parc(F, t, max_examples=None) > 5.0 > 1.0 > parc(F, rng.permutation(t), max_examples=None)


def test_parc_subsample_is_the_seeded_rows():
    F, y = class_features(N=600, D=30, C=3)
    idx = subsample(600, 150, 7)
    assert parc(F, y, max_examples=150, seed=7) == pytest.approx(_parc_reference(F[idx], y[idx], 30), rel=1e-9)


def test_parc_n_below_d():
    F, y = class_features(N=30, D=100, C=3, sep=2.0)
    assert parc(F, y) == pytest.approx(_parc_reference(F, y, 29), rel=1e-8)


# ------------------------------------------------------------------------------------------- LFC


def _lfc_reference(F, labels, regression=False):
    theta = F @ F.T
    theta = theta - theta.mean()
    if regression:
        t = (labels - labels.mean()) / labels.std()
        Y = np.outer(t, t)
    else:
        Y = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    Y = Y - Y.mean()
    return np.sum(theta * Y) / (np.linalg.norm(theta) * np.linalg.norm(Y))


@pytest.mark.parametrize("shape", [(300, 20), (40, 120)])
def test_lfc_matches_the_n_by_n_kernels(shape):
    F, y = class_features(N=shape[0], D=shape[1], C=3, offset=5.0)  # a large mean: the closed form must not cancel
    assert lfc(F, y) == pytest.approx(_lfc_reference(F, y), rel=1e-9)
    F, t = _regression(N=shape[0], D=shape[1])
    assert lfc(F, t) == pytest.approx(_lfc_reference(F, t, regression=True), rel=1e-9)


def test_lfc_float32_features():
    F, y = class_features(N=300, D=20)
    assert lfc(F.astype(np.float32), y) == pytest.approx(_lfc_reference(F.astype(np.float32).astype(np.float64), y),
                                                         rel=1e-9)


def test_lfc_balanced_binary_classes_equal_pm1_regression():
    """With two balanced classes, the +-1 label kernel is t t^T of the standardised +-1 codes."""
    F, _ = class_features(N=200, D=15)
    y = np.repeat([0, 1], 100)
    assert lfc(F, y) == pytest.approx(lfc(F, (2.0 * y - 1)), rel=1e-12)


# ------------------------------------------------------------------------------------ silhouette


def test_silhouette_is_sklearns():
    F, y = class_features(N=400, D=30, C=4, sep=1.5)
    assert silhouette(F, y, max_examples=None) == pytest.approx(silhouette_score(F, y), rel=1e-9)
    idx = subsample(400, 120, 3)
    assert silhouette(F, y, max_examples=120, seed=3) == pytest.approx(silhouette_score(F[idx], y[idx]), rel=1e-9)


def test_silhouette_singleton_class_and_duplicate_rows_as_sklearn():
    F, y = class_features(N=100, D=150, C=3, sep=2.0)  # N < D
    y[5] = 7  # alone in its class: s = 0
    F[10] = F[11]  # duplicate rows
    assert silhouette(F, y, max_examples=None) == pytest.approx(silhouette_score(F, y), rel=1e-9)


def test_silhouette_hand_checked():
    # 1-D points 0, 1 (class 0) and 10, 11 (class 1): a = 1, b = 10 or 9 or 9 or 10
    F = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    expected = np.mean([(10.5 - 1) / 10.5, (9.5 - 1) / 9.5, (9.5 - 1) / 9.5, (10.5 - 1) / 10.5])
    assert silhouette(F, y) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------- PACTran


def _pactran_reference(F, y, lda_factor, s2):
    """The authors' formula around scikit-learn's minimiser of the same objective: C sum_i CE + 1/2
    ||W||^2 with C = lambda is (lambda n) x L, the intercept unpenalised."""
    n, D = F.shape
    K = y.max() + 1
    clf = LogisticRegression(C=lda_factor, tol=1e-12, max_iter=100000).fit(F, y)
    W, b = clf.coef_.T, clf.intercept_
    logits = F @ W + b
    logp = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
    beta = lda_factor * n
    loss = -logp[np.arange(n), y].mean() + 0.5 * np.sum(W**2) / beta
    P = np.exp(logp)
    h = 0.0
    for k in range(K):
        v = P[:, k] * (1 - P[:, k])
        h += np.sum((F**2).T @ v) + D / beta + v.sum()
    sigma2_inv = h * beta / (D * K) + 1e-10
    return -(loss + 0.5 * D * K / beta * (s2 / D) * np.log(sigma2_inv))


def test_pactran_matches_the_formula_at_sklearns_minimiser():
    F, y = class_features(N=300, D=10, C=3, sep=1.0)
    ref = _pactran_reference(F, y, 1.0, 10.0)
    assert pactran(F, y, tol=1e-12, max_iter=10000) == pytest.approx(ref, rel=1e-7)
    assert pactran(F, y) == pytest.approx(ref, rel=1e-3)  # the authors' tolerance and iteration cap
    assert pactran(F, y, lda_factor=0.1, prior_variance=1.0, tol=1e-12, max_iter=10000) == pytest.approx(
        _pactran_reference(F, y, 0.1, 1.0), rel=1e-7)


def test_pactran_n_below_d_and_subsample():
    F, y = class_features(N=40, D=100, C=3, sep=2.0)
    score = pactran(F, y)
    assert np.isfinite(score) and score < 0
    F, y = class_features(N=500, D=10, C=3)
    idx = subsample(500, 200, 4)
    assert pactran(F, y, max_examples=200, seed=4, tol=1e-12, max_iter=10000) == pytest.approx(
        _pactran_reference(F[idx], y[idx], 1.0, 10.0), rel=1e-7)


# ----------------------------------------------------------------------------------------- ETran


def _etran_energy(F, fraction):
    e = np.sort(scipy.special.logsumexp(F, axis=1))
    return e[:max(1, int(fraction * len(F)))].mean()


def _etran_lda(F, y, at=None):
    K = y.max() + 1
    priors = np.bincount(y) / len(y)
    Sw = sum(priors[k] * np.cov(F[y == k].T, bias=True) for k in range(K))
    x = Sw.sum(axis=1)  # the SFDA authors' 3-round power iteration
    for _ in range(3):
        v = Sw @ x
        v /= np.linalg.norm(v)
        x = Sw @ v
        x /= np.linalg.norm(x)
    lam = max(np.exp(-5 * (x @ Sw @ v)), 1e-10)
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=lam, priors=priors).fit(F, y)
    at = np.arange(len(y)) if at is None else at  # the rows it is evaluated on
    return lda.predict_proba(F[at])[np.arange(len(at)), y[at]].mean()


def test_etran_classification_is_energy_plus_lda():
    F, y = class_features(N=400, D=15, C=3, sep=0.7, offset=0.5)
    assert etran(F, y) == pytest.approx(_etran_energy(F, 0.005) + _etran_lda(F, y), rel=1e-9)
    assert etran(F, y, energy_fraction=0.25) == pytest.approx(_etran_energy(F, 0.25) + _etran_lda(F, y), rel=1e-9)


def test_etran_regression_is_energy_plus_least_squares():
    F, t = _regression(N=300, D=12)
    w = np.linalg.pinv(F) @ t
    expected = _etran_energy(F, 0.005) - np.mean((F @ w - t) ** 2)
    assert etran(F, t) == pytest.approx(expected, rel=1e-9)


def test_etran_energy_hand_checked():
    # one-feature rows: -E(x) = x; the lowest 0.5% of 400 rows are the 2 smallest values
    F = np.arange(400, dtype=np.float64)[:, None]
    t = np.random.default_rng(0).standard_normal(400)
    w = np.linalg.pinv(F) @ t
    assert etran(F, t) == pytest.approx(0.5 - np.mean((F @ w - t) ** 2), rel=1e-12)


def test_etran_subsample_and_n_below_d():
    F, y = class_features(N=500, D=10)
    idx = subsample(500, 100, 2)
    # the energy on the subsample; the LDA fitted on every example (the shared pass's statistics),
    # its posteriors read on the subsample
    assert etran(F, y, max_examples=100, seed=2) == pytest.approx(
        _etran_energy(F[idx], 0.005) + _etran_lda(F, y, at=idx), rel=1e-9)
    F, y = class_features(N=40, D=100, C=3, sep=2.0)
    assert np.isfinite(etran(F, y))


# ------------------------------------------------------------------------------------------ NCTI


def _ncti_reference(F, y, d=64):
    """The authors' pipeline: scikit-learn PCA and LDA (shrinkage from the top-32 PCA variances)."""
    pca = PCA(n_components=d, svd_solver="full")
    X = pca.fit_transform(F)
    s = max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    clf = LinearDiscriminantAnalysis(solver="svd") if s == 1e-10 else LinearDiscriminantAnalysis(
        solver="eigen", shrinkage=float(s))
    H = clf.fit_transform(X, y)
    H = H - H.mean(axis=0)
    P = clf.predict_proba(X)
    s_vc = np.log(sum(np.linalg.norm(P[y == c], ord="nuc") for c in np.unique(y)))
    return NCTITerms(np.linalg.norm(H, ord="nuc"), P[np.arange(len(y)), y].mean(), s_vc)


@pytest.mark.parametrize("scale", [0.05, 10.0])  # small variances: shrinkage; large: the authors' SVD solver
def test_ncti_terms_match_sklearn(scale):
    F, y = class_features(N=400, D=80, C=4, sep=0.5)
    F = F * scale
    got, ref = ncti_terms(F, y), _ncti_reference(F, y)
    assert np.allclose(tuple(got), tuple(ref), rtol=1e-8)
    assert ncti(F, y) == pytest.approx(ref.s_etf + ref.s_ncc - ref.s_vc, rel=1e-8)


def test_float32_features_in_their_precision_match_sklearn():
    """GBC, PARC and NCTI project float32 features in float32 (as scikit-learn's PCA keeps them)."""
    F, y = class_features(N=400, D=80, C=4, sep=0.5)
    F32 = F.astype(np.float32)
    F64 = F32.astype(np.float64)
    assert gbc(F32, y, gaussian_type="diagonal") == pytest.approx(_gbc_reference(F64, y, 64, "diagonal"), rel=1e-5)
    assert np.allclose(tuple(ncti_terms(F32 * 0.05, y)), tuple(_ncti_reference(F64 * 0.05, y)), rtol=1e-5)
    assert parc(F32, y, max_examples=None) == pytest.approx(_parc_reference(F64, y, 32), rel=1e-3)


def test_ncti_binary_and_n_below_d():
    F, y = class_features(N=300, D=40, C=2, sep=1.0)
    assert np.allclose(tuple(ncti_terms(F, y)), tuple(_ncti_reference(F, y, 40)), rtol=1e-8)
    F, y = class_features(N=50, D=100, C=3, sep=2.0)
    assert np.allclose(tuple(ncti_terms(F, y)), tuple(_ncti_reference(F, y, 49)), rtol=1e-6)
    # fewer examples than PCA dimensions + classes at the shrinkage floor: scikit-learn's SVD solver
    # keeps the range of the (singular) within-class scatter
    F, y = class_features(N=40, D=100, C=3, sep=2.0)
    assert np.allclose(tuple(ncti_terms(10 * F, y)), tuple(_ncti_reference(10 * F, y, 39)), rtol=1e-6)


def test_ncti_zoo_min_max_hand_checked():
    terms = [NCTITerms(1.0, 0.5, 2.0), NCTITerms(3.0, 0.7, 1.0), NCTITerms(2.0, 0.6, 1.5)]
    assert np.allclose(ncti_zoo(terms), [0 + 0 - 1, 1 + 1 - 0, 0.5 + 0.5 - 0.5])
    with pytest.raises(ValueError, match="at least two models"):
        ncti_zoo(terms[:1])


# ------------------------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("name", NAMES)
def test_a_class_with_no_example_is_left_out(name):
    F, y = class_features(N=200, D=12, C=3, sep=1.0)
    relabelled = np.array([0, 2, 5])[y]  # classes 1, 3 and 4 have no example
    assert FUNCS[name](F, relabelled) == pytest.approx(FUNCS[name](F, y), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_separated_classes_score_above_shuffled_labels(name):
    F, y = class_features(N=600, D=20, C=3, sep=2.0)
    shuffled = np.random.default_rng(5).permutation(y)
    assert FUNCS[name](F, y) > FUNCS[name](F, shuffled)


@pytest.mark.parametrize("name", NAMES)
def test_n_below_d_and_duplicate_features_are_finite(name):
    F, y = class_features(N=60, D=150, C=3, sep=2.0)
    assert np.isfinite(FUNCS[name](F, y))
    F, y = class_features(N=300, D=10, C=3, sep=1.0)
    dup = np.hstack([F, F, F[:, :3]])  # duplicate columns: singular covariances
    assert np.isfinite(FUNCS[name](dup, y))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_named(name):
    F, y = class_features(N=100, D=8)
    fn = FUNCS[name]
    bad = F.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at row 7, column 3\)"):
        fn(bad, y)
    with pytest.raises(ValueError, match="100 feature rows but labels of shape"):
        fn(F, y[:-1])
    with pytest.raises(ValueError, match="only class"):
        fn(F, np.zeros(100, dtype=int))
    with pytest.raises(ValueError, match="features are constant"):
        fn(np.ones((100, 8)), y)
    with pytest.raises(ValueError, match="must be >= 0"):
        fn(F, y - 1)
    if name in REGRESSION:
        with pytest.raises(ValueError, match="every target is"):
            fn(F, np.full(100, 2.5))
    else:
        with pytest.raises(ValueError, match="defined for classification only"):
            fn(F, y.astype(np.float64))
