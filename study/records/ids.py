"""Study ids: ``s`` + UTC timestamp + 6 random hex digits, e.g. ``s20261125-031500-a1b2c3``.

Valid as a Ray job submission id, an MLflow experiment name and a directory name.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from study.errors import ConfigError

STUDY_ID_RE = re.compile(r"^s\d{8}-\d{6}-[0-9a-f]{6}$")


def new_study_id(now: datetime | None = None) -> str:
    """A fresh study id for the time ``now`` (default: the current UTC time)."""
    now = now or datetime.now(UTC)
    return f"s{now.astimezone(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def check_study_id(study_id: str) -> str:
    """Return ``study_id`` unchanged, or raise ConfigError if it is not a valid study id."""
    if not isinstance(study_id, str) or not STUDY_ID_RE.fullmatch(study_id):
        raise ConfigError(
            f"study_id must match {STUDY_ID_RE.pattern} (e.g. s20261125-031500-a1b2c3), "
            f"got {study_id!r}"
        )
    return study_id


SUITE_ID_RE = re.compile(r"^u\d{8}-\d{6}-[0-9a-f]{6}$")


def new_suite_id(now: datetime | None = None) -> str:
    """A fresh suite id: ``u`` + UTC timestamp + 6 random hex digits
    (``u20261206-231500-a1b2c3``)."""
    return "u" + new_study_id(now)[1:]


def check_suite_id(suite_id: str) -> str:
    """Return ``suite_id`` unchanged, or raise ConfigError if it is not a valid suite id."""
    if not isinstance(suite_id, str) or not SUITE_ID_RE.fullmatch(suite_id):
        raise ConfigError(
            f"suite_id must match {SUITE_ID_RE.pattern} (e.g. u20261206-231500-a1b2c3), "
            f"got {suite_id!r}"
        )
    return suite_id


#: An ``Idempotency-Key`` (POST /studies): 1-128 of letters, digits and ``- _ . : ~ + / =``
#: (a UUID, a ULID or a base64 token fits; no quote or space, so it is safe in a tag filter).
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:~+/=-]{1,128}$")
IDEMPOTENCY_KEY_RULE = "must be 1-128 characters of letters, digits and - _ . : ~ + / ="


def check_idempotency_key(key: str) -> str:
    """Return ``key`` unchanged, or raise ConfigError if it breaks :data:`IDEMPOTENCY_KEY_RE`."""
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key):
        shown = repr(key[:40]) + ("..." if isinstance(key, str) and len(key) > 40 else "")
        raise ConfigError(f"Idempotency-Key {IDEMPOTENCY_KEY_RULE}, got {shown}")
    return key


def utc_now_iso() -> str:
    """The current UTC time in ISO 8601 with a trailing ``Z`` (second precision)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
