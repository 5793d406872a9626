"""Ray's token file: generated once with 256 random bits, mode 0600, kept across calls; refused when others can read
it; RAY_AUTH_MODE is always `token`."""
import os

import pytest

from scoring import ray_runtime as ray_auth


def test_a_token_is_generated_private_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(ray_auth.TOKEN_PATH, raising=False)
    path = tmp_path / "ray" / "auth_token"
    env = ray_auth.token_environment(path)
    assert env == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}
    assert path.stat().st_mode & 0o777 == 0o600
    token = path.read_text()
    assert len(token) == 64 and int(token, 16)
    assert ray_auth.token_environment(path) == env and path.read_text() == token
    assert ray_auth.authorization_header(env) == {"Authorization": f"Bearer {token}"}


def test_the_callers_token_path_wins(tmp_path, monkeypatch):
    theirs = tmp_path / "theirs"
    monkeypatch.setenv(ray_auth.TOKEN_PATH, str(theirs))
    assert ray_auth.token_environment(tmp_path / "ours")["RAY_AUTH_TOKEN_PATH"] == str(theirs)
    assert theirs.exists() and not (tmp_path / "ours").exists()


def test_a_token_others_can_read_is_refused(tmp_path):
    path = tmp_path / "auth_token"
    path.write_text("x" * 64)
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        ray_auth.ensure_token(path)
