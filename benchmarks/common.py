"""What the benchmark scripts print the same way."""

from __future__ import annotations


def calls_text(res) -> str:
    """Likelihood calls of a run: the total of a plain run; low+check+high of an enhanced one.

    An enhanced run also shows each low-resolution level's live points and
    the effective-sample-size fraction of its flow's check (see
    ``flowprior.lowcheck``), e.g. ``[25: 0.31 > 100: 0.74]``.
    """
    if "high" not in res.ncall:
        return str(res.ncall["total"])
    text = f"{res.ncall['low']}+{res.ncall['check']}+{res.ncall['high']}"
    levels = getattr(res, "low_checks", [])
    if levels:
        text += " [" + " > ".join(f"{lv.nlive_low}: {lv.ess_fraction:.2f}" for lv in levels) + "]"
    return text
