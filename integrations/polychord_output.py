"""Reading a PolyChord run's output files back, and its evidence over the whole prior.

:func:`read_points` reads the dead and final live points from
``<root>_dead-birth.txt`` and ``<root>_phys_live-birth.txt``;
:func:`prior_info` the counts of initial prior draws from
``<root>.prior_info``.

PolyChord treats a point with logL at or below ``logzero`` (including
``-inf``) as outside the prior and redraws it while generating the initial
live points, so its own ``logZ`` (the adapter keeps it in ``raw.logZ``) is
the evidence of the prior restricted to ``logL > logzero``.  The adapter's
``logZ`` adds ``log(nprior / ndiscarded)`` from ``raw.prior_info`` (valid out
of all initial draws), with its binomial error, so that it is the evidence
over the whole prior, as dynesty's is (:func:`full_prior_evidence`).  The
enhanced run relies on this: its flow prior can put mass outside the cube,
where the likelihood is ``-inf``.  ``samples.logZ()`` (anesthetic, from the
saved points only) does not include the correction.
"""

from __future__ import annotations

import math
import os

import numpy as np


def read_points(root: str, ndim: int, extra: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dead (and final live) points from ``<root>_dead-birth.txt``, sorted by logL.

    Columns are ``u (ndim), theta (ndim), derived (extra), logL, logL_birth``;
    the second array holds ``theta`` and the derived values.  As anesthetic's
    ``read_polychord`` does, the final live points are merged in and
    duplicates dropped (at a normal finish they are already among the dead).
    """
    data = np.loadtxt(root + "_dead-birth.txt", ndmin=2)
    live_file = root + "_phys_live-birth.txt"
    if os.path.exists(live_file):
        live = np.loadtxt(live_file, ndmin=2)
        if live.size:
            data = np.unique(np.concatenate([data, live]), axis=0)
    data = data[np.argsort(data[:, -2], kind="stable")]
    return data[:, :ndim], data[:, ndim:2 * ndim + extra], data[:, -2], data[:, -1]


def prior_info(root: str) -> dict:
    """``nprior`` and ``ndiscarded`` (all prior draws) from ``<root>.prior_info``, if written."""
    info = {}
    try:
        with open(root + ".prior_info") as f:
            for line in f:
                key, _, value = line.partition("=")
                info[key.strip()] = int(value)
    except (OSError, ValueError):
        pass
    return info


def full_prior_evidence(logZ: float, logZerr: float, info: dict) -> tuple[float, float]:
    """PolyChord's evidence over the whole prior, not only where ``logL > logzero``.

    PolyChord redraws initial points at or below ``logzero`` (``-inf``
    included), so its ``logZ`` is over the part of the prior where the
    likelihood is valid.  That part's prior mass is estimated by the
    fraction of valid draws, ``p = nprior / ndiscarded`` (binomial:
    ``var(log p) = (1 - p) / nprior``); dynesty's evidence already counts it.
    """
    nprior, drawn = info.get("nprior"), info.get("ndiscarded")
    if not nprior or not drawn or drawn <= nprior:
        return logZ, logZerr
    p = nprior / drawn
    return logZ + math.log(p), math.sqrt(logZerr**2 + (1 - p) / nprior)


def nested_samples(u: np.ndarray, theta: np.ndarray, logl: np.ndarray, logl_birth: np.ndarray, columns: list):
    """anesthetic ``NestedSamples`` of the points and the cube points ``u`` of their rows, in the same order.

    anesthetic drops rows with ``logL <= logL_birth`` (which PolyChord
    writes when it reports a "non deterministic loglikelihood") and sorts by
    logL, so each row carries its index through and ``u`` is taken by it.
    """
    from anesthetic import NestedSamples

    row = "__row__"
    samples = NestedSamples(data=np.column_stack([theta, np.arange(len(theta))]), logL=logl,
                            logL_birth=logl_birth, columns=list(columns) + [row])
    index = samples[row].to_numpy().astype(np.int64)
    return samples.drop(columns=row), u[index]
