"""Redis: the one package that knows keys, hash fields and the function library.

- :class:`Store` bundles the repositories of one Redis: :class:`RecordRepository` (contacts,
  companies, sessions), :class:`RateLimits`, :class:`ProfileCache`, :class:`DeliveryQueues`,
  :class:`BulkRepository` (import batches, record pages, inferred field types).
- :mod:`idgateway.store._keys` is the key map; :mod:`idgateway.store._wire` declares every
  function's request and reply; ``lua/`` holds the functions.
- :class:`EmbeddedValkey` runs the embedded server (``redis.url`` empty).
"""

from idgateway.store._bulk import (
    BulkRepository,
    CheckpointMoved,
    FieldHeld,
    FieldResetOutcome,
    ImportCheckpoint,
    ImportRow,
    RowOutcome,
)
from idgateway.store._codec import company_of, contact_of
from idgateway.store._connection import UNAVAILABLE, Client, SyncClient, connect, connect_sync
from idgateway.store._deliveries import (
    DeadLetter,
    DeliveryQueues,
    Job,
    JobResult,
    JobState,
    LaneStats,
    lane_stats,
)
from idgateway.store._embedded import (
    DataDirInUse,
    EmbeddedStartFailed,
    EmbeddedValkey,
    socket_path,
)
from idgateway.store._keys import BUCKETS, GLOBAL, TenantKeys, bucket
from idgateway.store._profiles import CachedProfile, ProfileCache
from idgateway.store._records import (
    CallsResult,
    RateLimit,
    RateLimits,
    RecordRepository,
    RecordResult,
    SessionRef,
    kind_field,
    session_of,
)
from idgateway.store._store import Store
from idgateway.store._wire import DeliveryOutcome, ImportMark

__all__ = [
    "BUCKETS",
    "GLOBAL",
    "UNAVAILABLE",
    "BulkRepository",
    "CachedProfile",
    "CallsResult",
    "CheckpointMoved",
    "Client",
    "DataDirInUse",
    "DeadLetter",
    "DeliveryOutcome",
    "DeliveryQueues",
    "EmbeddedStartFailed",
    "EmbeddedValkey",
    "FieldHeld",
    "FieldResetOutcome",
    "ImportCheckpoint",
    "ImportMark",
    "ImportRow",
    "Job",
    "JobResult",
    "JobState",
    "LaneStats",
    "ProfileCache",
    "RateLimit",
    "RateLimits",
    "RecordRepository",
    "RecordResult",
    "RowOutcome",
    "SessionRef",
    "Store",
    "SyncClient",
    "TenantKeys",
    "bucket",
    "company_of",
    "connect",
    "connect_sync",
    "contact_of",
    "kind_field",
    "lane_stats",
    "session_of",
    "socket_path",
]
