"""Saving and loading flows: one safetensors file, JSON metadata, no pickle.

Loading never executes code from the file: safetensors holds only arrays and a
JSON header, and the flow is rebuilt from the recorded settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

FORMAT = "flowprior"
VERSION = 1
_KEY = "flowprior"


def atomic_write(path, write) -> None:
    """Call ``write(tmp)`` and then rename ``tmp`` to ``path``.

    A crash mid-write never leaves a half-written file under the real name.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save(flow, path) -> None:
    """Write a fitted :class:`MAF` or :class:`PiecewiseFlow` to ``path``.

    Every setting is kept: bounds, architecture and training settings,
    parameter names and labels, piece weights, base scale, training records.
    """
    from safetensors.torch import save_file

    flow._check_fitted()
    tensors = {
        "space.lo": torch.as_tensor(flow.spaces_[0].lo),
        "space.hi": torch.as_tensor(flow.spaces_[0].hi),
        "weights": torch.as_tensor(flow.weights_),
    }
    for k, (piece, space) in enumerate(zip(flow.pieces_, flow.spaces_)):
        tensors[f"piece{k}.mean"] = torch.as_tensor(space.mean)
        tensors[f"piece{k}.chol"] = torch.as_tensor(space.chol)
        for name, value in piece.state_dict().items():
            tensors[f"piece{k}.flow.{name}"] = value.detach().cpu().contiguous().clone()
    if hasattr(flow, "cluster_labels_"):
        tensors["cluster_labels"] = torch.as_tensor(flow.cluster_labels_)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(flow).__name__,
        "architecture": "maf",
        "params": flow.get_params(),
        "ndim": flow.ndim_,
        "n_pieces": len(flow.pieces_),
        "names": flow.names_,
        "latex_labels": flow.latex_labels_,
        "records": [r.to_dict() for r in flow.records_],
        "silhouette": {str(k): v for k, v in getattr(flow, "silhouette_", {}).items()},
        "n_clusters": getattr(flow, "n_clusters_", None),
        "base_scale": np.asarray(flow.base_scale_, dtype=float).tolist(),
    }
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={_KEY: json.dumps(meta)}))


def _not_ours(path, why: str) -> ValueError:
    return ValueError(f"{path}: not a flowprior flow file ({why})")


def load(path):
    """Read a flow written by :meth:`save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a flowprior file, is from a newer version, or is
        corrupt.
    """
    from safetensors import SafetensorError, safe_open

    from .base import build_maf
    from .maf import MAF
    from .piecewise import PiecewiseFlow
    from .spaces import Space
    from .training import TrainingRecord

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise _not_ours(path, f"cannot be read as safetensors: {err}") from None
    if _KEY not in header:
        raise _not_ours(path, "a safetensors file without flowprior metadata")
    try:
        meta = json.loads(header[_KEY])
    except json.JSONDecodeError as err:
        raise _not_ours(path, f"corrupt metadata: {err}") from None
    if meta.get("format") != FORMAT:
        raise _not_ours(path, f"format {meta.get('format')!r}")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path}: written by a newer flowprior (file format {meta['version']}, this reads {VERSION})")
    classes = {"MAF": MAF, "PiecewiseFlow": PiecewiseFlow}
    try:
        cls = classes[meta["class"]]
        params = dict(meta["params"])
        if cls is PiecewiseFlow:
            # Files from before soft pieces were trained with hard clusters.
            params.setdefault("overlap", None)
        flow = cls(**params)
        ndim = int(meta["ndim"])
        lo = tensors["space.lo"].numpy().astype(float)
        hi = tensors["space.hi"].numpy().astype(float)
        pieces, spaces = [], []
        for k in range(int(meta["n_pieces"])):
            prefix = f"piece{k}.flow."
            state = {key[len(prefix):]: v for key, v in tensors.items() if key.startswith(prefix)}
            piece = build_maf(ndim, flow.n_transforms, flow.hidden_features)
            piece.load_state_dict(state, strict=True)
            pieces.append(piece.eval())
            spaces.append(Space(lo, hi, tensors[f"piece{k}.mean"].numpy().astype(float),
                                tensors[f"piece{k}.chol"].numpy().astype(float)))
        flow.ndim_ = ndim
        flow.names_ = meta["names"]
        flow.latex_labels_ = meta["latex_labels"]
        flow.pieces_ = pieces
        flow.spaces_ = spaces
        flow.weights_ = tensors["weights"].numpy().astype(float)
        flow.records_ = [TrainingRecord(**r) for r in meta["records"]]
        if cls is PiecewiseFlow:
            flow.silhouette_ = {int(k): v for k, v in meta.get("silhouette", {}).items()}
            # Files from before ``split`` have one piece per cluster.
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
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: corrupt flowprior file ({type(err).__name__}: {err})") from None
    flow._finish()
    return flow
