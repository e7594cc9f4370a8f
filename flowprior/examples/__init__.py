"""Test problems that the benchmarks, demos and tests share, each with a known evidence.

- **Planck-like Gaussian** (6-D): the mean, covariance and prior box of
  ``anesthetic.examples.perfect_ns.planck_gaussian`` (Planck 2018
  TTTEEE+lowl+lowE+lensing); a normalised Gaussian well inside the box, so
  ``logZ = -sum(log(hi - lo))``.
- **Four-mode mixture** (4-D): four well-separated Gaussians (weights 0.4,
  0.3, 0.2, 0.1; sigma 0.5) in ``[-10, 10]^4``; ``logZ = -4 log 20`` and each
  mode's posterior mass is its weight.
- **Banana** (4-D): two twisted Gaussian pairs with a unit-Jacobian twist,
  so the likelihood integrates to 1; the box holds all but a negligible
  mass (:func:`banana_pair_outside`).
- **Student-t** (4-D): a product of t densities (nu 3, scale 0.2) whose
  tails the box ``[-10, 10]^4`` truncates, kept exactly in :func:`student_logz`.
- **In many dimensions** (:mod:`flowprior.examples.high_dim`): a correlated
  Gaussian of any dimension, and the Planck-like Gaussian with nuisance
  parameters (:func:`planck_nuisances`).
- **2-D targets** of normflows (``TwoMoons``, ``CircularGaussianMixture``,
  ``RingMixture``, the two rings), exactly normalised and sampled with a
  seeded Generator: :func:`target_log_prob`, :func:`target_sample`,
  :func:`target_kl`.

Every likelihood is a class instance, so it pickles for pools and MPI.
The priors are :class:`~flowprior.UniformPrior` boxes (the same values as
``lo + (hi - lo) * u``), except the nuisances' Gaussians.  :func:`problem`
gathers one low-dimensional problem's pieces.

Example
-------
>>> from flowprior import examples
>>> p = examples.problem("planck")
>>> p.ndim, round(p.logZ, 4)
(6, 0.4328)
>>> round(p.loglike(examples.PLANCK_MEAN), 3)  # the peak of a normalised Gaussian
34.487
"""

from flowprior.examples.high_dim import *  # noqa: F401,F403
from flowprior.examples.high_dim import __all__ as _high_dim
from flowprior.examples.problems import *  # noqa: F401,F403
from flowprior.examples.problems import __all__ as _problems

__all__ = _problems + _high_dim
