"""Settings that contradict each other are refused at start, naming both."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import Settings


def test_an_update_budget_smaller_than_a_message_is_refused(tmp_path: Path) -> None:
    refused = r"update_bytes_burst \(\d+\) must be at least max_message_bytes"
    with pytest.raises(ValidationError, match=refused):
        Settings(data_dir=tmp_path, max_message_bytes=4 << 20, update_bytes_burst=2 << 20)
    ok = Settings(data_dir=tmp_path, max_message_bytes=4 << 20, update_bytes_burst=4 << 20)
    assert ok.update_bytes_burst == ok.max_message_bytes
