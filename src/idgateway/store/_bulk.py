"""Bulk access for the operator commands (SPEC §9): import batches and their checkpoints,
pages of every record of a tenant (export), inferred field types (``fields list`` /
``fields reset``).

Everything here goes through the tenant's prefix, so on a Redis Cluster it reaches the one node
that holds the tenant's slot: pages come from a function (``scan_records``) that runs SCAN
where the tenant lives, not from a client-side SCAN of whichever node it reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import msgspec
from redis.exceptions import ResponseError

from idgateway.errors import GatewayError
from idgateway.model import COMPANY_PREFIX, CONTACT_PREFIX, Company, Contact
from idgateway.store import _wire as w
from idgateway.store._codec import NAMESPACE, company_of, contact_of, index_spec, op_wire
from idgateway.store._keys import TenantKeys
from idgateway.store._records import raise_for

if TYPE_CHECKING:
    from idgateway.fields import Entity, RecordOp, Registry
    from idgateway.store._connection import Client
    from idgateway.store._library import Library
    from idgateway.store._records import SessionRef

_BATCH = msgspec.json.Decoder(w.ImportBatchReply)
_SCAN = msgspec.json.Decoder(w.ScanPage)
_RESET = msgspec.json.Decoder(w.FieldResetReply)
_FAILURES = msgspec.json.Decoder(dict[str, w.RowFailure])

RowOutcome = Literal["created", "updated", "unchanged"] | GatewayError


@dataclass(frozen=True)
class ImportRow:
    """One identify call of an import: its record ops (companies first, as the API builds
    them), whether to link them, the session it binds, and its line in the file."""

    line: int
    ops: list[RecordOp]
    link: bool = False
    session: SessionRef | None = None


@dataclass(frozen=True)
class ImportCheckpoint:
    """How far an import of one file got, as its last committed batch left it."""

    offset: int  # bytes read through the last committed row
    line: int  # the last line read
    sha: str  # hex SHA-256 of the first `offset` bytes
    batch_offset: int  # where that batch began
    batch_line: int
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    pre: str  # the batch's rows refused before sending, as the client wrote them
    failures: dict[int, GatewayError] = field(default_factory=dict)  # the batch's refusals
    done: bool = False
    run: str = ""  # the token of the run that committed the last batch


class CheckpointMoved(RuntimeError):
    """The checkpoint is not where the batch continues from: another run of the same file
    moved it (or a run was started over meanwhile). Nothing of the batch was written."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"the import checkpoint is at byte {offset}, not where this run is")
        self.offset = offset


@dataclass(frozen=True)
class FieldHeld:
    """``fields reset`` refused: this record holds the field."""

    record_id: str


FieldResetOutcome = Literal["forgotten", "unknown", "unsure"] | FieldHeld


def _failure(reply: w.RowFailure) -> GatewayError:
    """The gateway error a refused row stands for, as the API would answer the same call."""
    paths = [c[0] for c in reply.conflicts] if isinstance(reply, w.Conflict) else []
    if isinstance(reply, w.Mismatch):
        paths = [m[0] for m in reply.mismatches]
    company = bool(paths) and all(p.startswith("$.company") for p in paths)
    try:
        raise_for(reply, "o" if company else "c")
    except GatewayError as exc:
        return exc
    raise AssertionError("raise_for always raises")  # pragma: no cover


