"""The wire of the function library: one request and one reply Struct per function.

Every function is called as ``FCALL <name> 1 <tenant prefix> <request JSON>`` and answers one
JSON object whose ``status`` tags the reply (see ``lua/_prelude.lua`` for the conventions).
This module is the one place that says what each function takes and gives; the Lua files name
the Struct they read or write in their header comment.

Values of record fields travel as JSON text (``{"email": "\\"fred@example.com\\""}``): that is
how the record hashes hold them, so the Lua side never decodes what it only stores.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgspec

# --- shared enums -------------------------------------------------------------------------


class Namespace(StrEnum):
    """Where a record lives: ``…:c:<id>`` contacts, ``…:o:<id>`` companies."""

    CONTACT = "c"
    COMPANY = "o"


class DeliveryOutcome(StrEnum):
    """What became of one claimed delivery job. The Lua side reads these very values from the
    ``OUTCOME`` table the library is built with (store/_library.py), so the two never drift."""

    OK = "ok"  # delivered: the version is recorded
    SKIP = "skip"  # nothing to send (already delivered, or the vendor does not take it)
    RETRY = "retry"  # failed for now: try again after a delay
    DEAD = "dead"  # failed for good: into the dead letters
    DISABLED = "disabled"  # the vendor is disabled (410): back to the queue, untouched
    RELEASE = "release"  # the worker stops: back to the queue, untouched


class IngestOutcome(StrEnum):
    """What became of one event of the Segment-compatible source (SPEC §5.8). The Lua side reads
    these very values from the ``INGEST`` table the library is built with."""

    CREATED = "c"  # a record was created
    UPDATED = "u"  # records changed
    UNCHANGED = "n"  # nothing changed
    BUFFERED = "b"  # kept in an anonymous session
    DUPLICATE = "d"  # its messageId was seen in the last 24 h: skipped
    INVALID = "i"  # rejected: a stored field type or a required field
    CONFLICT = "x"  # rejected: identifiers of different records
    MISMATCH = "m"  # rejected: a record anchored to another external id
    REJECTED = "r"  # rejected before the store (malformed or invalid)


class _Wire(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """Requests: absent optional members are left out of the JSON."""


class _Reply(msgspec.Struct, tag_field="status"):
    """Replies: tagged by ``status``."""


# --- shared members -----------------------------------------------------------------------


class LimitWire(_Wire):
    """One rate limit to spend (SPEC §5.1): ``key`` is a suffix of the tenant prefix."""

    key: str
    name: str  # which limit: key | session | address
    quota: int
    window_ms: int
    burst: int


class SessionWire(_Wire):
    """A session a write uses; ``mode``: ``minted`` must exist, ``named`` starts with its first
    call, ``mint`` creates it (SPEC §4.2)."""

    id: str
    ttl: int  # ms
    mode: Literal["minted", "named", "mint"]


class RecordOpWire(_Wire):
    """A change to one record: resolve it by ``lookups`` (or ``target``), then apply."""

    ns: Namespace
    new_id: str
    lookups: list[tuple[str, str, str]]  # (index kind, value, JSON path)
    set: dict[str, str]  # hash field -> JSON text
    unset: list[str]
    infer: list[tuple[str, str, str]]  # (hash field, inferred type, JSON path)
    required: list[tuple[str, str]]  # (hash field, JSON path), checked on create
    target: str | None = None
    tags_add: list[str] | None = None
    on_create: dict[str, str] | None = None


IndexSpec = list[tuple[str, str, int]]  # (hash field, index kind, is_list) of identifying fields


class StepWire(_Wire):
    """One Groove widget call: ``set`` / ``identify`` carry a record op, ``logout`` none."""

    op: Literal["set", "identify", "logout"]
    record: RecordOpWire | None = None


class RecordWire(msgspec.Struct):
    """A record after a write: its hash as stored, what changed, whether it was created."""

    id: str
    created: bool
    changed: dict[str, int]  # hash field -> 1 (an object: cjson cannot encode an empty array)
    fields: dict[str, str]


# --- failures every write may answer ------------------------------------------------------


class Invalid(_Reply, tag="invalid"):
    violations: list[tuple[str, str, str]]  # (path, code, message)


class Conflict(_Reply, tag="conflict"):
    conflicts: list[tuple[str, str, str, str]]  # (path, index kind, value, owner record id)


class Mismatch(_Reply, tag="mismatch"):
    mismatches: list[tuple[str, str, str]]  # (path, the record's external_id, record id)


class NotFound(_Reply, tag="notfound"):
    what: str  # c | o | s (session) | d (dead letter) | into | from


class Limited(_Reply, tag="limited"):
    limit: str
    retry_ms: int
    quota: int
    window_ms: int


# --- upsert -------------------------------------------------------------------------------


class UpsertRequest(_Wire):
    records: list[RecordOpWire]  # companies first, so the contact can be linked to them
    spec: dict[str, IndexSpec]  # namespace -> its identifying fields
    link: bool = False
    check: bool = False
    session: SessionWire | None = None
    limits: list[LimitWire] | None = None


class UpsertOk(_Reply, tag="ok"):
    records: list[RecordWire] = msgspec.field(default_factory=list)  # empty in check mode


UpsertReply = UpsertOk | Invalid | Conflict | Mismatch | NotFound | Limited


# --- calls (Groove widget calls on a session) ----------------------------------------------


class CallsRequest(_Wire):
    session: SessionWire
    steps: list[StepWire]
    spec: dict[str, IndexSpec]
    limits: list[LimitWire] | None = None


class CallsOk(_Reply, tag="ok"):
    session: dict[str, str] | None = None  # the session hash; None once logged out
    contact: RecordWire | None = None
    company: RecordWire | None = None


CallsReply = CallsOk | Invalid | Conflict | Mismatch | NotFound | Limited


# --- ingest (the Segment-compatible source) --------------------------------------------------


class Refused(_Reply, tag="refused"):
    """An event refused before the store (as kept with its rejection)."""

    code: str
    message: str


class IngestEventWire(_Wire):
    """One event: ``upsert`` (records, companies first, and a session to apply and bind),
    ``set`` (one contact op on a session), ``group`` (one company op bound to a session),
    ``alias`` (one contact op; ``prev`` joins its lookups when a contact holds it, else
    ``session`` is bound) or ``reject`` (``problem`` is kept)."""

    kind: Literal["upsert", "set", "group", "alias", "reject"]
    event: str  # the event as received (JSON text), kept with a rejection
    mid: str | None = None  # the messageId (de-duplication)
    records: list[RecordOpWire] | None = None
    link: bool = False
    session: SessionWire | None = None
    prev: tuple[str, str, str] | None = None  # (index kind, value, JSON path)
    problem: str | None = None  # JSON of Invalid | Refused


class IngestRequest(_Wire):
    events: list[IngestEventWire]
    spec: dict[str, IndexSpec]
    dedup_s: int  # how long a messageId is remembered
    keep_ms: int  # how long a rejection is kept
    keep_max: int  # at most this many rejections kept (about)
    limits: list[LimitWire] | None = None


class Ingested(_Reply, tag="ok"):
    outcomes: str  # one IngestOutcome character per event


IngestReply = Ingested | Limited
Problem = Invalid | Conflict | Mismatch | Refused  # a kept rejection's reason


# --- find ---------------------------------------------------------------------------------


class FindRequest(_Wire):
    ns: Namespace
    kind: str
    value: str


class Found(_Reply, tag="ok"):
    id: str
    fields: dict[str, str]


FindReply = Found | NotFound


# --- erase, merge -------------------------------------------------------------------------


class EraseRequest(_Wire):
    id: str
    spec: IndexSpec
    limits: list[LimitWire] | None = None


class Done(_Reply, tag="ok"):
    pass


EraseReply = Done | NotFound | Limited


class MergeRequest(_Wire):
    into: str
    from_: str = msgspec.field(name="from")
    spec: IndexSpec = msgspec.field(default_factory=list)
    session_ttl: int = 0
    limits: list[LimitWire] | None = None


class Merged(_Reply, tag="ok"):
    changed: dict[str, int]
    fields: dict[str, str]


MergeReply = Merged | NotFound | Limited


# --- limit --------------------------------------------------------------------------------


class LimitRequest(_Wire):
    limits: list[LimitWire]


LimitReply = Done | Limited


# --- profile_read -------------------------------------------------------------------------


class ProfileReadRequest(_Wire):
    id: str


class ProfileRead(_Reply, tag="ok"):
    fields: dict[str, str]
    cache: dict[str, str] | None = None  # d (data JSON), at (fetch ms), inv (new message)


ProfileReadReply = ProfileRead | NotFound


# --- deliveries ---------------------------------------------------------------------------


class ScheduleRequest(_Wire):
    vendor: str
    window_ms: int
    max_wait_ms: int
    kinds: list[str]
    events: list[tuple[str, str, str]]  # (message id, record id, event type)


class Scheduled(_Reply, tag="ok"):
    scheduled: int


class ClaimRequest(_Wire):
    vendor: str
    lease_ms: int
    limit: int


class CompanyBrief(msgspec.Struct):
    name: str | None = None  # JSON text as stored
    domain: str | None = None


class ClaimedJob(msgspec.Struct):
    fields: dict[str, str]  # the record as it is now ({} once deleted)
    token: str
    companies: dict[str, CompanyBrief] = msgspec.field(default_factory=dict)
    delivered: str | None = None  # version last delivered to this vendor
    job: str | None = None  # JobState JSON
    tombstone: str | None = None


class Claimed(_Reply, tag="ok"):
    jobs: dict[str, ClaimedJob]  # record id -> job
    next_due: int | None = None  # ms, the next queued job's due time


class ResultWire(_Wire):
    rec: str
    token: str
    outcome: DeliveryOutcome
    version: int | None = None
    ref: str | None = None
    deleted: bool = False
    job: str | None = None  # JobState JSON (retry, disabled)
    delay_ms: int | None = None  # retry
    dead: dict[str, str] | None = None  # the dead letter's fields (dead)
    note: str | None = None  # JSON text: what the vendor said (e.g. a CRM's returnMessage)


class CompleteRequest(_Wire):
    vendor: str
    window_ms: int
    results: list[ResultWire]


class Completed(_Reply, tag="ok"):
    applied: int


class ReplayRequest(_Wire):
    id: str


class Replayed(_Reply, tag="ok"):
    vendor: str
    record_id: str


ReplayReply = Replayed | NotFound


class TrimRequest(_Wire):
    groups: list[str] | None = None
    tail: int | None = None


class Trimmed(_Reply, tag="ok"):
    trimmed: int


# --- import_batch, scan_records, field_reset (idgateway import / export / fields) ----------


class ImportRowWire(_Wire):
    """One row of an import: an identify call (as upsert takes it) and its line in the file."""

    line: int
    records: list[RecordOpWire]  # companies first
    link: bool = False
    session: SessionWire | None = None


class ImportMark(_Wire):
    """The checkpoint after a batch: where the file was read to, and what to report again
    when a killed run is resumed (the rejects of the batch)."""

    offset: int  # bytes of the file read, through the batch's last row
    line: int  # the last line read
    sha: str  # hex SHA-256 of those bytes: a resumed run checks the file did not change
    batch_offset: int  # where the batch began
    batch_line: int  # its first line
    rows: int  # rows in the batch, those refused by the client included
    rejected: int  # rows the client refused before sending
    pre: str  # those rows' reasons, opaque to the function (JSON text)
    done: bool = False  # the last batch of the file
    run: str = ""  # the run that committed it (a random token per run)


class ImportBatchRequest(_Wire):
    file: str  # the import's id (a digest of the file's first bytes)
    expect: int  # the checkpoint's offset this batch continues from
    rows: list[ImportRowWire]
    spec: dict[str, IndexSpec]
    mark: ImportMark


class RowCreated(_Reply, tag="created"):
    pass


class RowUpdated(_Reply, tag="updated"):
    pass


class RowUnchanged(_Reply, tag="unchanged"):
    pass


RowResult = RowCreated | RowUpdated | RowUnchanged | Invalid | Conflict | Mismatch | NotFound
RowFailure = Invalid | Conflict | Mismatch | NotFound


class ImportDone(_Reply, tag="ok"):
    results: dict[str, RowResult]  # line -> result


class Stale(_Reply, tag="stale"):
    offset: int  # where the checkpoint is


ImportBatchReply = ImportDone | Stale


class ScanRequest(_Wire):
    ns: Namespace
    cursor: str
    count: int
    field: str | None = None


class ScanPage(_Reply, tag="ok"):
    cursor: str
    records: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    holders: dict[str, int] = msgspec.field(default_factory=dict)


class FieldResetRequest(_Wire):
    ns: Namespace
    field: str  # hash field, p.<key>
    since: str  # the outbox's last id when the scan began
    added: int  # and its count of entries ever added then


class FieldForgotten(_Reply, tag="ok"):
    type: str


class Held(_Reply, tag="held"):
    id: str


class Unsure(_Reply, tag="unsure"):
    pass


FieldResetReply = FieldForgotten | NotFound | Held | Unsure
