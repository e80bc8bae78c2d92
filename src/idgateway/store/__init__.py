"""Redis: connection, embedded Valkey, key map, Lua scripts, records.

See :mod:`idgateway.store._keys` for the key map.
"""

from idgateway.store._connection import (
    ReplicaTimeout,
    ServerKindMismatch,
    check_server_kind,
    connect,
    describe,
    seed_urls,
    wait_for_redis,
    warm_up,
)
from idgateway.store._embedded import DataDirInUse, EmbeddedValkey, embedded_status, socket_path
from idgateway.store._keys import BUCKETS, TenantKeys, bucket
from idgateway.store._records import (
    Namespace,
    RecordOp,
    RecordResult,
    RecordStore,
    SessionState,
    kind_field,
)
from idgateway.store._scripts import Scripts

__all__ = [
    "BUCKETS",
    "DataDirInUse",
    "EmbeddedValkey",
    "Namespace",
    "RecordOp",
    "RecordResult",
    "RecordStore",
    "ReplicaTimeout",
    "Scripts",
    "ServerKindMismatch",
    "SessionState",
    "TenantKeys",
    "bucket",
    "check_server_kind",
    "connect",
    "describe",
    "embedded_status",
    "kind_field",
    "seed_urls",
    "socket_path",
    "wait_for_redis",
    "warm_up",
]
