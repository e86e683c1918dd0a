"""The backfill meter: a rich bar on a terminal, periodic plain lines otherwise. Pure."""

import io
import itertools

from tools.progress import Meter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    meter = Meter(out=out, every_s=0.0, clock=itertools.count().__next__)
    meter.start("snapshotter", 1000)
    meter.advance_to(100)
    meter.advance_to(250)
    meter.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "snapshotter: 1,000 events to fold"
    assert (
        lines[2].startswith("snapshotter: 250/1,000 events (25%), ") and "events/s, ETA" in lines[2]
    )


def test_bar_on_a_terminal() -> None:
    out = Terminal()
    with Meter(out=out) as meter:
        meter.start("projector", 10)
        meter.advance_to(10)
    shown = out.getvalue()
    assert "projector" in shown and "10/10" in shown and "events/s" in shown


def test_the_unit_is_what_the_phase_counts() -> None:
    out = io.StringIO()
    meter = Meter(out=out, every_s=0.0, clock=itertools.count().__next__)
    meter.start("projector letters", 3, unit="letters")
    meter.advance_to(1)
    meter.advance_to(2)
    meter.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "projector letters: 3 letters to fold"
    assert lines[2].startswith("projector letters: 2/3 letters (67%), ") and "letters/s" in lines[2]
