"""Checks of the arguments the workflows share, made before anything runs."""

from __future__ import annotations

import numpy as np

from flowprior.data import RESERVED_COLUMNS, check_names
from flowprior.integrations import adapter
from flowprior.workflows.checked import with_derived
from flowprior.workflows.plan import DEFAULTS


def is_number(x) -> bool:
    """Whether ``x`` is a real number (Python or NumPy)."""
    return isinstance(x, (int, float, np.integer, np.floating))


def check_common(ndim, nlive) -> None:
    """``ndim`` a positive integer and ``nlive`` an integer of at least 2."""
    if int(ndim) != ndim or ndim < 1:
        raise ValueError(f"ndim: expected a positive integer, got {ndim!r}")
    if int(nlive) != nlive or nlive < 2:
        raise ValueError(f"nlive: expected an integer >= 2, got {nlive!r}")


def check_seed(seed):
    """``seed`` as an int (NumPy integers too), a Generator, a SeedSequence or None; anything else is an error."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return int(seed)
    raise ValueError(f"seed: expected a non-negative integer, a numpy Generator or SeedSequence, or None; "
                     f"got {seed!r}")


def check_inputs(ndim, nlive, names, seed, sampler: str):
    """The arguments every workflow shares; returns ``(names, seed, adapter)``."""
    check_common(ndim, nlive)
    found = adapter(sampler)
    return check_names(names, int(ndim)), check_seed(seed), found


def check_derived(loglike, derived_names, names):
    """``loglike`` carrying ``derived_names`` (:func:`~flowprior.workflows.checked.with_derived`), checked
    against the parameter ``names`` and anesthetic's own columns."""
    loglike = with_derived(loglike, derived_names)
    clash = sorted(set(derived_names or ()) & (set(names or ()) | set(RESERVED_COLUMNS)), key=str)
    if clash:
        raise ValueError(f"derived_names: {clash} already name parameters or anesthetic's columns "
                         f"{list(RESERVED_COLUMNS)}; give derived parameters names of their own")
    return loglike


def checked_nlive_low(nlive_low, nlive: int, ndim: int, fewest: int, default, mcmc: bool = False,
                      cap=None) -> int:
    """The low stage's live points: the user's, checked, else ``default()`` capped at ``nlive // low_share``.

    ``fewest`` is the smallest number a flow can be trained from; a low
    stage that moves points by ``mcmc`` steps needs more than ``ndim``.
    ``cap(c)``, where given, turns the cap ``c`` into the adapter's
    (:meth:`~flowprior.integrations.base.SamplerAdapter.low_cap`).
    """
    given, share = nlive_low, DEFAULTS.low_share
    if nlive_low is None:
        if nlive // share < fewest:
            raise ValueError(f"nlive: the enhanced run's low stage runs nlive // {share} live points, at least "
                             f"{fewest}: expected nlive >= {share * fewest}, got {nlive!r} (or pass nlive_low)")
        limit = nlive // share if cap is None else cap(nlive // share)
        nlive_low = min(default(), limit)
    check_common(ndim, nlive_low)
    if nlive_low < fewest:
        raise ValueError(f"nlive_low: expected at least {fewest} live points (fewer leave too few "
                         f"samples to train a flow on), got {nlive_low!r}")
    if mcmc and nlive_low < ndim + 1:
        raise ValueError(f"nlive_low: the low stage samples by MCMC steps scaled from the live points' spread, "
                         f"which needs more live points than dimensions: expected at least ndim + 1 = {ndim + 1}, "
                         f"got {nlive_low}" + (f" (the cap at nlive {nlive}; pass a larger nlive)" if given is None else ""))
    if nlive_low >= nlive:
        raise ValueError(f"nlive_low ({nlive_low}) must be smaller than nlive ({nlive})")
    return int(nlive_low)


def adapter_nlive_low(adapter, nlive_low, nlive: int, ndim: int, sampler_kwargs: dict | None) -> int:
    """:func:`checked_nlive_low` with the sampler ``adapter``'s default, MCMC test and cap.

    Example
    -------
    >>> from flowprior.integrations.dynesty import ADAPTER
    >>> adapter_nlive_low(ADAPTER, None, 500, 6, None), adapter_nlive_low(ADAPTER, None, 500, 27, None)
    (100, 108)
    """
    ndim = int(ndim)
    return checked_nlive_low(nlive_low, nlive, ndim, DEFAULTS.min_nlive_low,
                             lambda: adapter.nlive_low(ndim, sampler_kwargs), mcmc=adapter.mcmc(ndim, sampler_kwargs),
                             cap=lambda c: adapter.low_cap(ndim, sampler_kwargs, nlive, c))


def check_knobs(grow_below, defensive, broaden) -> None:
    """The enhanced run's ``grow_below``, ``defensive`` and ``broaden``, each in its range."""
    if grow_below is not None and not (is_number(grow_below) and 0 < grow_below <= 1):
        raise ValueError(f"grow_below: expected a check score (relative effective sample size) in (0, 1] or None, "
                         f"got {grow_below!r}")
    if not 0 <= defensive < 1:
        raise ValueError(f"defensive: expected a weight in [0, 1), got {defensive!r}")
    if broaden is not None and not (is_number(broaden) and np.isfinite(broaden) and broaden >= 1):
        raise ValueError(f"broaden: expected a base scale >= 1 or None, got {broaden!r}")


#: The flows ``enhanced_run`` trains by name (:func:`flowprior.workflows.levels.train`); it also takes
#: "marginalizing" (:mod:`flowprior.workflows.augmented`).
FLOW_NAMES = ("auto", "maf", "nsf", "piecewise")


def check_flow_choice(flow, transform: str = "slab") -> None:
    """``flow`` one of :data:`FLOW_NAMES` or a flowprior flow object, and ``transform`` a piecewise transform;
    checked before the low stage runs."""
    from flowprior.flows.base import FlowDensity
    from flowprior.flows.piecewise import TRANSFORMS

    if not (isinstance(transform, str) and transform in TRANSFORMS):
        raise ValueError(f"transform: expected one of {list(TRANSFORMS)} (a piecewise flow's prior transform), "
                         f"got {transform!r}")
    if isinstance(flow, FlowDensity) or (isinstance(flow, str) and flow in FLOW_NAMES):
        return
    raise ValueError(f"flow: expected one of {list(FLOW_NAMES)} (enhanced_run: or 'marginalizing') or a flowprior "
                     f"flow (e.g. fp.MAF(blocks=...)), "
                     f"got {flow!r}")
