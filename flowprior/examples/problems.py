"""The low-dimensional test problems of :mod:`flowprior.examples` (their list is there).

Every likelihood is a class instance, so it pickles for pools and MPI, and
every prior is a :class:`~flowprior.UniformPrior` (the same values as
``lo + (hi - lo) * u``).  :func:`problem` gathers one problem's pieces.

Example
-------
>>> p = problem("planck")
>>> p.ndim, round(p.logZ, 4)
(6, 0.4328)
>>> round(p.loglike(PLANCK_MEAN), 3)  # the peak of a normalised Gaussian
34.487
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import integrate, stats
from scipy.special import logsumexp

from flowprior.priors import UniformPrior

__all__ = [
    "Problem", "problem", "calls_text", "GaussianLikelihood",
    "PLANCK_NAMES", "PLANCK_LABELS", "PLANCK_MEAN", "PLANCK_COV", "PLANCK_LO", "PLANCK_HI", "PLANCK_LOGZ",
    "planck_prior",
    "MIXTURE_NDIM", "MIXTURE_NAMES", "MIXTURE_CENTRES", "MIXTURE_WEIGHTS", "MIXTURE_SIGMA", "MIXTURE_HALF",
    "MIXTURE_LOGZ", "FourModes", "mixture_prior", "nearest_mode",
    "BANANA_NAMES", "BANANA_B", "BANANA_S", "BANANA_RHO", "BANANA_COV", "BANANA_LO", "BANANA_HI", "BANANA_LOGZ",
    "Banana", "banana_prior", "twist", "untwist", "banana_pair_outside", "banana_mc_outside",
    "STUDENT_NAMES", "STUDENT_NU", "STUDENT_SCALE", "STUDENT_HALF", "STUDENT_LO", "STUDENT_HI", "StudentT",
    "student_prior", "student_moments", "student_logz",
    "TARGET_LOG_NORMALISERS", "TARGET_BOX", "normflows_target", "target_log_prob", "target_sample", "target_kl",
]


def _box(lo, hi, names=None) -> UniformPrior:
    return UniformPrior(np.stack([lo, hi], axis=1), names=names)


# --- Planck-like Gaussian ----------------------------------------------------------------------------------------

PLANCK_NAMES = ["omegabh2", "omegach2", "theta", "tau", "logA", "ns"]
PLANCK_LABELS = {"omegabh2": r"$\Omega_b h^2$", "omegach2": r"$\Omega_c h^2$", "theta": r"$100\theta_{MC}$",
                 "tau": r"$\tau$", "logA": r"$\ln(10^{10}A_s)$", "ns": r"$n_s$"}
PLANCK_MEAN = np.array([0.02237, 0.1200, 1.04092, 0.0544, 3.044, 0.9649])
PLANCK_COV = np.array([
    [2.12e-08, -9.03e-08, 1.76e-08, 2.96e-07, 4.97e-07, 2.38e-07],
    [-9.03e-08, 1.39e-06, -1.26e-07, -3.41e-06, -4.15e-06, -3.28e-06],
    [1.76e-08, -1.26e-07, 9.71e-08, 4.30e-07, 7.41e-07, 4.13e-07],
    [2.96e-07, -3.41e-06, 4.30e-07, 5.33e-05, 9.53e-05, 1.05e-05],
    [4.97e-07, -4.15e-06, 7.41e-07, 9.53e-05, 2.00e-04, 1.35e-05],
    [2.38e-07, -3.28e-06, 4.13e-07, 1.05e-05, 1.35e-05, 1.73e-05]])
PLANCK_LO = np.array([5.00e-03, 1.00e-03, 5.00e-01, 1.00e-02, 1.61e00, 8.00e-01])
PLANCK_HI = np.array([1.00e-01, 9.90e-01, 1.00e01, 8.00e-01, 3.91e00, 1.20e00])
#: The analytic log-evidence ``-log prod(hi - lo)``: every coordinate's mean lies at least 6 sd inside the box.
PLANCK_LOGZ = -float(np.sum(np.log(PLANCK_HI - PLANCK_LO)))


class GaussianLikelihood:
    """Normalised Gaussian log-likelihood ``log N(theta; mean, cov)``, by default the Planck-like one.

    Parameters
    ----------
    mean : (d,) array
    cov : (d, d) array

    Example
    -------
    >>> like = GaussianLikelihood(np.zeros(2), np.eye(2))
    >>> round(like(np.zeros(2)), 4)
    -1.8379
    """

    def __init__(self, mean=PLANCK_MEAN, cov=PLANCK_COV):
        self.mean = mean
        self.prec = np.linalg.inv(cov)
        self.norm = -0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]

    def __call__(self, theta) -> float:
        r = theta - self.mean
        return float(-0.5 * r @ self.prec @ r + self.norm)


def planck_prior() -> UniformPrior:
    """The uniform prior on the Planck-like box, with the parameter names."""
    return _box(PLANCK_LO, PLANCK_HI, PLANCK_NAMES)


# --- Four-mode mixture -------------------------------------------------------------------------------------------

MIXTURE_NDIM = 4
MIXTURE_NAMES = ["x0", "x1", "x2", "x3"]
MIXTURE_CENTRES = np.array([[-5.0, -5.0, 0.0, 0.0], [5.0, 5.0, 0.0, 0.0], [-5.0, 5.0, 3.0, -3.0],
                            [5.0, -5.0, -3.0, 3.0]])
MIXTURE_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
MIXTURE_SIGMA = 0.5
MIXTURE_HALF = 10.0
MIXTURE_LOGZ = -MIXTURE_NDIM * np.log(2 * MIXTURE_HALF)


class FourModes:
    """Normalised mixture of the four Gaussians ``MIXTURE_CENTRES`` (sd ``MIXTURE_SIGMA``, weights ``MIXTURE_WEIGHTS``).

    Example
    -------
    >>> like = FourModes()
    >>> round(like(MIXTURE_CENTRES[0]), 4)  # log(0.4) - 4 log(sigma sqrt(2 pi)) at the first mode's peak
    -1.8195
    """

    def __call__(self, x) -> float:
        r2 = np.sum((np.asarray(x) - MIXTURE_CENTRES) ** 2, axis=1) / MIXTURE_SIGMA**2
        return float(logsumexp(np.log(MIXTURE_WEIGHTS) - 0.5 * r2)
                     - MIXTURE_NDIM * np.log(MIXTURE_SIGMA * np.sqrt(2 * np.pi)))


def mixture_prior() -> UniformPrior:
    """The uniform prior on ``[-10, 10]^4``, with names ``x0`` to ``x3``."""
    return _box(np.full(MIXTURE_NDIM, -MIXTURE_HALF), np.full(MIXTURE_NDIM, MIXTURE_HALF), MIXTURE_NAMES)


def nearest_mode(x: np.ndarray) -> np.ndarray:
    """Index of the nearest of ``MIXTURE_CENTRES`` for each row of ``x`` (how mode masses are counted)."""
    return np.argmin(((x[:, None, :] - MIXTURE_CENTRES[None]) ** 2).sum(-1), axis=1)


# --- Banana ------------------------------------------------------------------------------------------------------
# y ~ N(0, BANANA_COV) in R^4, twisted pairwise: x1 = y1, x2 = y2 + b (x1^2 - 1), x3 = y3, x4 = y4 + b (x3^2 - 1).

BANANA_NAMES = ["x1", "x2", "x3", "x4"]
BANANA_B = 1.0      # twist
BANANA_S = 0.25     # width of the twisted coordinates about their ridge
BANANA_RHO = 0.8    # correlation of y1 and y3 (couples the two bananas)
BANANA_COV = np.diag([1.0, BANANA_S**2, 1.0, BANANA_S**2])
BANANA_COV[0, 2] = BANANA_COV[2, 0] = BANANA_RHO
BANANA_LO = np.array([-6.0, -1.0 - 6 * BANANA_S, -6.0, -1.0 - 6 * BANANA_S])
BANANA_HI = np.array([6.0, 35.0, 6.0, 35.0])
#: ``-sum(log(hi - lo))``: exact up to the mass outside the box (:func:`banana_pair_outside`).
BANANA_LOGZ = -float(np.sum(np.log(BANANA_HI - BANANA_LO)))


def twist(x: np.ndarray) -> np.ndarray:
    """``x -> y`` for rows of ``x`` (unit Jacobian)."""
    y = np.array(x, dtype=float, copy=True)
    y[..., 1] -= BANANA_B * (x[..., 0] ** 2 - 1)
    y[..., 3] -= BANANA_B * (x[..., 2] ** 2 - 1)
    return y


def untwist(y: np.ndarray) -> np.ndarray:
    """``y -> x`` for rows of ``y``: the inverse of :func:`twist`."""
    x = np.array(y, dtype=float, copy=True)
    x[..., 1] += BANANA_B * (y[..., 0] ** 2 - 1)
    x[..., 3] += BANANA_B * (y[..., 2] ** 2 - 1)
    return x


class Banana:
    """Normalised twisted-Gaussian log-likelihood ``log N(twist(x); 0, BANANA_COV)``.

    Each pair is a banana: over ``|x1| < 2`` the ridge ``x2 = x1^2 - 1``
    moves 4 units, 16 widths ``s``.

    Example
    -------
    >>> like = Banana()
    >>> like(np.array([0.0, -1.0, 0.0, -1.0])) == like(untwist(np.zeros(4)))
    True
    """

    def __init__(self):
        self.prec = np.linalg.inv(BANANA_COV)
        self.norm = -0.5 * np.linalg.slogdet(2 * np.pi * BANANA_COV)[1]

    def __call__(self, x) -> float:
        y = twist(np.asarray(x, dtype=float))
        return float(-0.5 * y @ self.prec @ y + self.norm)


def banana_prior() -> UniformPrior:
    """The uniform prior on the banana's box, ``x1, x3`` in [-6, 6] and ``x2, x4`` in [-1 - 6 s, 35]."""
    return _box(BANANA_LO, BANANA_HI, BANANA_NAMES)


