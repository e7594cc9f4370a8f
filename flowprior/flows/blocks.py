"""Block-structured flows: parameters split into groups that the flow keeps independent.

A flow with ``blocks`` has a density that is the product of one density
per block, and a prior transform that maps each block's cube coordinates
on its own: its whitening is block-diagonal and each autoregressive
transform lets a coordinate depend only on earlier coordinates of its own
block.  With the few hundred effective samples of a low-resolution run in
many dimensions, a full covariance carries spurious correlations between
groups that are independent (two experiments' nuisance parameters); the
blocks leave them out (docs/design.md, "Block-structured flows").

References
----------
Germain et al., "MADE: Masked Autoencoder for Distribution Estimation" (2015), arXiv:1502.03509
(masks from a dependency graph); zuko's ``MaskedAutoregressiveTransform(adjacency=...)``.
"""

from __future__ import annotations

import numpy as np


def check_blocks(blocks, ndim: int, names: list[str] | None = None) -> list[list[int]] | None:
    """``blocks`` as lists of column indices, after checking that they partition the ``ndim`` parameters.

    Parameters
    ----------
    blocks : None or sequence of sequences of int or str
        Column indices, or parameter names where ``names`` are known.
    ndim : int
    names : list of str, optional

    Returns
    -------
    list of lists of int, or None for no blocks

    Raises
    ------
    ValueError
        Naming the block and the parameter that is unknown, repeated or missing.

    Example
    -------
    >>> check_blocks([[0, 2], ["b"]], 3, ["a", "b", "c"])
    [[0, 2], [1]]
    """
    if blocks is None:
        return None
    if isinstance(blocks, (str, bytes)) or not np.iterable(blocks) or not len(blocks):
        raise ValueError(f"blocks: expected a list of lists of parameter indices or names, got {blocks!r}")
    out, seen = [], {}
    for b, block in enumerate(blocks):
        if isinstance(block, (str, bytes)) or not np.iterable(block) or not len(block):
            raise ValueError(f"blocks[{b}]: expected a non-empty list of parameter indices or names, got {block!r}")
        out.append([_index(item, b, ndim, names) for item in block])
        for i in out[-1]:
            if i in seen:
                raise ValueError(f"blocks[{b}]: parameter {_label(i, names)} is already in blocks[{seen[i]}]; "
                                 "each parameter belongs to exactly one block")
            seen[i] = b
    missing = [_label(i, names) for i in range(ndim) if i not in seen]
    if missing:
        raise ValueError(f"blocks: parameters {', '.join(missing)} are in no block; the blocks must cover all {ndim} "
                         "parameters exactly once")
    return out


def _index(item, b: int, ndim: int, names) -> int:
    """One block entry as a column index."""
    if isinstance(item, str):
        if names is None or item not in names:
            raise ValueError(f"blocks[{b}]: unknown parameter name {item!r}; known names are {names}")
        return list(names).index(item)
    if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)) or not 0 <= item < ndim:
        raise ValueError(f"blocks[{b}]: expected a parameter index in [0, {ndim}) or a name, got {item!r}")
    return int(item)


def _label(i: int, names) -> str:
    """A parameter as its index, and its name where it has one."""
    return f"{i} ({names[i]!r})" if names is not None and names[i] != str(i) else str(i)


def same_block(blocks: list[list[int]], ndim: int) -> np.ndarray:
    """``(ndim, ndim)`` boolean matrix: whether two parameters share a block."""
    label = np.empty(ndim, dtype=np.int64)
    for b, block in enumerate(blocks):
        label[block] = b
    return label[:, None] == label[None, :]


def adjacency(blocks: list[list[int]], position: np.ndarray) -> np.ndarray:
    """An autoregressive transform's adjacency: output ``i`` sees input ``j`` of its block placed before it.

    ``position[f]`` is feature ``f``'s place in the transform's order; the
    diagonal is set, as zuko expects.
    """
    ndim = len(position)
    before = position[:, None] > position[None, :]
    return (before & same_block(blocks, ndim)) | np.eye(ndim, dtype=bool)
