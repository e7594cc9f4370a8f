"""Reading and checking user input: samples, weights, hypercube points.

Every check raises a ``ValueError`` that names the argument, the offending rows
and what was expected.  Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowprior.numerics import in_unit_cube, kish_ess

#: Columns of anesthetic's NestedSamples that are bookkeeping, not parameters.
ANESTHETIC_COLUMNS = ("logL", "logL_birth", "nlive")
#: Columns anesthetic gives nested samples itself (with their weights): no parameter may take these names.
RESERVED_COLUMNS = ANESTHETIC_COLUMNS + ("weights",)


def unlabelled(frame):
    """``frame`` without the LaTeX-label level anesthetic puts on its columns; ``frame`` itself where it has none.

    Example
    -------
    >>> import pandas as pd
    >>> list(unlabelled(pd.DataFrame({"a": [1.0]})).columns)
    ['a']
    """
    return frame.drop_labels() if hasattr(frame, "drop_labels") else frame


def rows_text(mask: np.ndarray, limit: int = 10) -> str:
    """The rows where ``mask`` is true, as error messages name them: ``"rows [3, 7]"`` (the first ``limit``).

    Example
    -------
    >>> rows_text(np.array([False, True, True]))
    'rows [1, 2]'
    """
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
        _check_columns(frame, cols)
        labels = [labels.get(c, str(c)) for c in cols] if labels else None
        frame = frame[cols]
        if names is None:
            names = [str(c) for c in cols]
        x = frame.to_numpy(dtype=float)
    else:
        x = _float_array(theta, "theta")
    if x.ndim != 2:
        raise ValueError(f"theta: expected a 2-D array of shape (n_samples, n_dims); got shape {x.shape}")
    n, d = x.shape
    if d < 1:
        raise ValueError("theta: has no parameter columns")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(f"theta: non-finite values (NaN or inf) in {rows_text(bad)}")
    if weights is None:
        w = np.ones(n)
    else:
        w = _float_array(weights, "weights")
        if w.shape != (n,):
            raise ValueError(f"weights: expected shape ({n},), one per row of theta; got {w.shape}")
        bad = ~np.isfinite(w)
        if bad.any():
            raise ValueError(f"weights: non-finite values in {rows_text(bad)}")
        bad = w < 0
        if bad.any():
            raise ValueError(f"weights: negative values in {rows_text(bad)}")
        if not w.sum() > 0:
            raise ValueError("weights: sum to zero; at least one sample needs a positive weight")
    return Samples(x, w, check_names(names, d, "one per column of theta"), labels)


def _float_array(values, what: str) -> np.ndarray:
    """``values`` as a float array; text and booleans are refused rather than converted."""
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError) as err:  # ragged nesting
        raise ValueError(f"{what}: could not read as a float array ({err})") from None
    if raw.dtype.kind in "USb":
        kind = "booleans" if raw.dtype.kind == "b" else "text"
        raise ValueError(f"{what}: holds {kind} (dtype {raw.dtype}); expected numbers")
    try:
        return raw.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: could not read as a float array ({err})") from None


def _check_columns(frame, cols) -> None:
    """Raise for duplicated column names and for columns that do not hold numbers."""
    dup = sorted({str(c) for c in cols if list(frame.columns).count(c) > 1})
    if dup:
        raise ValueError(f"theta: duplicated column names {dup}; each parameter needs one column of its own")
    for c in cols:
        col = frame[c]
        kind = getattr(col.dtype, "kind", "O")
        if kind in "iuf":
            continue
        if kind == "b":
            raise ValueError(f"theta: column {str(c)!r} holds booleans (dtype {col.dtype}); expected numbers")
        values = col.to_numpy(dtype=object)
        bad = np.array([not is_real(v) for v in values], dtype=bool)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ValueError(f"theta: column {str(c)!r} holds non-numbers (dtype {col.dtype}) in {rows_text(bad)}; "
                             f"e.g. row {r}: {values[r]!r}; expected numbers in every parameter column")


def is_real(value) -> bool:
    """Whether ``value`` is one real number (Python or NumPy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_whole(value, minimum: int) -> bool:
    """Whether ``value`` is a whole number >= ``minimum`` (``5`` or ``5.0``; not ``True``, NaN or inf)."""
    return is_real(value) and bool(np.isfinite(value)) and value == int(value) and value >= minimum


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
    """Points as :func:`as_points`, NaN refused; a DataFrame's columns are matched to ``names`` first."""
    if hasattr(theta, "columns") and names is not None:
        frame = unlabelled(theta)
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValueError(f"{what}: columns {missing} missing; the {owner}'s parameters are {names}")
        theta = frame[names].to_numpy(dtype=float)
    x, single = as_points(theta, ndim, what)
    nan = np.isnan(x).any(axis=1)
    if nan.any():
        r = int(np.flatnonzero(nan)[0])
        raise ValueError(f"{what}: NaN in {rows_text(nan)}; e.g. row {r}: {x[r].tolist()}; expected numbers "
                         "(a point outside the bounds is fine: its density is zero)")
    return x, single


def check_inside(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, what: str = "theta") -> None:
    """Raise if any row of ``x`` is not strictly inside the box."""
    outside = ~np.all((x > lo) & (x < hi), axis=1)
    if outside.any():
        r = int(np.flatnonzero(outside)[0])
        cols = np.flatnonzero(~((x[r] > lo) & (x[r] < hi)))  # NaN counts as outside
        raise ValueError(
            f"{what}: samples outside the bounds (or on them) in {rows_text(outside)}; e.g. row {r}, "
            f"column {int(cols[0])}: {float(x[r, cols[0]])!r} not in the open interval "
            f"({lo[cols[0]]}, {hi[cols[0]]}). Widen the bounds to the prior's support."
        )


def check_enough(n_positive: int, minimum: int, what: str = "theta") -> None:
    if n_positive < minimum:
        raise ValueError(
            f"{what}: too few samples with positive weight to train a flow: {n_positive}, need at least {minimum}"
        )


#: Kish effective sample size below which ``fit`` warns: the held-out fifth used
#: for early stopping then carries about two samples' worth of weight.
MIN_ESS = 10


def warn_degenerate(x: np.ndarray, w: np.ndarray, names: list[str] | None) -> None:
    """Warn about what a flow cannot learn from: constant columns, or weight on a few samples.

    ``x`` and ``w`` are the positive-weight rows.
    """
    import warnings

    const = np.flatnonzero(np.all(x == x[0], axis=0))
    if len(const):
        cols = [names[i] if names else int(i) for i in const]
        warnings.warn(
            f"theta: column(s) {cols} take one value ({', '.join(f'{x[0, i]:g}' for i in const[:5])}) in all "
            f"{len(x)} samples with positive weight; a flow has no density to learn along them (it narrows "
            "towards a spike while training). Leave them out of the fit, or fix them in the prior", stacklevel=3)
    ess = kish_ess(w)
    if ess < MIN_ESS:
        warnings.warn(
            f"weights: effective sample size (Kish) {ess:.1f} of {len(x)} samples with positive weight, below "
            f"{MIN_ESS}: a few samples carry nearly all the weight, so the flow (and the held-out fifth used "
            "for early stopping) learns from those few points. Use more samples, or check the weights "
            "(log-weights passed as weights?)", stacklevel=3)


def as_points(u, ndim: int, what: str = "u") -> tuple[np.ndarray, bool]:
    """Read ``(d,)`` or ``(n, d)`` points as a C-contiguous 2-D float array; flag a single point."""
    arr = np.asarray(u, dtype=float)
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != ndim:
        raise ValueError(f"{what}: expected shape ({ndim},) or (n, {ndim}); got {np.shape(u)}")
    return np.ascontiguousarray(arr), single


def unit_cube_error(u: np.ndarray, what: str = "u") -> ValueError:
    """The error for points outside the closed unit cube."""
    bad = ~in_unit_cube(u)
    r = int(np.flatnonzero(bad)[0])
    return ValueError(f"{what}: values outside [0, 1] (or NaN) in {rows_text(bad)}; e.g. row {r}: {u[r].tolist()}")
