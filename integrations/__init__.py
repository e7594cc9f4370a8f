"""Sampler adapters, installed as ``flowprior.integrations``.

Each module that assigns ``ADAPTER`` (a :class:`~flowprior.integrations.base.SamplerAdapter`)
at its top level is a sampler: ``dynesty`` and ``polychord`` here.  Each
imports its sampler lazily, so flowprior works without them.  The other
modules are the frameworks' front doors (bilby, cobaya), which
:func:`available` finds by reading the modules' text, not by importing them.

Example
-------
>>> from flowprior.integrations import adapter, available
>>> available()
('dynesty', 'polychord')
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

_ASSIGNS_ADAPTER = re.compile(r"^ADAPTER\s*=", re.MULTILINE)


def available() -> tuple[str, ...]:
    """The names ``sampler=`` accepts: the modules of this package that assign ``ADAPTER`` at top level.

    Read from the modules' source, so that listing the samplers imports no
    framework (bilby, cobaya) nor any sampler.
    """
    found = []
    for m in pkgutil.iter_modules(__path__):
        path = Path(m.module_finder.path) / f"{m.name}.py"
        if not m.name.startswith("_") and path.is_file() and _ASSIGNS_ADAPTER.search(path.read_text()):
            found.append(m.name)
    return tuple(sorted(found))


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
