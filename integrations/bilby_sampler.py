"""flowprior as a bilby sampler: ``bilby.run_sampler(likelihood, priors, sampler="flowprior")``.

:class:`Flowprior` runs :func:`flowprior.run` (plain nested sampling) or,
with ``enhanced=True``, :func:`flowprior.enhanced_run` (a cheap
low-resolution run, a flow trained on its posterior, a high-resolution run
with the flow as prior: the same evidence for fewer likelihood calls), with
dynesty or PolyChord inside, on bilby's likelihood, priors and constraints.
It returns a bilby ``Result``: evidence and its error, nested samples
(weights and the user's log-likelihood), equal-weight posterior samples,
``num_likelihood_evaluations`` (the exact number of likelihood calls) and the
sampling time.  bilby finds it through the ``bilby.samplers`` entry point;
bilby is optional: ``pip install 'flowprior[bilby]'``.

An enhanced run keeps its stages in ``<outdir>/flowprior_<label>/`` (bilby's
``get_expected_outputs`` directory), so a rerun resumes there; ``resume=False``
(bilby's ``clean``) deletes them first.

Example
-------
>>> import bilby
>>> result = bilby.run_sampler(likelihood, priors, sampler="flowprior", nlive=500,
...                            enhanced=True, inner_sampler="dynesty")  # doctest: +SKIP
>>> result.log_evidence, result.num_likelihood_evaluations  # doctest: +SKIP

References
----------
Ashton et al., "Bilby: a user-friendly Bayesian inference library for gravitational-wave astronomy",
ApJS 241, 27 (2019), arXiv:1811.02042.  Writing a sampler plugin:
https://bilby-dev.github.io/bilby/plugins.html
"""

from __future__ import annotations

import datetime
import inspect
import shutil
import time
from pathlib import Path

import numpy as np
from pandas import DataFrame

import flowprior
from flowprior.flows.defensive import defended
from flowprior.integrations import available

try:
    from bilby.core.sampler.base_sampler import NestedSampler, signal_wrapper
except ImportError:  # Flowprior says what to install
    NestedSampler = object

    def signal_wrapper(method):
        return method

INSTALL = "bilby is not installed; pip install 'flowprior[bilby]' (or bilby)"
#: What bilby's nested samplers return at points its prior constraints exclude (``np.nan_to_num(-np.inf)``).
BILBY_EXCLUDED = float(np.nan_to_num(-np.inf))
#: Options of :func:`flowprior.enhanced_run` alone, with its defaults.
ENHANCED_ONLY = ("nlive_low", "flow", "defensive", "broaden", "high_sampler_kwargs", "grow_below", "transform")
#: Mixed into the seed for the posterior's rejection sampling, so that it is a stream of its own.
POSTERIOR_STREAM = 0x706F7374


def _defaults(names: tuple) -> dict:
    """The defaults of :func:`flowprior.enhanced_run`'s options ``names``."""
    params = inspect.signature(flowprior.enhanced_run).parameters
    return {name: params[name].default for name in names}


