"""The projector's /metrics port: silent connections end; scrapes answer."""

import socket
import urllib.request

from projector.metrics import Metrics


def test_a_silent_connection_is_closed_and_scrapes_still_answer() -> None:
    metrics = Metrics()
    port = metrics.serve("127.0.0.1", 0, idle_timeout_s=0.2)
    try:
        with socket.create_connection(("127.0.0.1", port)) as silent:
            silent.settimeout(10)  # before: its handler thread waited for a request for good
            assert silent.recv(100) == b""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as scrape:
            assert b"projector_events_folded" in scrape.read()
    finally:
        metrics.close()
