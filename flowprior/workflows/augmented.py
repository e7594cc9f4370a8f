"""The enhanced run with a marginalizing flow: the problem augmented by auxiliary cube coordinates.

With ``flow="marginalizing"`` (or a :class:`~flowprior.MarginalizingFlow`),
:func:`flowprior.enhanced_run` runs an augmented problem in ``D + B``
dimensions: cube points ``(u, e)``, the user's likelihood at
``prior_transform(u)`` (``e`` ignored), a uniform prior on ``e``.  Since
``e`` integrates to 1, the evidence and the posterior of ``u`` are the
user's own.  Its flows are :class:`~flowprior.flows.marginalizing.AuxiliaryMAF`:
through the probit link ``e`` becomes ``eps ~ N(0, 1)``, drawn afresh every
epoch, which is a marginalizing flow's training; and the high stage
repartitions in the augmented space, prior ``p_T(u, e)``, likelihood
``L(u) / p_T(u, e)``, an exact identity.  The flow can then represent a
folded posterior (mirrored modes touching at a point) that a bijection of
``u`` alone cannot.  The result drops the auxiliary columns.

Example
-------
>>> import flowprior as fp
>>> res = fp.enhanced_run(loglike, prior, 4, flow=fp.MarginalizingFlow(aux_dims=2))  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from flowprior.flows.marginalizing import AuxiliaryMAF, MarginalizingFlow, aux_names
from flowprior.result import Result
from flowprior.workflows.checked import Carrier, evaluate


class AugmentedLikelihood(Carrier):
    """The user's likelihood at the first ``ndim`` coordinates; derived parameters pass through."""

    def __init__(self, loglike, ndim: int):
        self.loglike, self.ndim = loglike, ndim

    def both(self, theta) -> tuple:
        return evaluate(self.loglike, np.asarray(theta)[:self.ndim])


class AugmentedPrior:
    """The user's prior transform on the first ``ndim`` cube coordinates; the others pass unchanged."""

    def __init__(self, prior_transform, ndim: int):
        self.prior_transform, self.ndim = prior_transform, ndim

    def __call__(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        return np.concatenate([np.asarray(self.prior_transform(u[:self.ndim]), dtype=float), u[self.ndim:]])


def is_marginalizing(flow) -> bool:
    """Whether ``flow`` asks for the augmented run."""
    return isinstance(flow, MarginalizingFlow) or (isinstance(flow, str) and flow == "marginalizing")


def augmented_run(run, args: dict) -> Result:
    """``run(args)`` on the augmented problem of ``args`` (:func:`flowprior.enhanced_run`'s), auxiliary columns
    dropped from the result."""
    flow = MarginalizingFlow() if isinstance(args["flow"], str) else args["flow"]
    d, b = int(args["ndim"]), int(flow.aux_dims)
    if b == 0:
        return run(dict(args, flow=flow.template(seed=flow.seed)))
    names = args["names"]
    aux = aux_names(b, names)
    inner = AuxiliaryMAF(aux_dims=b, **{"bins": flow.template().bins, "seed": flow.seed, "progress": False,
                                        **flow.settings})
    augmented = dict(args, loglike=AugmentedLikelihood(args["loglike"], d),
                     prior_transform=AugmentedPrior(args["prior_transform"], d), ndim=d + b,
                     names=None if names is None else list(names) + aux, flow=inner)
    return strip(run(augmented), d, args["prior_transform"])


def strip(res: Result, ndim: int, prior_transform) -> Result:
    """``res`` without its auxiliary columns (in ``samples``, ``samples_u`` and the low run's)."""
    for part in (res, res.low) if res.low is not None else (res,):
        part.samples = _drop(part.samples, ndim, part.samples_u.shape[1])
        part.samples_u = part.samples_u[:, :ndim]
    res.prior_transform = prior_transform
    return res


def _drop(samples, start: int, stop: int):
    """``samples`` without its columns ``start`` to ``stop`` (the auxiliary ones), labelled or not."""
    columns = samples.columns
    keep = [i for i in range(len(columns)) if not start <= i < stop]
    return samples.iloc[:, keep]
