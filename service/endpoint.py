"""Where a running ``hprobust serve`` tells the client commands its URL.

``hprobust serve`` records ``{"url", "pid", "data_dir"}`` in ``serve.json`` under the user's
state directory (``$XDG_STATE_HOME/hprobust``, default ``~/.local/state/hprobust``) once its
API is up, and removes it when it stops. ``hprobust studies``, ``status``, ``trials``, ...
use it when neither ``--url`` nor ``HPROBUST_URL`` is given, from any folder; a record whose
process has gone (a killed serve) is ignored. No secret is written there: the token stays in
``HPROBUST_API_TOKEN``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def state_file() -> Path:
    """``$XDG_STATE_HOME/hprobust/serve.json`` (default ``~/.local/state/hprobust/serve.json``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hprobust" / "serve.json"


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches an API bound to ``host:port`` at."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def record(url: str, *, data_dir: Path) -> Path | None:
    """Record that this process serves the API at ``url`` (None if the state dir is not
    writable: the client then needs ``--url``)."""
    path = state_file()
    body = {"url": url, "pid": os.getpid(), "data_dir": str(data_dir)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".serve.{os.getpid()}.json")
        tmp.write_text(json.dumps(body))
        tmp.replace(path)
    except OSError:
        return None
    return path


def forget() -> None:
    """Remove the record if it is this process's (another serve started since keeps its)."""
    path = state_file()
    current = served(check_alive=False)
    if current is not None and current.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except PermissionError:  # alive, another user's
        return True
    except (OSError, ValueError, TypeError):
        return False
    return True


def served(*, check_alive: bool = True) -> dict[str, Any] | None:
    """The record of the running ``hprobust serve``, or None (none, unreadable, or its process
    has gone)."""
    try:
        body = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        return None
    if check_alive and not _alive(body.get("pid")):
        return None
    return body
