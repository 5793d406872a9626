"""Ray's token authentication, always on: every Ray process this project starts needs the token to be talked to.

Ray 2.59+ turns token authentication on by default for a local `ray.init()`; `ray start` (the two-node cluster)
needs a token prepared beforehand. This project never relies on defaults here: it sets `RAY_AUTH_MODE=token` and
points `RAY_AUTH_TOKEN_PATH` at a token file of its own, generated once with 256 random bits and readable by its
owner only (0600), in `.run/` (ignored by git) or wherever the caller says (tests use a temporary folder).
Without the token, Ray's control plane refuses: the dashboard agent's job routes answer 401, the GCS and raylet
gRPC services reject the call.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path(__file__).resolve().parents[1] / ".run" / "ray_auth_token"


def ensure_token(path: Path) -> Path:
    """The token file at `path`, generated if absent; a file others can read is refused (fix: chmod 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"Ray's token file {path} is readable by others (mode {mode:o}): chmod 600 {path}")
    return path


def token_environment(path: Path | None = None) -> dict[str, str]:
    """The variables that make a Ray process require (and present) the token: RAY_AUTH_MODE=token and the file.

    An explicit RAY_AUTH_TOKEN_PATH of the caller's environment wins over `path`."""
    chosen = Path(os.environ.get(TOKEN_PATH) or path or DEFAULT_TOKEN_FILE)
    return {AUTH_MODE: "token", TOKEN_PATH: str(ensure_token(chosen))}


def authorization_header(environment: dict[str, str]) -> dict[str, str]:
    """The HTTP header Ray's dashboard and its agents accept, for the token of `environment`."""
    return {"Authorization": f"Bearer {Path(environment[TOKEN_PATH]).read_text().strip()}"}
