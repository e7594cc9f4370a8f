"""Sampler adapters (dynesty, PolyChord), installed as ``flowprior.integrations``.

Each adapter imports its sampler lazily, so flowprior works without them.
"""
