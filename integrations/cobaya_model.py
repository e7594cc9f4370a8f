"""A cobaya model as flowprior's three ingredients: a prior transform, a log-likelihood and names.

cobaya (Torrado & Lewis 2021) describes a problem by its input: parameters
with 1-D priors, likelihoods and theory codes.  :func:`load_model` builds
cobaya's own :class:`cobaya.model.Model` from it; :class:`CobayaPrior` maps
the unit hypercube through each sampled parameter's 1-D prior (the scipy
distribution cobaya builds, by its ``ppf``), and :class:`CobayaLikelihood`
is the sum of the model's log-likelihoods, without the prior, with its
derived parameters and one ``chi2`` per likelihood beside it.  Both pickle
(the model is rebuilt from its input where it is unpickled), so pools, MPI
and dynesty checkpoints work.

cobaya's *external* priors (the ``prior`` block) are extra, non-separable
terms with no prior transform; they are refused with what to do instead.

References
----------
Torrado & Lewis, "Cobaya: code for Bayesian analysis of hierarchical
physical models", JCAP 05 (2021) 057, arXiv:2005.05290.
"""

from __future__ import annotations

import importlib
import re
import uuid
import warnings
from collections.abc import Mapping

import numpy as np

INSTALL = "cobaya is not installed; pip install 'flowprior[cobaya]' (or cobaya)"
#: Input blocks that configure cobaya's samplers and output, not the model; flowprior's arguments do that.
IGNORED = ("sampler", "output", "force", "resume", "post", "test")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


class CobayaInputError(ValueError):
    """A cobaya input that does not give a model flowprior can sample, and why."""


def _cobaya():
    try:
        import cobaya.model
    except ImportError:
        raise ImportError(INSTALL) from None
    return cobaya


def load_info(info) -> dict:
    """cobaya's input as a dict: a dict (copied), a YAML file's path, or YAML text.

    ``external: "package.module.Class"`` strings naming a likelihood or theory
    class are replaced by the class (cobaya itself reads a string there as a
    function), so ``FlowLikelihood`` can be named that way.  The blocks in
    :data:`IGNORED` are dropped (cobaya sets ``output`` to a YAML file's
    name), with a warning for a ``sampler`` block that holds settings.
    """
    _cobaya()
    from cobaya.input import load_input_dict
    from cobaya.yaml import InputSyntaxError

    try:
        loaded = load_input_dict(info)
    except (OSError, ValueError, InputSyntaxError) as err:
        raise CobayaInputError(f"info: cannot read cobaya input {info!r}: {err}") from err
    for kind in ("likelihood", "theory"):
        for name, options in (loaded.get(kind) or {}).items():
            if isinstance(options, Mapping) and isinstance(options.get("external"), str):
                options["external"] = _class_named(options["external"])
    _check_discrete(loaded.get("params") or {})
    blocks = {k: loaded.pop(k) for k in IGNORED if k in loaded}
    if blocks.get("sampler"):
        warnings.warn(f"cobaya input: the sampler block {blocks['sampler']} is ignored; flowprior's arguments "
                      "(sampler=, nlive=, ...) configure the run", stacklevel=3)
    return loaded


def _check_discrete(params: Mapping) -> None:
    """Refuse priors on discrete scipy distributions (cobaya itself fails on them without naming the parameter)."""
    from scipy import stats

    found = [p for p, v in params.items() if isinstance(v, Mapping) and isinstance(v.get("prior"), Mapping)
             and isinstance(getattr(stats, str(v["prior"].get("dist")), None), stats.rv_discrete)]
    if found:
        raise CobayaInputError(f"prior: flowprior cannot invert the discrete priors of {found} (nested sampling "
                               "needs a continuous prior transform); give each a continuous scipy distribution")


def _class_named(text: str):
    """The class a dotted ``text`` names, else ``text`` (left for cobaya to evaluate)."""
    if not _DOTTED.match(text):
        return text
    module, _, attr = text.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return text
    return found if isinstance(found, type) else text


