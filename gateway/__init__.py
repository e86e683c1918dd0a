"""The gateway: reads y-websocket frames and REST calls; appends events to the log.

Owns the live Yjs documents of the letters it hosts, their connections and presence; follows
the log for events appended by other gateway instances. Reads Redis and PostgreSQL, never writes
their projections.

Layout, left to right: `api/` (FastAPI app, WebSocket endpoint, REST, uvicorn server) ->
`service` (one instance: access checks, admission, drain) -> `inbound`/`preparse`/`wire/`
(bounded decoding of every client frame) -> `live/` (rooms, connections, appends, loads, the
tail of other instances) -> `outgoing`/`transport` (messages and frames back to clients);
`collab/` holds comments, locks and notifications.
"""
