"""Bounded pre-parser of the y-protocol wire format (public API: `gateway.preparse`).

Pure and iterative: reads y-protocol frames, Yjs v1 updates, state vectors and awareness
updates without recursion, I/O or pycrdt, refusing anything a hostile client could use to crash
or stall pycrdt (issue 9). Every refusal is a `ProtocolError`.
"""
