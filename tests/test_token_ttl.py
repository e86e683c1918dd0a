"""`steno-collab token --ttl` takes only a positive number of seconds (a bad argument: status 2)."""

import jwt
import pytest

from steno_collab.cli import main


@pytest.mark.parametrize("ttl", ["0", "-5", "1.5", "soon"])
def test_a_ttl_that_is_not_positive_is_refused_in_one_line(
    ttl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "--user", "u1", "--firm", "f1", "--ttl", ttl])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"argument --ttl: {ttl!r} is not a positive number of seconds" in err


def test_a_positive_ttl_is_the_tokens_life(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "--user", "u1", "--firm", "f1", "--ttl", "60"])
    assert exited.value.code == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
