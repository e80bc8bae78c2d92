"""Profile cache metrics (SPEC §5.7: profile cache hits)."""

from __future__ import annotations

from prometheus_client import Counter

PROFILE_CACHE = Counter(
    "idgw_profile_cache",
    "Profile data lookups: hit (fresh in cache), fetched, shared (another request's fetch), "
    "failed (webhook failed)",
    ["outcome"],
)
