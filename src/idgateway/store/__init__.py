"""Redis: the one package that knows keys, hash fields and the function library.

- :class:`Store` bundles the repositories of one Redis: :class:`RecordRepository` (contacts,
  companies, sessions), :class:`RateLimits`, :class:`ProfileCache`, :class:`DeliveryQueues`,
  :class:`Ingestion` (the Segment-compatible source's events and rejections),
  :class:`BulkRepository` (import batches, record pages, inferred field types).
- :mod:`idgateway.store._keys` is the key map; :mod:`idgateway.store._wire` declares every
  function's request and reply; ``lua/`` holds the functions.
- :class:`EmbeddedValkey` runs the embedded server (``redis.url`` empty), supervised.
- :mod:`idgateway.store._connection`: the client of ``redis.url`` (seed nodes of a cluster),
  the check of the kind of server, warm-up, WAIT; :mod:`idgateway.store._devcluster` starts a
  local cluster for tests and benchmarks.
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
from idgateway.store._connection import (
    UNAVAILABLE,
    Client,
    ReplicaTimeout,
    ServerKindMismatch,
    SyncClient,
    check_server_kind,
    connect,
    connect_sync,
    describe,
    seed_urls,
    wait_for_redis,
    warm_up,
)
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
    embedded_status,
    socket_path,
)
from idgateway.store._ingest import EventWrite, Ingestion, Rejection
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
from idgateway.store._wire import DeliveryOutcome, ImportMark, IngestOutcome

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
    "EventWrite",
    "FieldHeld",
    "FieldResetOutcome",
    "ImportCheckpoint",
    "ImportMark",
    "ImportRow",
    "IngestOutcome",
    "Ingestion",
    "Job",
    "JobResult",
    "JobState",
    "LaneStats",
    "ProfileCache",
    "RateLimit",
    "RateLimits",
    "RecordRepository",
    "RecordResult",
    "Rejection",
    "ReplicaTimeout",
    "RowOutcome",
    "ServerKindMismatch",
    "SessionRef",
    "Store",
    "SyncClient",
    "TenantKeys",
    "bucket",
    "check_server_kind",
    "company_of",
    "connect",
    "connect_sync",
    "contact_of",
    "describe",
    "embedded_status",
    "kind_field",
    "lane_stats",
    "seed_urls",
    "session_of",
    "socket_path",
    "wait_for_redis",
    "warm_up",
]
