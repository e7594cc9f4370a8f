"""Stage files of an enhanced run, so an interrupted run resumes where it stopped.

``outdir`` holds ``config.json`` (the settings that define the run),
``low.npz`` (the low-resolution result), ``flow.flow`` (the trained flow),
``checks.json`` (each low-resolution level's check, see
:mod:`flowprior.lowcheck`), ``check.npz`` (the last check's draws, which
dynesty's high stage starts from) and ``high.npz`` (the high-resolution
result).  A rerun loads every finished stage and redoes nothing; a mismatched ``config.json`` is an error,
never a silent reuse.  These files are plain data (no pickle).

While a sampling stage runs, the sampler checkpoints it: ``low.dynesty`` /
``high.dynesty`` (dynesty's own save files, which are pickles: load only
your own) or the ``low.polychord/`` / ``high.polychord/`` directories
(PolyChord's resume files).  A rerun after an interruption continues the
unfinished stage from its checkpoint rather than from its beginning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io import atomic_write
from .result import Result

CONFIG = "config.json"
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


def _save_npz(path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def check_config(outdir, config: dict) -> None:
    """Create ``outdir`` with ``config``, or check that it was made with the same one."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / CONFIG
    if not path.exists():
        others = [p.name for p in outdir.iterdir() if p.name in STAGE_FILES.values()]
        if others:
            raise ValueError(f"outdir {outdir}: holds stage files {others} but no {CONFIG}; "
                             "not written by this version of flowprior, refusing to reuse it")
        atomic_write(path, lambda p: p.write_text(json.dumps(config, indent=1)))
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"outdir {outdir}: unreadable {CONFIG} ({err})") from None
    diff = {k: (old.get(k), config.get(k)) for k in sorted(set(old) | set(config)) if old.get(k) != config.get(k)}
    if diff:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise ValueError(f"outdir {outdir}: made by a run with other settings ({shown}); "
                         "use a new outdir or the same settings")


def save_result(path, result: Result, nlive: int | None = None) -> None:
    """Write a Result's data (not the sampler's raw object) to an ``.npz`` file.

    ``nlive``, if given, is recorded too (see :func:`saved_nlive`).
    """
    s = result.samples
    ndim = result.samples_u.shape[1]
    theta = s.iloc[:, :ndim].to_numpy(dtype=float)
    columns = s.drop_labels().columns if hasattr(s, "drop_labels") else s.columns
    if "logL_birth" in columns:
        birth = s["logL_birth"].to_numpy(dtype=float)
    else:  # a constant-nlive run: anesthetic keeps only the nlive column
        birth = np.array(int(s["nlive"].max()))
    arrays = dict(
        theta=theta, samples_u=result.samples_u, logL=s["logL"].to_numpy(dtype=float),
        logL_birth=birth, logZ=np.array(result.logZ),
        logZerr=np.array(result.logZerr), ncall=np.array(result.ncall["total"]),
    )
    if nlive is not None:
        arrays["nlive"] = np.array(int(nlive))
    atomic_write(path, lambda p: _save_npz(p, arrays))


def load_result(path, sampler: str, names) -> Result:
    """Read a Result written by :func:`save_result`."""
    from anesthetic import NestedSamples

    with np.load(path, allow_pickle=False) as f:
        a = {k: f[k] for k in f.files}
    ndim = a["theta"].shape[1]
    columns = list(names) if names is not None else list(range(ndim))
    birth = a["logL_birth"]
    birth = int(birth) if birth.ndim == 0 else birth
    samples = NestedSamples(data=a["theta"], logL=a["logL"], logL_birth=birth, columns=columns)
    return Result(samples=samples, logZ=float(a["logZ"]), logZerr=float(a["logZerr"]),
                  ncall={"total": int(a["ncall"])}, samples_u=a["samples_u"], sampler=sampler)


def saved_nlive(path) -> int | None:
    """The ``nlive`` a result file was saved with, or None if it has none."""
    with np.load(path, allow_pickle=False) as f:
        return int(f["nlive"]) if "nlive" in f.files else None


def load_checks(path) -> list[dict]:
    """The low-resolution levels recorded in ``checks.json`` (empty if absent)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())["levels"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: unreadable record of the low-resolution checks ({err!r}); "
                         "delete it to redo the checks") from None


def save_checks(path, levels: list[dict]) -> None:
    """Write the low-resolution levels to ``checks.json``."""
    atomic_write(path, lambda p: p.write_text(json.dumps({"levels": levels}, indent=1)))


def save_draws(path, draws: dict, nlive_low: int) -> None:
    """Write a check's draws (``v``, ``u``, ``logl``) and the level they belong to."""
    atomic_write(path, lambda p: _save_npz(p, {**draws, "nlive_low": np.array(nlive_low)}))


def load_draws(path, nlive_low: int) -> dict | None:
    """The check draws saved for level ``nlive_low``, or None if there are none for it."""
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as f:
        if "nlive_low" not in f.files or int(f["nlive_low"]) != nlive_low:
            return None
        return {key: f[key] for key in ("v", "u", "logl")}
