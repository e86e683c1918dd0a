"""The gateway's log filter hides every token a URL carries, however its parameter name is
spelled: Starlette decodes query names, so `?tok%65n=` authenticates as `?token=` does."""

import logging

import pytest

from gateway.api.server import RedactTokens


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            '"GET /v1/letters?token=SECRET HTTP/1.1" 401',
            '"GET /v1/letters?token=[redacted] HTTP/1.1" 401',
        ),
        ("/v1/letter-x?tok%65n=SECRET&letterId=x", "/v1/letter-x?tok%65n=[redacted]&letterId=x"),
        (
            "/v1/x?access_token=SECRET&TOKEN=SECRET",
            "/v1/x?access_token=[redacted]&TOKEN=[redacted]",
        ),
        ("/v1/x?letterId=letter-1&as=avery", "/v1/x?letterId=letter-1&as=avery"),
    ],
)
def test_every_spelling_of_a_token_parameter_is_redacted(line: str, shown: str) -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", (line,), None)
    RedactTokens().filter(record)
    assert record.getMessage() == shown
