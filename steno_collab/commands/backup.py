"""`steno-collab backup --to DIR`: a consistent copy of the embedded log, made while it runs."""

import argparse
import sys
from pathlib import Path
from typing import Any

from eventlog.embedded_backup import backup
from eventlog.errors import LogError
from schemas.settings import LOG_FOLDER, Settings, data_dir_refusal


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backup", help="copy the embedded log, consistently, while the service runs"
    )
    parser.add_argument("--to", required=True, type=Path, help="a new (or empty) folder")
    parser.add_argument("--data-dir", type=Path, help="overrides STENO_DATA_DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.log_url:
        print(
            "steno-collab backup: the log is Kafka (STENO_LOG_URL); back it up with the"
            " broker's own tools (replication, MirrorMaker)",
            file=sys.stderr,
        )
        return 2
    log_dir = (args.data_dir or settings.data_dir) / LOG_FOLDER
    # The copy's folder, made by `backup`: a file there was a NotADirectoryError traceback.
    if refused := data_dir_refusal(args.to, "--to", folders=()):
        print(f"steno-collab backup: {refused}", file=sys.stderr)
        return 2
    try:
        report = backup(log_dir, args.to)
    except LogError as exc:
        print(f"steno-collab backup: {exc}", file=sys.stderr)
        return 2
    total = sum(report.records.values())
    print(f"{report.path}: {total} records, {report.bytes} bytes, in {report.seconds:.1f} s")
    for topic, count in report.records.items():
        ends = report.next_offsets[topic]
        print(f"  {topic}: {count} records; next offsets {dict(sorted(ends.items()))}")
    print("every record read back and its checksum checked")
    return 0
