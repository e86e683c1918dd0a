"""Instants as every package counts them: milliseconds since the Unix epoch, within what
Python's datetime holds (the years 1-9999 UTC). One home for the gateway and the tools alike
(services may not import tools)."""

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)
FIRST_MS = (dt.datetime.min.replace(tzinfo=dt.UTC) - EPOCH) // MS  # 0001-01-01T00:00:00.000Z
LAST_MS = (dt.datetime.max.replace(tzinfo=dt.UTC) - EPOCH) // MS  # 9999-12-31T23:59:59.999Z
