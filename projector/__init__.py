"""The projector: reads the `letters` and `presence` topics, writes the live state in Redis.

Owns the Redis keys `ydoc:*`, `letter:*:meta`, `presence:*`, `letter:*:connections`,
`connection:*`, `comments:*`, `recent:*` and its own `projector:*` (positions, fold state).
Consumer group `projector`; positions are stored in Redis atomically with the state.
"""
