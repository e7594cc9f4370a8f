"""Reading and checking user input: samples, weights, hypercube points.

Every check raises a ``ValueError`` that names the argument, the offending rows
and what was expected.  Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Columns of anesthetic's NestedSamples that are bookkeeping, not parameters.
ANESTHETIC_COLUMNS = ("logL", "logL_birth", "nlive")


def _rows(mask: np.ndarray, limit: int = 10) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"rows [{shown}]{more}"


@dataclass
class Samples:
    """Checked samples: values, weights, parameter names and LaTeX labels."""

    x: np.ndarray
    weights: np.ndarray
    names: list[str] | None
    labels: list[str] | None


def read_samples(theta, weights=None, names=None) -> Samples:
    """Read samples from an array, a pandas DataFrame or anesthetic samples.

    Parameters
    ----------
    theta : array_like of shape (n, d), DataFrame or anesthetic Samples
        anesthetic samples bring their weights, names and labels; their
        bookkeeping columns (``logL``, ``logL_birth``, ``nlive``) are not
        parameters and are left out.
    weights : array_like of shape (n,), optional
        Non-negative sample weights; default: the samples' own weights, or 1.
    names : list of str, optional
        Parameter names; default: the DataFrame's columns.
    """
    labels = None
    if hasattr(theta, "columns") and hasattr(theta, "to_numpy"):
        frame = theta
        if weights is None and hasattr(frame, "get_weights"):
            weights = frame.get_weights()
        if hasattr(frame, "drop_labels"):
            if frame.columns.nlevels > 1:
                labels = {c: str(frame.get_label(c)) for c in frame.columns.get_level_values(0)}
            frame = frame.drop_labels()
        cols = [c for c in frame.columns if c not in ANESTHETIC_COLUMNS]
        labels = [labels.get(c, str(c)) for c in cols] if labels else None
        frame = frame[cols]
        if names is None:
            names = [str(c) for c in cols]
        x = frame.to_numpy(dtype=float)
    else:
        try:
            x = np.asarray(theta, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"theta: could not read as a float array ({err})") from None
    if x.ndim != 2:
        raise ValueError(f"theta: expected a 2-D array of shape (n_samples, n_dims); got shape {x.shape}")
    n, d = x.shape
    if d < 1:
        raise ValueError("theta: has no parameter columns")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(f"theta: non-finite values (NaN or inf) in {_rows(bad)}")
    if weights is None:
        w = np.ones(n)
    else:
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"weights: could not read as a float array ({err})") from None
        if w.shape != (n,):
            raise ValueError(f"weights: expected shape ({n},), one per row of theta; got {w.shape}")
        bad = ~np.isfinite(w)
        if bad.any():
            raise ValueError(f"weights: non-finite values in {_rows(bad)}")
        bad = w < 0
        if bad.any():
            raise ValueError(f"weights: negative values in {_rows(bad)}")
        if not w.sum() > 0:
            raise ValueError("weights: sum to zero; at least one sample needs a positive weight")
    return Samples(x, w, check_names(names, d, "one per column of theta"), labels)


def check_names(names, d: int, per: str = "one per parameter") -> list[str] | None:
    """Parameter names as strings: ``d`` of them, no duplicates (``None`` stays ``None``)."""
    if names is None:
        return None
    names = [str(v) for v in names]
    if len(names) != d:
        raise ValueError(f"names: expected {d} names, {per}; got {len(names)}")
    if len(set(names)) != d:
        raise ValueError(f"names: duplicates in {names}")
    return names


def column_names(frame) -> list[str]:
    """The parameter names of a DataFrame or anesthetic samples (bookkeeping columns left out)."""
    # One row with weight 1: the names do not depend on the (maybe all-zero) weights.
    return read_samples(frame.iloc[:1], weights=np.ones(1)).names


def named_points(theta, names, ndim: int, what: str, owner: str) -> tuple[np.ndarray, bool]:
    """Points as :func:`as_points`; a DataFrame's columns are matched to ``names`` first."""
    if hasattr(theta, "columns") and names is not None:
        frame = theta.drop_labels() if hasattr(theta, "drop_labels") else theta
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValueError(f"{what}: columns {missing} missing; the {owner}'s parameters are {names}")
        theta = frame[names].to_numpy(dtype=float)
    return as_points(theta, ndim, what)


def check_inside(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, what: str = "theta") -> None:
    """Raise if any row of ``x`` is not strictly inside the box."""
    outside = ~np.all((x > lo) & (x < hi), axis=1)
    if outside.any():
        r = int(np.flatnonzero(outside)[0])
        cols = np.flatnonzero((x[r] <= lo) | (x[r] >= hi))
        raise ValueError(
            f"{what}: samples outside the bounds (or on them) in {_rows(outside)}; e.g. row {r}, "
            f"column {int(cols[0])}: {float(x[r, cols[0]])!r} not in the open interval "
            f"({lo[cols[0]]}, {hi[cols[0]]}). Widen the bounds to the prior's support."
        )


def check_enough(n_positive: int, minimum: int, what: str = "theta") -> None:
    if n_positive < minimum:
        raise ValueError(
            f"{what}: too few samples with positive weight to train a flow: {n_positive}, need at least {minimum}"
        )


def as_points(u, ndim: int, what: str = "u") -> tuple[np.ndarray, bool]:
    """Read ``(d,)`` or ``(n, d)`` points as a C-contiguous 2-D float array; flag a single point."""
    arr = np.asarray(u, dtype=float)
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != ndim:
        raise ValueError(f"{what}: expected shape ({ndim},) or (n, {ndim}); got {np.shape(u)}")
    return np.ascontiguousarray(arr), single


def in_unit_cube(u: np.ndarray) -> np.ndarray | np.bool_:
    """Whether each point (last axis) lies in the closed unit cube; NaN is outside."""
    return np.all((u >= 0) & (u <= 1), axis=-1)


def unit_cube_error(u: np.ndarray, what: str = "u") -> ValueError:
    """The error for points outside the closed unit cube."""
    bad = ~in_unit_cube(u)
    r = int(np.flatnonzero(bad)[0])
    return ValueError(f"{what}: values outside [0, 1] (or NaN) in {_rows(bad)}; e.g. row {r}: {u[r].tolist()}")
