"""Redis: connection, embedded Valkey, key map, Lua scripts, records.

See :mod:`idgateway.store._keys` for the key map.
"""

from idgateway.store._connection import connect
from idgateway.store._embedded import DataDirInUse, EmbeddedValkey, socket_path
from idgateway.store._keys import BUCKETS, TenantKeys, bucket
from idgateway.store._records import (
    Namespace,
    RecordOp,
    RecordResult,
    RecordStore,
    SessionMode,
    SessionRef,
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
    "Scripts",
    "SessionMode",
    "SessionRef",
    "SessionState",
    "TenantKeys",
    "bucket",
    "connect",
    "kind_field",
    "socket_path",
]
