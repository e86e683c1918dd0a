"""A REST update is refused for size as the sync step 2 frame carrying it would be
(gateway/live/writes.py `_checked`): its 2 + varUint header bytes count, though the body is
checked without being copied into one."""

import httpx
from pycrdt import write_var_uint

from tests.gateway.harness import Running


async def test_the_frame_header_counts_toward_max_message_bytes(gw: Running) -> None:
    letter = await gw.create_letter()
    limit = gw.settings.max_message_bytes
    largest = limit - 2 - len(write_var_uint(limit))  # a body whose frame is exactly the limit
    headers = {"Authorization": f"Bearer {gw.token()}"}
    async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
        url = f"/v1/letters/{letter}/updates"
        for size, status in ((largest + 1, 413), (largest, 422)):  # 422: bytes, no update
            r = await http.post(url, content=b"\xff" * size, headers=headers)
            assert r.status_code == status, (size, r.text)
