"""What the ``flowprior`` command reads and checks before it works: chains, bounds, counts, outputs, flows.

Every problem is a :class:`CLIError`, which the command prints as one line.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from flowprior.data import column_names, unlabelled


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


# ----------------------------------------------------------------- inputs
#: What anesthetic's read_chains looks for, per format, given a chain root ``R``.
CHAIN_FILES = (
    ("PolyChord", "{r}_dead-birth.txt"),
    ("MultiNest", "{r}dead-birth.txt or {r}ev.dat"),
    ("Cobaya", "{r}.1.txt, {r}.2.txt, ..."),
    ("UltraNest", "{r}/results/points.hdf5"),
    ("NestedFit", "{r}/nf_output_points.txt"),
    ("GetDist", "{r}.txt or {r}_1.txt, ..."),
    ("CSV written by anesthetic", "{r}.csv"),
)

#: File endings that mark a chain root (the root is the name without them).
ROOT_ENDINGS = ("_dead-birth.txt", "dead-birth.txt", "ev.dat", ".paramnames", ".updated.yaml", ".1.txt", "_1.txt",
                ".csv")


def expected_files(root: str) -> str:
    """The files read_chains tries for ``root``, in words."""
    return "; ".join(f"{name} {pattern.format(r=root)}" for name, pattern in CHAIN_FILES)


def chain_roots(directory: Path, limit: int = 6) -> str:
    """Chain roots found in ``directory`` (by their files' endings), for error messages."""
    roots = set()
    for f in directory.iterdir():
        if f.is_dir() and ((f / "results" / "points.hdf5").exists() or (f / "nf_output_points.txt").exists()):
            roots.add(f.name)
            continue
        for ending in ROOT_ENDINGS:
            if f.name.endswith(ending) and len(f.name) > len(ending):
                roots.add(f.name[: -len(ending)])
                break
    if not roots:
        return f"no chain files in {directory}"
    shown = sorted(roots)[:limit]
    more = f" and {len(roots) - limit} more" if len(roots) > limit else ""
    return f"roots found in {directory}: {', '.join(str(directory / r) for r in shown)}{more}"


def read_chains(root: str):
    """anesthetic samples from a chain root, with errors that say what was tried.

    Rows whose ``logL`` is NaN are dropped with a warning on stderr that
    counts them (anesthetic drops them itself from nested-sampling runs it
    recomputes); an error if no row is left.

    Returns
    -------
    samples : anesthetic samples
    dropped : str or None
        What was dropped for a NaN ``logL`` (the evidence of such chains is
        unknown), or None.
    """
    import warnings

    from anesthetic import read_chains as _read

    path = Path(root)
    if not path.is_dir():
        if not path.parent.exists():
            raise CLIError(f"chains {root}: directory {path.parent} does not exist")
        if not any(path.parent.glob(glob.escape(path.name) + "*")):
            raise CLIError(f"chains {root}: no files starting with {path.name!r} in {path.parent}; "
                           f"{chain_roots(path.parent)}")
    elif (path / "results" / "points.hdf5").exists() and importlib.util.find_spec("h5py") is None:
        raise CLIError(f"chains {root}: UltraNest output is read with h5py, which is not installed; "
                       "pip install 'flowprior[ultranest]' (or h5py)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # anesthetic's cobaya and GetDist readers need a directory part: "gd" fails where "./gd" works.
            samples = _read(str(root) if os.path.dirname(str(root)) else os.path.join(".", str(root)))
        except FileNotFoundError as err:
            raise CLIError(_not_found(root, path)) from err
        except Exception as err:  # anesthetic raises many kinds for unreadable files
            text = " ".join(str(err).split())
            why = f"{type(err).__name__}: {text}"
            raise CLIError(f"chains {root}: could not read them with anesthetic ({why})") from err
    # Chains without a .paramnames file get integer names; the command line names them as text.
    samples = samples.rename(columns={c: str(c) for c in column_keys(samples) if not isinstance(c, str)}, level=0)
    dropped_by_anesthetic = False
    for w in caught:
        if "NaN encountered in logL" in str(w.message):
            dropped_by_anesthetic = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if len(samples) == 0:
        why = " (anesthetic dropped every row: logL is NaN in all of them)" if dropped_by_anesthetic else ""
        raise CLIError(f"chains {root}: no samples{why}")
    if dropped_by_anesthetic:
        _warn(f"chains {root}: anesthetic dropped the rows whose logL is NaN while reading them "
              f"({len(samples)} rows are left); check the likelihood that wrote these chains")
        return samples, "anesthetic dropped rows whose logL is NaN"
    return drop_nan_logl(samples, root)


def column_keys(samples) -> list:
    """The first level of the chains' column labels (anesthetic's LaTeX labels are the second)."""
    return list(samples.columns.get_level_values(0) if samples.columns.nlevels > 1 else samples.columns)


def _not_found(root: str, path: Path) -> str:
    if path.is_dir():
        return (f"chains {root}: a directory without UltraNest or NestedFit output; give a chain root inside it, "
                f"e.g. {path / 'run'} for {path / 'run'}_dead-birth.txt ({chain_roots(path)})")
    return (f"chains {root}: no chain files for this root; looked for {expected_files(root)} "
            f"({chain_roots(path.parent)})")


def drop_nan_logl(samples, root: str):
    """``samples`` without the rows whose ``logL`` is NaN (counted on stderr), and what was dropped or None.

    An error if no row is left.
    """
    frame = unlabelled(samples)
    if "logL" not in frame.columns:
        return samples, None
    nan = np.isnan(frame["logL"].to_numpy(dtype=float))
    if not nan.any():
        return samples, None
    n = len(nan)
    rows = np.flatnonzero(nan)
    shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    if nan.all():
        raise CLIError(f"chains {root}: logL is NaN in all {n} rows; nothing to use (check the likelihood that "
                       "wrote these chains)")
    _warn(f"chains {root}: dropped {int(nan.sum())} of {n} rows whose logL is NaN (rows [{shown}]); "
          f"{n - int(nan.sum())} rows are used")
    return samples[~nan], f"{int(nan.sum())} of {n} rows have a NaN logL"


def _warn(message: str) -> None:
    print(f"flowprior: warning: {message}", file=sys.stderr)


def select(samples, params):
    """The chains restricted to ``params`` (all parameters if None); unknown names list the available ones."""
    available = column_names(samples)
    if not params:
        return samples[available], available
    unknown = [p for p in params if p not in available]
    if unknown:
        raise CLIError(f"unknown parameter(s) {unknown}; the chains have {available}")
    return samples[list(params)], list(params)


def _number(text: str, what: str) -> float | None:
    text = text.strip()
    if text.lower() in ("", "none", "null", "inf", "-inf", "+inf"):
        return None
    try:
        return float(text)
    except ValueError:
        raise CLIError(f"{what}: {text!r} is not a number (leave a side empty or 'none' for no bound)") from None


def parse_bounds(specs: list[str] | None, params: list[str]) -> list | None:
    """Bounds from ``--bounds FILE`` (YAML or JSON: name -> [lo, hi]) or ``--bounds name=lo,hi ...``.

    A file may list parameters that are not trained on (a whole prior box);
    a ``name=lo,hi`` item for one that is not trained on is an error.
    """
    if not specs:
        return None
    table: dict = {}
    explicit: list[str] = []  # name=lo,hi items must name a trained parameter; a file may describe more
    for spec in specs:
        if "=" in spec:
            name, _, rng = spec.partition("=")
            parts = rng.split(",")
            if len(parts) != 2:
                raise CLIError(f"--bounds {spec}: expected name=lo,hi (e.g. tau=0.01,0.8 or x=0,)")
            table[name.strip()] = [_number(p, f"--bounds {spec}") for p in parts]
            explicit.append(name.strip())
        else:
            path = Path(spec)
            if not path.is_file():
                raise CLIError(f"--bounds {spec}: no such file (give a YAML/JSON file or name=lo,hi)")
            try:
                import yaml

                data = yaml.safe_load(path.read_text())  # JSON is YAML too
            except Exception as err:
                raise CLIError(f"--bounds {spec}: not valid YAML or JSON ({err})") from err
            if not isinstance(data, dict):
                raise CLIError(f"--bounds {spec}: expected a mapping of parameter name to [lo, hi]")
            for name, pair in data.items():
                if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                    raise CLIError(f"--bounds {spec}: {name}: expected [lo, hi], got {pair!r}")
                table[str(name)] = [None if v is None else _number(str(v), f"--bounds {spec}: {name}") for v in pair]
    unknown = [n for n in explicit if n not in params]
    if unknown:
        raise CLIError(f"--bounds: parameter(s) {unknown} are not being trained on; the parameters are {params}")
    return [tuple(table.get(n, (None, None))) for n in params]


#: Most samples ``sample`` writes (and ``stats`` draws) in one command: 10^8 rows of a few parameters
#: is a CSV of tens of GB.
MAX_SAMPLES = 10**8
#: Most flow samples ``check`` plots (a KDE of more is slow and no clearer).
MAX_PLOT = 10**6
#: Rows drawn and written at a time by ``sample`` (memory stays bounded for any -n).
SAMPLE_CHUNK = 10**5


def check_count(n: int, most: int, what: str = "-n") -> None:
    """Raise unless ``1 <= n <= most``."""
    if n < 1:
        raise CLIError(f"{what}: expected a positive number of samples, got {n}")
    if n > most:
        raise CLIError(f"{what}: {n} is more than {most} (the most one command draws); split the work into several "
                       "commands with different --seed")


def check_output(path: str, what: str = "-o") -> None:
    """Raise before any work if ``path`` cannot be written: a missing directory, or a directory itself."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise CLIError(f"{what} {path}: directory {parent} does not exist; create it first")
    if target.is_dir():
        raise CLIError(f"{what} {path}: is a directory; give a file name")
    if not os.access(parent, os.W_OK):
        raise CLIError(f"{what} {path}: directory {parent} is not writable")


def load_flow(path: str):
    from flowprior.flows.loading import load

    if not Path(path).is_file():
        raise CLIError(f"{path}: no such file")
    try:
        return load(path)
    except ValueError as err:
        raise CLIError(str(err)) from err


def flow_names(flow) -> list[str]:
    """The flow's parameter names, or x0, x1, ... for a flow fitted on a plain array."""
    return flow.names_ or [f"x{i}" for i in range(flow.ndim_)]


def flow_labels(flow) -> list[str]:
    return list(getattr(flow, "latex_labels_", None) or flow_names(flow))


def flow_samples(flow, n: int, seed: int):
    from anesthetic import Samples

    names = flow_names(flow)
    return Samples(flow.sample(n, seed=seed), columns=names, labels=dict(zip(names, flow_labels(flow))))
