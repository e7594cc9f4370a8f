"""The ``flowprior`` command: train flows on chains, check, sample, describe them, marginal statistics; run
cobaya inputs (:mod:`flowprior.cli.run`).

Every error is one line on stderr (``flowprior: error: ...``) with exit
status 1 (2 for a malformed command line, as argparse does); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from flowprior.cli.inputs import (MAX_PLOT, MAX_SAMPLES, SAMPLE_CHUNK, CLIError, check_count, check_output, flow_labels,
                         flow_names, flow_samples, load_flow, parse_bounds, read_chains, select)
from flowprior.cli.metadata import chain_info
from flowprior.cli.run import add_parser as add_run_parser
from flowprior.data import column_names, read_samples
from flowprior.evidence import simulated_logz_error
from flowprior.flows.files import atomic_write
from flowprior.numerics import kish_ess

EPILOG = """examples:
  flowprior train chains/planck --params omegabh2 omegach2 ns --bounds prior.yaml -o planck.flow
  flowprior train chains/multi --piecewise --clusters auto -o multi.flow
  flowprior check planck.flow chains/planck -o check.png
  flowprior sample planck.flow -n 10000 -o samples.csv
  flowprior stats post.flow --prior prior.flow
  flowprior info planck.flow
  flowprior run lcdm.yaml --enhanced --sampler polychord --nlive 500

