"""Masked autoregressive flow fitted to weighted samples on a bounded space."""

from __future__ import annotations

import math

import numpy as np

from flowprior.flows.base import FlowDensity, make_rng
from flowprior.flows.build import build_maf
from flowprior.data import check_enough, check_inside, is_real, is_whole, read_samples, warn_degenerate
from flowprior.numerics import kish_ess
from flowprior.flows.blocks import check_blocks, same_block
from flowprior.flows.spaces import INTERVAL, LINKS, Space, parse_bounds
from flowprior.flows.training import TrainingRecord, seeded, train_flow

#: Fewest positive-weight samples a flow is trained on (held-out set >= 4).
MIN_SAMPLES = 20
#: Fewest optimizer steps without a held-out gain before a fit stops by default: on 1 500 rows an epoch is 3
#: steps, and 20 epochs stopped anesthetic's PolyChord example before its first gain (benchmarks/RESULTS.md,
#: "anesthetic's example chains through `flowprior train`").
MIN_PATIENCE_STEPS = 200
#: The patience (epochs) of the flows the enhanced run and reweight train on a low run's few hundred effective
#: samples: training them longer thins their tails (same section).
LOW_RUN_PATIENCE = 20


def default_patience(max_epochs: int, n_rows: int, val_fraction: float, batch_size: int,
                     min_steps: int = MIN_PATIENCE_STEPS) -> int:
    """Epochs without a held-out gain before a fit stops: 2 % of ``max_epochs``, and ``min_steps`` steps."""
    steps = max(1, math.ceil((1 - val_fraction) * n_rows / batch_size))
    return max(1, round(0.02 * max_epochs), math.ceil(min_steps / steps))


