"""The refusal type and the limits it enforces (table with reasons in docs/security.md)."""

from __future__ import annotations

from dataclasses import dataclass

# Close codes the gateway sends for a refused frame (DESIGN.md "Wire protocol").
CLOSE_MALFORMED = 4400
CLOSE_TOO_LARGE = 4413


class ProtocolError(ValueError):
    """One error type for every refusal.

    `reason` is a short stable code for metrics and the close frame (e.g. "varint_too_long");
    `close_code` is the WebSocket close code the gateway uses.
    """

    def __init__(
        self,
        reason: str,
        detail: str = "",
        close_code: int = CLOSE_MALFORMED,
        struct: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.close_code = close_code
        # (client, clock) of the struct refused, when one struct is to blame ("missing_dependency"):
        # a merge of several parts tells which part it came from (gateway/live/room.py).
        self.struct = struct


@dataclass(frozen=True)
class Limits:
    """Hard bounds on inbound data; every count is also bounded by the bytes that remain."""

    max_message_bytes: int = 1 << 20
    max_any_depth: int = 64  # lib0 Any / JSON nesting: Yrs recurses and segfaults near 26,000
    max_type_depth: int = 64  # shared types nested in shared types (Y.Map chains crash str())
    max_clients_per_update: int = 10_000
    max_structs: int = 250_000
    max_delete_ranges: int = 250_000
    # Item splits one update may cost pycrdt: over its cuts inside items, the sum of a bound on
    # the item's length plus its client's blocks (gateway/wire/splits.py): 1-8 ns each.
    max_split_cost: int = 20_000_000
    max_sv_entries: int = 100_000
    max_client_id: int = 2**53 - 1  # JS numbers are exact up to here; Yjs ids are uint32
    max_clock: int = 2**32 - 2**20  # exclusive: Yrs keeps clocks in u32
    max_awareness_entries: int = 256
    max_awareness_state_bytes: int = 4096
    max_awareness_clock: int = 2**53
    max_app_bytes: int = 64 * 1024


# Limits for parsing a letter's own stored state (trusted: written by us, possibly large).
STATE_LIMITS = Limits(
    max_message_bytes=1 << 30,
    max_clients_per_update=10**7,
    max_structs=10**9,
    max_delete_ranges=10**9,
)
