"""Yjs state vectors compared as maps: their encoded order of clients is not canonical."""

from dataclasses import replace

from gateway.preparse import STATE_LIMITS, check_state_vector

# Stored states are trusted, but bounded as the gateway bounds a letter's state: as many
# clients as a state it loads may hold (STATE_LIMITS alone caps vectors at a client frame's).
_STORED = replace(STATE_LIMITS, max_sv_entries=STATE_LIMITS.max_clients_per_update)


def decode_state_vector(data: bytes) -> dict[int, int]:
    """client id -> clock of a Yjs v1 encoded state vector (the gateway's bounded decoder)."""
    return check_state_vector(data, _STORED)
