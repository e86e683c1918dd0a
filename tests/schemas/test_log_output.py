"""Log lines an operator reads: aiokafka's per-assignment INFO line is held back at INFO (it
came with every /readyz, ~50 a minute a gateway) and shown at DEBUG."""

import logging
from collections.abc import Iterator

import pytest

from schemas.log_output import CHATTY, configure_logging
from schemas.settings import Settings


@pytest.fixture
def root_restored() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers (pytest's own among them)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(CHATTY).setLevel(logging.NOTSET)


@pytest.mark.usefixtures("root_restored")
@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_aiokafkas_assignment_lines_show_at_debug_only(level: str, shown: bool) -> None:
    configure_logging(Settings(log_level=level))
    assert logging.getLogger(CHATTY).isEnabledFor(logging.INFO) is shown
    assert logging.getLogger("gateway").isEnabledFor(logging.INFO)  # ours are not held back