def load_model(info):
    """cobaya's :class:`~cobaya.model.Model` of ``info`` (see :func:`load_info`).

    Raises
    ------
    CobayaInputError
        Where cobaya cannot build the model (an unknown likelihood, a theory
        code not installed, a bad prior, ...), with cobaya's own message.
    """
    return _build(load_info(info))


def _build(loaded: dict):
    """``get_model`` of an input :func:`load_info` read, cobaya's errors as :class:`CobayaInputError`."""
    cobaya = _cobaya()
    from cobaya.log import LoggedError

    try:
        return cobaya.model.get_model(loaded)
    except LoggedError as err:
        raise CobayaInputError(f"cobaya could not build the model: {err}") from err


class CobayaPrior:
    """``u -> theta`` through each sampled parameter's 1-D cobaya prior (its ``ppf``): a prior transform.

    Parameters
    ----------
    model : cobaya.model.Model

    Attributes
    ----------
    names : list of str
        The sampled parameters, in cobaya's order.
    bounds : ndarray of shape (d, 2)
        Each prior's support (infinite where unbounded).

    Raises
    ------
    CobayaInputError
        For external priors (the ``prior`` block) and for 1-D priors that
        cannot be inverted (discrete, zero-width, or whose ``ppf`` fails),
        naming the parameters.
    """

    def __init__(self, model):
        prior = model.prior
        if prior.external:
            raise CobayaInputError(
                f"prior: cobaya external priors {list(prior.external)} (over {sorted(prior.external_dependence)}) "
                "are not separable, so they have no prior transform for nested sampling; move each into the "
                "likelihood block (likelihood: {name: {external: <the same function>}}): the posterior is the "
                "same, and the evidence changes by the term's normalisation")
        self.names = [str(p) for p in prior.params]
        self.dists = list(prior.pdf)
        bad = {n: why for n, d in zip(self.names, self.dists) if (why := _not_invertible(d))}
        if bad:
            raise CobayaInputError("prior: flowprior cannot invert the 1-D priors of " + "; ".join(
                f"{n!r} ({why})" for n, why in bad.items()) + "; give each a continuous scipy distribution")
        self.bounds = np.array([d.support() for d in self.dists], dtype=float)
        self._uniform = np.array([d.dist.name == "uniform" for d in self.dists])
        self._lo = self.bounds[:, 0].copy()
        self._width = np.where(self._uniform, self.bounds[:, 1] - self.bounds[:, 0], 0.0)
        self._others = np.flatnonzero(~self._uniform)
        self._eps = np.finfo(float).eps

    def __call__(self, u) -> np.ndarray:
        """``theta`` of a cube point ``u`` (shape ``(d,)``); ``u`` in ``[0, 1]``."""
        u = np.asarray(u, dtype=float)
        theta = self._lo + u * self._width
        for i in self._others:  # an unbounded prior is read just inside (0, 1)
            theta[i] = self.dists[i].ppf(min(max(u[i], self._eps), 1 - self._eps))
        return theta

    def logpdf(self, theta) -> np.ndarray:
        """The log prior density (the product of the 1-D priors) at rows ``theta`` of shape ``(n, d)``."""
        x = np.atleast_2d(np.asarray(theta, dtype=float))
        return sum(d.logpdf(x[:, i]) for i, d in enumerate(self.dists))

    def ranges(self) -> dict:
        """``{name: [lo, hi]}`` with ``None`` for an open side (getdist's ``ranges``)."""
        return {n: [None if np.isinf(lo) else float(lo), None if np.isinf(hi) else float(hi)]
                for n, (lo, hi) in zip(self.names, self.bounds)}


