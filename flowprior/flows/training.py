"""Weighted maximum-likelihood training of one zuko flow with early stopping."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm


@dataclass
class TrainingRecord:
    """What happened during training; ``best_epoch`` is the restored one.

    Entry 0 of the loss lists is the untrained flow (no training loss).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    fit_time: float = 0.0
    #: Weighted mean log-density of the held-out rows in parameter space
    #: (the piece's own density, at the restored epoch); None for old files.
    held_out_log_prob: float | None = None
    #: Kish effective sample size of the piece's training weights, held-out
    #: rows included (None for old files).
    ess: float | None = None
    #: Rows (of the arrays passed to ``train_flow``) held out; not saved to files.
    val_rows: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "fit_time": self.fit_time,
            "held_out_log_prob": self.held_out_log_prob,
            "ess": self.ess,
        }


def seeded(seed: int, build):
    """Call ``build()`` with torch seeded, leaving torch's global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class _threads:
    """Use ``n`` torch threads inside the block, then restore the caller's setting."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def _weighted_nll(flow, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return -(w * flow().log_prob(y)).sum() / w.sum()


def train_flow(
    flow: torch.nn.Module,
    y: np.ndarray,
    w: np.ndarray,
    *,
    rng: np.random.Generator,
    max_epochs: int,
    learning_rate: float,
    batch_size: int,
    val_fraction: float,
    patience: int,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "training",
    lr_decay: bool = True,
    threads: int | None = 1,
    refresh=None,
) -> TrainingRecord:
    """Train ``flow`` in place on rows ``y`` with weights ``w``.

    Minimises the weighted negative log-likelihood with Adam.  A random
    ``val_fraction`` of the rows is held out; training stops once the held-out
    loss has not improved for ``patience`` epochs, and the parameters of the
    best epoch are restored (a copy is kept, not a reference to the live ones).

    ``threads`` torch threads are used meanwhile (default 1): these networks
    are small, a step costs the same on one thread as on two, and one
    thread neither stalls when other work shares the cores nor
    oversubscribes them when pieces train in parallel (docs/design.md,
    "Piecewise flows and training defaults").

    ``refresh``, if given, is called as ``refresh(rows, rng)`` before each
    epoch and returns new values of the training ``rows`` of ``y`` (fresh
    draws of auxiliary variables, :class:`~flowprior.MarginalizingFlow`);
    the held-out rows keep theirs, so the held-out loss compares epochs.

    A non-finite loss stops training: with a ``UserWarning`` where an
    earlier epoch improved on the untrained flow (that epoch is kept),
    with a ``RuntimeError`` otherwise.
    """
    with _threads(threads if str(device) == "cpu" else None):
        return _train(flow, y, w, rng=rng, max_epochs=max_epochs, learning_rate=learning_rate,
                      batch_size=batch_size, val_fraction=val_fraction, patience=patience, device=device,
                      progress=progress, desc=desc, lr_decay=lr_decay, refresh=refresh)


def _diverged(desc: str, epoch: int, loss: float, which: str, learning_rate: float, record: TrainingRecord,
              best: float) -> None:
    """A non-finite loss: raise if nothing was learnt before it, else warn that the best epoch is kept.

    Once a loss is non-finite the parameters are (or soon become) NaN, so
    training stops either way; an untrained flow is never returned as if
    trained.
    """
    import warnings

    what = f"{desc}: the {which} loss became {loss} at epoch {epoch} (learning_rate={learning_rate:g})"
    if record.best_epoch <= 0:
        raise RuntimeError(f"{what}, before any epoch improved on the untrained flow: training diverged. "
                           "Lower learning_rate, or check the samples (extreme values, huge weights)")
    warnings.warn(f"{what}; training stopped there and kept epoch {record.best_epoch} (held-out loss "
                  f"{best:.4f}). A lower learning_rate may train further", stacklevel=4)


