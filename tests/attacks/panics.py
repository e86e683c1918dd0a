"""Records that crash a fold: a real Yrs panic, and an exception standing in for one."""

from tests.preparse import lib0


def panicking_update(client: int, clock: int) -> bytes:
    """A client section without structs for a client the letter knows: Yrs 0.28 panics."""
    return lib0.uint(1) + lib0.uint(0) + lib0.uint(client) + lib0.uint(clock) + b"\x00"


class Panic(BaseException):
    """Stands in for pyo3's PanicException (also a BaseException)."""
