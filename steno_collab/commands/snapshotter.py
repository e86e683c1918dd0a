"""`steno-collab snapshotter`: versions and the audit trail into PostgreSQL (consumer group
`snapshotter` over the letters topic), until interrupted (SIGTERM or Ctrl-C: an orderly stop).
The run itself is snapshotter/entry.py's, as `python -m snapshotter`'s."""

import argparse
from typing import Any

from snapshotter.entry import UNREACHABLE, main

__all__ = ["UNREACHABLE", "add_parser", "run"]  # UNREACHABLE: `migrate` says the same


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("snapshotter", help="run the snapshotter consumer")
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port (default: the setting, 9465; 0: off)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return main(
        run_migrations=not args.no_migrate,
        metrics_port=args.metrics_port,
        metrics_setting="--metrics-port",
    )