def _split(w: np.ndarray, rng: np.random.Generator, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows: a random split, unless that leaves a set with no weight."""
    n = len(w)
    perm = rng.permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    val, tr = perm[:n_val], perm[n_val:]
    # Make sure both sets carry weight: the split is random, but a set of
    # only zero-weight rows would give an undefined loss.
    if not w[val].sum() > 0 or not w[tr].sum() > 0:
        order = np.argsort(-w, kind="stable")
        val = order[1::5]
        tr = np.setdiff1d(np.arange(n), val)
    return tr, val


def _epoch(flow, optimizer, yt: torch.Tensor, wt: torch.Tensor, order: torch.Tensor,
           batch_size: int) -> tuple[float, float | None]:
    """One pass over the training rows in ``order``: ``(summed loss, None)``, or ``(.., loss)`` at a non-finite one."""
    total = 0.0
    for start_row in range(0, len(order), batch_size):
        idx = order[start_row : start_row + batch_size]
        wb = wt[idx]
        if not wb.sum() > 0:
            continue
        loss = _weighted_nll(flow, yt[idx], wb)
        if not torch.isfinite(loss):  # a step on it would make the parameters NaN
            return total, float(loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total, None


def _train(flow, y, w, *, rng, max_epochs, learning_rate, batch_size, val_fraction, patience, device,
           progress, desc, lr_decay, refresh=None) -> TrainingRecord:
    record = TrainingRecord()
    start = time.perf_counter()
    tr, val = _split(w, rng, val_fraction)
    record.val_rows = np.sort(val)
    dtype = torch.float32
    yt = torch.as_tensor(y[tr], dtype=dtype, device=device)
    wt = torch.as_tensor(w[tr] / w[tr].mean(), dtype=dtype, device=device)
    yv = torch.as_tensor(y[val], dtype=dtype, device=device)
    wv = torch.as_tensor(w[val] / w[val].mean(), dtype=dtype, device=device)
    flow.to(device)
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate, foreach=True)
    scheduler = None
    if lr_decay:
        # Halve the step once the held-out loss stalls for a quarter of the
        # patience: large early steps for speed, small late ones to settle.
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, patience // 4))
    # Epoch 0 is the untrained flow: if no epoch beats it on held-out data,
    # it is what we keep.
    flow.eval()
    with torch.no_grad():
        initial = float(_weighted_nll(flow, yv, wv))
    record.train_loss.append(float("nan"))
    record.val_loss.append(initial)
    best = initial if np.isfinite(initial) else np.inf
    best_state = copy.deepcopy(flow.state_dict()) if np.isfinite(initial) else None
    record.best_epoch = 0
    n_tr = len(tr)
    bar = tqdm(total=max_epochs, desc=desc, disable=not progress, leave=False)
    for epoch in range(1, max_epochs + 1):
        flow.train()
        if refresh is not None:
            yt = torch.as_tensor(refresh(tr, rng), dtype=dtype, device=device)
        order = torch.as_tensor(rng.permutation(n_tr), device=device)
        total, bad_loss = _epoch(flow, optimizer, yt, wt, order, batch_size)
        if bad_loss is not None:
            bar.close()
            _diverged(desc, epoch, bad_loss, "training", learning_rate, record, best)
            record.stopped_early = True
            break
        flow.eval()
        with torch.no_grad():
            val_loss = float(_weighted_nll(flow, yv, wv))
        if not np.isfinite(val_loss) and np.isfinite(best):
            bar.close()
            _diverged(desc, epoch, val_loss, "held-out", learning_rate, record, best)
            record.stopped_early = True
            break
        if scheduler is not None and np.isfinite(val_loss):
            scheduler.step(val_loss)
        record.train_loss.append(total / n_tr)
        record.val_loss.append(val_loss)
        if val_loss < best:
            best = val_loss
            record.best_epoch = epoch
            best_state = copy.deepcopy(flow.state_dict())
        elif epoch - record.best_epoch >= patience:
            record.stopped_early = True
            break
        bar.update()
        if progress:
            bar.set_postfix(val=f"{val_loss:.4f}", best=f"{best:.4f}")
    bar.close()
    if best_state is None:
        raise RuntimeError(f"{desc}: the held-out loss was never finite; the flow diverged")
    flow.load_state_dict(best_state)
    flow.eval()
    flow.to("cpu")
    record.fit_time = time.perf_counter() - start
    return record
