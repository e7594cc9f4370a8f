"""The one result type every sampler adapter returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Result:
    """A nested-sampling run, whatever the sampler.

    Attributes
    ----------
    samples : anesthetic.NestedSamples
        Dead (and final live) points in physical parameters, with the
        log-likelihood the sampler saw (for an enhanced run: the
        repartitioned one, so that anesthetic's weights and evidence are
        right) and birth contours.
    logZ, logZerr : float
        The sampler's log-evidence and its error: the spread of ``logZ``
        over simulated volume compressions of the run's points
        (:func:`flowprior.evidence.simulated_logz_error`).
    sampler_logZerr : float, optional
        The sampler's own error figure (dynesty's ``logzerr``, PolyChord's
        ``logZerr``), kept for comparison.
    ncall : dict
        Likelihood calls: ``{"total": ...}``, plus ``"low"`` and ``"high"``
        for an enhanced run.
    samples_u : ndarray
        The same points in the sampler's unit hypercube.
    sampler : str
        ``"dynesty"`` or ``"polychord"``.
    raw : object
        The sampler's own result object.
    flow, low : optional
        For an enhanced run: the trained flow and the low-resolution Result.
    prior_transform : callable, optional
        The user's ``u -> theta`` (set by :func:`flowprior.run` and
        :func:`flowprior.enhanced_run`; needed by :func:`flowprior.reweight`).
    train_time : float, optional
        For an enhanced run: seconds spent training (or loading) the flow.
    low_checks : list of LowCheck, optional
        For an enhanced run: each low-resolution level's check
        (:class:`flowprior.workflows.lowcheck.LowCheck`; empty with ``grow_below=None``).
    tail_weight : float, optional
        For an enhanced run: the posterior weight in the flow's outer 1 %
        shells (see the narrow-flow warning of :func:`flowprior.enhanced_run`).
    """

    samples: Any
    logZ: float
    logZerr: float
    ncall: dict
    samples_u: np.ndarray
    sampler: str
    raw: Any = field(default=None, repr=False)
    flow: Any = field(default=None, repr=False)
    low: Any = field(default=None, repr=False)
    prior_transform: Any = field(default=None, repr=False)
    train_time: float | None = field(default=None, repr=False)
    low_checks: list | None = field(default=None, repr=False)
    tail_weight: float | None = field(default=None, repr=False)
    sampler_logZerr: float | None = field(default=None, repr=False)
