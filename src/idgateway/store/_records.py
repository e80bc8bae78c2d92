"""Contacts and companies in Redis: every write is one script call (one round trip)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from idgateway.errors import IdentityConflict, NotFound, ValidationFailed
from idgateway.fields import Namespace, RecordOp, Violation
from idgateway.model import CONTACT_PREFIX, now_ms
from idgateway.store._keys import TenantKeys

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from idgateway.fields import Registry
    from idgateway.store._scripts import Scripts

_encode = msgspec.json.Encoder().encode

# Index kind → the field name a conflict report shows.
_KIND_FIELD = {
    "x": "external_id",
    "e": "email",
    "p": "phone",
    "f": "facebook",
    "t": "twitter",
    "d": "domain",
    "l": "linkedin",
}


def kind_field(kind: str) -> str:
    return kind[2:] if kind.startswith("u.") else _KIND_FIELD.get(kind, kind)


@dataclass(frozen=True)
class RecordResult:
    ulid: str
    created: bool
    changed: list[bytes]
    stored: dict[bytes, bytes]


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _raise_for(reply: list[Any], ns: Namespace) -> None:
    """Turn a script's failure reply into the gateway error it stands for."""
    status = reply[0]
    if status == b"conflict":
        raise _conflict(reply[1], ns)
    if status == b"mismatch":
        raise _mismatch(reply[1], ns)
    if status == b"invalid":
        raise ValidationFailed(
            [Violation(p.decode(), c.decode(), m.decode()) for p, c, m in reply[1]]
        )
    if status == b"notfound":
        noun = {b"c": "contact", b"o": "company", b"s": "session"}.get(reply[1], "record")
        raise NotFound(f"no such {noun}")
    raise RuntimeError(f"unexpected script reply {status!r}")


def _result(block: list[Any]) -> RecordResult:
    return RecordResult(
        ulid=block[0].decode(),
        created=bool(block[1]),
        changed=list(block[2]),
        stored=_pairs(block[3]),
    )


SessionMode = Literal["minted", "named", "mint"]


@dataclass(frozen=True)
class SessionRef:
    """A session a write uses: its id, TTL (ms) and how it may be used (SPEC §4.2):
    ``minted`` must exist already, ``named`` starts with its first call, ``mint`` creates it."""

    id: str
    ttl_ms: int
    mode: SessionMode

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ttl": self.ttl_ms, "mode": self.mode}


@dataclass(frozen=True)
class SessionState:
    """A session as stored (``fields``) with the records it is bound to after a call."""

    fields: dict[bytes, bytes] | None  # None: logged out (deleted)
    contact: RecordResult | None
    company: RecordResult | None


def _mismatch(rows: list[list[bytes]], ns: Namespace) -> IdentityConflict:
    """SPEC §4.1: the call's other identifiers name a record anchored to another user id."""
    noun = "contact" if ns == "c" else "company"
    anchor = rows[0][1].decode()
    return IdentityConflict(
        f"the identifiers of this call belong to a {noun} whose external_id is {anchor!r}; "
        "an external id is never rewritten by a match on another identifier",
        code="external_id_mismatch",
        conflicts=[
            {"path": path, "field": "external_id", "value": anchor, "record_id": owner}
            for path, anchor, owner in ((r[0].decode(), r[1].decode(), r[2].decode()) for r in rows)
        ],
    )


def _conflict(rows: list[list[bytes]], ns: Namespace) -> IdentityConflict:
    noun = "contact" if ns == "c" else "company"
    conflicts = [
        {
            "path": path.decode(),
            "field": kind_field(kind.decode()),
            "value": value.decode(),
            "record_id": owner.decode(),
        }
        for path, kind, value, owner in rows
    ]
    owners = {c["record_id"] for c in conflicts}
    return IdentityConflict(
        f"the identifying values of this call belong to {len(owners)} different records"
        if len(owners) > 1
        else f"a value of this call belongs to another {noun}",
        code="identity_conflict",
        conflicts=conflicts,
    )


