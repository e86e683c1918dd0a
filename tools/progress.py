"""Progress of a backfill: a rich bar (events/s, ETA) on a terminal, periodic lines otherwise."""

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# A count that has not moved for this long is shown as waiting, with no ETA: a rate falling
# only because nothing was stored yet (the projector stores once per batch of up to 50,000
# records; a slow log) would extrapolate to a made-up time.
STALL_S = 10.0


class Meter:
    """Counts the items (`unit`: events, or letters) of one named phase; `rate` is items per
    second since the count first moved, not since the start: the start-up before it (worker
    processes importing, connecting, folding a first batch) made a first ETA ~100 times too
    long (708 s for a 6 s rebuild), so there is none until the count has moved twice.
    `between` (given to `start`) says what happens while the count does not move, for the
    lines shown then."""

    def __init__(
        self,
        out: TextIO | None = None,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stderr
        self.every_s = every_s
        self.clock = clock
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self.name, self.total, self.done, self.unit = "", 0, 0, "events"
        self.between = ""
        self.started = self._last_line = self._moved = 0.0
        self._first: tuple[float, int] | None = None  # when the count first moved, and to what

    def start(self, name: str, total: int, unit: str = "events", between: str = "") -> None:
        self.name, self.total, self.done, self.unit = name, total, 0, unit
        self.between = between
        self.started = self._last_line = self._moved = self.clock()
        self._first = None
        if self.out.isatty():
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(f"{{task.fields[rate]:>9,.0f}} {unit}/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.out),
            )
            self._bar.start()
            self._task = self._bar.add_task(name, total=total, rate=0.0)
        else:
            print(f"{name}: {total:,} {unit} to fold", file=self.out, flush=True)

    def advance_to(self, done: int) -> None:
        now = self.clock()
        if min(done, self.total) > self.done:
            self._moved = now
            if self._first is None:
                self._first = (now, min(done, self.total))
        self.done = min(done, self.total)
        if self._bar is not None and self._task is not None:
            waiting = self._waiting(now)
            label = self.name if waiting is None else f"{self.name} ({waiting})"
            self._bar.update(self._task, completed=self.done, rate=self.rate, description=label)
            return
        if now - self._last_line >= self.every_s:
            self._last_line = now
            print(self.line(), file=self.out, flush=True)

    def _waiting(self, now: float) -> str | None:
        """What the count waits for, once it has not moved for `STALL_S` (else None)."""
        still = now - self._moved
        if still < STALL_S or self.done >= self.total:
            return None
        return f"no more for {still:.0f} s" + (f" ({self.between})" if self.between else "")

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def rate(self) -> float:
        """Items per second since the count first moved; 0.0 until it has moved again."""
        if self._first is None or self.done <= self._first[1]:
            return 0.0
        at, counted = self._first
        took = self.clock() - at
        return (self.done - counted) / took if took > 0 else 0.0

    def line(self) -> str:
        share = 100.0 * self.done / self.total if self.total else 100.0
        shown = f"{self.name}: {self.done:,}/{self.total:,} {self.unit} ({share:.0f}%), "
        waiting = self._waiting(self.clock())
        if waiting is not None:
            so_far = f", {self.rate:,.0f} {self.unit}/s so far" if self.rate else ""
            return shown + waiting + so_far
        if not self.done:  # nothing counted yet: no rate to extrapolate ("ETA 0 s" misled)
            return shown + f"0 {self.unit}/s, ETA unknown"
        if not self.rate:  # counted once: all of it start-up time, no rate yet
            return shown + "rate not measured yet, ETA unknown"
        left = (self.total - self.done) / self.rate
        return shown + f"{self.rate:,.0f} {self.unit}/s, ETA {left:.0f} s"

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()