def banana_pair_outside() -> float:
    """Exact mass of one (x1, x2) pair's marginal outside its box, by quadrature.

    The pair's marginal is ``y1 ~ N(0, 1)``, ``y2 ~ N(0, s^2)`` independent,
    twisted; the mass outside is P(x1 outside) + integral over x1 inside of
    phi(x1) P(x2 outside | x1), summed without cancellation.  The four
    coordinates' mass outside lies between this and twice this.
    """
    lo1, lo2, hi1, hi2 = BANANA_LO[0], BANANA_LO[1], BANANA_HI[0], BANANA_HI[1]
    b, s = BANANA_B, BANANA_S
    p1 = stats.norm.cdf(lo1) + stats.norm.sf(hi1)

    def cond(x1):
        m = b * (x1**2 - 1)
        return stats.norm.pdf(x1) * (stats.norm.cdf((lo2 - m) / s) + stats.norm.sf((hi2 - m) / s))

    # the conditional tail switches on sharply near |x1| = sqrt(hi2 / b + 1): give quad the points
    edge = np.sqrt(hi2 / b + 1)
    pts = sorted(p for p in (-edge, 0.0, edge) if lo1 < p < hi1)
    p2, _ = integrate.quad(cond, lo1, hi1, points=pts, limit=400, epsabs=1e-16, epsrel=1e-10)
    return float(p1 + p2)


