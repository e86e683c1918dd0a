"""`steno-collab projector`: fold the log into the live state in Redis (consumer group).

Settings: STENO_* (log, Redis, database) and STENO_PROJECTOR_* (metrics port, batch sizes, TTL).
"""

import argparse

from projector.entry import main
from projector.settings import ProjectorSettings


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "projector", help="fold the log into the Redis live state (run any number of instances)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port (default: the setting, 9464; 0: off)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = ProjectorSettings()
    if args.metrics_port is None:
        return main(options)
    return main(options.model_copy(update={"metrics_port": args.metrics_port}), "--metrics-port")
