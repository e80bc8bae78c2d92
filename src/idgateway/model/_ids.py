"""Record ids (``c_`` / ``co_`` + ULID) and RFC 3339 timestamps."""

from __future__ import annotations

import base64
import os
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

CONTACT_PREFIX = "c_"
COMPANY_PREFIX = "co_"
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")

# ULIDs are made here rather than with python-ulid (the same format, a third of the CPU: one
# ULID per record written is on identify's hot path). Crockford base32 two characters at a time.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024)]
_last_ms: tuple[int, str] = (-1, "")  # (ms, its 10 characters); one tuple, swapped whole


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
    """A ULID: 48 bits of milliseconds since the epoch, 80 random bits (``os.urandom``)."""
    global _last_ms
    ms = time.time_ns() // 1_000_000
    last = _last_ms
    if last[0] == ms:
        head = last[1]
    else:
        p = _PAIRS
        head = (
            _CROCKFORD[ms >> 45]
            + p[(ms >> 35) & 1023]
            + p[(ms >> 25) & 1023]
            + p[(ms >> 15) & 1023]
            + p[(ms >> 5) & 1023]
            + _CROCKFORD[ms & 31]
        )
        _last_ms = (ms, head)
    n = int.from_bytes(os.urandom(10), "big")
    p = _PAIRS
    return (
        head
        + p[n >> 70]
        + p[(n >> 60) & 1023]
        + p[(n >> 50) & 1023]
        + p[(n >> 40) & 1023]
        + p[(n >> 30) & 1023]
        + p[(n >> 20) & 1023]
        + p[(n >> 10) & 1023]
        + p[n & 1023]
    )


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
def _second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole second since the epoch."""
    return format_timestamp(_EPOCH + timedelta(seconds=seconds))[:-1]


def format_epoch_ms(ms: int) -> str:
    """Record timestamps. Every record written carries a new millisecond, so the cache is kept
    per second and the milliseconds are appended: a new record costs a lookup, not a datetime."""
    seconds, millis = divmod(ms, 1000)
    base = _second(seconds)
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
