"""Picklable wrappers that check what the user's functions return, and carry derived parameters.

A NaN from a likelihood, or a prior transform returning the wrong shape,
otherwise surfaces deep inside a sampler (or not at all); these raise a
``ValueError`` that names the function and the point.

Derived parameters: with ``derived_names``, the user's ``loglike`` returns
``(logL, derived)`` (as PolyChord users write it).  :class:`DerivedLikelihood`
checks that pair; every likelihood wrapper of the workflows is a
:class:`Carrier`: calling it gives the log-likelihood alone (what the
workflows' checks and fingerprints use), its ``both`` gives the pair (what a
sampler adapter stores beside each point), and its ``derived_names`` are the
wrapped likelihood's.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from flowprior.numerics import in_unit_cube


def loglike_value(value, theta) -> float:
    """One log-likelihood value as a float, or a ``ValueError`` naming ``loglike`` and the point.

    Accepted: real numbers (Python or NumPy; not ``bool``) and numeric
    arrays of size 1 (``np.float64(1.5)``, ``np.array(1.5)``,
    ``np.array([1.5])``).  Refused: text (``"1.5"`` would otherwise convert
    silently), booleans, complex numbers and arrays of more than one value.
    NaN and infinities pass through (see :class:`CheckedLikelihood`).
    """
    if isinstance(value, (bool, np.bool_)):
        raise _refused(value, theta, "a bool is not a log-likelihood")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (str, bytes)):
        raise _refused(value, theta, "text is not a number; return a float")
    try:
        arr = np.asarray(value)
    except Exception:  # objects numpy cannot read at all
        raise _refused(value, theta, "expected one real number") from None
    if arr.dtype.kind not in "fiu":
        raise _refused(value, theta, f"an array of dtype {arr.dtype} is not a real number")
    if arr.size != 1:
        raise ValueError(f"loglike returned an array of shape {arr.shape} at theta={_point(theta)}; expected one "
                         "number (a float, or an array of size 1)")
    return float(arr.reshape(()))


def _point(theta) -> list:
    return np.asarray(theta).tolist()


def _refused(value, theta, why: str) -> ValueError:
    return ValueError(f"loglike returned {value!r} (type {type(value).__name__}) at theta={_point(theta)}: {why}")


#: The derived values of a likelihood without derived parameters.
NO_DERIVED = np.empty(0)


def evaluate(loglike, theta) -> tuple:
    """``(value, derived)`` of any likelihood: a :class:`Carrier`'s pair, else its value and no derived values."""
    both = getattr(loglike, "both", None)
    return both(theta) if both is not None else (loglike(theta), NO_DERIVED)


def derived_names(loglike) -> tuple[str, ...]:
    """The derived parameters ``loglike`` carries (empty for a plain function)."""
    return tuple(getattr(loglike, "derived_names", ()))


class Carrier:
    """A likelihood wrapper that carries derived parameters: ``self(theta)`` is ``self.both(theta)[0]``.

    Subclasses set ``loglike`` (the wrapped likelihood) and define ``both``.
    """

    loglike = None

    @property
    def derived_names(self) -> tuple[str, ...]:
        """The wrapped likelihood's derived parameters."""
        return derived_names(self.loglike)

    def __call__(self, theta) -> float:
        return self.both(theta)[0]

    def both(self, theta) -> tuple:
        """``(logL, derived)`` at ``theta``."""
        raise NotImplementedError


class DerivedLikelihood(Carrier):
    """A user's ``loglike`` that returns ``(logL, derived)``, with ``derived`` one value per name.

    Refused (a ``ValueError`` naming ``loglike``, the point and what was
    expected): anything but a pair, a derived vector of the wrong length
    or not real, and NaN derived values where ``logL`` is finite (at an
    excluded point, ``logL = -inf``, derived values may be anything).

    Example
    -------
    >>> like = DerivedLikelihood(lambda x: (-float(x @ x), [2 * x[0]]), ["twice"])
    >>> like.both(np.array([1.0, 0.0]))
    (-1.0, array([2.]))
    """

    def __init__(self, loglike, names):
        self.loglike = loglike
        self.names = tuple(names)

    @property
    def derived_names(self) -> tuple[str, ...]:
        return self.names

    def both(self, theta) -> tuple:
        value = self.loglike(theta)
        n = len(self.names)
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise ValueError(f"loglike returned {value!r} at theta={_point(theta)}; with derived_names="
                             f"{list(self.names)} it must return (logL, derived) with {n} derived values")
        logl = loglike_value(value[0], theta)
        derived = np.asarray(value[1])
        if derived.dtype.kind not in "fiu" or derived.shape not in ((n,), (1, n)):
            raise ValueError(f"loglike returned derived values {value[1]!r} at theta={_point(theta)}; expected "
                             f"{n} real numbers, one per derived_names={list(self.names)}")
        derived = derived.astype(float).reshape(n)
        if logl > -math.inf and np.isnan(derived).any():
            bad = [name for name, d in zip(self.names, derived) if np.isnan(d)]
            raise ValueError(f"loglike returned NaN for derived parameters {bad} at theta={_point(theta)} "
                             f"(logL {logl}); derived values may be NaN only where logL is -inf")
        return logl, derived


