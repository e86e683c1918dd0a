"""The common ending of the read-only letter tools (replay, history, diff): a bad argument or an
unreachable store exits 2, a letter the log does not hold (or not yet at a replay's cut) exits 1,
an output that cannot be written (`--out` to a missing directory, a full disk) exits 2, each with
one stderr line."""

import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from tools.replay import LetterNotFound, NotYetCreated

T = TypeVar("T")


def run_letter_tool(
    name: str,
    letter_id: str,
    errors: tuple[type[Exception], ...],
    produce: Callable[[], T],
    emit: Callable[[T], object],
) -> int:
    """Exit code of `produce()` then `emit(result)`; `errors` are the usage/source errors."""
    try:
        result = produce()
    except ValidationError:  # a ValueError too: the settings, which cli.main reports
        raise
    except errors as exc:
        print(f"steno-collab {name}: {exc}", file=sys.stderr)
        return 2
    except LetterNotFound:
        print(f"steno-collab {name}: no letter {letter_id!r} in the log", file=sys.stderr)
        return 1
    except NotYetCreated as exc:  # a replay before the letter's first record
        print(f"steno-collab {name}: {exc}", file=sys.stderr)
        return 1
    try:
        emit(result)
    except OSError as exc:
        print(f"steno-collab {name}: cannot write the output: {exc}", file=sys.stderr)
        return 2
    return 0
