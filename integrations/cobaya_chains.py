"""A cobaya run's samples as GetDist chain files, and anesthetic labels on them.

:func:`write_chains` writes what ``getdist.loadMCSamples(root)`` and
``anesthetic.read_chains(root)`` read: ``root.txt`` (one weighted row per
nested-sampling point, columns ``weight minuslogpost params... derived...``),
``root.paramnames`` (names and LaTeX labels, derived parameters marked
``*``) and ``root.ranges`` (the prior bounds), through getdist's own writer
(``MCSamples.saveAsText``).  The rows are the dead points with their
posterior weights, none dropped and none repeated, so both readers give the
run's weighted means exactly.

References
----------
Lewis, "GetDist: a Python package for analysing Monte Carlo samples" (2019),
arXiv:1910.13970.  Torrado & Lewis, JCAP 05 (2021) 057, arXiv:2005.05290.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from flowprior.data import ANESTHETIC_COLUMNS
from flowprior.integrations.cobaya_model import CobayaPrior

#: anesthetic's own labels of its bookkeeping columns.
BOOKKEEPING_LABELS = {"logL": r"$\ln\mathcal{L}$", "logL_birth": r"$\ln\mathcal{L}_\mathrm{birth}$",
                      "nlive": r"$n_\mathrm{live}$"}


def label_samples(samples, labels: dict):
    """``samples`` with LaTeX labels (``labels[name]``, without ``$``) on its columns, as anesthetic keeps them."""
    plain = samples.drop_labels(axis=1) if samples.islabelled(axis=1) else samples
    names = [str(c) for c in plain.columns]
    text = [BOOKKEEPING_LABELS.get(n) or f"${labels.get(n, n)}$" for n in names]
    return plain.set_labels(text, axis=1)


def write_chains(result, root) -> str:
    """Write a run of :func:`flowprior.integrations.cobaya.run` or ``enhanced_run`` as GetDist chains.

    Parameters
    ----------
    result : Result
        From :func:`~flowprior.integrations.cobaya.run` or
        :func:`~flowprior.integrations.cobaya.enhanced_run` (its prior
        transform knows the cobaya priors).
    root : str or Path
        Files ``root.txt``, ``root.paramnames``, ``root.ranges``; folders
        are made.

    Returns
    -------
    str
        ``root`` (``./root`` where it names no folder, as anesthetic's
        reader needs), to pass to ``getdist.loadMCSamples`` or
        ``anesthetic.read_chains``.

    Notes
    -----
    ``minuslogpost`` is ``chi2 / 2`` less the log of cobaya's 1-D priors.
    """
    from getdist import MCSamples

    prior = getattr(result, "prior_transform", None)
    if not isinstance(prior, CobayaPrior):
        raise TypeError(f"result: expected the Result of flowprior.integrations.cobaya.run or enhanced_run, "
                        f"got {type(result).__name__}")
    table = _table(result.samples, prior)
    root = str(root) if os.path.dirname(str(root)) else os.path.join(os.curdir, str(root))
    mc = MCSamples(samples=table["values"], weights=table["weights"], loglikes=table["minuslogpost"],
                   names=table["names"], labels=table["labels"], ranges=prior.ranges(), sampler="nested",
                   ignore_rows=0)
    Path(root).parent.mkdir(parents=True, exist_ok=True)
    mc.saveAsText(root)
    return root


def _table(samples, prior) -> dict:
    """The columns of the chain files: values, weights, ``minuslogpost``, names (derived with ``*``), labels."""
    labelled = samples.islabelled(axis=1)
    labels = samples.get_labels_map(axis=1) if labelled else {}
    plain = samples.drop_labels(axis=1) if labelled else samples
    weights = np.asarray(plain.get_weights(), dtype=float)
    keep = weights > 0
    columns = [str(c) for c in plain.columns if c not in ANESTHETIC_COLUMNS]
    missing = [n for n in prior.names if n not in columns]
    if missing:
        raise ValueError(f"result: the samples lack the sampled parameters {missing}")
    derived = [c for c in columns if c not in prior.names]
    theta = plain[prior.names].to_numpy(dtype=float)[keep]
    if "chi2" not in derived:  # an enhanced run's logL is the repartitioned one, so chi2 is needed
        raise ValueError("result: the samples lack the chi2 column that flowprior.integrations.cobaya's runs add")
    chi2 = plain["chi2"].to_numpy(dtype=float)[keep]
    values = np.column_stack([theta, plain[derived].to_numpy(dtype=float)[keep]])
    names = prior.names + [f"{d}*" for d in derived]
    text = {str(k): str(v).strip("$") for k, v in dict(labels).items()}
    return {"values": values, "weights": weights[keep] / weights[keep].max(),
            "minuslogpost": chi2 / 2 - prior.logpdf(theta), "names": names,
            "labels": [text.get(n.rstrip("*"), n.rstrip("*")) for n in names]}
