"""The interface every sampler adapter implements: running a stage, and the enhanced run's policy for it.

A plain run only needs :meth:`SamplerAdapter.run`.  The enhanced run
(:func:`flowprior.enhanced_run`) also asks the adapter how to run each of its
stages on this sampler: the low stage's live points and settings, the base
width of its flows, the high stage's settings and stopping rule, and the MPI
communicator.  The
orchestrator holds no sampler names; a new sampler is one new module in
``flowprior.integrations`` that defines ``ADAPTER``, an instance of a
:class:`SamplerAdapter` subclass, with its defaults in one frozen dataclass.

Example
-------
>>> from flowprior.integrations import adapter
>>> dynesty = adapter("dynesty")
>>> dynesty.name, dynesty.nlive_low(ndim=6, sampler_kwargs=None)
('dynesty', 100)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from flowprior.result import Result


@dataclass(frozen=True)
class StageSettings:
    """What one stage of the enhanced run passes to :meth:`SamplerAdapter.run`.

    Attributes
    ----------
    sampler_kwargs, run_kwargs : dict or None
        As in :func:`flowprior.run`.
    """

    sampler_kwargs: dict | None
    run_kwargs: dict | None


class SamplerAdapter(ABC):
    """A nested sampler behind flowprior's workflows.

    Subclasses set :attr:`name` (the ``sampler=`` string, also the suffix of
    its checkpoints in an ``outdir``) and :attr:`defaults` (a frozen
    dataclass of the enhanced run's named defaults for this sampler).
    """

    name: str = ""
    #: Whether the enhanced run widens a flow that passes its check but shows
    #: a tail (``LowCheck.tail`` above ``EnhancedDefaults.widen_tail``).
    widens_passing_tails: bool = False

    def check_settings(self, ndim: int, sampler_kwargs: dict | None, run_kwargs: dict | None) -> None:
        """Refuse, before anything runs, settings that :meth:`run` would refuse (default: accept all)."""

    @abstractmethod
    def run(self, loglike, prior_transform, ndim: int, *, nlive: int, seed=None, names=None, pool=None,
            sampler_kwargs: dict | None = None, run_kwargs: dict | None = None, checkpoint=None) -> Result:
        """One nested-sampling run: ``samples`` in physical parameters, ``samples_u`` in the cube, ``ncall``.

        ``checkpoint`` is a path inside the enhanced run's ``outdir`` where
        the sampler saves its state and from which it resumes, or None.
        """

    def mpi_comm(self):
        """The communicator the sampler runs every stage on, or None (the default: one process)."""
        return None

    def nlive_low(self, ndim: int, sampler_kwargs: dict | None) -> int:
        """The low stage's live points before the enhanced run caps them (:meth:`low_cap`)."""
        return max(self.defaults.nlive_low, ndim + 1) if self.mcmc(ndim, sampler_kwargs) else self.defaults.nlive_low

    def low_cap(self, ndim: int, sampler_kwargs: dict | None, nlive: int, cap: int) -> int:
        """The most live points a default low stage runs; the enhanced run's ``cap`` (``nlive // 5``) by default."""
        return cap

    def mcmc(self, ndim: int, sampler_kwargs: dict | None) -> bool:
        """Whether the sampler moves points by MCMC steps scaled from the live points' spread.

        Such a stage needs more live points than dimensions: fewer span a
        degenerate covariance and the steps cannot leave its subspace.
        """
        return False

    def low_settings(self, ndim: int, nlive_low: int, settings: StageSettings) -> StageSettings:
        """The low stage's settings from the user's (default: the user's)."""
        return settings

    def multimodal_low(self, ndim: int, nlive_low: int, nlive: int,
                       settings: StageSettings) -> tuple[int, StageSettings] | None:
        """Live points and settings to redo a low stage whose posterior clusters, or None to keep it (the default)."""
        return None

    def broaden(self, ndim: int, nlive_low: int, sampler_kwargs: dict | None, default: float) -> float:
        """The default base width of a low stage's flow (default: the enhanced run's ``default``)."""
        return default

    @abstractmethod
    def high_settings(self, ndim: int, nlive: int, settings: StageSettings, high_sampler_kwargs: dict | None,
                      start: "HighStart") -> StageSettings:
        """The high stage's settings: the user's, the stage's overrides and its stopping rule."""


@dataclass(frozen=True)
class HighStart:
    """What the enhanced run knows when the high stage starts, for :meth:`SamplerAdapter.high_settings`.

    Attributes
    ----------
    tail : float or None
        The accepted flow's check tail (:func:`flowprior.workflows.lowcheck.tail_excess`),
        None where the check was skipped.
    pieces : int
        The flow's number of pieces.
    """

    tail: float | None
    pieces: int
