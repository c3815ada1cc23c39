"""The registry's estimators that read the shared statistics (``from_stats``: GBC, LFC, NCTI, and the
subsampled ones on the shared subsample) give their module function's value: the same definition,
computed from :class:`ptmbench.estimators.stats.Stats` instead of a pass of their own."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import class_features

from ptmbench.estimators import etran, gbc, lfc, ncti, pactran, parc, silhouette
from ptmbench.estimators import transferability as tr
from ptmbench.estimators.stats import Stats


@pytest.mark.parametrize("gaussian_type", ["spherical", "diagonal"])
@pytest.mark.parametrize("n_components", [8, 64])
def test_gbc_from_stats_is_gbc(gaussian_type, n_components):
    F, y = class_features(N=500, D=40, C=3, sep=0.8)
    st = Stats(F, y, "mnli")
    want = gbc.gbc(F, y, n_components, gaussian_type)
    assert gbc.from_stats(st, n_components, gaussian_type) == pytest.approx(want, rel=1e-9)
    assert tr.ESTIMATORS["gbc"](F, y, "mnli", stats=st, n_components=n_components,
                                gaussian_type=gaussian_type) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lfc_from_stats_is_lfc(dtype):
    F, y = class_features(N=500, D=30, C=4, sep=0.5)
    F = F.astype(dtype)
    assert lfc.from_stats(Stats(F, y, "mnli")) == pytest.approx(lfc.lfc(F, y), rel=1e-9)
    t = F[:, :3].astype(np.float64).sum(axis=1) + y
    assert lfc.from_stats(Stats(F, t, "stsb")) == pytest.approx(lfc.lfc(F, t), rel=1e-9)


@pytest.mark.parametrize("scale", [0.05, 10.0])  # shrinkage, and the SVD solver at the floor
@pytest.mark.parametrize("C", [2, 4])
def test_ncti_from_stats_is_ncti(scale, C):
    F, y = class_features(N=400, D=80, C=C, sep=0.5)
    F = F * scale
    got, want = ncti.terms_from_stats(Stats(F, y, "mnli")), ncti.ncti_terms(F, y)
    assert np.allclose(tuple(got), tuple(want), rtol=1e-8)
    F32 = F.astype(np.float32)  # float32 features: the rows are read in float32 by both
    got, want = ncti.terms_from_stats(Stats(F32, y, "mnli")), ncti.ncti_terms(F32, y)
    assert np.allclose(tuple(got), tuple(want), rtol=1e-5)


def test_n_below_d_falls_back_to_the_module_function():
    F, y = class_features(N=30, D=50, C=3)
    st = Stats(F, y, "mnli")
    assert gbc.from_stats(st) == gbc.gbc(F, y)
    assert lfc.from_stats(st) == lfc.lfc(F, y)
    assert ncti.from_stats(st) == ncti.ncti(F, y)


def test_constant_features_are_named():
    F, y = np.ones((50, 4)), np.arange(50) % 2
    for name in ("gbc", "ncti"):
        with pytest.raises(ValueError, match=f"{name}.*constant"):
            tr.ESTIMATORS[name](F, y, "mnli")


@pytest.mark.parametrize("module,params", [
    (silhouette, {"max_examples": 200, "seed": 1}),
    (pactran, {"max_examples": 200, "seed": 1}),
    (etran, {"max_examples": 200, "seed": 1}),
    (parc, {"max_examples": 200, "seed": 1}),
])
def test_subsampled_from_stats_is_the_module_function(module, params):
    F, y = class_features(N=600, D=30, C=3, sep=0.8)
    name = module.__name__.rsplit(".", 1)[1]
    want = getattr(module, name)(F, y, **params)
    assert module.from_stats(Stats(F, y, "mnli"), **params) == pytest.approx(want, rel=1e-9)
    if "regression" in module.KINDS:
        t = F[:, :3].sum(axis=1) + y
        want = getattr(module, name)(F, t, **params)
        assert module.from_stats(Stats(F, t, "stsb"), **params) == pytest.approx(want, rel=1e-9)


def test_parc_ranks_are_scipys_average_ranks():
    import scipy.stats

    from ptmbench.estimators.parc import _ranks

    x = np.random.default_rng(0).integers(0, 7, 500).astype(float)  # many ties
    assert np.array_equal(_ranks(x), scipy.stats.rankdata(x))
    x = np.random.default_rng(1).random(300)
    assert np.array_equal(_ranks(x), scipy.stats.rankdata(x))