class ScalarLikelihood(Carrier):
    """``loglike`` whose value is read as one float by :func:`loglike_value` (NaN and infinities pass)."""

    def __init__(self, loglike):
        self.loglike = loglike

    def both(self, theta) -> tuple:
        value, derived = evaluate(self.loglike, theta)
        if isinstance(value, tuple) and len(value) == 2 and not derived_names(self.loglike):
            raise ValueError(f"loglike returned a pair {value!r} at theta={_point(theta)}; to keep derived "
                             "parameters pass derived_names=[...], one name per derived value")
        return loglike_value(value, theta), derived


class CheckedLikelihood(ScalarLikelihood):
    """``loglike`` that must return one real number or ``-inf``; NaN or ``+inf`` raise."""

    def both(self, theta) -> tuple:
        value, derived = super().both(theta)
        if math.isnan(value) or value == math.inf:
            raise ValueError(f"loglike returned {value} at theta={_point(theta)}; "
                             "return -inf for excluded points")
        return value, derived


class Pair:
    """``loglike``'s ``(value, derived)`` at one point, as a picklable pool task."""

    def __init__(self, loglike):
        self.loglike = loglike

    def __call__(self, x) -> tuple:
        return evaluate(self.loglike, x)


def evaluate_in_cube(loglike, u: np.ndarray, pool=None) -> tuple[np.ndarray, np.ndarray, int]:
    """``loglike`` at each row of ``u`` inside the unit cube, ``-inf`` outside; its derived values; the calls.

    Parameters
    ----------
    loglike : callable
        ``u -> float`` for one point of the cube, or a :class:`Carrier`.
    u : (n, d) array
    pool : optional
        Anything with ``map`` (multiprocessing, MPI); the calls go through it.

    Returns
    -------
    logl : (n,) array
    derived : (n, k) array
        For the ``k`` :func:`derived_names` of ``loglike``; NaN outside the cube.
    calls : int

    Example
    -------
    >>> evaluate_in_cube(lambda x: -float(x.sum()), np.array([[0.5, 0.5], [1.5, 0.0]]))[::2]
    (array([ -1., -inf]), 1)
    """
    u = np.asarray(u, dtype=float)
    inside = in_unit_cube(u)
    logl = np.full(len(u), -np.inf)
    derived = np.full((len(u), len(derived_names(loglike))), np.nan)
    if inside.any():
        logl[inside], derived[inside] = evaluate_points(loglike, u[inside], pool)
    return logl, derived, int(inside.sum())


def evaluate_points(loglike, points: np.ndarray, pool=None) -> tuple[np.ndarray, np.ndarray]:
    """``loglike`` at each of the (at least one) ``points``, through ``pool.map`` where given.

    Returns the ``(n,)`` log-likelihoods and the ``(n, k)`` derived values.

    Example
    -------
    >>> evaluate_points(lambda x: -float(x.sum()), np.array([[0.5, 0.5], [1.0, 0.0]]))
    (array([-1., -1.]), array([], shape=(2, 0), dtype=float64))
    """
    mapper = pool.map if pool is not None else map
    pairs = list(mapper(Pair(loglike), list(points)))
    logl = np.array([value for value, _ in pairs], dtype=float)
    return logl, np.array([d for _, d in pairs], dtype=float).reshape(len(pairs), -1)


def with_derived(loglike, names) -> object:
    """``loglike`` as a :class:`DerivedLikelihood` where ``names`` are given (checked), else as it is.

    Raises
    ------
    ValueError
        Where ``names`` is not a sequence of distinct, non-empty strings.
    """
    if names is None:
        return loglike
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"derived_names: expected a list of non-empty strings, got {names!r}")
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"derived_names: names repeat in {names}")
    return DerivedLikelihood(loglike, names) if names else loglike


class CheckedPrior:
    """``prior_transform`` that must map a (d,) point to a finite (d,) point."""

    def __init__(self, prior_transform, ndim: int):
        self.prior_transform = prior_transform
        self.ndim = ndim

    def __call__(self, u) -> np.ndarray:
        theta = np.asarray(self.prior_transform(u), dtype=float)
        if theta.shape != (self.ndim,):
            raise ValueError(f"prior_transform returned shape {theta.shape} for u={np.asarray(u).tolist()}; "
                             f"expected ({self.ndim},)")
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"prior_transform returned non-finite values {theta.tolist()} "
                             f"for u={np.asarray(u).tolist()}")
        return theta
