"""Tools for auditors and operators: replay, history, diff, verify, backfill, and their REST API.

Reads the log, Redis and PostgreSQL; writes only through the consumers' own code (backfill runs
the projector's and snapshotter's fold and store over the log). Nothing imports tools.
"""
