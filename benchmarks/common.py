"""What the benchmark scripts print the same way."""

from __future__ import annotations


def calls_text(res) -> str:
    """Likelihood calls of a run: the total of a plain run; low+check+high of an enhanced one.

    An enhanced run whose low stage grew (see ``flowprior.lowcheck``) also
    shows its live points per level, e.g. ``25>100``.
    """
    if "high" not in res.ncall:
        return str(res.ncall["total"])
    text = f"{res.ncall['low']}+{res.ncall['check']}+{res.ncall['high']}"
    levels = getattr(res, "low_checks", [])
    if len(levels) > 1:
        text += " (" + ">".join(str(lv.nlive_low) for lv in levels) + ")"
    return text
