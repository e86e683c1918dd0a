"""`steno-collab`: one subcommand per module in steno_collab.commands."""

import sys

try:  # pydantic and the settings: ~0.2 s before `main`, in which a Ctrl-C was a traceback
    import argparse
    import importlib
    import os
    from collections.abc import Sequence
    from pathlib import Path

    from eventlog.errors import LogConfigError
    from projector.settings import ProjectorSettings
    from schemas.settings import Settings, exit_refusing
except KeyboardInterrupt:  # the status of an interrupt (the console script's import of us)
    sys.exit(130)

# A subcommand is listed here when it works; there are no stubs.
COMMANDS: list[str] = [
    "dev", "gateway", "projector", "token", "migrate", "snapshotter",
    "replay", "history", "diff", "verify", "backfill", "backup",
]  # fmt: skip

# The commands that find the embedded log and servers in the data dir, as a running `dev`'s:
# each takes `--data-dir` (as `dev` and `backup` do), passed on as STENO_DATA_DIR.
DATA_DIR_TOOLS = ("replay", "history", "diff", "verify", "backfill", "migrate")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: only its command's module is imported when it names one (the
    gateway's FastAPI and the tools take ~1.2 s, a CLI start's most); every command's without
    `argv`, for help, or for a name none has (the error lists them)."""
    parser = argparse.ArgumentParser(
        prog="steno-collab", description="Event-sourced real-time collaboration for Steno letters."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    words = [] if argv is None else list(argv)
    for name in [words[0]] if words and words[0] in COMMANDS else COMMANDS:
        importlib.import_module(f"steno_collab.commands.{name}").add_parser(sub)
    for name, command in sub.choices.items():
        if name in DATA_DIR_TOOLS:
            command.add_argument(
                "--data-dir",
                type=Path,
                dest="tool_data_dir",
                metavar="DIR",
                help="the data dir `steno-collab dev` runs on (overrides STENO_DATA_DIR;"
                " default .steno)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    try:  # imports the command's modules (FastAPI, the gateway, rich): up to seconds
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(argv).parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C meanwhile: the status of an interrupt, no traceback
        sys.exit(130)
    if (data_dir := getattr(args, "tool_data_dir", None)) is not None:
        os.environ["STENO_DATA_DIR"] = str(data_dir)  # read by the command's Settings()
    models = (Settings, ProjectorSettings)  # a setting of either: one line each, status 2
    exit_refusing(
        f"steno-collab {args.command}", lambda: args.func(args), models, (LogConfigError,)
    )


if __name__ == "__main__":  # `python -m steno_collab.cli`, as `python -m steno_collab`
    main()
