"""Loading a flow file written by :func:`flowprior.flows.files.save` back into a :class:`MAF` or :class:`PiecewiseFlow`.

It sits above the flow classes (which save through :mod:`flowprior.flows.files`), so
no module imports in a circle.

Example
-------
>>> flow.save("planck.flow")            # doctest: +SKIP
>>> same = load("planck.flow")          # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from flowprior.flows.build import build_maf
from flowprior.flows.blocks import check_blocks
from flowprior.flows.files import read_file
from flowprior.flows.maf import MAF
from flowprior.flows.marginalizing import AuxiliaryMAF, MarginalizingFlow
from flowprior.flows.nsf import NSF
from flowprior.flows.piecewise import PiecewiseFlow
from flowprior.flows.spaces import INTERVAL, Space
from flowprior.flows.training import TrainingRecord


def load(path):
    """Read a flow written by :meth:`save`.

    The file is read once and its checksum verified before the flow is built.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`flowprior.flows.files.read_file`; also a ``ValueError`` when the
        recorded settings and arrays do not build a flow.
    """
    meta, tensors = read_file(path)
    classes = {"MAF": MAF, "NSF": NSF, "PiecewiseFlow": PiecewiseFlow, "AuxiliaryMAF": AuxiliaryMAF}
    try:
        cls = classes[meta["class"]]
        params = dict(meta["params"])
        if cls is PiecewiseFlow:
            # A file without ``overlap`` holds pieces trained on hard clusters.
            params.setdefault("overlap", None)
        flow = cls(**params)
        ndim = int(meta["ndim"])
        flow.blocks_ = check_blocks(flow.blocks, ndim, meta["names"])
        lo = tensors["space.lo"].numpy().astype(float)
        hi = tensors["space.hi"].numpy().astype(float)
        pieces, spaces = [], []
        for k in range(int(meta["n_pieces"])):
            prefix = f"piece{k}.flow."
            state = {key[len(prefix):]: v for key, v in tensors.items() if key.startswith(prefix)}
            space = Space(lo, hi, tensors[f"piece{k}.mean"].numpy().astype(float),
                          tensors[f"piece{k}.chol"].numpy().astype(float), flow.link)
            piece = build_maf(ndim, flow.n_transforms, flow.hidden_features, flow.blocks_, flow.bins,
                              space.kinds == INTERVAL, flow._same_order())
            piece.load_state_dict(state, strict=True)
            pieces.append(piece.eval())
            spaces.append(space)
        flow.ndim_ = ndim
        flow.names_ = meta["names"]
        flow.latex_labels_ = meta["latex_labels"]
        flow.pieces_ = pieces
        flow.spaces_ = spaces
        flow.weights_ = tensors["weights"].numpy().astype(float)
        flow.records_ = [TrainingRecord(**r) for r in meta["records"]]
        if cls is PiecewiseFlow:
            flow.silhouette_ = {int(k): v for k, v in meta.get("silhouette", {}).items()}
            # A file without ``n_clusters`` has one piece per cluster.
            flow.n_clusters_ = int(meta.get("n_clusters") or len(pieces))
            if "cluster_labels" in tensors:
                flow.cluster_labels_ = tensors["cluster_labels"].numpy()
        if len(flow.weights_) != len(pieces) or lo.shape != (ndim,) or hi.shape != (ndim,):
            raise ValueError("array shapes disagree with the metadata")
        # A float, or one per piece (FlowDensity.broadened with per-piece scales).
        base_scale = np.asarray(meta.get("base_scale", 1.0), dtype=float)
        if base_scale.shape not in ((), (len(pieces),)) or not np.all(np.isfinite(base_scale) & (base_scale > 0)):
            raise ValueError(f"base_scale {meta.get('base_scale')!r} is not a positive number or one per piece")
        if base_scale.ndim:
            flow._base_scale = base_scale
        elif base_scale != 1.0:
            flow._base_scale = float(base_scale)
        if meta.get("base") is not None:  # FlowDensity.rebased
            flow._base = _base(meta["base"], len(pieces), ndim)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: corrupt flowprior file ({type(err).__name__}: {err})") from None
    flow._finish()
    if "marginalizing" in meta:
        try:
            return MarginalizingFlow.from_inner(flow, meta["marginalizing"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: corrupt flowprior file ({type(err).__name__}: {err})") from None
    return flow


def _base(value, n_pieces: int, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """A saved :meth:`~flowprior.flows.base.FlowDensity.rebased` base, checked: (mean, cholesky) per piece."""
    mean, tril = (np.asarray(a, dtype=float) for a in value)
    ok = mean.shape == (n_pieces, ndim) and tril.shape == (n_pieces, ndim, ndim) and np.all(np.isfinite(tril))
    if not (ok and np.all(np.isfinite(mean)) and np.all(np.diagonal(tril, axis1=1, axis2=2) > 0)):
        raise ValueError("base is not a finite mean and lower-triangular factor with a positive diagonal per piece")
    return mean, np.tril(tril)
