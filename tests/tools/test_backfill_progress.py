"""What a backfill shows while it runs and when it ends: a count that does not move (the
projector stores its positions once per batch; a slow log) is shown as waiting, not
extrapolated into an ETA, and the summary gives the command's wall time, not only the
rebuild's. Pure: a clock of our own."""

import io

from tools.backfill import Summary
from tools.progress import Meter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_count_that_does_not_move_is_shown_waiting_without_an_eta() -> None:
    clock, out = Clock(), io.StringIO()
    meter = Meter(out=out, every_s=0.0, clock=clock)
    meter.start("projector", 3060, between="counted as each batch is stored")
    clock.now += 1
    assert meter.line().endswith("0 events/s, ETA unknown")  # not "ETA 0 s"
    clock.now += 4
    meter.advance_to(184)
    clock.now += 1
    meter.advance_to(368)
    assert meter.line().endswith("184 events/s, ETA 15 s")  # moving: a rate to go by
    clock.now += 45
    meter.advance_to(368)
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("projector: 368/3,060 events (12%), no more for 45 s")
    assert "(counted as each batch is stored)" in line and "ETA" not in line
    clock.now += 1
    meter.advance_to(3060)  # the batch stored: the count moves again
    assert "no more" not in meter.line()


def test_no_eta_from_the_start_up_before_the_count_first_moved() -> None:
    """Workers start (imports, connections) and fold a first batch before anything is
    counted: a rate since the start made the first ETA of a 6 s rebuild 708 s."""
    clock, out = Clock(), io.StringIO()
    meter = Meter(out=out, every_s=0.0, clock=clock)
    meter.start("projector", 5985)
    clock.now += 5.0  # start-up
    meter.advance_to(43)
    assert out.getvalue().splitlines()[-1] == (
        "projector: 43/5,985 events (1%), rate not measured yet, ETA unknown"
    )
    clock.now += 1.0
    meter.advance_to(1043)
    assert out.getvalue().splitlines()[-1] == (
        "projector: 1,043/5,985 events (17%), 1,000 events/s, ETA 5 s"
    )
    assert meter.rate == 1000.0


def test_the_summary_says_the_wall_time_of_the_whole_command() -> None:
    clock = Clock()
    summary = Summary(started=clock.now - 3.0, clock=clock)  # the command began 3 s earlier
    summary.add("projector", 3060, "events", 29.7, " (after a reset)")
    clock.now += 29.7 + 21.3  # the rebuild, then closing the log and the stores
    first, total = summary.lines
    assert first.startswith("projector: 3,060 events in 29.7 s")
    assert total.startswith("in all: 54.0 s wall time (24.3 s of it outside the rebuilds")


def test_no_wall_time_line_when_it_adds_nothing() -> None:
    clock = Clock()
    summary = Summary(started=clock.now, clock=clock)
    summary.add("snapshotter", 10, "events", 2.0)
    clock.now += 2.5
    assert summary.lines == ["snapshotter: 10 events in 2.0 s, 5 events/s"]