class MAFSettings:
    """The settings of masked autoregressive flows and the training of one flow with them.

    Shared by :class:`MAF` (one flow) and :class:`~flowprior.PiecewiseFlow`
    (one flow per piece); the parameters are :class:`MAF`'s.
    """

    def __init__(
        self,
        n_transforms: int = 5,
        hidden_features=(64, 64),
        *,
        max_epochs: int = 1000,
        learning_rate: float = 3e-3,
        batch_size: int = 512,
        val_fraction: float = 0.2,
        patience: int | None = None,
        whiten: bool = True,
        link: str = "logit",
        blocks=None,
        bins: int | None = None,
        seed=None,
        device: str = "cpu",
        progress: bool = True,
    ):
        self.n_transforms = n_transforms
        self.hidden_features = hidden_features
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.whiten = whiten
        self.link = link
        self.blocks = blocks
        self.bins = bins
        self.seed = seed
        self.device = device
        self.progress = progress
        MAFSettings._check_params(self)  # these settings; a subclass checks its own in its __init__

    def get_params(self) -> dict:
        """Constructor arguments (scikit-learn style), JSON-friendly except ``seed``."""
        return {
            "n_transforms": self.n_transforms,
            "hidden_features": list(self.hidden_features),
            "max_epochs": self.max_epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "val_fraction": self.val_fraction,
            "patience": self.patience,
            "whiten": self.whiten,
            "link": self.link,
            "blocks": None if self.blocks is None else [[v if isinstance(v, str) else int(v) for v in b]
                                                        for b in self.blocks],
            "bins": self.bins,
            "seed": self.seed if isinstance(self.seed, (int, type(None))) else None,
            "device": self.device,
            "progress": self.progress,
        }

    def _check_params(self) -> None:
        """Raise a ``ValueError`` naming the first setting that cannot train a flow."""
        if not is_whole(self.n_transforms, 1):
            raise ValueError(f"n_transforms: expected a positive integer, got {self.n_transforms!r}")
        hidden = self.hidden_features
        if isinstance(hidden, (str, bytes)) or not np.iterable(hidden) or not len(hidden) or not all(
                is_whole(h, 1) for h in hidden):
            raise ValueError(f"hidden_features: expected a sequence of positive integers, got {hidden!r}")
        if not (is_real(self.val_fraction) and 0 < self.val_fraction < 1):
            raise ValueError(f"val_fraction: expected a value in (0, 1), got {self.val_fraction!r}")
        if not is_whole(self.max_epochs, 1):
            raise ValueError(f"max_epochs: expected a positive integer, got {self.max_epochs!r}")
        if not is_whole(self.batch_size, 1):
            raise ValueError(f"batch_size: expected a positive integer, got {self.batch_size!r}")
        if not (is_real(self.learning_rate) and 0 < self.learning_rate < np.inf):
            raise ValueError(f"learning_rate: expected a positive finite number (Adam's step size, e.g. 3e-3), "
                             f"got {self.learning_rate!r}")
        if self.link not in LINKS:
            raise ValueError(f"link: expected one of {list(LINKS)} (the map of a two-sided coordinate to the real "
                             f"line), got {self.link!r}")
        if self.bins is not None and not is_whole(self.bins, 2):
            raise ValueError(f"bins: expected an integer >= 2 (spline bins per transform) or None (affine "
                             f"transforms), got {self.bins!r}")
        if self.link == "interval" and self.bins is None:
            raise ValueError("link: 'interval' keeps a coordinate on a spline's interval; it needs spline "
                             "transforms (fp.NSF, or bins=...)")
        if self.patience is not None and not is_whole(self.patience, 1):
            raise ValueError(f"patience: expected a positive integer or None, got {self.patience!r}")

    def _resolve_blocks(self, ndim: int, names) -> np.ndarray | None:
        """Check ``blocks`` against the data (setting ``blocks_``); the whitening's block mask, or None."""
        self.blocks_ = check_blocks(self.blocks, ndim, names)
        return None if self.blocks_ is None else same_block(self.blocks_, ndim)

    def _default_patience(self, n_rows: int) -> int:
        """The patience when ``patience`` is None (:func:`default_patience`)."""
        return default_patience(self.max_epochs, n_rows, self.val_fraction, self.batch_size)

    def _same_order(self) -> bool:
        """Whether every transform follows the natural variable order (:func:`~flowprior.flows.build.build_maf`)."""
        return False

    def _train_piece(self, x, w, space, rng, desc: str = "MAF", redraw=None):
        """Build and train one flow on ``x`` mapped through ``space`` (``redraw``: as :meth:`MAF.fit`'s)."""
        y, logdet = space.to_real(x)
        init_seed = int(rng.integers(2**63))
        flow = seeded(init_seed, lambda: build_maf(x.shape[1], self.n_transforms, self.hidden_features,
                                                   self.blocks_, self.bins, space.kinds == INTERVAL,
                                                   self._same_order()))
        patience = self.patience if self.patience is not None else self._default_patience(len(x))
        record = train_flow(
            flow, y, w, rng=rng, max_epochs=self.max_epochs, learning_rate=self.learning_rate,
            batch_size=self.batch_size, val_fraction=self.val_fraction, patience=patience,
            device=self.device, progress=self.progress, desc=desc,
            refresh=None if redraw is None else (lambda rows, g: space.to_real(redraw(x[rows], g))[0]),
        )
        record.ess = kish_ess(w)
        if record.val_rows is not None and len(record.val_rows) and record.best_epoch >= 0:
            # The held-out loss is in the flow's whitened coordinates; adding the
            # Jacobian of the map from parameters gives the parameter-space figure.
            v = record.val_rows
            record.held_out_log_prob = float(-record.val_loss[record.best_epoch]
                                             + np.sum(w[v] * logdet[v]) / np.sum(w[v]))
        return flow, record


