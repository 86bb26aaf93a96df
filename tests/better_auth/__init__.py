"""better-auth's official client and server (Node), pinned in tests/better_auth/package.json.

`make test` installs them (npm ci into the git-ignored node_modules); without node or the
install, the tests that use them skip and say why.
"""

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def node_missing() -> str | None:
    """Why better-auth's Node packages cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed (better-auth's client and server run on Node 20)"
    if not (HERE / "node_modules" / "better-auth").is_dir():
        return "tests/better_auth/node_modules is missing (make better-auth-deps installs it)"
    return None
