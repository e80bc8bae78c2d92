"""The Lua scripts, loaded once per client with ``register_script`` (EVALSHA, reloaded on
NOSCRIPT). Each script is ``_common.lua`` followed by its own file."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

_LUA = files("idgateway.store") / "lua"


def _source(name: str) -> str:
    return (_LUA / "_common.lua").read_text() + "\n" + (_LUA / f"{name}.lua").read_text()


@dataclass(frozen=True)
class Scripts:
    upsert: AsyncScript
    delete: AsyncScript
    merge: AsyncScript
    lookup: AsyncScript

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        return cls(
            upsert=client.register_script(_source("upsert")),
            delete=client.register_script(_source("delete")),
            merge=client.register_script(_source("merge")),
            lookup=client.register_script(_source("lookup")),
        )