class RecordStore:
    """Reads and atomic writes of one Redis-backed gateway."""

    def __init__(self, client: Redis, scripts: Scripts) -> None:
        self.client = client
        self.scripts = scripts

    async def upsert(
        self,
        tenant: str,
        ops: list[RecordOp],
        *,
        link: bool = False,
        session: SessionRef | None = None,
    ) -> list[RecordResult]:
        """Resolve, check and write every op in one script call (companies first).

        Raises:
            IdentityConflict: values of the call belong to different records.
            ValidationFailed: an inferred type differs from the stored one, or a required
                field is missing on create.
            NotFound: an op's ``target`` does not exist.

        ``session``: its buffer is applied (the call's own values win) and it is bound to the
        records, in the same step.
        """
        keys = TenantKeys(tenant)
        body: dict[str, Any] = {
            "now": str(now_ms()),
            "link": link,
            "records": [o.to_json() for o in ops],
        }
        if session is not None:
            body["session"] = session.to_json()
        reply = await self.scripts.upsert(keys=[keys.outbox], args=[keys.prefix, _encode(body)])
        if reply[0] != b"ok":
            _raise_for(reply, ops[-1].ns)
        return [_result(block) for block in reply[1:]]

    async def calls(
        self, tenant: str, session: SessionRef, steps: list[dict[str, Any]]
    ) -> SessionState:
        """Apply Groove widget calls (``calls.lua`` steps) to a session in one step.

        Raises:
            NotFound: the session may not be used (SPEC §4.2: unknown minted id).
        """
        keys = TenantKeys(tenant)
        body = {"now": str(now_ms()), "session": session.to_json(), "steps": steps}
        reply = await self.scripts.calls(keys=[keys.outbox], args=[keys.prefix, _encode(body)])
        if reply[0] != b"ok":
            last_ns = next((s["ns"] for s in reversed(steps) if "ns" in s), "c")
            _raise_for(reply, last_ns)
        return SessionState(
            fields=_pairs(reply[1]) if reply[1] is not None else None,
            contact=_result(reply[2]) if reply[2] else None,
            company=_result(reply[3]) if reply[3] else None,
        )

    async def session(self, tenant: str, session_id: str) -> tuple[dict[bytes, bytes], int] | None:
        """A session's fields and remaining TTL (ms), or None."""
        key = TenantKeys(tenant).session(session_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.pttl(key)
            fields, ttl = await pipe.execute()
        if not fields:
            return None
        return fields, int(ttl)

    async def check(self, tenant: str, ops: list[RecordOp]) -> list[Violation]:
        """The violations only the stored state reveals (an inferred type that differs from
        the stored one, a required field missing on create), without writing anything.
        Used to report every violation of a call that already failed validation."""
        keys = TenantKeys(tenant)
        request = _encode({"now": "0", "check": True, "records": [o.to_json() for o in ops]})
        reply = await self.scripts.upsert(keys=[keys.outbox], args=[keys.prefix, request])
        if reply[0] != b"invalid":
            return []
        return [Violation(p.decode(), c.decode(), m.decode()) for p, c, m in reply[1]]

    async def get(self, tenant: str, ns: Namespace, ulid: str) -> dict[bytes, bytes] | None:
        stored: dict[bytes, bytes] = await self.client.hgetall(TenantKeys(tenant).record(ns, ulid))
        return stored or None

    async def lookup(
        self, tenant: str, ns: Namespace, kind: str, value: str
    ) -> tuple[str, dict[bytes, bytes]] | None:
        keys = TenantKeys(tenant)
        reply = await self.scripts.lookup(keys=[keys.outbox], args=[keys.prefix, ns, kind, value])
        if not reply:
            return None
        return reply[0].decode(), _pairs(reply[1])

    async def merged_into(self, tenant: str, ulid: str) -> str | None:
        into = await self.client.hget(TenantKeys(tenant).merged, ulid)
        return CONTACT_PREFIX + into.decode() if into else None

    async def delete_contact(self, tenant: str, ulid: str, registry: Registry) -> bool:
        keys = TenantKeys(tenant)
        done = await self.scripts.delete(
            keys=[keys.outbox], args=[keys.prefix, ulid, registry.index_spec, str(now_ms())]
        )
        return bool(done)

    async def merge_contacts(
        self, tenant: str, into: str, from_: str, registry: Registry, session_ttl_ms: int
    ) -> tuple[list[bytes], dict[bytes, bytes]]:
        keys = TenantKeys(tenant)
        reply = await self.scripts.merge(
            keys=[keys.outbox],
            args=[keys.prefix, into, from_, registry.index_spec, str(now_ms()), session_ttl_ms],
        )
        if reply[0] == b"notfound":
            which = reply[1].decode()
            raise NotFound(f"no such contact in `{which}`", field=which)
        return list(reply[1]), _pairs(reply[2])


__all__ = ["RecordOp", "RecordResult", "RecordStore", "kind_field"]
