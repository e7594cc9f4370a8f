"""Sampler adapters, installed as ``flowprior.integrations``.

Each module that defines ``ADAPTER`` (a :class:`~flowprior.integrations.base.SamplerAdapter`)
is a sampler: ``dynesty`` and ``polychord`` here.  Each imports its sampler
lazily, so flowprior works without them.

Example
-------
>>> from flowprior.integrations import adapter, available
>>> available()
('dynesty', 'polychord')
"""

from __future__ import annotations

import importlib
import pkgutil


def available() -> tuple[str, ...]:
    """The names ``sampler=`` accepts: the modules of this package that define ``ADAPTER``."""
    names = (m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return tuple(sorted(n for n in names if hasattr(importlib.import_module(f"{__name__}.{n}"), "ADAPTER")))


def adapter(name: str):
    """The adapter of the sampler called ``name``.

    Raises
    ------
    ValueError
        Naming the samplers there are.
    """
    names = available()
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"sampler: expected one of {names}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}").ADAPTER
