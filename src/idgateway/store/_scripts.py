"""The Lua scripts, loaded once per client with ``register_script`` (EVALSHA, reloaded on
NOSCRIPT). Each is assembled from the shared library files (``lua/_*.lua``) and its own."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

_LUA = files("idgateway.store") / "lua"


# Scripts taking a JSON request get these locals first, then the record and session library.
_REQUEST_HEADER = """
local P = ARGV[1]
local REQ = cjson.decode(ARGV[2])
local NOW = REQ.now
"""
_LIBRARY = ("_common", "_records", "_sessions")


def _read(name: str) -> str:
    return (_LUA / f"{name}.lua").read_text()


def _source(name: str) -> str:
    """``_common`` + the script (delete, merge, lookup: they read their own ARGV)."""
    return _read("_common") + "\n" + _read(name)


def _request_source(name: str) -> str:
    """The request header + the whole library + the script (upsert, calls)."""
    return "\n".join([_REQUEST_HEADER, *(_read(n) for n in _LIBRARY), _read(name)])


@dataclass(frozen=True)
class Scripts:
    upsert: AsyncScript
    calls: AsyncScript
    delete: AsyncScript
    merge: AsyncScript
    lookup: AsyncScript
    deliver_schedule: AsyncScript
    deliver_claim: AsyncScript
    deliver_complete: AsyncScript
    deliver_replay: AsyncScript
    deliver_trim: AsyncScript

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        return cls(
            upsert=client.register_script(_request_source("upsert")),
            calls=client.register_script(_request_source("calls")),
            delete=client.register_script(_source("delete")),
            merge=client.register_script(_source("merge")),
            lookup=client.register_script(_source("lookup")),
            deliver_schedule=client.register_script(_read("deliver_schedule")),
            deliver_claim=client.register_script(_read("deliver_claim")),
            deliver_complete=client.register_script(_read("deliver_complete")),
            deliver_replay=client.register_script(_read("deliver_replay")),
            deliver_trim=client.register_script(_read("deliver_trim")),
        )
