"""Record ids (``c_`` / ``co_`` + ULID) and RFC 3339 timestamps."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ulid import ULID

CONTACT_PREFIX = "c_"
COMPANY_PREFIX = "co_"
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


MINTED_SESSION_PREFIX = "s_"
# SPEC §4.2: a session id is a bearer capability, so a minted one carries 144 random bits.
_SESSION_BYTES = 18


def new_session_id() -> str:
    """A minted browser session id: ``s_`` + 144 random bits in base64url (24 characters)."""
    token = base64.urlsafe_b64encode(secrets.token_bytes(_SESSION_BYTES)).decode()
    return MINTED_SESSION_PREFIX + token


def is_minted_session(session_id: str) -> bool:
    """``s_`` ids are only ever created by minting (SPEC §4.2)."""
    return session_id.startswith(MINTED_SESSION_PREFIX)


def new_ulid() -> str:
    return str(ULID())


def parse_record_id(value: str, prefix: str) -> str | None:
    """The bare ULID of ``<prefix><ULID>``, or ``None`` when ``value`` is not such an id."""
    if not value.startswith(prefix):
        return None
    bare = value[len(prefix) :]
    return bare if _ULID.match(bare) else None


def format_timestamp(dt: datetime) -> str:
    """RFC 3339 UTC with ``Z``; milliseconds only when there are any."""
    dt = dt.astimezone(UTC)
    ms = dt.microsecond // 1000
    base = dt.isoformat(timespec="seconds")[:19]  # strftime("%Y") does not pad years < 1000
    return f"{base}.{ms:03d}Z" if ms else f"{base}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=8192)
def format_epoch_ms(ms: int) -> str:
    """Record timestamps; cached, as every read of a record formats the same two again."""
    return format_timestamp(_EPOCH + timedelta(milliseconds=ms))


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