def _not_invertible(dist) -> str | None:
    """Why the scipy frozen distribution ``dist`` has no usable ``ppf``, or None."""
    from scipy import stats

    if not isinstance(getattr(dist, "dist", None), stats.rv_continuous):
        return f"{getattr(getattr(dist, 'dist', None), 'name', type(dist).__name__)} is not a continuous distribution"
    probes = np.array([0.1, 0.5, 0.9])
    lo, hi = dist.support()
    if not hi > lo:
        return "zero width (a delta prior: fix the parameter with 'value:' instead)"
    try:
        x = np.asarray(dist.ppf(probes), dtype=float)
        back = np.asarray(dist.cdf(x), dtype=float)
    except Exception as err:  # a user-defined distribution may fail in any way
        return f"its ppf or cdf fails: {err}"
    if not (np.isfinite(x).all() and np.all(np.diff(x) > 0)):
        return f"its ppf gives {x.tolist()} at {probes.tolist()}"
    if not np.allclose(back, probes, atol=1e-6):
        return f"its cdf does not invert its ppf (cdf(ppf(u)) = {back.tolist()} at u = {probes.tolist()})"
    return None


class CobayaLikelihood:
    """``theta -> (logL, derived)`` of a cobaya model: the sum of its log-likelihoods, prior excluded.

    A point cobaya rejects (a theory code or likelihood that fails there)
    has ``logL = -inf`` and NaN derived values.  Pickled, it carries its
    input, not the model: each process builds the model once, when it
    first unpickles the likelihood (a pool sends it with every batch).

    Parameters
    ----------
    info : dict
        cobaya input, as :func:`load_info` returns it.

    Attributes
    ----------
    names : list of str
        The sampled parameters ``theta`` holds, in order.
    derived : list of str
        The values after ``logL``: cobaya's derived parameters, ``chi2``
        (``-2 logL``) and ``chi2__<likelihood>`` for each likelihood.
    labels : dict
        LaTeX labels (no ``$``) of every name.
    """

    def __init__(self, info: dict):
        self.info = info
        self.token = uuid.uuid4().hex
        self._model = _build(info)
        par = self._model.parameterization
        self.names = [str(p) for p in par.sampled_params()]
        self.likes = [str(name) for name in self._model.likelihood]
        self._own = [str(p) for p in par.derived_params()]
        chi2 = ["chi2"] + [f"chi2__{name}" for name in self.likes]
        self._chi2 = [c for c in chi2 if c not in self._own]  # cobaya derives any chi2 the input asked for
        self.derived = self._own + self._chi2
        self.labels = {**{str(k): str(v) for k, v in par.labels().items()}, "chi2": r"\chi^2",
                       **{f"chi2__{n}": r"\chi^2_\mathrm{" + n.replace("_", r"\ ") + "}" for n in self.likes}}

    @property
    def model(self):
        """cobaya's model (after unpickling: this process's, built once)."""
        if self._model is None:
            self._model = _process_model(self.token, self.info)
        return self._model

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def __call__(self, theta) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        loglikes, derived = self._evaluate(theta)
        logl = float(loglikes.sum())
        chi2 = {"chi2": -2 * logl, **{f"chi2__{n}": -2 * v for n, v in zip(self.likes, loglikes)}}
        values = np.concatenate([derived, [chi2[c] for c in self._chi2]])
        if logl == -np.inf:
            values[:] = np.nan
        return logl, values

    def _evaluate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cobaya's log-likelihoods and derived values at ``theta``, checked."""
        try:
            loglikes, derived = self.model.loglikes(theta, return_derived=True)
        except KeyError as err:  # cobaya's own message is the bare name
            if err.args and err.args[0] in self.derived:
                raise ValueError(f"cobaya: the derived parameter {err.args[0]!r} was not computed at theta="
                                 f"{theta.tolist()}; the likelihood or theory that declares it (output_params) "
                                 "must return it") from err
            raise
        if len(derived) != len(self._own):
            raise ValueError(f"cobaya: {len(derived)} derived values at theta={theta.tolist()}, expected "
                             f"{len(self._own)}, one per derived parameter {self._own}")
        return np.asarray(loglikes, dtype=float), np.asarray(derived, dtype=float)


#: Models this process built for unpickled likelihoods, by their token (the last few only).
_MODELS: dict = {}
_KEEP = 4


def _process_model(token: str, info: dict):
    """The model of the likelihood ``token`` in this process: built once, then reused."""
    if token not in _MODELS:
        while len(_MODELS) >= _KEEP:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[token] = _build(info)
    return _MODELS[token]
