"""Two nested-sampling runs of one problem merged into one run: the live points of both, by birth contours.

A dead point born at contour ``L_birth`` was live until it died, so runs
that record birth contours combine into a single run whose live-point count
is, at each contour, the sum of theirs (Skilling 2006; Higson et al. 2018,
"Sampling errors in nested sampling parameter estimation").  A mode found by
either run is in the merged one, with the weight its points earn there.

Example
-------
>>> import numpy as np
>>> from anesthetic import NestedSamples
>>> def a_run(seed):
...     rng = np.random.default_rng(seed)
...     u = np.sort(rng.uniform(size=(40, 1)), axis=0)[::-1]  # in the order of rising logL
...     s = NestedSamples(data=2 * u, logL=-u[:, 0], logL_birth=-np.inf, columns=["x"])
...     return Result(samples=s, logZ=0.0, logZerr=0.0, ncall={"total": 40}, samples_u=u, sampler="any")
>>> both = merged(a_run(0), a_run(1))
>>> both.ncall["total"], len(both.samples), bool(np.allclose(both.samples["x"], 2 * both.samples_u[:, 0]))
(80, 80, True)
"""

from __future__ import annotations

import numpy as np

from flowprior.data import RESERVED_COLUMNS, unlabelled
from flowprior.evidence import logz_error
from flowprior.result import Result


def has_births(result: Result) -> bool:
    """Whether a run's samples record birth contours (PolyChord's do; dynesty's constant-nlive runs do not)."""
    return "logL_birth" in unlabelled(result.samples).columns


def merged(first: Result, second: Result) -> Result:
    """One run from two runs of the same problem that record birth contours.

    Parameters
    ----------
    first, second : Result
        Runs with ``logL_birth`` in their samples and the same columns.

    Returns
    -------
    Result
        Their points as one run (sorted by ``logL``, ``samples_u`` alongside),
        its evidence and simulated error, the calls of both, and ``second``'s
        sampler and raw object.
    """
    from anesthetic import NestedSamples

    frames = [unlabelled(r.samples) for r in (first, second)]
    columns = [c for c in frames[0].columns if c not in RESERVED_COLUMNS]
    for name, r, f in zip(("first", "second"), (first, second), frames):
        if not has_births(r) or [c for c in f.columns if c not in RESERVED_COLUMNS] != columns:
            raise ValueError(f"{name}: expected a run with birth contours and the columns {columns}")
    ndim = first.samples_u.shape[1]
    u_columns = [f"__u{j}" for j in range(ndim)]
    data = np.vstack([np.column_stack([f[columns].to_numpy(dtype=float), r.samples_u])
                      for f, r in zip(frames, (first, second))])
    logl = np.concatenate([f["logL"].to_numpy(dtype=float) for f in frames])
    birth = np.concatenate([f["logL_birth"].to_numpy(dtype=float) for f in frames])
    both = NestedSamples(data=data, logL=logl, logL_birth=birth, columns=columns + u_columns)
    samples = both.drop(columns=u_columns)  # the same rows in the same order as samples_u
    logz = float(samples.logZ())
    return Result(samples=samples, logZ=logz, logZerr=logz_error(samples, np.hypot(first.logZerr, second.logZerr)),
                  ncall={"total": first.ncall["total"] + second.ncall["total"]},
                  samples_u=both[u_columns].to_numpy(dtype=float), sampler=second.sampler, raw=second.raw)
