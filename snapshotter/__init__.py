"""Snapshotter: consumer group `snapshotter` over the letters topic.

Reads letter events from the log; writes `letters`, `letter_version` save points, the
`collaboration` audit trail and materialised comments into PostgreSQL, exactly once (rows and
consumer positions commit together). Owns the SQL migrations' runner and the read API.
"""