class BulkRepository:
    """Import batches, record pages and inferred field types of tenants."""

    def __init__(self, client: Client, library: Library) -> None:
        self.client = client
        self.library = library

    # --- import ---------------------------------------------------------------------------

    def _checkpoint_key(self, tenant: str, file_id: str) -> str:
        return f"{TenantKeys(tenant).prefix}import:{file_id}"

    async def checkpoint(self, tenant: str, file_id: str) -> ImportCheckpoint | None:
        """The checkpoint of the import of ``file_id``, or None when there is none."""
        key = self._checkpoint_key(tenant, file_id)
        raw = cast("dict[bytes, bytes]", await self.client.hgetall(key))
        if not raw:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}
        failures = {
            int(line): _failure(reply)
            for line, reply in _FAILURES.decode(f.get("failures", "{}")).items()
        }
        return ImportCheckpoint(
            offset=int(f["offset"]),
            line=int(f["line"]),
            sha=f["sha"],
            batch_offset=int(f["batch_offset"]),
            batch_line=int(f["batch_line"]),
            rows=int(f.get("rows", 0)),
            created=int(f.get("created", 0)),
            updated=int(f.get("updated", 0)),
            unchanged=int(f.get("unchanged", 0)),
            rejected=int(f.get("rejected", 0)),
            pre=f.get("pre", "[]"),
            failures=failures,
            done=f.get("done") == "1",
            run=f.get("run", ""),
        )

    async def forget_checkpoint(self, tenant: str, file_id: str) -> None:
        await self.client.delete(self._checkpoint_key(tenant, file_id))

    async def import_batch(
        self,
        tenant: str,
        file_id: str,
        *,
        expect: int,
        rows: list[ImportRow],
        contacts: Registry,
        companies: Registry,
        mark: w.ImportMark,
    ) -> dict[int, RowOutcome]:
        """Apply a batch of rows, each on its own, and move the checkpoint to ``mark``, in
        one step; the outcome of each row by line.

        Raises:
            CheckpointMoved: the checkpoint is not at ``expect``; nothing was written.
        """
        request = w.ImportBatchRequest(
            file=file_id,
            expect=expect,
            rows=[
                w.ImportRowWire(
                    line=row.line,
                    records=[op_wire(op) for op in row.ops],
                    link=row.link,
                    session=row.session.wire() if row.session else None,
                )
                for row in rows
            ],
            spec={
                NAMESPACE[contacts.entity]: index_spec(contacts),
                NAMESPACE[companies.entity]: index_spec(companies),
            },
            mark=mark,
        )
        prefix = TenantKeys(tenant).prefix
        reply = await self.library.call("import_batch", prefix, request, _BATCH)
        if isinstance(reply, w.Stale):
            raise CheckpointMoved(reply.offset)
        outcomes: dict[int, RowOutcome] = {}
        for key, result in reply.results.items():
            line = int(key)
            if isinstance(result, w.RowCreated):
                outcomes[line] = "created"
            elif isinstance(result, w.RowUpdated):
                outcomes[line] = "updated"
            elif isinstance(result, w.RowUnchanged):
                outcomes[line] = "unchanged"
            else:
                outcomes[line] = _failure(result)
        return outcomes

    # --- pages of records -----------------------------------------------------------------

    async def _scan(
        self, tenant: str, entity: Entity, cursor: str, count: int, hfield: str | None
    ) -> w.ScanPage:
        request = w.ScanRequest(NAMESPACE[entity], cursor, count, hfield)
        page: w.ScanPage = await self.library.call(
            "scan_records", TenantKeys(tenant).prefix, request, _SCAN
        )
        return page

    async def records(
        self, tenant: str, entity: Entity, cursor: str = "0", count: int = 500
    ) -> tuple[str, list[Contact] | list[Company]]:
        """One page of the tenant's contacts or companies and the cursor of the next
        (``"0"``: the last page). A record may come in two pages (SCAN's guarantee)."""
        page = await self._scan(tenant, entity, cursor, count, None)
        if entity == "contact":
            return page.cursor, [contact_of(i, f) for i, f in page.records.items()]
        return page.cursor, [company_of(i, f) for i, f in page.records.items()]

    async def holders(
        self, tenant: str, entity: Entity, hfield: str, cursor: str = "0", count: int = 1000
    ) -> tuple[str, list[str]]:
        """The ids (``c_…`` / ``co_…``) of the records of one page that hold hash field
        ``hfield``, and the cursor of the next page."""
        page = await self._scan(tenant, entity, cursor, count, hfield)
        prefix = CONTACT_PREFIX if entity == "contact" else COMPANY_PREFIX
        return page.cursor, [prefix + i for i in page.holders]

    # --- inferred field types -------------------------------------------------------------

    async def inferred_types(self, tenant: str, entity: Entity) -> dict[str, str]:
        """Hash field → the type it was first stored with, for fields the tenant infers."""
        key = TenantKeys(tenant).types(NAMESPACE[entity])
        raw = cast("dict[bytes, bytes]", await self.client.hgetall(key))
        return {k.decode(): v.decode() for k, v in sorted(raw.items())}

    async def outbox_position(self, tenant: str) -> tuple[str, int]:
        """Where the tenant's outbox is: the id of its last event and how many were ever
        added (``("0-0", 0)`` before the first), read together."""
        try:
            info = await self.client.xinfo_stream(TenantKeys(tenant).outbox)
        except ResponseError:  # no such key: no event yet
            return "0-0", 0
        last = info["last-generated-id"]
        return (last.decode() if isinstance(last, bytes) else str(last)), int(info["entries-added"])

    async def forget_type(
        self, tenant: str, entity: Entity, hfield: str, since: tuple[str, int]
    ) -> FieldResetOutcome:
        """Forget the inferred type of ``hfield`` unless a record holds it. The caller has
        scanned every record (:meth:`holders`) after reading ``since``
        (:meth:`outbox_position`); this checks the records written since, atomically.

        Returns:
            ``forgotten``; ``unknown`` (no inferred type for it); :class:`FieldHeld` naming a
            record written meanwhile that holds it; ``unsure`` (the outbox was trimmed past
            ``since``: scan again).
        """
        request = w.FieldResetRequest(NAMESPACE[entity], hfield, since[0], since[1])
        prefix = TenantKeys(tenant).prefix
        reply = await self.library.call("field_reset", prefix, request, _RESET)
        if isinstance(reply, w.FieldForgotten):
            return "forgotten"
        if isinstance(reply, w.Held):
            return FieldHeld((CONTACT_PREFIX if entity == "contact" else COMPANY_PREFIX) + reply.id)
        if isinstance(reply, w.Unsure):
            return "unsure"
        return "unknown"
