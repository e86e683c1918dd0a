"""Progress of a backfill: a rich bar (events/s, ETA) on a terminal, periodic lines otherwise."""

import sys
import time
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


class Meter:
    """Counts the items (`unit`: events, or letters) of one named phase; `rate` is items per
    second since the start."""

    def __init__(self, out: TextIO | None = None, every_s: float = 5.0) -> None:
        self.out = out or sys.stderr
        self.every_s = every_s
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self.name, self.total, self.done, self.unit = "", 0, 0, "events"
        self.started = self._last_line = 0.0

    def start(self, name: str, total: int, unit: str = "events") -> None:
        self.name, self.total, self.done, self.unit = name, total, 0, unit
        self.started = self._last_line = time.monotonic()
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
        self.done = min(done, self.total)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, rate=self.rate)
            return
        now = time.monotonic()
        if now - self._last_line >= self.every_s:
            self._last_line = now
            print(self.line(), file=self.out, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        left = (self.total - self.done) / self.rate if self.rate else 0.0
        share = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.name}: {self.done:,}/{self.total:,} {self.unit} ({share:.0f}%), "
            f"{self.rate:,.0f} {self.unit}/s, ETA {left:.0f} s"
        )

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
