"""Flow files: one safetensors file, JSON metadata, no pickle; written atomically, read once, checksummed.

Reading never executes code from the file: safetensors holds only arrays and a
JSON header, and :func:`flowprior.flows.loading.load` rebuilds the flow from the
recorded settings.  The file
carries a SHA-256 checksum of its metadata and tensors, and is read once, so a
corrupt file or one replaced while it is read is refused, never half-used.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import uuid
from pathlib import Path

import numpy as np
import torch

FORMAT = "flowprior"
#: File format version: version 2 files carry a checksum; older files (without one) still load.
VERSION = 2
_KEY = "flowprior"
_SUM = "flowprior.sha256"


def atomic_write(path, write) -> None:
    """Call ``write(tmp)`` on a fresh temporary file beside ``path``, then rename it to ``path``.

    A crash mid-write never leaves a half-written file under the real name,
    and two processes writing one path never share a temporary file: the
    last rename wins and a reader sees one whole file or the other.  The
    file gets the usual mode for new files (``0o666`` less the umask).

    Parameters
    ----------
    path : str or Path
        The file to (re)place.
    write : callable
        ``write(tmp)`` writes the whole content to the path ``tmp``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # Created here, exclusively, so the kernel gives it the umask's mode; a writer that replaces the
    # file (safetensors makes it 0600) gets that mode back.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        mode = tmp.stat().st_mode & 0o777
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_digest(path) -> bytes:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).digest()


def _digest(meta_text: str, tensors: dict) -> str:
    """SHA-256 of the metadata text and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(meta_text.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save(flow, path, extra: dict | None = None) -> None:
    """Write a fitted :class:`MAF` or :class:`PiecewiseFlow` to ``path``.

    Every setting is kept: bounds, architecture and training settings,
    parameter names and labels, piece weights, base scale, training records;
    ``extra`` adds JSON metadata (a wrapper's settings, e.g. a
    :class:`~flowprior.MarginalizingFlow`'s under ``"marginalizing"``).
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
        "architecture": "nsf" if getattr(flow, "bins", None) else "maf",
        "params": flow.get_params(),
        "ndim": flow.ndim_,
        "n_pieces": len(flow.pieces_),
        "names": flow.names_,
        "latex_labels": flow.latex_labels_,
        "records": [r.to_dict() for r in flow.records_],
        "silhouette": {str(k): v for k, v in getattr(flow, "silhouette_", {}).items()},
        "n_clusters": getattr(flow, "n_clusters_", None),
        "base_scale": np.asarray(flow.base_scale_, dtype=float).tolist(),
        "base": None if flow.base_ is None else [np.asarray(a, dtype=float).tolist() for a in flow.base_],
    }
    text = json.dumps({**meta, **(extra or {})})
    header = {_KEY: text, _SUM: _digest(text, tensors)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def _not_ours(path, why: str) -> ValueError:
    return ValueError(f"{path}: not a flowprior flow file ({why})")


def _read(path) -> tuple[dict, dict]:
    """The safetensors metadata and tensors of ``path``, from one read of the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size]).get("__metadata__") or {}
        tensors = load_tensors(data)
    except (SafetensorError, struct.error, ValueError, RuntimeError, AttributeError, TypeError) as err:
        raise _not_ours(path, f"cannot be read as safetensors: {err}") from None
    return header, tensors


def _verified_meta(path, header: dict, tensors: dict) -> dict:
    """The flowprior metadata of a file, after its format, version and checksum are checked."""
    if _KEY not in header:
        raise _not_ours(path, "a safetensors file without flowprior metadata")
    try:
        meta = json.loads(header[_KEY])
    except json.JSONDecodeError as err:
        raise _not_ours(path, f"corrupt metadata: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _not_ours(path, f"format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    version = meta.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{path}: written by a newer flowprior (file format {version!r}, this reads {VERSION})")
    # Checked whenever a checksum is there or due, so a flipped version number cannot skip it.
    if _SUM in header or version >= 2:
        if header.get(_SUM) != _digest(header[_KEY], tensors):
            raise ValueError(f"{path}: corrupt flowprior file (checksum mismatch: the file changed after it was "
                             "written); save the flow again or restore a good copy")
    return meta


def read_file(path) -> tuple[dict, dict]:
    """The verified metadata and the tensors of a flow file, from one read of it.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a flowprior file, is from a newer version, or is
        corrupt (its checksum does not match).
    """
    header, tensors = _read(path)
    return _verified_meta(path, header, tensors), tensors
