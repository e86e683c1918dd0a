"""The gateway: reads y-websocket frames and REST calls; appends events to the log.

Owns the live Yjs documents of the letters it hosts, their connections and presence; follows
the log for events appended by other gateway instances. Reads Redis and PostgreSQL, never writes
their projections.
"""
