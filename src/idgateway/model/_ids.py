"""Record ids (``c_`` / ``co_`` + ULID) and RFC 3339 timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ulid import ULID

CONTACT_PREFIX = "c_"
COMPANY_PREFIX = "co_"
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


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