class MAF(MAFSettings, FlowDensity):
    """A masked autoregressive flow (zuko) usable as a prior transform.

    Parameters
    ----------
    n_transforms : int
        Number of autoregressive transforms.
    hidden_features : sequence of int
        Hidden layer widths of each transform's masked network.  Wider or
        deeper networks than the defaults (5 transforms of 2 x 64) fitted
        the benchmarks no better (docs/design.md, "Piecewise flows and
        training defaults").
    max_epochs : int
        Upper limit on training epochs.
    learning_rate : float
        Adam's initial step size; halved whenever the held-out loss stalls
        for a quarter of the patience.
    batch_size : int
        Rows per gradient step.
    val_fraction : float
        Fraction of rows held out for early stopping.
    patience : int, optional
        Epochs without held-out improvement before stopping; default 2 % of
        ``max_epochs`` (the piecewise-flows paper's choice), and at least
        ``MIN_PATIENCE_STEPS`` optimizer steps, so that a few hundred rows
        (a few steps per epoch) train too.
    whiten : bool
        Whiten the (unbounded) coordinates with the samples' weighted
        covariance before the flow, rather than only standardising them.
        With the flow initialised to the identity, training then starts from
        the weighted Gaussian fit, and a flow that only learns departures
        from it does not overfit a Gaussian (docs/design.md, "Piecewise
        flows and training defaults").
    link : {"logit", "probit", "interval"}
        The map of a coordinate bounded on both sides to the real line.
        ``"probit"`` (``ndtri`` of the position in the box) makes a flat
        coordinate, or one whose prior is an inverse CDF, Gaussian
        (:mod:`flowprior.flows.spaces`).  ``"interval"`` (spline flows
        only) maps it onto the splines' interval with a uniform base there
        (:mod:`flowprior.flows.interval`).
    blocks : list of lists of int or str, optional
        Groups of parameters (indices or names) the flow keeps independent:
        its density is the product of the blocks' (:mod:`flowprior.flows.blocks`).
        They must cover every parameter exactly once.
    bins : int, optional
        Rational-quadratic spline transforms with this many bins instead of
        affine ones (:class:`~flowprior.NSF` sets 8).
    seed : int, numpy Generator or None
        Seeds weight initialisation, the held-out split and batch order.
        Same seed and data give an identical flow.
    device : str
        torch device used for training (``"cuda"`` for a GPU); inference runs
        on the CPU.
    progress : bool
        Show a tqdm progress bar while training.

    Attributes
    ----------
    flow_ : zuko.flows.MAF
        The trained torch flow on standardised real coordinates.
    record_ : TrainingRecord
        Losses per epoch, the restored best epoch and the fit time.
    """

    @property
    def flow_(self):
        self._check_fitted()
        return self.pieces_[0]

    @property
    def record_(self) -> TrainingRecord:
        self._check_fitted()
        return self.records_[0]

    def fit(self, theta, weights=None, bounds=None, names=None, redraw=None) -> "MAF":
        """Train on weighted samples.

        Parameters
        ----------
        theta : array_like of shape (n, d), DataFrame or anesthetic Samples
            Samples; anesthetic samples bring weights, names and labels.
        weights : array_like of shape (n,), optional
            Non-negative weights (nested-sampling weights; zeros allowed).
        bounds : None, list of (lo, hi) or dict name -> (lo, hi)
            The support.  ``None`` / infinite sides are open.  Default: the
            real line in every coordinate (never the sample range, which
            would truncate the density).
        names : list of str, optional
            Parameter names (default: the DataFrame's columns).
        redraw : callable, optional
            ``redraw(rows, rng)``: the rows (an (m, d) array) with some
            columns drawn afresh, called before every epoch (the auxiliary
            variables of :class:`~flowprior.MarginalizingFlow`).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For bad settings or samples, naming the argument and the rows.
        RuntimeError
            Where training diverges (a non-finite loss) before any epoch
            improves on the untrained flow.

        Warns
        -----
        UserWarning
            For a column with one value in every positive-weight sample, or
            a Kish effective sample size below ``flowprior.data.MIN_ESS``.
        """
        self._check_params()
        data = read_samples(theta, weights, names)
        lo, hi = parse_bounds(bounds, data.x.shape[1], data.names)
        check_inside(data.x, lo, hi)
        keep = data.weights > 0  # zero-weight rows carry no information for the fit
        check_enough(int(keep.sum()), MIN_SAMPLES)
        x, w = data.x[keep], data.weights[keep]
        warn_degenerate(x, w, data.names)
        rng = make_rng(self.seed)
        mask = self._resolve_blocks(x.shape[1], data.names)
        space = Space.fit(x, w, lo, hi, whiten=self.whiten, link=self.link, same_block=mask)
        flow, record = self._train_piece(x, w, space, rng, redraw=redraw)
        self.ndim_ = x.shape[1]
        self.names_ = data.names
        self.latex_labels_ = data.labels
        self.pieces_ = [flow]
        self.spaces_ = [space]
        self.weights_ = np.ones(1)
        self.records_ = [record]
        self._finish()
        return self
