"""Neural spline flow: a masked autoregressive flow whose transforms are rational-quadratic splines."""

from __future__ import annotations

from flowprior.flows.maf import MAF


class NSF(MAF):
    """A neural spline flow (zuko's NSF) usable wherever a :class:`~flowprior.MAF` is.

    Each autoregressive transform maps every coordinate through a monotone
    rational-quadratic spline of ``bins`` bins on ``[-5, 5]`` (the identity
    outside), whose widths, heights and knot slopes the masked network
    gives from the coordinates before it.  Splines bend where an affine map
    only shifts and scales: skewed, flat-topped and multi-peaked
    conditionals, and densities piled against a bound seen through its link.
    Like the MAF it starts as the identity (the whitened Gaussian fit), fits
    by maximum likelihood on weighted samples, and has a compiled per-point
    prior transform and density (:mod:`flowprior.flows.splines`).

    Parameters
    ----------
    n_transforms, hidden_features
        As in :class:`~flowprior.MAF`.
    bins : int
        Spline bins per transform and coordinate (at least 2).
    **settings
        Every other :class:`~flowprior.MAF` setting (``max_epochs``,
        ``link``, ``blocks``, ``seed``, ...).

    Example
    -------
    >>> import numpy as np, flowprior as fp
    >>> x = np.random.default_rng(0).gamma(2.0, size=(2000, 2))
    >>> flow = fp.NSF(bins=8, max_epochs=50, seed=0, progress=False).fit(x, bounds=[(0, None)] * 2)
    >>> u = flow.inverse_transform(flow.sample(5, seed=1))
    >>> bool(np.allclose(flow.prior_transform(u), flow.sample(5, seed=1)))
    True

    References
    ----------
    Durkan, Bekasov, Murray & Papamakarios, "Neural Spline Flows" (2019), arXiv:1906.04032.
    """

    def __init__(self, n_transforms: int = 5, hidden_features=(64, 64), *, bins: int = 8, **settings):
        super().__init__(n_transforms, hidden_features, bins=bins, **settings)
