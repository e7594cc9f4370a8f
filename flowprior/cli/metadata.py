"""What chain files say beside their samples: which parameters were sampled, and their prior ranges.

GetDist writes ``<root>.paramnames`` (a derived parameter's name ends in
``*``) and ``<root>.ranges`` (``name lo hi``, ``N`` for an open side).
cobaya writes ``<root>.updated.yaml``, whose ``params`` give each sampled
parameter a ``prior`` (``min``/``max``, or a scipy ``dist`` with ``loc`` and
``scale``); the rest of its columns (``minuslogprior``, ``chi2__...``,
derived parameters) are not parameters to train on.  Other formats (PolyChord,
MultiNest, UltraNest, CSV) say nothing here and every column stays a candidate.

Example
-------
>>> info = chain_info("chains/lcdm")          # doctest: +SKIP
>>> info.params(["a", "b", "chi2"])           # doctest: +SKIP
['a', 'b']
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field


@dataclass
class ChainInfo:
    """The sampled parameters of a chain (None where its files do not say) and their prior ranges.

    ``ranges`` maps a name to ``(lo, hi)`` with None for an open side; ``source`` names the file read.
    """

    sampled: list[str] | None = None
    derived: list[str] = field(default_factory=list)
    ranges: dict = field(default_factory=dict)
    source: str | None = None

    def params(self, available: list[str], derived: bool = False) -> list[str]:
        """The columns to train on by default: the sampled ones (and the derived ones if asked), in file order."""
        if self.sampled is None:
            return list(available)
        keep = set(self.sampled) | (set(self.derived) if derived else set())
        return [name for name in available if name in keep]

    def bounds(self, params: list[str]) -> dict | None:
        """``{name: (lo, hi)}`` for the parameters with a known range, or None when none has one."""
        table = {name: self.ranges[name] for name in params if name in self.ranges}
        return table or None


def chain_info(root: str) -> ChainInfo:
    """Read cobaya's ``updated.yaml`` or GetDist's ``paramnames``/``ranges`` beside a chain root, if there."""
    for reader in (_cobaya, _getdist):
        info = reader(str(root))
        if info is not None:
            return info
    return ChainInfo()


def _getdist(root: str) -> ChainInfo | None:
    path = root + ".paramnames"
    if not os.path.isfile(path):
        return None
    sampled, derived = [], []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                name = line.split(maxsplit=1)[0]
                (derived if name.endswith("*") else sampled).append(name.rstrip("*"))
    ranges = {}
    if os.path.isfile(root + ".ranges"):
        with open(root + ".ranges") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    ranges[parts[0]] = tuple(None if v.upper() == "N" else float(v) for v in parts[1:])
    return ChainInfo(sampled, derived, ranges, path)


def _cobaya(root: str) -> ChainInfo | None:
    import yaml

    path = root + ".updated.yaml"
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        params = (yaml.safe_load(f) or {}).get("params") or {}
    sampled, derived, ranges = [], [], {}
    for name, spec in params.items():
        if isinstance(spec, dict) and "prior" in spec:
            sampled.append(name)
            lo, hi = _prior_range(spec["prior"])
            if lo is not None or hi is not None:
                ranges[name] = (lo, hi)
        elif isinstance(spec, dict) and (spec.get("derived") or _is_function(spec.get("value"))):
            derived.append(name)
    return ChainInfo(sampled, derived, ranges, path)


def _is_function(value) -> bool:
    """Whether a cobaya ``value`` is a function of other parameters (a ``lambda`` string), not a fixed number."""
    return isinstance(value, str) and "lambda" in value


def _prior_range(prior) -> tuple:
    """``(lo, hi)`` of a cobaya prior: ``min``/``max``, a uniform ``loc``/``scale``, or open (None) sides."""
    if not isinstance(prior, dict):
        return None, None
    if "min" in prior or "max" in prior:
        lo, hi = prior.get("min"), prior.get("max")
    elif prior.get("dist", "uniform") == "uniform" and "loc" in prior:
        lo, hi = prior["loc"], prior["loc"] + prior.get("scale", 1.0)
    else:
        return None, None
    lo = None if lo is None or not math.isfinite(float(lo)) else float(lo)
    hi = None if hi is None or not math.isfinite(float(hi)) else float(hi)
    return lo, hi
