"""Stage files of an enhanced run, so an interrupted run resumes where it stopped.

``outdir`` holds ``config.json`` (the settings that define the run),
``problem.json`` (the user's functions at a few points, see
:mod:`flowprior.workflows.fingerprint`), ``low.npz`` (the low-resolution result), ``flow.flow`` (the trained flow),
``checks.json`` (each low-resolution level's check, see
:mod:`flowprior.workflows.lowcheck`), ``check.npz`` (the last check's draws: a
rerun that finds them does not check that level again) and ``high.npz`` (the high-resolution
result).  A rerun loads every finished stage and redoes nothing; a mismatched ``config.json``, or a
likelihood or prior transform that now gives other values, is an error, never a silent
reuse.  These files are plain data (no pickle), each written to a fresh temporary name
and renamed; an unreadable one is an error that names it.

While a sampling stage runs, the sampler checkpoints it: ``low.dynesty`` /
``high.dynesty`` (dynesty's own save files, which are pickles: load only
your own) or the ``low.polychord/`` / ``high.polychord/`` directories
(PolyChord's resume files).  A rerun after an interruption continues the
unfinished stage from its checkpoint rather than from its beginning.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from flowprior.data import RESERVED_COLUMNS, unlabelled
from flowprior.workflows import fingerprint
from flowprior.flows.files import atomic_write
from flowprior.result import Result

CONFIG = "config.json"
PROBLEM = "problem.json"
#: File of each stage inside ``outdir``.
STAGE_FILES = {"low": "low.npz", "flow": "flow.flow", "checks": "checks.json", "draws": "check.npz",
               "high": "high.npz"}


def stage_paths(outdir) -> dict:
    """Path of each stage's file in ``outdir``."""
    return {stage: Path(outdir) / name for stage, name in STAGE_FILES.items()}


def checkpoint_path(outdir, stage: str, sampler: str) -> Path:
    """Where the sampler checkpoints ``stage`` ("low" or "high") inside ``outdir``."""
    return Path(outdir) / f"{stage}.{sampler}"


def remove_checkpoint(outdir, stage: str, sampler: str) -> None:
    """Delete a stage's sampler checkpoint (a file for dynesty, a directory for PolyChord)."""
    import shutil

    path = checkpoint_path(outdir, stage, sampler)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)  # its checksum, if any


