"""The WebSocket app channel as tests speak it: a message framed for it, and waiting until a
client has heard one."""

import json
from typing import Any

from pycrdt import write_var_uint

from tests.gateway.harness import YClient
from tests.support import eventually


def app(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return write_var_uint(100) + write_var_uint(len(data)) + data


async def seen(client: YClient, kind: str, **match: Any) -> dict[str, Any]:
    """The first app message of type `kind` (with `match`'s fields) `client` heard, once it has."""

    def found() -> dict[str, Any] | None:
        for message in client.app:
            if message.get("type") == kind and all(message.get(k) == v for k, v in match.items()):
                return message
        return None

    return await eventually(found, timeout=5)