CHAINS is anything anesthetic's read_chains reads: a PolyChord, MultiNest,
UltraNest, Cobaya or GetDist root (e.g. chains/planck for
chains/planck_dead-birth.txt and chains/planck.paramnames; UltraNest output
needs h5py: pip install 'flowprior[ultranest]')."""


# -------------------------------------------------------------- commands
def cmd_train(args) -> None:
    from flowprior import MAF, NSF, PiecewiseFlow

    check_output(args.output)
    samples, _ = read_chains(args.chains)
    info = chain_info(args.chains)
    sub, params = select(samples, args.params or info.params(column_names(samples), derived=args.derived))
    bounds = parse_bounds(args.bounds, params) if args.bounds else info.bounds(params)
    if bounds is not None and not args.bounds:
        print(f"bounds from {info.source}: {bounds}")
    if args.bins is not None and args.flow != "nsf":
        raise CLIError("--bins needs --flow nsf")
    bins = (8 if args.bins is None else args.bins) if args.flow == "nsf" else None
    common = dict(n_transforms=args.n_transforms, hidden_features=tuple(args.hidden), max_epochs=args.max_epochs,
                  bins=bins, seed=args.seed, progress=not args.quiet)
    if args.piecewise:
        clusters = "auto" if args.clusters == "auto" else _int(args.clusters, "--clusters")
        flow = PiecewiseFlow(clusters=clusters, split=args.split, n_jobs=args.n_jobs, transform=args.transform,
                             **common)
    else:
        if args.clusters != "auto":
            raise CLIError("--clusters needs --piecewise")
        if args.split != 2:
            raise CLIError("--split needs --piecewise")
        if args.transform != "slab":
            raise CLIError("--transform needs --piecewise")
        flow = (NSF if bins else MAF)(**common)
    t0 = time.perf_counter()
    try:
        flow.fit(sub, bounds=bounds)
    except RuntimeError as err:  # training diverged: a fact about these chains and settings, not a bug
        raise CLIError(str(err)) from err
    wall = time.perf_counter() - t0
    flow.save(args.output)
    w = sub.get_weights()
    ess = kish_ess(w)
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
    names = flow_names(flow)
    print(f"{args.flow}: {type(flow).__name__}, {flow.ndim_} parameters, {len(flow.weights_)} piece(s)")
    print(f"architecture: masked autoregressive flow(s) (zuko); settings {json.dumps(flow.get_params())}")
    if getattr(flow, "silhouette_", None):
        print("silhouette score by number of clusters: "
              + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(flow.silhouette_.items())))
        print(f"{flow.n_clusters_} cluster(s) split into {len(flow.weights_)} piece(s)")
    print(f"{'parameter':14s} {'label':24s} {'lower':>12s} {'upper':>12s}")
    for n, lab, (lo, hi) in zip(names, flow_labels(flow), flow.bounds_):
        print(f"{n:14s} {lab:24s} {'-' if lo is None else f'{lo:.6g}':>12s} {'-' if hi is None else f'{hi:.6g}':>12s}")
    _print_pieces(flow)


def cmd_sample(args) -> None:
    from flowprior.flows.base import make_rng

    check_count(args.n, MAX_SAMPLES)
    check_output(args.output)
    flow = load_flow(args.flow)
    names = flow_names(flow)
    rng = make_rng(args.seed)  # one stream: the chunks are the draws flow.sample(n, seed) makes at once

    def write(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            fh.write(",".join(names) + "\n")
            for start in range(0, args.n, SAMPLE_CHUNK):
                np.savetxt(fh, flow.sample(min(SAMPLE_CHUNK, args.n - start), seed=rng), delimiter=",")

    atomic_write(args.output, write)
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
    ess = kish_ess(w)
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

    labels = dict(zip(names, flow_labels(flow)))
    fig, axes = make_2d_axes(names, labels=labels, figsize=(2.2 * len(names) + 1, 2.2 * len(names) + 1))
    sub.plot_2d(axes, label="chains", kinds={"lower": "kde_2d", "diagonal": "kde_1d", "upper": "scatter_2d"})
    flow_samples(flow, args.n, args.seed).plot_2d(
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
    # The KL carries the chains' evidence error (its spread over simulated compressions); the spread does not.
    zerr = simulated_logz_error(samples)
    print(f"posterior tracking (uniform prior on the flow's bounds): spread of log P - log q over the "
          f"posterior {spread:.3f} nats (0 for a perfect flow); KL(P || flow) {kl:.3f} ± {zerr:.3f} nats "
          "(the error is the chains' logZ error)")


def cmd_stats(args) -> None:
    from flowprior.marginal import kl_divergence, model_dimensionality
    from flowprior.priors import UniformPrior

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
def _add_train_parser(sub, raw) -> None:
    """The ``train`` subcommand (the one with the most options)."""
    t = sub.add_parser("train", help="train a flow on chains", formatter_class=raw,
                       description="Train a MAF or an NSF (or a piecewise flow of either) on weighted chains and save it.",
                       epilog="example:\n  flowprior train chains/planck --params omegabh2 omegach2 ns "
                              "--bounds prior.yaml -o planck.flow\n\nprior.yaml:\n  omegabh2: [0.005, 0.1]\n"
                              "  ns: [0.8, 1.2]\n  tau: [0.01, null]   # null: open side")
    t.add_argument("chains", help="chain root read by anesthetic (e.g. chains/planck)")
    t.add_argument("--params", nargs="+", metavar="NAME",
                   help="parameters to train on (default: the sampled ones where cobaya's updated.yaml or GetDist's "
                        ".paramnames say which, else all)")
    t.add_argument("--derived", action="store_true",
                   help="also train on the derived parameters those files name (default: sampled ones only)")
    t.add_argument("--bounds", nargs="+", metavar="SPEC",
                   help="a YAML/JSON file {name: [lo, hi]} or name=lo,hi items (empty side = open); default "
                        "unbounded")
    t.add_argument("--flow", choices=["maf", "nsf"], default="maf",
                   help="affine transforms (maf, the default) or rational-quadratic splines (nsf)")
    t.add_argument("--bins", type=int, help="with --flow nsf: spline bins (default 8)")
    t.add_argument("--piecewise", action="store_true", help="one flow per cluster of the samples")
    t.add_argument("--clusters", default="auto", help="with --piecewise: 'auto' (silhouette) or a number")
    t.add_argument("--split", type=int, default=2,
                   help="with --piecewise --clusters auto: pieces per cluster (default 2; 1 = one per cluster)")
    t.add_argument("--transform", choices=["slab", "rosenblatt"], default="slab",
                   help="with --piecewise: the prior transform, slabs of the first coordinate (default) or the "
                        "mixture's conditional CDFs (a continuous bijection)")
    t.add_argument("--n-transforms", type=int, default=5, help="autoregressive transforms (default 5)")
    t.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden layer widths (default 64 64)")
    t.add_argument("--max-epochs", type=int, default=1000, help="training epochs at most (default 1000)")
    t.add_argument("--n-jobs", type=int, default=1, help="pieces trained in parallel (default 1)")
    t.add_argument("--seed", type=int, default=0, help="seed (default 0): same seed and chains, same flow")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("-o", "--output", required=True, help="flow file to write (e.g. planck.flow)")
    t.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flowprior", description="Normalizing flows as nested-sampling priors: "
                                "run cobaya inputs, "
                                "train them on chains, check, sample and describe them, marginal statistics.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    _add_train_parser(sub, raw)

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
    add_run_parser(sub)
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


