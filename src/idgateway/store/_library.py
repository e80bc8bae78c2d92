"""The function library: every atomic step of the gateway, loaded once as a Valkey/Redis
function library (``FUNCTION LOAD``) and called with ``FCALL``.

The library is assembled from ``lua/``: the shared files (``_prelude``, ``_overlay``,
``_records``, ``_sessions``, ``_identify``) define helpers once per load, not per call; each
other file defines one function. Functions are persisted and replicated by the server itself,
so a replica promoted by a failover already has them. The library and function names carry a hash
of the code (``idgw_upsert_<hash>``): gateways of two versions can share one server during an
upgrade without calling each other's code.

One calling convention (``lua/_prelude.lua``): ``FCALL <name> 1 <tenant prefix> <JSON>``; the
request and reply of each function are the Structs of :mod:`idgateway.store._wire`.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from redis.exceptions import ResponseError

from idgateway.errors import Unavailable
from idgateway.store._connection import ReplicaTimeout, call_and_wait
from idgateway.store._wire import DeliveryOutcome, IngestOutcome

if TYPE_CHECKING:
    from idgateway.store._connection import Client

_LUA = files("idgateway.store") / "lua"
_SHARED = ("_prelude", "_overlay", "_records", "_sessions", "_identify")
# Function name -> read only (callable on a replica, never writes).
FUNCTIONS: dict[str, bool] = {
    "upsert": False,
    "calls": False,
    "find": True,
    "erase": False,
    "merge": False,
    "limit": False,
    "profile_read": True,
    "deliver_schedule": False,
    "deliver_claim": False,
    "deliver_complete": False,
    "deliver_replay": False,
    "deliver_trim": False,
    "import_batch": False,
    "scan_records": True,
    "field_reset": False,
    "ingest": False,
}
# The writes an API call answers 2xx for: with redis.wait_replicas they wait for a replica.
WAITED = frozenset({"upsert", "calls", "erase", "merge", "ingest"})
R = TypeVar("R")
_encode = msgspec.json.Encoder().encode


def _outcome_table() -> str:
    """The delivery and ingestion outcomes as Lua sees them: tables generated from the Python
    enums."""
    members = ", ".join(f"{o.name} = '{o.value}'" for o in DeliveryOutcome)
    ingest = ", ".join(f"{o.name} = '{o.value}'" for o in IngestOutcome)
    return f"local OUTCOME = {{{members}}}\nlocal INGEST = {{{ingest}}}\n"


@cache
def library() -> tuple[str, dict[str, str]]:
    """The library's code and the versioned name of each function."""
    parts = [_outcome_table()]
    parts += [(_LUA / f"{name}.lua").read_text() for name in _SHARED]
    parts += [(_LUA / f"{name}.lua").read_text() for name in FUNCTIONS]
    body = "\n".join(parts)
    version = hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()[:12]
    names = {name: f"idgw_{name}_{version}" for name in FUNCTIONS}
    registrations = []
    for name, read_only in FUNCTIONS.items():
        flags = "{'no-writes'}" if read_only else "{}"
        registrations.append(
            f"redis.register_function{{function_name='{names[name]}', "
            f"callback=fn_{name}, flags={flags}}}"
        )
    code = f"#!lua name=idgw_{version}\n{body}\n" + "\n".join(registrations) + "\n"
    return code, names


class Library:
    """Calls into the function library of one client; loads it when the server lacks it."""

    def __init__(self, client: Client, *, wait_replicas: int = 0) -> None:
        self.client = client
        self.wait_replicas = wait_replicas  # redis.wait_replicas: WAIT after the WAITED ones
        self.code, self.names = library()

    async def load(self) -> None:
        """``FUNCTION LOAD REPLACE`` (on every primary of a cluster). Idempotent."""
        await self.client.function_load(self.code, replace=True)

    async def call(self, name: str, prefix: str, request: msgspec.Struct, decoder: Any) -> Any:
        """Run function ``name`` for the tenant of ``prefix``; the decoded reply.

        ``decoder`` is the ``msgspec.json.Decoder`` of the function's reply type. A server
        that lost the library (flushed, or a new node) gets it again, once per call.
        """
        payload = _encode(request)
        function = self.names[name]
        try:
            raw = await self._fcall(name, function, prefix, payload)
        except ResponseError as exc:
            if "function not found" not in str(exc).lower():
                raise
            await self.load()
            raw = await self._fcall(name, function, prefix, payload)
        return decoder.decode(raw)

    async def _fcall(self, name: str, function: str, prefix: str, payload: bytes) -> Any:
        if not (self.wait_replicas and name in WAITED):
            return await self.client.fcall(function, 1, prefix, payload)
        try:
            return await call_and_wait(
                self.client,
                ["FCALL", function, 1, prefix, payload],
                prefix,
                replicas=self.wait_replicas,
            )
        except ReplicaTimeout as exc:
            raise Unavailable(
                "the change is stored on the primary but no replica confirmed it in time; "
                "sending the same call again is safe"
            ) from exc