def banana_mc_outside(n: int, seed: int = 12345, chunk: int = 1_000_000) -> int:
    """How many of ``n`` exact draws (y ~ N(0, C), untwisted) fall outside the box; a seeded check of the quadrature."""
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(BANANA_COV)
    out = 0
    done = 0
    while done < n:
        m = min(chunk, n - done)
        x = untwist(rng.standard_normal((m, len(BANANA_LO))) @ chol.T)
        out += int(np.count_nonzero(np.any((x < BANANA_LO) | (x > BANANA_HI), axis=1)))
        done += m
    return out


# --- Student-t ---------------------------------------------------------------------------------------------------

STUDENT_NU = 3.0
STUDENT_SCALE = 0.2
STUDENT_HALF = 10.0
STUDENT_LO = np.full(4, -STUDENT_HALF)
STUDENT_HI = np.full(4, STUDENT_HALF)
STUDENT_NAMES = ["x1", "x2", "x3", "x4"]


class StudentT:
    """Product of four normalised Student-t log-densities (nu ``STUDENT_NU``, scale ``STUDENT_SCALE``).

    Example
    -------
    >>> round(StudentT()(np.zeros(4)), 4)
    2.4342
    """

    def __call__(self, x) -> float:
        return float(np.sum(stats.t.logpdf(np.asarray(x, dtype=float), STUDENT_NU, scale=STUDENT_SCALE)))


