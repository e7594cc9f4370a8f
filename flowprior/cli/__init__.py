"""The ``flowprior`` command: train, check, sample and summarise flows from chains on disk."""

from flowprior.cli.commands import main

__all__ = ["main"]