def _save_npz(path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _unreadable(path, err: BaseException, stage: str) -> ValueError:
    return ValueError(f"{path}: unreadable {stage} file ({type(err).__name__}: {err}); "
                      f"delete it to redo that stage")


def _read_npz(path, stage: str, keys=None) -> dict:
    """The arrays ``keys`` (default all) of an ``.npz`` stage file (their zip CRCs checked), or an error naming it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files if keys is None or k in keys}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise _unreadable(path, err, stage) from None


def work_files(outdir) -> list[str]:
    """Names of the stage files and sampler checkpoints in ``outdir``: the work a rerun would reuse."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return []
    return sorted(p.name for p in outdir.iterdir()
                  if p.name in STAGE_FILES.values() or p.name.split(".")[0] in ("low", "high"))


def check_config(outdir, config: dict, loglike, prior_transform, ndim: int) -> int:
    """Create ``outdir`` for ``config`` and this problem, or check that it was made for the same ones.

    An ``outdir`` that holds no stage file yet (a run that stopped before its
    first stage, or refused its settings) is simply made anew.  Otherwise its
    settings must equal ``config`` and the user's functions must still give
    the values recorded in ``problem.json`` (:mod:`flowprior.workflows.fingerprint`).

    Returns
    -------
    int
        Calls of the user's ``loglike`` made here (the fingerprint's).

    Raises
    ------
    ValueError
        On other settings, another problem, or unreadable files, naming them
        and what to do.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path, problem = outdir / CONFIG, outdir / PROBLEM
    work = work_files(outdir)
    if not work:
        stored = fingerprint.take(loglike, prior_transform, ndim)
        # problem.json first: a config.json always has its fingerprint beside it.
        _write_json(problem, stored)
        _write_json(path, config)
        return len(stored["logl"])
    if not path.exists() or not problem.exists():
        missing = CONFIG if not path.exists() else PROBLEM
        raise ValueError(f"outdir {outdir}: holds stage files {work} but no {missing}; written by another version "
                         "of flowprior, so they cannot be checked against this problem: use a new outdir")
    old = _read_json(path, "settings (config)")
    diff = {k: (old.get(k), config.get(k)) for k in sorted(set(old) | set(config)) if old.get(k) != config.get(k)}
    if diff:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise ValueError(f"outdir {outdir}: made by a run with other settings ({shown}); "
                         "use a new outdir or the same settings")
    stored = _read_json(problem, "problem fingerprint")
    try:
        return fingerprint.verify(stored, loglike, prior_transform, str(problem))
    except (KeyError, TypeError) as err:
        raise _unreadable(problem, err, "problem fingerprint") from None


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _write_json(path, value: dict) -> None:
    """Write ``value`` as JSON with the SHA-256 of its content (see :func:`_read_json`)."""
    atomic_write(path, lambda p: p.write_text(json.dumps({"data": value, "sha256": _digest(value)}, indent=1)))


def _read_json(path, what: str, todo: str = "delete the outdir to start again") -> dict:
    """The JSON object :func:`_write_json` wrote, or an error naming ``path`` and ``todo`` if it changed since."""
    try:
        wrapped = json.loads(Path(path).read_text())
        value, digest = wrapped["data"], wrapped["sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: unreadable {what} file ({type(err).__name__}: {err}); {todo}") from None
    if not isinstance(value, dict) or digest != _digest(value):
        raise ValueError(f"{path}: corrupt {what} file (checksum mismatch: it changed after it was written); {todo}")
    return value


def save_result(path, result: Result, nlive: int | None = None) -> None:
    """Write a Result's data (not the sampler's raw object) to an ``.npz`` file.

    ``nlive``, if given, is recorded too (see :func:`saved_nlive`).
    """
    s = result.samples
    ndim = result.samples_u.shape[1]
    theta = s.iloc[:, :ndim].to_numpy(dtype=float)
    columns = unlabelled(s).columns
    if "logL_birth" in columns:
        birth = s["logL_birth"].to_numpy(dtype=float)
    else:  # a constant-nlive run: anesthetic keeps only the nlive column
        birth = np.array(int(s["nlive"].max()))
    arrays = dict(
        theta=theta, samples_u=result.samples_u, logL=s["logL"].to_numpy(dtype=float),
        logL_birth=birth, logZ=np.array(result.logZ),
        logZerr=np.array(result.logZerr), ncall=np.array(result.ncall["total"]),
    )
    derived = [c for c in columns[ndim:] if c not in RESERVED_COLUMNS]
    if derived:
        arrays.update(derived=s[derived].to_numpy(dtype=float), derived_names=np.array(derived, dtype=str))
    if result.sampler_logZerr is not None:
        arrays["sampler_logZerr"] = np.array(result.sampler_logZerr)
    if nlive is not None:
        arrays["nlive"] = np.array(int(nlive))
    atomic_write(path, lambda p: _save_npz(p, arrays))


def load_result(path, sampler: str, names) -> Result:
    """Read a Result written by :func:`save_result`."""
    from anesthetic import NestedSamples

    a = _read_npz(path, "result")
    try:
        ndim = a["theta"].shape[1]
        columns = list(names) if names is not None else list(range(ndim))
        data = a["theta"]
        if "derived_names" in a:
            columns += [str(n) for n in a["derived_names"]]
            data = np.column_stack([data, a["derived"]])
        birth = a["logL_birth"]
        birth = int(birth) if birth.ndim == 0 else birth
        samples = NestedSamples(data=data, logL=a["logL"], logL_birth=birth, columns=columns)
        return Result(samples=samples, logZ=float(a["logZ"]), logZerr=float(a["logZerr"]),
                      sampler_logZerr=float(a["sampler_logZerr"]) if "sampler_logZerr" in a else None,
                      ncall={"total": int(a["ncall"])}, samples_u=a["samples_u"], sampler=sampler)
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise _unreadable(path, err, "result") from None


def saved_nlive(path) -> int | None:
    """The ``nlive`` a result file was saved with, or None if it has none."""
    a = _read_npz(path, "result", keys=("nlive",))
    return int(a["nlive"]) if "nlive" in a else None


def load_checks(path) -> list[dict]:
    """The low-resolution levels recorded in ``checks.json`` (empty if absent)."""
    path = Path(path)
    if not path.exists():
        return []
    levels = _read_json(path, "record of the low-resolution checks", "delete it to redo the checks").get("levels")
    if not isinstance(levels, list):
        raise ValueError(f"{path}: unreadable record of the low-resolution checks (no list of levels); "
                         "delete it to redo the checks")
    return levels


def save_checks(path, levels: list[dict]) -> None:
    """Write the low-resolution levels to ``checks.json``."""
    _write_json(path, {"levels": levels})


def save_draws(path, draws: dict, nlive_low: int) -> None:
    """Write a check's draws (``v``, ``u``, ``logl``) and the level they belong to."""
    atomic_write(path, lambda p: _save_npz(p, {**draws, "nlive_low": np.array(nlive_low)}))


def load_draws(path, nlive_low: int) -> dict | None:
    """The check draws saved for level ``nlive_low``, or None if there are none for it."""
    path = Path(path)
    if not path.exists():
        return None
    a = _read_npz(path, "check draws")
    if "nlive_low" not in a or int(a["nlive_low"]) != nlive_low:
        return None
    if not all(key in a for key in ("v", "u", "logl")):
        raise _unreadable(path, KeyError("v, u or logl"), "check draws")
    return {key: a[key] for key in ("v", "u", "logl", "derived") if key in a}