class Flowprior(NestedSampler):
    """bilby's wrapper of flowprior's nested sampling, plain or enhanced.

    Every option is a keyword of ``bilby.run_sampler``; unknown ones are
    dropped with bilby's warning naming them, as by every bilby sampler.

    Parameters
    ----------
    nlive : int
        Live points (bilby's synonyms too: ``npoints``, ``n_live_points``, ...).
    enhanced : bool
        False: :func:`flowprior.run`; True: :func:`flowprior.enhanced_run`.
    inner_sampler : {"dynesty", "polychord"}
        The nested sampler flowprior drives (``flowprior.integrations.available()``).
    seed : int, optional
        Also ``sampling_seed`` or ``random_seed``.  Default: drawn from
        bilby's generator (``bilby.core.utils.random.seed`` fixes it); an
        enhanced run records it in its directory and a resumed run reuses it.
        It also seeds the rejection sampling that gives the posterior.
    resume : bool
        Enhanced runs: continue from ``<outdir>/flowprior_<label>/``; False
        deletes that directory first.
    sampler_kwargs, run_kwargs : dict, optional
        The inner sampler's own settings, as in :func:`flowprior.run`.
    nlive_low, flow, defensive, broaden, high_sampler_kwargs, grow_below, transform
        :func:`flowprior.enhanced_run`'s options, with its defaults.

    Notes
    -----
    The likelihood is bilby's (``self.log_likelihood``: the search
    parameters, fixed ones, ``use_ratio``); a point that fails a prior
    constraint gets ``-inf``.  NaN stops the run with a ``ValueError`` naming
    the point, as dynesty does for its live points.  Runs are serial (no
    ``npool``).
    """

    sampler_name = "flowprior"
    sampling_seed_key = "seed"
    default_kwargs = dict(nlive=500, enhanced=False, inner_sampler="dynesty", seed=None, resume=True,
                          sampler_kwargs=None, run_kwargs=None, **_defaults(ENHANCED_ONLY))

    def __init__(self, likelihood, priors, **kwargs):
        if NestedSampler is object:
            raise ImportError(INSTALL)
        super().__init__(likelihood, priors, **kwargs)

    def _translate_kwargs(self, kwargs: dict) -> dict:
        """bilby's synonyms: ``sampling_seed``/``random_seed`` -> ``seed``, ``npoints`` & co -> ``nlive``."""
        kwargs = super()._translate_kwargs(kwargs)
        if "nlive" not in kwargs:
            for equiv in self.npoints_equiv_kwargs:
                if equiv in kwargs:
                    kwargs["nlive"] = kwargs.pop(equiv)
        return kwargs

    def _verify_kwargs_against_default_kwargs(self) -> None:
        """bilby's check (unknown options are dropped with a warning), then the choices that must be right."""
        super()._verify_kwargs_against_default_kwargs()
        kw = self.kwargs
        if kw["inner_sampler"] not in available():
            raise ValueError(f"inner_sampler: expected one of {available()}, got {kw['inner_sampler']!r}")
        stray = [k for k in ENHANCED_ONLY if not kw["enhanced"] and _differs(kw[k], self.default_kwargs[k])]
        if stray:
            raise ValueError(f"{', '.join(stray)}: options of the enhanced run; pass enhanced=True")
        seed = kw["seed"]
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed: expected a non-negative integer or None, got {seed!r}")

    @property
    def run_directory(self) -> Path:
        """Where an enhanced run keeps its stages: ``<outdir>/flowprior_<label>/``."""
        return Path(self.outdir) / f"{self.sampler_name}_{self.label}"

    def log_likelihood(self, theta) -> float:
        """bilby's log-likelihood (constraints included), with bilby's stand-in for ``-inf`` as ``-inf``."""
        logl = float(super().log_likelihood(theta))
        return -np.inf if logl <= BILBY_EXCLUDED else logl

    @signal_wrapper
    def run_sampler(self):
        """Run flowprior and fill in ``self.result``.

        Returns
        -------
        bilby.core.result.Result
        """
        kw = self.kwargs
        if self.npool not in (None, 1):
            from bilby.core.utils import logger

            logger.warning(f"flowprior runs serially here; npool={self.npool} is ignored")
        seed = self._seed()
        start = time.monotonic()
        if kw["enhanced"]:
            run = flowprior.enhanced_run(self.log_likelihood, self.prior_transform, self.ndim,
                                         outdir=self.run_directory, **self._common(seed),
                                         **{k: kw[k] for k in ENHANCED_ONLY})
        else:
            run = flowprior.run(self.log_likelihood, self.prior_transform, self.ndim, **self._common(seed))
        self._fill_result(run, seed, time.monotonic() - start)
        return self.result

    def _common(self, seed: int) -> dict:
        """The options :func:`flowprior.run` and :func:`flowprior.enhanced_run` share."""
        kw = self.kwargs
        return dict(sampler=kw["inner_sampler"], nlive=kw["nlive"], seed=seed, names=list(self.search_parameter_keys),
                    sampler_kwargs=kw["sampler_kwargs"], run_kwargs=kw["run_kwargs"])

    def _seed(self) -> int:
        """The run's seed: the user's, an enhanced run's recorded one, or one drawn from bilby's generator."""
        from bilby.core.utils import random

        enhanced, path = self.kwargs["enhanced"], self.run_directory / "bilby_seed.txt"
        if enhanced and not self.kwargs["resume"]:
            shutil.rmtree(self.run_directory, ignore_errors=True)
        seed = self.kwargs["seed"]
        if seed is None:
            seed = int(path.read_text()) if enhanced and path.exists() else int(random.rng.integers(2**31))
        if enhanced:
            self.run_directory.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{int(seed)}\n")
        return int(seed)

    def _fill_result(self, run, seed: int, seconds: float) -> None:
        """Evidence, nested samples, rejection-sampled posterior, calls and time from flowprior's ``run``."""
        keys = list(self.search_parameter_keys)
        theta = run.samples[keys].to_numpy(dtype=float)
        weights = np.asarray(run.samples.get_weights(), dtype=float)
        weights = weights / weights.sum()
        logl = _user_log_likelihood(run, self.kwargs)
        nested = DataFrame(theta, columns=keys)
        nested["weights"], nested["log_likelihood"] = weights, logl
        rng = np.random.default_rng([POSTERIOR_STREAM, seed])
        keep = weights > rng.uniform(0, weights.max(), len(weights))
        calls = int(run.ncall["total"] + run.ncall.get("fingerprint", 0))
        res = self.result
        res.nested_samples, res.samples, res.log_likelihood_evaluations = nested, theta[keep], logl[keep]
        res.log_evidence, res.log_evidence_err = float(run.logZ), float(run.logZerr)
        res.num_likelihood_evaluations = calls
        res.sampling_time = datetime.timedelta(seconds=seconds)
        res.meta_data = res.meta_data if res.meta_data is not None else {}
        res.meta_data["run_statistics"] = dict(nlikelihood=calls, ncall={k: int(v) for k, v in run.ncall.items()},
                                               neffsamples=int(1 / np.sum(weights**2)), sampling_time_s=seconds,
                                               seed=seed, ncores=1)

    def write_current_state(self) -> None:
        """Nothing to write: an enhanced run's stages and its sampler's checkpoints are on disk already.

        (A plain run does not resume.)
        """


def _user_log_likelihood(run, kwargs: dict) -> np.ndarray:
    """The log-likelihood of bilby's likelihood at each nested sample.

    A plain run's ``logL`` is it; an enhanced run's is repartitioned,
    ``log L - log q`` with ``q`` the high stage's prior in the unit cube
    (the flow, mixed with the uniform cube by ``defensive``), so add ``log q`` back.
    """
    logl = run.samples["logL"].to_numpy(dtype=float)
    if run.flow is None:
        return logl
    q = defended(run.flow, kwargs["defensive"])
    finite = np.isfinite(logl)
    out = np.full_like(logl, -np.inf)
    out[finite] = logl[finite] + q.log_prob(np.asarray(run.samples_u, dtype=float)[finite])
    return out


def _differs(value, default) -> bool:
    """Whether an option was set to something other than its default (objects by identity)."""
    if isinstance(value, (str, int, float, type(None))) and isinstance(default, (str, int, float, type(None))):
        return value != default
    return value is not default
