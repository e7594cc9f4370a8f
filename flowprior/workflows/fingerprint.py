"""A fingerprint of the user's problem, so that stage files are reused only for the problem that wrote them.

An ``outdir`` of :func:`flowprior.enhanced_run` records its settings in
``config.json``, but settings do not say which likelihood and prior transform
made its stage files: a user who edits the likelihood and reruns with the
same ``outdir`` would get the old answer back.  The fingerprint is the user's
functions evaluated at a few fixed points of the hypercube (stored in
``problem.json``) and, once a low-resolution stage is saved, at its
highest-likelihood points: on every reuse they are evaluated again and any
difference is an error that says what changed and what to do.

Example
-------
>>> import numpy as np
>>> pt = lambda u: 10 * u - 5
>>> ll = lambda t: -0.5 * float(t @ t)
>>> stored = take(ll, pt, 2)
>>> verify(stored, ll, pt, "problem.json")   # same functions: passes
>>> verify(stored, lambda t: -float(t @ t), pt, "problem.json")
Traceback (most recent call last):
...
ValueError: problem.json: loglike gives other values than when these files were written ...
"""

from __future__ import annotations

import math

import numpy as np

#: How many fixed points of the cube, and how many of a saved stage's best points, are re-evaluated.
N_FIXED = 3
N_BEST = 3
#: Agreement asked of a re-evaluation: log-likelihoods within ``LOGL_TOL`` nats (plus a relative
#: ``RTOL``), parameters within ``RTOL`` (plus ``ATOL``), so a likelihood written to text and read
#: back still matches while any edit of the problem does not.
LOGL_TOL = 1e-6
RTOL = 1e-9
ATOL = 1e-12


def fixed_points(ndim: int, n: int = N_FIXED) -> np.ndarray:
    """``n`` fixed, well-spread points of the ``ndim``-cube: its centre, then a Halton sequence."""
    primes = _primes(ndim)
    rows = [np.full(ndim, 0.5)]
    for i in range(1, n):
        rows.append(np.array([_radical_inverse(i, p) for p in primes]))
    return np.array(rows)


def _primes(k: int) -> list[int]:
    out, n = [], 2
    while len(out) < k:
        if all(n % p for p in out):
            out.append(n)
        n += 1
    return out


def _radical_inverse(i: int, base: int) -> float:
    x, f = 0.0, 1.0 / base
    while i:
        x += f * (i % base)
        i //= base
        f /= base
    return x


def _thetas(prior_transform, u: np.ndarray) -> np.ndarray:
    return np.array([np.asarray(prior_transform(row), dtype=float) for row in u])


def evaluate(loglike, prior_transform, u: np.ndarray) -> dict:
    """The user's functions at rows ``u`` of the cube: ``{"u", "theta", "logl"}`` as lists."""
    theta = _thetas(prior_transform, u)
    logl = [float(loglike(t)) for t in theta]
    return {"u": np.asarray(u, dtype=float).tolist(), "theta": theta.tolist(), "logl": logl}


def take(loglike, prior_transform, ndim: int) -> dict:
    """The fingerprint of a new ``outdir``: the user's functions at :func:`fixed_points`."""
    return evaluate(loglike, prior_transform, fixed_points(ndim))


def best_rows(logl: np.ndarray, n: int = N_BEST) -> np.ndarray:
    """Indices of the ``n`` highest finite log-likelihoods (deterministic on ties)."""
    logl = np.asarray(logl, dtype=float)
    finite = np.flatnonzero(np.isfinite(logl))
    order = finite[np.argsort(-logl[finite], kind="stable")]
    return order[:n]


def _close_logl(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= LOGL_TOL + RTOL * abs(a)


def verify(stored: dict, loglike, prior_transform, where: str) -> int:
    """Re-evaluate the user's functions at ``stored["u"]`` and compare; return the number of calls made.

    Parameters
    ----------
    stored : dict
        ``{"u", "theta", "logl"}`` as :func:`evaluate` made them.
    loglike, prior_transform : callable
        The user's functions now.
    where : str
        The file the stored values come from, named in the error.

    Raises
    ------
    ValueError
        Naming the function that changed, the point and both values.
    """
    u = np.asarray(stored["u"], dtype=float)
    if len(u) == 0:
        return 0
    theta_then = np.asarray(stored["theta"], dtype=float)
    theta_now = _thetas(prior_transform, u)
    if theta_now.shape != theta_then.shape or not np.allclose(theta_now, theta_then, rtol=RTOL, atol=ATOL):
        bad = 0 if theta_now.shape != theta_then.shape else int(np.flatnonzero(
            ~np.all(np.isclose(theta_now, theta_then, rtol=RTOL, atol=ATOL), axis=1))[0])
        raise _changed(where, "prior_transform", u[bad], theta_then[bad].tolist(), np.asarray(theta_now[bad]).tolist())
    for row, theta, then in zip(u, theta_now, stored["logl"]):
        now = float(loglike(theta))
        if not _close_logl(float(then), now):
            raise _changed(where, "loglike", row, then, now)
    return len(u)


def _changed(where: str, function: str, u, then, now) -> ValueError:
    return ValueError(
        f"{where}: {function} gives other values than when these files were written "
        f"(at u={np.asarray(u).tolist()}: {then!r} then, {now!r} now), so they belong to another problem; "
        "use a new outdir (or delete this one) to run this problem")
