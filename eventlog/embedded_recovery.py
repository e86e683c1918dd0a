"""Inspects the WAL a crashed writer left behind, before SQLite silently drops its damaged tail.

SQLite's recovery keeps WAL frames up to the last commit frame whose checksum chain holds and
ignores the rest: the cut is clean, but silent. This module walks the same chain (the format is
documented at sqlite.org/fileformat2.html#walformat) so a torn or damaged tail is reported with
the file and byte position before SQLite cuts it.
"""

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

WAL_HEADER = 32
FRAME_HEADER = 24
_MAGIC = (0x377F0682, 0x377F0683)  # checksums little-endian / big-endian
_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class WalReport:
    path: Path
    size: int
    committed_end: int  # byte after the last intact commit frame: everything past it is cut
    damage: str | None  # torn or failed frame, with its byte position; None if only uncommitted

    @property
    def cut_bytes(self) -> int:
        return self.size - self.committed_end


def check_wal(db: Path) -> WalReport | None:
    """Scan `<db>-wal` if a previous writer left one; log what SQLite's recovery will cut."""
    wal = db.with_name(db.name + "-wal")
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if not data:
        return None
    report = scan(wal, data)
    if report.damage is not None:
        log.warning(
            "embedded log %s: %s; the %d bytes after byte %d are cut, never read as data",
            wal,
            report.damage,
            report.cut_bytes,
            report.committed_end,
        )
    elif report.cut_bytes:
        log.info(
            "embedded log %s: uncommitted frames after byte %d dropped", wal, report.committed_end
        )
    return report


def scan(wal: Path, data: bytes) -> WalReport:
    if len(data) < WAL_HEADER:
        return WalReport(wal, len(data), 0, f"torn WAL header ({len(data)} bytes) at byte 0")
    magic, _, page_size, _, salt1, salt2, c1, c2 = struct.unpack_from(">8I", data)
    if magic not in _MAGIC:
        return WalReport(wal, len(data), 0, "bad WAL magic at byte 0")
    big = bool(magic & 1)
    sums = _checksum(data[:24], 0, 0, big)
    if sums != (c1, c2):
        return WalReport(wal, len(data), 0, "WAL header checksum mismatch at byte 24")
    return _scan_frames(wal, data, page_size, (salt1, salt2), sums, big)


def _scan_frames(
    wal: Path, data: bytes, page_size: int, salts: tuple[int, int], sums: tuple[int, int], big: bool
) -> WalReport:
    pos = committed = WAL_HEADER
    frame = FRAME_HEADER + page_size
    while pos + frame <= len(data):
        _, commit, salt1, salt2, c1, c2 = struct.unpack_from(">6I", data, pos)
        if (salt1, salt2) != salts:
            return WalReport(wal, len(data), committed, None)  # an older generation's leftovers
        sums = _checksum(data[pos : pos + 8], *sums, big)
        sums = _checksum(data[pos + FRAME_HEADER : pos + frame], *sums, big)
        if sums != (c1, c2):
            return WalReport(wal, len(data), committed, f"checksum mismatch in frame at byte {pos}")
        pos += frame
        if commit:
            committed = pos
    damage = f"torn frame at byte {pos} ({len(data) - pos} bytes)" if pos < len(data) else None
    return WalReport(wal, len(data), committed, damage)


def _checksum(buf: bytes, s0: int, s1: int, big: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big else '<'}{len(buf) // 4}I", buf)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & _MASK
        s1 = (s1 + words[i + 1] + s0) & _MASK
    return s0, s1
