"""What the benchmark scripts print the same way."""

from __future__ import annotations


def calls_text(res) -> str:
    """Likelihood calls of a run: the total of a plain run; low+check+high of an enhanced one.

    An enhanced run also shows each low-resolution level's live points and
    its flow's check score (effective-sample-size fraction relative to a
    perfect flow broadened the same way; see ``flowprior.workflows.lowcheck``), e.g.
    ``[25: 0.41 > 100: 0.99]``; the score decides against ``grow_below``.
    The last level's tail statistic follows (``flowprior.workflows.lowcheck.tail_excess``;
    at most ``TAME_TAIL`` lets dynesty's high stage bound its points early),
    e.g. ``[25: 1.13 t-0.3]``.
    """
    if "high" not in res.ncall:
        return str(res.ncall["total"])
    text = f"{res.ncall['low']}+{res.ncall['check']}+{res.ncall['high']}"
    levels = getattr(res, "low_checks", [])
    if levels:
        tail = levels[-1].tail
        text += (" [" + " > ".join(f"{lv.nlive_low}: {lv.score:.2f}" for lv in levels)
                 + (f" t{tail:+.1f}" if tail is not None else "") + "]")
    return text
