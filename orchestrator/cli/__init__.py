"""The ``irm`` command: typer options -> one library call -> printing; the error tree -> exit codes.

``app`` (the typer application and consoles), ``options`` (shared options and loaders), one module per
command family, and ``entry`` (the one handler), imported lazily by ``main`` so that importing any
command module alone stays cheap and cycle-free.
"""

from __future__ import annotations


def main() -> None:
    from orchestrator.cli.entry import main as run

    run()
