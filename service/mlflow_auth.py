"""The MLflow UI behind a login (issue 21, Q4/Q5): MLflow's basic-auth app, two accounts.

The MLflow UI that ``hprobust serve`` (and ``hprobust ui``) runs used to answer anyone who
reached its port, and write for them: any user of the machine could delete a running study's
experiment (its driver then fails), set its status tag, or read every spec, metric and
``trials.csv`` while the API kept reads behind its token. Now it is ``mlflow server
--app-name basic-auth`` (MLflow's own app; ``docs/security.md`` says why this and not a
read-only proxy) with two accounts:

- the **writer** (``hprobust``, MLflow admin): held by the service, never printed. On the
  embedded stack nothing writes through the UI at all (the API and the study drivers write
  the SQLite store directly); the service uses the account to manage the reader.
- the **reader** (``reader`` unless ``HPROBUST_MLFLOW_READER_USERNAME`` says otherwise):
  ``READ`` on everything (the app's ``default_permission``), printed when the UI starts, for
  the lab's people. A browser asks for it once.

Without either, every request but ``/health`` and the static files is answered 401; the reader
is answered 403 on every change. So when the API protects its reads
(``HPROBUST_PROTECT_READS``), the UI gives nothing to someone without an account either.
MLflow lets any signed-in user create experiments of their own (they can change only those):
a study the reader fakes that way is unsigned and never runs
(:mod:`study.records.signing`).

Both passwords are random, generated once into ``<data_dir>/mlflow-accounts.json`` (mode 0600,
like the signing secret), with the app's configuration (``mlflow-auth.ini``) and its user
store (``mlflow-auth.db``) beside it. MLflow creates the admin from the configuration only
when its user store is empty, so the accounts file and the user store go together: with no
accounts file, a user store left behind is started again.

docker-compose.yml runs the same app on its MLflow server (accounts from ``.env``); there the
API and the study drivers write through it with the writer account
(``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, which MLflow's client sends), and
the API creates (or updates) the reader at start (:func:`ensure_reader`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from study.errors import HprobustError

ACCOUNTS_FILE = "mlflow-accounts.json"
AUTH_CONFIG = "mlflow-auth.ini"
AUTH_DB = "mlflow-auth.db"
WRITER = "hprobust"
#: What ``mlflow server`` is given to run the basic-auth app.
APP_ARGS = ("--app-name", "basic-auth")
#: How long the app trusts a password it has checked (MLflow's ``auth_cache_ttl_seconds``;
#: its default, 0, checks every request's password: a scrypt hash, ~94 ms of the server's CPU
#: per request here, which the study drivers' writes through it paid one by one). A password
#: changed through the app's API is checked again at once; one changed behind its back after
#: this long at most.
AUTH_CACHE_TTL_S = 60
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MlflowAuthError(HprobustError, RuntimeError):
    """The MLflow UI's accounts could not be set up."""


@dataclass(frozen=True)
class Accounts:
    """The UI's two accounts, and the key MLflow's app signs its forms with."""

    writer: str
    writer_password: str
    reader: str
    reader_password: str
    flask_secret: str

    def login(self) -> str:
        """What the banner prints: how to sign in as the reader."""
        return f"sign in as {self.reader} / {self.reader_password} (read-only)"


def _password() -> str:
    return secrets.token_urlsafe(18)


def load_or_create_accounts(
    data_dir: Path | str, *, reader: str = "reader", reader_password: str | None = None
) -> Accounts:
    """The accounts of ``data_dir`` (created once, mode 0600). ``reader``/``reader_password``
    (the settings) replace the stored reader when given."""
    path = Path(data_dir) / ACCOUNTS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            stored = {}
    if not stored.get("writer_password"):
        # a user store without its accounts file holds an admin password nobody knows
        (Path(data_dir) / AUTH_DB).unlink(missing_ok=True)
        stored = {}
    accounts = Accounts(
        writer=WRITER,
        writer_password=stored.get("writer_password") or _password(),
        reader=reader,
        reader_password=reader_password or stored.get("reader_password") or _password(),
        flask_secret=stored.get("flask_secret") or secrets.token_urlsafe(32),
    )
    if stored != asdict(accounts):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(accounts), out, indent=2)
        tmp.replace(path)
    return accounts


def server_env(data_dir: Path | str, accounts: Accounts) -> dict[str, str]:
    """The environment ``mlflow server --app-name basic-auth`` needs: its configuration
    (written here, mode 0600: default permission READ, the user store in ``data_dir``), the
    admin (the writer) it creates on its first start, and the key its forms are signed with."""
    data_dir = Path(data_dir).resolve()
    config = data_dir / AUTH_CONFIG
    text = (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{data_dir / AUTH_DB}\n"
        f"admin_username = {accounts.writer}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n"
    )
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_USERNAME": accounts.writer,
        "MLFLOW_AUTH_ADMIN_PASSWORD": accounts.writer_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": accounts.flask_secret,
    }


def _request(
    url: str, method: str, user: str, password: str, body: dict | None = None
) -> tuple[int, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Basic {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _DIRECT.open(request, timeout=15) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def ensure_reader(
    url: str,
    *,
    writer: str,
    writer_password: str,
    reader: str,
    reader_password: str,
    timeout_s: float = 60.0,
) -> None:
    """Make ``reader`` an MLflow user with ``reader_password`` (created, or its password set),
    as the writer (an MLflow admin). Raises MlflowAuthError saying what MLflow answered."""
    base = url.rstrip("/") + "/api/2.0/mlflow/users"
    deadline = time.monotonic() + timeout_s
    while True:  # a server just started (or restarted) may not answer at once
        try:
            status, text = _request(f"{base}/get?username={reader}", "GET", writer, writer_password)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise MlflowAuthError(f"the MLflow server at {url} did not answer: {exc}") from exc
            time.sleep(0.5)
    if status == 200:
        status, text = _request(
            f"{base}/update-password",
            "PATCH",
            writer,
            writer_password,
            {"username": reader, "password": reader_password},
        )
    elif status == 404:
        status, text = _request(
            f"{base}/create",
            "POST",
            writer,
            writer_password,
            {"username": reader, "password": reader_password},
        )
    if status != 200:
        raise MlflowAuthError(
            f"could not set up the MLflow account {reader!r} at {url} as {writer!r}: HTTP "
            f"{status}: {text[:300]}"
        )


def requires_login(url: str) -> bool:
    """Whether the MLflow server at ``url`` refuses an anonymous read (401): an MLflow UI
    left by an earlier version, which did not, is not adopted."""
    request = urllib.request.Request(
        url.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    )
    try:
        with _DIRECT.open(request, timeout=10):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
