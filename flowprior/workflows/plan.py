"""What an enhanced run was asked to do: its defaults, its settings and its random streams, in one record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowprior.flows.base import make_rng
from flowprior.integrations.base import SamplerAdapter, StageSettings


@dataclass(frozen=True)
class EnhancedDefaults:
    """The enhanced run's sampler-independent defaults (docs/design.md, the section named beside each).

    The defaults that depend on the sampler live with its adapter
    (:class:`~flowprior.integrations.dynesty.DynestyDefaults`,
    :class:`~flowprior.integrations.polychord.PolyChordDefaults`).

    Attributes
    ----------
    min_nlive_low : int
        Fewest low-stage live points: fewer leave too few samples to train a flow on.
    low_share : int
        The low stage runs at most ``nlive // low_share`` live points unless
        given (or its adapter raises the cap, :meth:`~flowprior.integrations.base.SamplerAdapter.low_cap`),
        and grows no further: it stays a small part of the run ("Low-stage live points").
    defensive : float
        Weight of the uniform cube in the high stage's prior ("Defensive mixture").
    broaden : float
        Width of the trained flow's Gaussian base ("Base broadening").
    grow_below : float
        Check score below which the low stage grows ("Growing the low stage").
    widen : tuple of float
        Factors of the base width tried when a flow fails its check and
        the low stage cannot grow ("Widening a failing flow").
    widen_tail : float
        Largest tail (nats) a widened flow may keep.
    warn_tail : float
        Check tail (nats) above which the run warns that its error bar may
        be too small: a flow missing that much of a tail gave PolyChord logZ
        pulls of +4 (benchmarks/RESULTS.md, "Error bars: coverage over seeds").
    rebase_gain : float
        Least KL divergence (nats) that rebasing a widened flow must be
        expected to remove for its check to be paid ("Rebasing a widened flow").
    transform : str
        How a piecewise flow the run trains maps the cube, ``"rosenblatt"``
        (a bijection) or ``"slab"`` (:class:`~flowprior.PiecewiseFlow`; "The
        bijective piecewise transform").
    """

    min_nlive_low: int = 5
    low_share: int = 5
    defensive: float = 0.0
    broaden: float = 1.2
    grow_below: float = 0.6
    widen: tuple = (1.125, 1.25, 1.5, 2.25)
    widen_tail: float = 1.0
    warn_tail: float = 5.0
    rebase_gain: float = 0.1
    transform: str = "rosenblatt"


DEFAULTS = EnhancedDefaults()


class Streams:
    """The enhanced run's random streams, all derived from one seed.

    The first level's low run, its flow and the high stage each have a
    stream; later levels and the checks draw from streams keyed by
    ``nlive_low`` (``streams(n_low, k)``), so a run resumed from ``outdir``
    draws what the uninterrupted run would have.

    Parameters
    ----------
    seed : int, numpy Generator or SeedSequence, or None
        A Generator or SeedSequence is turned into an int seed first.
    """

    def __init__(self, seed):
        if isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
            seed = int(make_rng(seed).integers(2**63))
        self.seed = seed
        seeds = np.random.SeedSequence(seed).spawn(4)
        self.low, self.flow, self.high = (np.random.default_rng(s) for s in seeds[:3])
        self._extra = seeds[3]

    def __call__(self, *key: int) -> np.random.Generator:
        extra = self._extra
        return np.random.default_rng(np.random.SeedSequence(extra.entropy, spawn_key=extra.spawn_key + key))


@dataclass
class Plan:
    """Everything the enhanced run's steps share, fixed for the run's duration.

    ``settings`` are the user's ``sampler_kwargs`` and ``run_kwargs``;
    ``comm`` is not None only under ``mpirun`` with a sampler that uses it;
    ``paths`` (:func:`flowprior.workflows.stages.stage_paths`) is None without ``outdir``.
    """

    loglike: object
    prior_transform: object
    ndim: int
    nlive: int
    nlive_low: int
    flow: object
    defensive: float
    broaden: float | None
    grow_below: float | None
    names: list | None
    pool: object
    settings: StageSettings
    high_sampler_kwargs: dict | None
    adapter: SamplerAdapter
    streams: Streams
    comm: object = None
    outdir: Path | None = None
    paths: dict | None = None
    transform: str = DEFAULTS.transform

    def stage_kwargs(self, settings: StageSettings) -> dict:
        """Keyword arguments of :meth:`SamplerAdapter.run` for a stage with these settings."""
        return dict(names=self.names, pool=self.pool, sampler_kwargs=settings.sampler_kwargs,
                    run_kwargs=settings.run_kwargs)

    def checkpoint(self, stage: str) -> dict:
        """The adapter's ``checkpoint`` argument for ``stage`` (none without ``outdir``)."""
        if self.outdir is None:
            return {}
        from flowprior.workflows.stages import checkpoint_path

        return {"checkpoint": checkpoint_path(self.outdir, stage, self.adapter.name)}
