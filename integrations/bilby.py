"""bilby's view of a flow: a joint prior distribution, so that a previous posterior is a bilby prior.

:func:`flow_prior_dict` gives a bilby ``PriorDict`` of one ``JointPrior`` per
parameter, all backed by one :class:`FlowJointPriorDist`: its ``rescale`` is
the flow's prior transform (deterministic, so every bilby sampler that works
in the unit cube can use it), its ``ln_prob`` the flow's exact log-density and
its ``sample`` draws through bilby's own seeded generator.  bilby is optional:
``pip install 'flowprior[bilby]'``.

Example
-------
>>> import bilby
>>> from flowprior.integrations import bilby as fpb
>>> priors = fpb.flow_prior_dict(fp.load("posterior.flow"))           # doctest: +SKIP
>>> bilby.run_sampler(likelihood, priors, sampler="dynesty", nlive=500)  # doctest: +SKIP

References
----------
Ashton et al., "Bilby: a user-friendly Bayesian inference library for gravitational-wave astronomy",
ApJS 241, 27 (2019), arXiv:1811.02042.
"""

from __future__ import annotations

import numpy as np

try:
    from bilby.core.prior.joint import BaseJointPriorDist
except ImportError:  # flow_prior_dict says what to install
    BaseJointPriorDist = object

INSTALL = "bilby is not installed; pip install 'flowprior[bilby]' (or bilby)"


class FlowJointPriorDist(BaseJointPriorDist):
    """A fitted flowprior flow as bilby's ``BaseJointPriorDist``.

    Parameters
    ----------
    flow : MAF, NSF or PiecewiseFlow
        Fitted (or loaded).
    names : list of str, optional
        bilby's parameter names, in the flow's order; default: the flow's.
    """

    def __init__(self, flow, names=None):
        if BaseJointPriorDist is object:
            raise ImportError(INSTALL)
        names = _names(flow, names)
        bounds = [(-np.inf if lo is None else lo, np.inf if hi is None else hi) for lo, hi in flow.bounds_]
        super().__init__(names=names, bounds=bounds)
        self.distname = "flowprior"
        self.flow = flow

    def _rescale(self, samp, **kwargs):
        return self.flow.prior_transform(np.atleast_2d(samp))

    def _sample(self, size, **kwargs):
        from bilby.core.utils import random

        return self.flow.sample(int(size), seed=random.rng)

    def _ln_prob(self, samp, lnprob, outbounds):
        lnprob = self.flow.log_prob(np.atleast_2d(samp))
        lnprob[outbounds] = -np.inf
        return lnprob


def flow_prior_dict(flow, names=None):
    """A bilby ``PriorDict`` whose joint prior over ``names`` is ``flow``.

    Parameters
    ----------
    flow : MAF, NSF or PiecewiseFlow
        Fitted (or loaded); its LaTeX labels become the priors' labels.
    names : list of str, optional
        bilby's parameter names, in the flow's order; default: the flow's.

    Returns
    -------
    bilby.core.prior.PriorDict
    """
    try:
        from bilby.core.prior import PriorDict
        from bilby.core.prior.joint import JointPrior
    except ImportError:
        raise ImportError(INSTALL) from None
    dist = FlowJointPriorDist(flow, names)
    labels = getattr(flow, "latex_labels_", None) or [None] * len(dist.names)
    return PriorDict({name: JointPrior(dist, name=name, latex_label=label) for name, label in zip(dist.names, labels)})


def _names(flow, names) -> list[str]:
    """bilby's parameter names for ``flow``: ``names`` (one per flow coordinate) or the flow's own."""
    names = list(names) if names is not None else flow.names_
    if names is None:
        raise ValueError("names: this flow has no parameter names; pass one bilby name per coordinate")
    if len(names) != flow.ndim_:
        raise ValueError(f"names: expected {flow.ndim_} names (the flow's coordinates), got {len(names)}")
    return [str(n) for n in names]
