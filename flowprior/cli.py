"""The ``flowprior`` command: train flows on chains, check, sample, describe them, marginal statistics.

Every error is one line on stderr (``flowprior: error: ...``) with exit
status 1 (2 for a malformed command line, as argparse does); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .data import column_names, read_samples

EPILOG = """examples:
  flowprior train chains/planck --params omegabh2 omegach2 ns --bounds prior.yaml -o planck.flow
  flowprior train chains/multi --piecewise --clusters auto -o multi.flow
  flowprior check planck.flow chains/planck -o check.png
  flowprior sample planck.flow -n 10000 -o samples.csv
  flowprior stats post.flow --prior prior.flow
  flowprior info planck.flow

CHAINS is anything anesthetic's read_chains reads: a PolyChord, MultiNest,
UltraNest, Cobaya or GetDist root (e.g. chains/planck for
chains/planck_dead-birth.txt and chains/planck.paramnames)."""


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            samples = _read(str(root))
        except FileNotFoundError as err:
            raise CLIError(_not_found(root, path)) from err
        except Exception as err:  # anesthetic raises many kinds for unreadable files
            text = " ".join(str(err).split())
            why = f"{type(err).__name__}: {text}"
            raise CLIError(f"chains {root}: could not read them with anesthetic ({why})") from err
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
    frame = samples.drop_labels() if hasattr(samples, "drop_labels") else samples
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
    from .io import load

    if not Path(path).is_file():
        raise CLIError(f"{path}: no such file")
    try:
        return load(path)
    except ValueError as err:
        raise CLIError(str(err)) from err


def _names(flow) -> list[str]:
    """The flow's parameter names, or x0, x1, ... for a flow fitted on a plain array."""
    return flow.names_ or [f"x{i}" for i in range(flow.ndim_)]


def _labels(flow) -> list[str]:
    return list(getattr(flow, "latex_labels_", None) or _names(flow))


def _flow_samples(flow, n: int, seed: int):
    from anesthetic import Samples

    names = _names(flow)
    return Samples(flow.sample(n, seed=seed), columns=names, labels=dict(zip(names, _labels(flow))))


# -------------------------------------------------------------- commands
def cmd_train(args) -> None:
    from . import MAF, PiecewiseFlow

    check_output(args.output)
    samples, _ = read_chains(args.chains)
    sub, params = select(samples, args.params)
    bounds = parse_bounds(args.bounds, params)
    common = dict(n_transforms=args.n_transforms, hidden_features=tuple(args.hidden), max_epochs=args.max_epochs,
                  seed=args.seed, progress=not args.quiet)
    if args.piecewise:
        clusters = "auto" if args.clusters == "auto" else _int(args.clusters, "--clusters")
        flow = PiecewiseFlow(clusters=clusters, split=args.split, n_jobs=args.n_jobs, **common)
    else:
        if args.clusters != "auto":
            raise CLIError("--clusters needs --piecewise")
        if args.split != 2:
            raise CLIError("--split needs --piecewise")
        flow = MAF(**common)
    t0 = time.perf_counter()
    try:
        flow.fit(sub, bounds=bounds)
    except RuntimeError as err:  # training diverged: a fact about these chains and settings, not a bug
        raise CLIError(str(err)) from err
    wall = time.perf_counter() - t0
    flow.save(args.output)
    w = sub.get_weights()
    ess = w.sum() ** 2 / np.sum(w**2)
    print(f"trained {type(flow).__name__} on {len(sub)} samples (effective {ess:.0f}) over {params} "
          f"in {wall:.1f} s")
    _print_pieces(flow)
    print(f"wrote {args.output}")


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CLIError(f"{what}: expected 'auto' or an integer, got {text!r}") from None
    if value < 1:
        raise CLIError(f"{what}: expected a positive integer, got {value}")
    return value


def _print_pieces(flow) -> None:
    for k, (w, rec) in enumerate(zip(flow.weights_, flow.records_)):
        stop = "early stop" if rec.stopped_early else "epoch limit"
        held = rec.held_out_log_prob
        held = "" if held is None else f", held-out log-likelihood {held:.3f} nats per sample"
        print(f"  piece {k}: weight {w:.3f}, best epoch {rec.best_epoch} of {len(rec.val_loss) - 1} ({stop}), "
              f"fit {rec.fit_time:.1f} s{held}")


def cmd_info(args) -> None:
    flow = load_flow(args.flow)
    names = _names(flow)
    print(f"{args.flow}: {type(flow).__name__}, {flow.ndim_} parameters, {len(flow.weights_)} piece(s)")
    print(f"architecture: masked autoregressive flow(s) (zuko); settings {json.dumps(flow.get_params())}")
    if getattr(flow, "silhouette_", None):
        print("silhouette score by number of clusters: "
              + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(flow.silhouette_.items())))
        print(f"{flow.n_clusters_} cluster(s) split into {len(flow.weights_)} piece(s)")
    print(f"{'parameter':14s} {'label':24s} {'lower':>12s} {'upper':>12s}")
    for n, lab, (lo, hi) in zip(names, _labels(flow), flow.bounds_):
        print(f"{n:14s} {lab:24s} {'-' if lo is None else f'{lo:.6g}':>12s} {'-' if hi is None else f'{hi:.6g}':>12s}")
    _print_pieces(flow)


