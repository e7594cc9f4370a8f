"""``flowprior run input.yaml``: a cobaya input through flowprior's nested sampling, written as GetDist chains.

The model, priors, likelihoods and derived parameters are cobaya's
(:mod:`flowprior.integrations.cobaya`); the run is :func:`flowprior.run`
or, with ``--enhanced``, :func:`flowprior.enhanced_run`, which keeps its
stages in ``--outdir`` and resumes there.  The chains go to the input's
``output`` root (or ``-o``), readable by getdist and anesthetic.

Example
-------
>>> from flowprior.cli.commands import main
>>> main(["run", "lcdm.yaml", "--enhanced", "--sampler", "polychord", "--nlive", "500"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from flowprior.cli.inputs import CLIError, check_output


def add_parser(sub) -> None:
    """The ``run`` subcommand of ``sub`` (argparse subparsers)."""
    r = sub.add_parser("run", help="nested sampling of a cobaya input (YAML), plain or enhanced",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run a cobaya input with flowprior (cobaya builds the model; its 1-D priors are "
                                   "the prior transform) and write GetDist chains of the result.",
                       epilog="example:\n  flowprior run lcdm.yaml --enhanced --sampler polychord --nlive 500\n"
                              "  (chains: the input's output root, e.g. chains/lcdm.txt, .paramnames, .ranges)")
    r.add_argument("input", help="cobaya input file (YAML)")
    r.add_argument("--enhanced", action="store_true",
                   help="low-resolution run, flow, high-resolution run with the flow as prior (fewer calls)")
    r.add_argument("--sampler", default="dynesty", help="dynesty (default) or polychord")
    r.add_argument("--nlive", type=int, default=500, help="live points (default 500)")
    r.add_argument("--seed", type=int, default=0, help="seed (default 0); an enhanced run resumes only with it")
    r.add_argument("--outdir", help="with --enhanced: where the stages are kept (default: the chains root + "
                                    "'.flowprior')")
    r.add_argument("-o", "--output", help="chain root to write (default: the input's output, else the input "
                                          "file's name without .yaml)")
    r.set_defaults(func=cmd_run)


def chain_root(path: Path, output: str | None) -> str:
    """Where the chains go: ``output``, else the input's own ``output`` key, else the input file's stem."""
    if output:
        return output
    try:
        info = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CLIError(f"{path}: could not read it as YAML ({' '.join(str(err).split())})") from err
    given = info.get("output") if isinstance(info, dict) else None
    return str(given) if given else str(path.with_suffix(""))


def cmd_run(args) -> None:
    from flowprior.integrations import cobaya as fpc

    path = Path(args.input)
    if not path.is_file():
        raise CLIError(f"{args.input}: no such file (expected a cobaya input in YAML)")
    root = chain_root(path, args.output)
    Path(root).parent.mkdir(parents=True, exist_ok=True)  # as cobaya makes its output folder
    check_output(root + ".txt", "chain root")
    kwargs = dict(sampler=args.sampler, nlive=args.nlive, seed=args.seed)
    if args.enhanced:
        kwargs["outdir"] = args.outdir or root + ".flowprior"
    elif args.outdir:
        raise CLIError("--outdir: only an enhanced run keeps stages; add --enhanced")
    res = fpc.run_yaml(str(path), enhanced=args.enhanced, **kwargs)
    calls = ", ".join(f"{k} {v}" for k, v in res.ncall.items())
    print(f"{path}: logZ {res.logZ:.3f} ± {res.logZerr:.3f}; likelihood calls: {calls}")
    print(f"wrote {fpc.write_chains(res, root)}.txt (.paramnames, .ranges)")
