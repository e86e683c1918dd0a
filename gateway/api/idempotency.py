"""`Idempotency-Key` on `POST /v1/letters`: a retry finds the letter its first try created.

The letter's id is derived from the firm and the key, so any instance derives the same one and
finds the letter by it as every lookup does (gateway/access.py), without a store of keys. Two
tries may both append when the first is still unconfirmed as the second looks (504, then an
immediate retry): both then log the same letter. The snapshotter keeps the first
`letter.created` and skips the other; the initial content is written under a Yjs client id
derived from the id too, so the second copy is the same items, which Yjs applies once.
"""

import hashlib
import json
import re
import uuid

from fastapi import HTTPException

from gateway.content import initial_update

HEADER = "Idempotency-Key"
# Printable ASCII, as HTTP header values are; long enough for a UUID or a backend's own ids.
KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_NAMESPACE = uuid.UUID("0b6f6a8e-5f5c-4c36-9d0e-6c1f4d8f2a61")


def letter_id_for(firm_id: str, key: str) -> str:
    """The id of the letter `key` creates in `firm_id` (a name-based UUID); 422 for a bad key."""
    if not KEY.match(key):
        raise HTTPException(422, f"{HEADER}: 1 to 128 printable ASCII characters")
    return str(uuid.uuid5(_NAMESPACE, json.dumps([firm_id, key])))


def keyed_update(letter_id: str, content: str, field: str) -> bytes:
    """gateway.content.initial_update, the same for every try: its Yjs client id is derived
    from the letter's id (a random one would make a second copy a second paragraph list)."""
    client_id = int.from_bytes(hashlib.sha256(letter_id.encode()).digest()[:4], "big") or 1
    return initial_update(content, field, client_id)