def student_prior() -> UniformPrior:
    """The uniform prior on ``[-10, 10]^4``."""
    return _box(STUDENT_LO, STUDENT_HI, STUDENT_NAMES)


def student_moments():
    """In-box mass of one t coordinate, and posterior checks' truths and sds under the truncated density.

    Returns
    -------
    mass : float
    checks : dict
        ``{"x1": (mean, sd), "P(|x1|<0.2)": (probability, sd)}``, by quadrature.
    """
    dist = stats.t(STUDENT_NU, scale=STUDENT_SCALE)
    mass = dist.cdf(STUDENT_HALF) - dist.cdf(-STUDENT_HALF)

    def moment(k):
        val, _ = integrate.quad(lambda x: x**k * dist.pdf(x), -STUDENT_HALF, STUDENT_HALF, points=[0.0], limit=400,
                                epsabs=1e-14, epsrel=1e-12)
        return val / mass

    p_core = (dist.cdf(STUDENT_SCALE) - dist.cdf(-STUDENT_SCALE)) / mass
    return mass, {"x1": (0.0, np.sqrt(moment(2))), "P(|x1|<0.2)": (p_core, np.sqrt(p_core * (1 - p_core)))}


def student_logz(mass: float | None = None) -> float:
    """Exact log-evidence, ``4 log(T(50) - T(-50)) - 4 log 20`` (``T``: the t_3 CDF; the box truncates the tails).

    ``mass`` is one coordinate's in-box mass (default: :func:`student_moments`'s).
    """
    if mass is None:
        mass = student_moments()[0]
    return len(STUDENT_LO) * np.log(mass) - float(np.sum(np.log(STUDENT_HI - STUDENT_LO)))


# --- One record per problem --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A likelihood, its uniform prior and its log-evidence.

    Attributes
    ----------
    loglike : callable
        ``theta -> float``, picklable.
    prior : UniformPrior
        The prior box (also the prior transform).
    ndim : int
    names : list of str
    logZ : float
        The known log-evidence.
    """

    loglike: Callable
    prior: UniformPrior
    ndim: int
    names: list
    logZ: float


def problem(name: str) -> Problem:
    """The problem ``"planck"``, ``"mixture"``, ``"banana"`` or ``"student"`` as a :class:`Problem`.

    Example
    -------
    >>> p = problem("mixture")
    >>> p.prior(np.full(4, 0.5)).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    if name == "planck":
        return Problem(GaussianLikelihood(), planck_prior(), 6, list(PLANCK_NAMES), PLANCK_LOGZ)
    if name == "mixture":
        return Problem(FourModes(), mixture_prior(), MIXTURE_NDIM, list(MIXTURE_NAMES), float(MIXTURE_LOGZ))
    if name == "banana":
        return Problem(Banana(), banana_prior(), 4, list(BANANA_NAMES), BANANA_LOGZ)
    if name == "student":
        return Problem(StudentT(), student_prior(), 4, list(STUDENT_NAMES), float(student_logz()))
    raise ValueError(f"name: expected 'planck', 'mixture', 'banana' or 'student', got {name!r}")


