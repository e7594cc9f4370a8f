"""The ``flowprior`` command: train, check, sample and summarise flows from chains on disk."""

from flowprior.cli.main import main

__all__ = ["main"]