def cmd_sample(args) -> None:
    from .base import make_rng

    check_count(args.n, MAX_SAMPLES)
    check_output(args.output)
    flow = load_flow(args.flow)
    names = _names(flow)
    rng = make_rng(args.seed)  # one stream: the chunks are the draws flow.sample(n, seed) makes at once
    tmp = Path(args.output).with_name(f".{Path(args.output).name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(",".join(names) + "\n")
            for start in range(0, args.n, SAMPLE_CHUNK):
                np.savetxt(fh, flow.sample(min(SAMPLE_CHUNK, args.n - start), seed=rng), delimiter=",")
        os.replace(tmp, args.output)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {args.n} samples of {names} to {args.output}")


def cmd_check(args) -> None:
    check_count(args.n, MAX_PLOT)
    check_output(args.output)
    flow = load_flow(args.flow)
    samples, dropped = read_chains(args.chains)
    names = flow.names_
    if names is None:
        raise CLIError(f"{args.flow}: the flow has no parameter names, so it cannot be matched to chains")
    sub, _ = select(samples, names)
    data = read_samples(sub)
    w = data.weights / data.weights.sum()
    logq = flow.log_prob(data.x)
    outside = ~np.isfinite(logq)
    if outside.all():
        raise CLIError(f"{args.chains}: every sample lies outside the flow's bounds")
    ess = 1.0 / np.sum(w**2)
    mean_logq = float(np.sum(w[~outside] * logq[~outside]) / w[~outside].sum())
    print(f"{args.flow} against {args.chains}: {len(data.x)} samples (effective {ess:.0f})")
    print(f"mean log-density of the chains under the flow: {mean_logq:.3f} nats "
          f"({outside.mean():.1%} of samples outside its bounds)")
    _print_pieces(flow)
    if hasattr(samples, "logZ") and "logL" in samples.drop_labels().columns:
        if dropped:
            print(f"posterior tracking: skipped: {dropped}, so the chains' evidence is unknown")
        else:
            _track_posterior(flow, samples, w, logq, outside)
    import matplotlib

    matplotlib.use("Agg")
    from anesthetic import make_2d_axes

    labels = dict(zip(names, _labels(flow)))
    fig, axes = make_2d_axes(names, labels=labels, figsize=(2.2 * len(names) + 1, 2.2 * len(names) + 1))
    sub.plot_2d(axes, label="chains", kinds={"lower": "kde_2d", "diagonal": "kde_1d", "upper": "scatter_2d"})
    _flow_samples(flow, args.n, args.seed).plot_2d(
        axes, label="flow", alpha=0.6, kinds={"lower": "kde_2d", "diagonal": "kde_1d", "upper": "scatter_2d"})
    axes.iloc[-1, 0].legend(loc="lower center", bbox_to_anchor=(len(names) / 2, len(names)))
    fig.savefig(args.output, dpi=args.dpi)
    print(f"wrote {args.output}")


def _track_posterior(flow, samples, w, logq, outside) -> None:
    """For nested-sampling chains: log P(theta) - log q(theta) over the posterior, under a uniform prior."""
    lo = np.array([b[0] if b[0] is not None else np.nan for b in flow.bounds_])
    hi = np.array([b[1] if b[1] is not None else np.nan for b in flow.bounds_])
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or flow.ndim_ != len(column_names(samples)):
        print("posterior tracking: needs a flow over every parameter with finite bounds (taken as a uniform "
              "prior); skipped")
        return
    logl = samples["logL"].to_numpy(dtype=float)
    logz = float(samples.logZ())
    if not np.isfinite(logz):
        print(f"posterior tracking: the chains' evidence is {logz} (logL is not finite where the posterior has "
              "mass); skipped")
        return
    logp = logl - logz - np.sum(np.log(hi - lo))
    ok = ~outside & np.isfinite(logp) & (w > 0)
    if not ok.any():
        print("posterior tracking: no sample with positive weight has a finite logL inside the flow's bounds; "
              "skipped")
        return
    d = logp[ok] - logq[ok]
    wk = w[ok] / w[ok].sum()
    kl = float(np.sum(wk * d))
    spread = float(np.sqrt(np.sum(wk * (d - kl) ** 2)))
    # The KL carries the chains' evidence error (Skilling's sqrt(H / nlive)); the spread does not.
    zerr = float(np.sqrt(max(float(samples.D_KL()), 0.0) / np.median(samples["nlive"].to_numpy(dtype=float))))
    print(f"posterior tracking (uniform prior on the flow's bounds): spread of log P - log q over the "
          f"posterior {spread:.3f} nats (0 for a perfect flow); KL(P || flow) {kl:.3f} ± {zerr:.3f} nats "
          "(the error is the chains' logZ error)")


def cmd_stats(args) -> None:
    from .marginal import kl_divergence, model_dimensionality
    from .priors import UniformPrior

    check_count(args.n, MAX_SAMPLES)
    post = load_flow(args.post)
    if args.prior == "uniform":
        bad = [n for n, (lo, hi) in zip(post.names_ or range(post.ndim_), post.bounds_) if lo is None or hi is None]
        if bad:
            raise CLIError(f"--prior uniform: the posterior flow's bounds are open for {bad}; give --prior FLOW")
        prior = UniformPrior(post.bounds_, names=post.names_)
    else:
        prior = load_flow(args.prior)
    try:
        kl = kl_divergence(post, prior, params=args.params, n=args.n, seed=args.seed)
        bmd = model_dimensionality(post, prior, params=args.params, n=args.n, seed=args.seed)
    except ValueError as err:
        raise CLIError(str(err)) from err
    names = args.params or post.names_
    print(f"marginal statistics over {names} ({args.n} draws, seed {args.seed}):")
    print(f"  KL divergence             {kl.value:.4f} ± {kl.error:.4f} nats")
    print(f"  model dimensionality      {bmd.value:.3f} ± {bmd.error:.3f}")


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flowprior", description="Normalizing flows as nested-sampling priors: "
                                "train them on chains, check, sample and describe them, marginal statistics.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="train a flow on chains", formatter_class=raw,
                       description="Train a MAF (or a piecewise flow) on weighted chains and save it.",
                       epilog="example:\n  flowprior train chains/planck --params omegabh2 omegach2 ns "
                              "--bounds prior.yaml -o planck.flow\n\nprior.yaml:\n  omegabh2: [0.005, 0.1]\n"
                              "  ns: [0.8, 1.2]\n  tau: [0.01, null]   # null: open side")
    t.add_argument("chains", help="chain root read by anesthetic (e.g. chains/planck)")
    t.add_argument("--params", nargs="+", metavar="NAME", help="parameters to train on (default: all)")
    t.add_argument("--bounds", nargs="+", metavar="SPEC",
                   help="a YAML/JSON file {name: [lo, hi]} or name=lo,hi items (empty side = open); default "
                        "unbounded")
    t.add_argument("--piecewise", action="store_true", help="one flow per cluster of the samples")
    t.add_argument("--clusters", default="auto", help="with --piecewise: 'auto' (silhouette) or a number")
    t.add_argument("--split", type=int, default=2,
                   help="with --piecewise --clusters auto: pieces per cluster (default 2; 1 = one per cluster)")
    t.add_argument("--n-transforms", type=int, default=5, help="autoregressive transforms (default 5)")
    t.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden layer widths (default 64 64)")
    t.add_argument("--max-epochs", type=int, default=1000, help="training epochs at most (default 1000)")
    t.add_argument("--n-jobs", type=int, default=1, help="pieces trained in parallel (default 1)")
    t.add_argument("--seed", type=int, default=0, help="seed (default 0): same seed and chains, same flow")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("-o", "--output", required=True, help="flow file to write (e.g. planck.flow)")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("check", help="corner plot of chains against flow samples", formatter_class=raw,
                       description="Plot the chains against samples of the flow (anesthetic corner plot) and "
                                   "print how well the flow's density fits them.",
                       epilog="example:\n  flowprior check planck.flow chains/planck -o check.png")
    c.add_argument("flow")
    c.add_argument("chains")
    c.add_argument("-o", "--output", required=True, help="PNG to write")
    c.add_argument("-n", type=int, default=5000, help=f"flow samples to plot (default 5000, at most {MAX_PLOT:.0e})")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--dpi", type=int, default=90)
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("sample", help="draw samples from a flow to CSV", formatter_class=raw,
                       description="Draw samples from a flow and write them as CSV with a header of names.",
                       epilog="example:\n  flowprior sample planck.flow -n 10000 -o samples.csv")
    s.add_argument("flow")
    s.add_argument("-n", type=int, required=True, help=f"number of samples (at most {MAX_SAMPLES:.0e})")
    s.add_argument("-o", "--output", required=True, help="CSV file to write")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_sample)

    st = sub.add_parser("stats", help="marginal KL divergence and model dimensionality", formatter_class=raw,
                        description="KL divergence and Bayesian model dimensionality of a posterior flow "
                                    "against a prior flow (or a uniform prior on its bounds), with errors.",
                        epilog="examples:\n  flowprior stats post.flow --prior prior.flow\n"
                               "  flowprior stats post.flow --prior uniform")
    st.add_argument("post")
    st.add_argument("--prior", required=True, help="prior flow file, or 'uniform' (the posterior flow's bounds)")
    st.add_argument("--params", nargs="+", metavar="NAME", help="subset (must be the flows' parameters)")
    st.add_argument("-n", type=int, default=20000, help="Monte Carlo draws (default 20000)")
    st.add_argument("--seed", type=int, default=0)
    st.set_defaults(func=cmd_stats)

    i = sub.add_parser("info", help="parameters, bounds, architecture, pieces, training record",
                       formatter_class=raw, description="Describe a flow file.",
                       epilog="example:\n  flowprior info planck.flow")
    i.add_argument("flow")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CLIError as err:
        if args.debug:
            raise
        print(f"flowprior: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:
        if args.debug:
            raise
        print(f"flowprior: error: {err}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