# --- 2-D targets of normflows ------------------------------------------------------------------------------------
# normflows gives unnormalised log-densities (max 0); the normalisers are those quoted by the piecewise-flow paper.

TARGET_LOG_NORMALISERS = {"TwoMoons": math.log(2.23494), "CircularGaussianMixture": 0.0,
                          "RingMixture": math.log(5.90610)}
#: ``|x|, |y| < TARGET_BOX`` holds the mass of all three targets (the rings end at 2.75).
TARGET_BOX = 4.5


def normflows_target(name: str):
    """normflows' ``TwoMoons``, ``CircularGaussianMixture(8)`` or ``RingMixture(2)`` (needs ``normflows``)."""
    import normflows as nf

    return {
        "TwoMoons": lambda: nf.distributions.TwoMoons(),
        "CircularGaussianMixture": lambda: nf.distributions.CircularGaussianMixture(8),
        "RingMixture": lambda: nf.distributions.RingMixture(2),
    }[name]()


def target_log_prob(name: str, x: np.ndarray) -> np.ndarray:
    """Normalised log-density of 2-D target ``name`` at rows of ``x``."""
    import torch

    target = normflows_target(name)
    with torch.no_grad():
        lp = target.log_prob(torch.as_tensor(x, dtype=torch.float64)).numpy()
    return lp - TARGET_LOG_NORMALISERS[name]


def target_sample(name: str, n: int, seed) -> np.ndarray:
    """``n`` exact samples of 2-D target ``name``, by rejection from the uniform box (seeded Generator).

    Example
    -------
    >>> target_sample("RingMixture", 5, seed=0).shape  # doctest: +SKIP
    (5, 2)
    """
    import torch

    rng = np.random.default_rng(seed)
    target = normflows_target(name)
    out = []
    have = 0
    while have < n:
        cand = rng.uniform(-TARGET_BOX, TARGET_BOX, size=(4 * n, 2))
        with torch.no_grad():
            lp = target.log_prob(torch.as_tensor(cand, dtype=torch.float64)).numpy()
        keep = cand[np.log(rng.uniform(size=len(cand))) < lp]
        out.append(keep)
        have += len(keep)
    return np.concatenate(out)[:n]


def target_kl(flow, name: str, n: int = 20000, seed=0) -> tuple[float, float]:
    """KL divergence ``E_q[log q - log p]`` of a fitted flow ``q`` from 2-D target ``name``, with its Monte Carlo error.

    The piecewise-flow paper's eq. 16, over ``n`` draws of the flow.
    """
    x = flow.sample(n, seed=seed)
    diff = flow.log_prob(x) - target_log_prob(name, x)
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(n))


# --- Reporting -----------------------------------------------------------------------------------------------------


def calls_text(res) -> str:
    """A run's likelihood calls as the benchmarks print them: a plain run's total, an enhanced run's low+check+high.

    An enhanced run also shows each low-resolution level's live points and
    its flow's check score (see ``flowprior.workflows.lowcheck``), e.g.
    ``[25: 0.41 > 100: 0.99]``, then the last level's tail statistic, e.g.
    ``[25: 1.13 t-0.3]``.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> calls_text(SimpleNamespace(ncall={"total": 61739}))
    '61739'
    """
    if "high" not in res.ncall:
        return str(res.ncall["total"])
    text = f"{res.ncall['low']}+{res.ncall['check']}+{res.ncall['high']}"
    levels = getattr(res, "low_checks", [])
    if levels:
        tail = levels[-1].tail
        text += (" [" + " > ".join(f"{lv.nlive_low}: {lv.score:.2f}" for lv in levels)
                 + (f" t{tail:+.1f}" if tail is not None else "") + "]")
    return text
