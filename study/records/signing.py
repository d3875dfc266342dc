"""Signed study records (docs/security.md, docs/design.md#reliability-rules): only studies the
API created run, and only the service changes their status.

The API signs each study it records: ``hprobust.signature`` (an experiment tag) is
``v2:`` + HMAC-SHA256, with the server's secret, of the version, the study id and the spec in
canonical JSON (sorted keys, no spaces). The scheduler submits only studies whose signature
holds, and the study driver checks it again before it runs anything; a record written straight
into MLflow (no signature) or changed afterwards (its id, its spec tag or its ``spec.yaml``) is
refused and never runs. ``v1:`` signatures (id and spec only) are those of studies recorded
before statuses were sealed; they still hold.

Every status a study takes is sealed too (:func:`seal`, the experiment tag
``hprobust.status_seal``): ``s1:<status>:<generation>:<previous>:<unix seconds>:<hex>``, the
HMAC of the study id, the status, its generation (1 at creation, one more at every
transition), the status before it and when it was written. The scheduler and the driver act on
the sealed status only, and never on one older than the newest generation they have seen; a
``hprobust.status`` tag that says something else was written by someone else: it is ignored and
reported (:mod:`study.records.store`). A ``v2`` record promises a seal: without one (deleted)
its status is not trusted at all. Anyone who can write to MLflow can still change a record;
they cannot make the service run one it did not create, nor move one to another status.

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
from dataclasses import dataclass
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
#: The version of the signatures this code writes (``v2``: the record's statuses are sealed) and
#: every version it checks (``v1``: a record from before status seals; id and spec only).
VERSION = "v2"
LEGACY_VERSION = "v1"
VERSIONS = (LEGACY_VERSION, VERSION)
#: The version of status seals, and how long after a transition the status tag may still show
#: the status before it (the seal and the tag are two writes; a reader may come in between).
SEAL_VERSION = "s1"
SEAL_GRACE_S = 30.0
#: What an unsigned or altered record is marked with (its ``error``) when refused.
REFUSED = "signature does not hold: not created by this service"


class SignatureError(HprobustError):
    """A study record's signature does not hold (unsigned, altered or another secret's)."""


def canonical_spec(spec: Mapping[str, Any]) -> str:
    """The spec as signed: JSON with sorted keys and no spaces (non-finite numbers refused)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sign(secret: bytes, study_id: str, spec: Mapping[str, Any], *, version: str = VERSION) -> str:
    """``v2:<hex>``: HMAC-SHA256 of ``v2\\n<study_id>\\n<canonical spec>`` with ``secret``
    (``version="v1"``: of ``<study_id>\\n<canonical spec>``, as records before status seals
    were signed)."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, got {version!r}")
    body = f"{study_id}\n{canonical_spec(spec)}"
    message = (body if version == LEGACY_VERSION else f"{version}\n{body}").encode()
    return f"{version}:{hmac.new(secret, message, hashlib.sha256).hexdigest()}"


def signature_version(signature: str | None) -> str | None:
    """The version a signature claims (``v1``, ``v2``), or None for none or an unknown one."""
    if not signature:
        return None
    version = signature.split(":", 1)[0]
    return version if version in VERSIONS else None


def holds(
    secret: bytes, study_id: str, specs: list[Mapping[str, Any]], signature: str | None
) -> bool:
    """Whether ``signature`` signs ``study_id`` with every one of ``specs`` (the spec as each
    place holds it: the tag and ``spec.yaml``), in the version it claims; False for no
    signature, an unknown version or no spec."""
    version = signature_version(signature)
    if version is None or not specs:
        return False
    for spec in specs:
        try:
            expected = sign(secret, study_id, spec, version=version)
        except (TypeError, ValueError):  # not JSON: not what was signed
            return False
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return False
    return True


# ---- status seals -----------------------------------------------------------------------


class StatusSealError(SignatureError):
    """A study's status is not sealed by this service (tampered, replayed or missing)."""


@dataclass(frozen=True)
class Seal:
    """A sealed status: what the service wrote, checked against its MAC."""

    status: str
    generation: int
    previous: str | None  # the status before this one (None at creation)
    at: int  # when it was written (Unix seconds)


def _seal_mac(secret: bytes, study_id: str, seal: Seal) -> str:
    message = (
        f"{SEAL_VERSION}\n{study_id}\n{seal.status}\n{seal.generation}\n"
        f"{seal.previous or '-'}\n{seal.at}"
    )
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def seal(secret: bytes, study_id: str, seal: Seal) -> str:
    """The ``hprobust.status_seal`` tag of ``seal``:
    ``s1:<status>:<generation>:<previous or ->:<at>:<hex>`` (the status first, so a store can
    search the seals of one status with ``LIKE 's1:<status>:%'``)."""
    if ":" in seal.status or ":" in (seal.previous or "") or seal.generation < 1:
        raise ValueError(f"a seal needs a status word and a generation >= 1, got {seal!r}")
    previous = seal.previous or "-"
    mac = _seal_mac(secret, study_id, seal)
    return f"{SEAL_VERSION}:{seal.status}:{seal.generation}:{previous}:{seal.at}:{mac}"


def seal_prefix(status: str) -> str:
    """How the seal tag of a study sealed ``status`` begins (for a store's ``LIKE`` search)."""
    return f"{SEAL_VERSION}:{status}:"


def open_seal(secret: bytes, study_id: str, text: str | None) -> Seal | None:
    """The seal in ``text`` if its MAC holds for ``study_id`` (constant-time compare); None
    for no seal, a malformed one, another study's or another secret's."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 6 or parts[0] != SEAL_VERSION:
        return None
    _, status, generation, previous, at, mac = parts
    try:
        found = Seal(status, int(generation), None if previous == "-" else previous, int(at))
    except ValueError:
        return None
    if found.generation < 1:
        return None
    if not hmac.compare_digest(_seal_mac(secret, study_id, found).encode(), mac.encode()):
        return None
    return found


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
