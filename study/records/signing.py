"""Signed study records (docs/design.md#reliability-rules): only studies the API created run.

The API signs each study it records: ``hprobust.signature`` (an experiment tag) is
``v1:`` + HMAC-SHA256, with the server's secret, of the study id and the spec in canonical
JSON (sorted keys, no spaces). The scheduler submits only studies whose signature holds, and
the study driver checks it again before it runs anything; a record written straight into
MLflow (no signature) or changed afterwards (its id, its spec tag or its ``spec.yaml``) is
refused and never runs. Anyone who can write to MLflow can still change a record; they cannot
make the service run one it did not create.

The secret: ``HPROBUST_SECRET`` when set (the API's settings; the Ray head's environment for
the drivers, e.g. docker-compose.yml), else 32 random bytes generated once into
``<data_dir>/secret`` (mode 0600) and reused; the API hands the drivers that file's path in
``HPROBUST_SECRET_FILE`` (never the secret itself: job arguments and runtime environments end
up in Ray's logs and job list).

Importing this module imports only the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.errors import ConfigError, HprobustError

#: Environment variables a study driver reads its secret from (the first set wins).
SECRET_ENV = "HPROBUST_SECRET"
SECRET_FILE_ENV = "HPROBUST_SECRET_FILE"
#: The generated secret's file name under the data dir.
SECRET_FILE = "secret"
#: Shortest secret accepted (characters of HPROBUST_SECRET, bytes of a secret file).
MIN_SECRET_CHARS = 32
VERSION = "v1"
#: What an unsigned or altered record is marked with (its ``error``) when refused.
REFUSED = "signature does not hold: not created by this service"


class SignatureError(HprobustError):
    """A study record's signature does not hold (unsigned, altered or another secret's)."""


def canonical_spec(spec: Mapping[str, Any]) -> str:
    """The spec as signed: JSON with sorted keys and no spaces (non-finite numbers refused)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sign(secret: bytes, study_id: str, spec: Mapping[str, Any]) -> str:
    """``v1:<hex>``: HMAC-SHA256 of ``<study_id>\\n<canonical spec>`` with ``secret``."""
    message = f"{study_id}\n{canonical_spec(spec)}".encode()
    return f"{VERSION}:{hmac.new(secret, message, hashlib.sha256).hexdigest()}"


def holds(
    secret: bytes, study_id: str, specs: list[Mapping[str, Any]], signature: str | None
) -> bool:
    """Whether ``signature`` signs ``study_id`` with every one of ``specs`` (the spec as each
    place holds it: the tag and ``spec.yaml``); False for no signature or no spec."""
    if not signature or not specs:
        return False
    for spec in specs:
        try:
            expected = sign(secret, study_id, spec)
        except (TypeError, ValueError):  # not JSON: not what was signed
            return False
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return False
    return True


def secret_from_text(text: str, *, source: str) -> bytes:
    """A secret given as text (``HPROBUST_SECRET`` or a file's content), checked."""
    value = text.strip()
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{source} must be at least {MIN_SECRET_CHARS} characters long, got "
            f'{len(value)} (generate one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))")'
        )
    return value.encode()


def load_or_create_secret(path: Path | str) -> bytes:
    """The secret in ``path``, created first (random, mode 0600) if there is none. Safe when
    several processes start at once: the file is created exclusively, and a loser reads the
    winner's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
    text = path.read_text()
    if not text.strip():  # another process is writing it right now
        import time

        for _ in range(50):
            time.sleep(0.1)
            text = path.read_text()
            if text.strip():
                break
    return secret_from_text(text, source=f"the secret file {path}")


def driver_secret(environ: Mapping[str, str] | None = None) -> bytes:
    """The secret of a study driver: the file named by ``HPROBUST_SECRET_FILE`` (the API
    passes it to the drivers it submits when its secret lives in a file), else
    ``HPROBUST_SECRET``. Raises SignatureError when neither is there (the driver then runs
    nothing)."""
    env = os.environ if environ is None else environ
    path = env.get(SECRET_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SignatureError(
                f"cannot read the signing secret {path} ({SECRET_FILE_ENV}): {exc}"
            ) from exc
        return secret_from_text(text, source=f"the secret file {path}")
    if env.get(SECRET_ENV):
        return secret_from_text(env[SECRET_ENV], source=SECRET_ENV)
    raise SignatureError(
        f"no signing secret: set {SECRET_ENV} (the same as the API's) in the environment of "
        f"the Ray head, or {SECRET_FILE_ENV}; a study driver runs only signed studies"
    )


def service_secret(explicit: str | None, data_dir: Path | str) -> bytes:
    """The secret of the API (and of ``hprobust run``): ``explicit`` (``HPROBUST_SECRET``),
    else ``<data_dir>/secret``, generated on first use."""
    if explicit:
        return secret_from_text(explicit, source=SECRET_ENV)
    return load_or_create_secret(Path(data_dir) / SECRET_FILE)
