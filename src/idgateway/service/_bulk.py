"""Operator use cases (SPEC §9): ``import`` (bulk identify from NDJSON or CSV), ``export``
(every record of a tenant as NDJSON) and the inferred field types (``fields``).

Import reads the file as a stream, one row at a time, and sends rows in batches: one function
call per batch applies every row on its own (as ``POST /v1/identify`` would) and moves the
import's checkpoint in the same atomic step. So memory does not grow with the file, a batch
costs one round trip, and a run killed anywhere is resumed (``--resume``) after the last
committed row with every row imported exactly once. While Redis applies one batch, the next
is read and validated.

The checkpoint also records the file's SHA-256 up to that row (a resumed run refuses a file
that changed) and the refusals of its last batch: the rejects file (``FILE.rejects.ndjson``)
is rewritten from it on resume, so it holds each refused row exactly once too, in line order.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

import msgspec

from idgateway.dialects.csv_rows import Column, csv_body, csv_columns
from idgateway.dialects.unified import IdentifyRequest, translate_identify
from idgateway.errors import GatewayError, Malformed, ValidationFailed
from idgateway.fields import CUSTOM_PREFIX, RecordOp
from idgateway.service._records import session_ref
from idgateway.store import CheckpointMoved, FieldHeld, ImportMark, ImportRow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from idgateway.fields import Entity
    from idgateway.store import ImportCheckpoint, RowOutcome, Store
    from idgateway.tenancy import Tenant

Format = Literal["ndjson", "csv"]
REJECTS_SUFFIX = ".rejects.ndjson"
BATCH_ROWS = 500
BATCH_BYTES = 4 * 1024 * 1024  # of input per batch, whatever the row count
_ID_BYTES = 64 * 1024  # the import's id is a digest of the file's first bytes
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_IDENTIFY = msgspec.json.Decoder(IdentifyRequest)
_FORMATS: dict[str, Format] = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


class ImportFailed(Exception):
    """The import cannot start or go on (unreadable file, bad CSV header, a file that changed
    under ``--resume``, another run of the same file). Rows already committed stay."""


class ExportFailed(Exception):
    """The export's output cannot be written (a full disk, a closed pipe)."""


@dataclass
class Tally:
    """Rows of a file by outcome (every run of one import together)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def count(self, outcome: RowOutcome) -> None:
        self.rows += 1
        if outcome == "created":
            self.created += 1
        elif outcome == "updated":
            self.updated += 1
        elif outcome == "unchanged":
            self.unchanged += 1
        else:
            self.rejected += 1


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is: bytes of the file committed, rows done by this run and in all."""

    offset: int
    size: int
    run_rows: int
    tally: Tally


@dataclass(frozen=True)
class ImportSummary:
    file: Path
    format: Format
    tally: Tally  # every run of this import together
    run_rows: int  # rows this run committed
    seconds: float  # this run
    resumed_at_line: int | None  # the line this run continued after (None: from the start)
    rejects: Path | None  # the rejects file, when a row was refused
    already_done: bool = False  # --resume of an import that had finished

    @property
    def rows_per_second(self) -> float:
        return self.run_rows / self.seconds if self.seconds > 0 else 0.0


# --- reading a file row by row ------------------------------------------------------------


@dataclass
class _Raw:
    """One row as read: its line, the identify body (or why there is none) and what the
    rejects file shows of it."""

    line: int
    body: IdentifyRequest | dict[str, Any] | None
    shown: Any  # a CSV row's cells by column; an NDJSON line's bytes (see _shown)
    error: GatewayError | None = None


@dataclass
class _Cursor:
    offset: int
    line: int
    sha: Any  # hashlib object, fed every byte read when not None


def detect_format(path: Path) -> Format:
    """By extension (``.csv``; ``.ndjson``, ``.jsonl``), else by the first byte that is not
    blank: ``{`` is NDJSON."""
    known = _FORMATS.get(path.suffix.lower())
    if known is not None:
        return known
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "ndjson" if head.startswith(b"{") else "csv"


def _lines(fh: IO[bytes], cur: _Cursor) -> Iterator[bytes]:
    for raw in fh:
        cur.offset += len(raw)
        cur.line += 1
        if cur.sha is not None:
            cur.sha.update(raw)
        yield raw


def _ndjson_rows(fh: IO[bytes], cur: _Cursor) -> Iterator[_Raw]:
    """Rows of an NDJSON file; each keeps its line's bytes to show should it be refused."""
    for raw in _lines(fh, cur):
        if cur.line == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark (detect_format skips it)
        if not raw.strip():
            continue  # a blank line is no row
        try:
            yield _Raw(cur.line, _IDENTIFY.decode(raw), raw)  # the common case, in one step
            continue
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        try:
            body = _decode(raw)
        except msgspec.DecodeError as exc:
            yield _Raw(cur.line, None, raw, Malformed(f"not JSON: {exc}"))
            continue
        if not isinstance(body, dict):
            problem = Malformed("a row is a JSON object: an identify body (user_id, traits, …)")
            yield _Raw(cur.line, None, raw, problem)
            continue
        yield _Raw(cur.line, body, raw)  # _prepare says what is wrong with it


_SHOWN_CHARS = 2000  # of a record csv cannot read, in the rejects file


@dataclass
class _CsvRecord:
    line: int  # where it starts (a quoted cell may span lines)
    cells: list[str]
    error: str | None = None  # why csv could not read it (then ``cells`` is empty)
    text: str = ""  # the start of its lines, when csv could not read it


def _csv_records(fh: IO[bytes], cur: _Cursor) -> Iterator[_CsvRecord]:
    """CSV records. csv reads exactly the lines of one record per step, so ``cur`` is at its
    end when it is yielded; a record csv refuses (a stray carriage return, a cell past
    ``csv.field_size_limit()``) is yielded with the reason, and reading goes on after it."""
    taken: list[str] = []

    def text() -> Iterator[str]:
        for raw in _lines(fh, cur):
            line = raw.decode("utf-8", "surrogateescape")
            if sum(map(len, taken)) < _SHOWN_CHARS:
                taken.append(line)
            yield line

    reader = csv.reader(text())
    start = cur.line + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            shown = _lossy("".join(taken))[:_SHOWN_CHARS].rstrip("\r\n")
            yield _CsvRecord(start, [], f"not CSV: {exc}", shown)
        else:
            yield _CsvRecord(start, cells)
        taken.clear()
        start = cur.line + 1


def _csv_header(fh: IO[bytes], cur: _Cursor) -> list[Column]:
    for record in _csv_records(fh, cur):
        cells = record.cells
        if record.error is not None:
            raise ImportFailed(f"the CSV header (line {record.line}): {record.error}")
        if not any(c.strip() for c in cells):
            continue
        try:
            "".join(cells).encode("utf-8")
        except UnicodeEncodeError:
            raise ImportFailed(
                f"the CSV header (line {record.line}) is not valid UTF-8 (save the file as UTF-8)"
            ) from None
        cells[0] = cells[0].removeprefix("\ufeff")
        try:
            return csv_columns(cells)
        except ValueError as exc:
            raise ImportFailed(f"the CSV header (line {cur.line}): {exc}") from None
    raise ImportFailed("the CSV file has no header row")


def _csv_rows(fh: IO[bytes], cur: _Cursor, columns: list[Column], tenant: Tenant) -> Iterator[_Raw]:
    names = [c.name for c in columns]
    for record in _csv_records(fh, cur):
        line, cells = record.line, record.cells
        if record.error is not None:
            yield _Raw(line, None, record.text, Malformed(record.error))
            continue
        if not any(cells):
            continue  # an empty line is no row
        if len(cells) != len(columns):
            shown: Any = cells
            problem = Malformed(f"{len(cells)} cells; the header names {len(columns)} columns")
            yield _Raw(line, None, shown, problem)
            continue
        shown = dict(zip(names, cells, strict=True))
        try:
            "".join(cells).encode("utf-8")
        except UnicodeEncodeError:
            problem = Malformed("the row is not valid UTF-8")
            shown = {k: _lossy(v) for k, v in shown.items()}
            yield _Raw(line, None, shown, problem)
            continue
        body = csv_body(columns, cells, tenant.contacts, tenant.companies)
        yield _Raw(line, body, shown)


def _lossy(text: str) -> str:
    """Text read with ``surrogateescape``, with its undecodable bytes shown as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Source:
    """One input file: its format, size, import id and CSV columns."""

    def __init__(self, path: Path, fmt: Format | None) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
            self.format: Format = fmt or detect_format(path)
            with path.open("rb") as fh:
                head = fh.read(_ID_BYTES)
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None
        self.id = hashlib.sha256(head).hexdigest()[:32]
        self.columns: list[Column] = []
        self.rows_start = 0  # where the first row can begin (after a CSV header)

    def read_header(self) -> None:
        if self.format != "csv":
            return
        with self.path.open("rb") as fh:
            cur = _Cursor(0, 0, None)
            self.columns = _csv_header(fh, cur)
            self.rows_start = cur.offset

    def rows(self, fh: IO[bytes], cur: _Cursor, tenant: Tenant) -> Iterator[_Raw]:
        if self.format == "csv":
            return _csv_rows(fh, cur, self.columns, tenant)
        return _ndjson_rows(fh, cur)


# --- the rejects file ---------------------------------------------------------------------


def _problem(err: GatewayError) -> dict[str, Any]:
    return {
        "status": err.status,
        "type": err.type,
        "title": err.title,
        "detail": err.detail,
        **err.extensions,
    }


def _shown(row: Any) -> Any:
    """A refused row as the rejects file shows it: an NDJSON line as its JSON when it is JSON,
    else as text; a CSV row as its cells by column."""
    if not isinstance(row, bytes):
        return row
    try:
        return _decode(row)
    except msgspec.DecodeError:
        return row.decode("utf-8", "replace").rstrip("\r\n")


def _reject_line(line: int, problem: dict[str, Any], row: Any) -> bytes:
    return _encode({"line": line, **problem, "row": _shown(row)}) + b"\n"


class _Rejects:
    """``FILE.rejects.ndjson``: one JSON line per refused row, in line order, created with
    the first refusal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self.written = False

    def start_over(self) -> None:
        self.path.unlink(missing_ok=True)

    def keep_before(self, line: int) -> None:
        """Drop every entry from ``line`` on (and a torn last entry): what a killed run wrote
        of a batch that is about to be written again from its checkpoint."""
        if not self.path.exists():
            return
        keep = 0
        with self.path.open("rb") as fh:
            for raw in fh:
                try:
                    entry = _decode(raw)
                except msgspec.DecodeError:
                    break
                if not raw.endswith(b"\n") or entry.get("line", line) >= line:
                    break
                keep += len(raw)
        with self.path.open("r+b") as fh:
            fh.truncate(keep)
        self.written = keep > 0

    def write(self, entries: list[tuple[int, bytes]]) -> None:
        if not entries:
            return
        if self._fh is None:
            self._fh = self.path.open("ab")
        for _, data in sorted(entries, key=lambda e: e[0]):
            self._fh.write(data)
        self._fh.flush()
        self.written = True

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --- import -------------------------------------------------------------------------------


def _prepare(raw: _Raw, tenant: Tenant) -> ImportRow | GatewayError:
    """A row as the API would take it as ``POST /v1/identify``, or why it is refused."""
    if raw.error is not None:
        return raw.error
    request = raw.body
    if not isinstance(request, IdentifyRequest):
        try:
            request = msgspec.convert(request, IdentifyRequest)
        except msgspec.ValidationError as exc:
            return Malformed(f"not an identify body: {exc}")
    call = translate_identify(request, tenant.contacts, tenant.companies)
    if call.violations:
        return ValidationFailed(call.violations)
    ops: list[RecordOp] = []
    if call.company is not None:
        ops.append(RecordOp(call.company, tenant.companies))
    assert call.contact is not None
    ops.append(RecordOp(call.contact, tenant.contacts))
    session = session_ref(tenant, call.session_id, publishable=False) if call.session_id else None
    return ImportRow(raw.line, ops, link=len(ops) == 2, session=session)


@dataclass
class _Batch:
    expect: int  # the checkpoint's offset before it
    start: int  # where its rows begin
    first_line: int
    rows: list[ImportRow] = field(default_factory=list)
    refused: list[tuple[int, GatewayError, Any]] = field(default_factory=list)  # before sending
    shown: dict[int, Any] = field(default_factory=dict)  # line -> row, of the rows sent
    end: int = 0
    last_line: int = 0
    sha: str = ""
    done: bool = False


def _batches(
    source: _Source, fh: IO[bytes], cur: _Cursor, tenant: Tenant, batch_rows: int, expect: int
) -> Iterator[_Batch]:
    """The rest of the file as batches; the last one is marked ``done`` (it may be empty).
    ``expect``: the checkpoint's offset before the first of them (0: there is none)."""
    batch = _Batch(expect, cur.offset, cur.line + 1)
    for raw in source.rows(fh, cur, tenant):
        prepared = _prepare(raw, tenant)
        if isinstance(prepared, GatewayError):
            batch.refused.append((raw.line, prepared, raw.shown))
        else:
            batch.rows.append(prepared)
            batch.shown[raw.line] = raw.shown
        full = len(batch.rows) + len(batch.refused) >= batch_rows
        if full or cur.offset - batch.start >= BATCH_BYTES:
            batch.end, batch.last_line, batch.sha = cur.offset, cur.line, cur.sha.hexdigest()
            yield batch
            batch = _Batch(cur.offset, cur.offset, cur.line + 1)
    batch.end, batch.last_line, batch.sha = cur.offset, cur.line, cur.sha.hexdigest()
    batch.done = True
    yield batch


def _mark(batch: _Batch, run: str) -> ImportMark:
    pre = [[line, _problem(err)] for line, err, _ in batch.refused]
    return ImportMark(
        offset=batch.end,
        line=batch.last_line,
        sha=batch.sha,
        batch_offset=batch.start,
        batch_line=batch.first_line,
        rows=len(batch.rows) + len(batch.refused),
        rejected=len(batch.refused),
        pre=_encode(pre).decode(),
        done=batch.done,
        run=run,
    )


def _prefix_sha(path: Path, offset: int) -> Any:
    sha = hashlib.sha256()
    left = offset
    with path.open("rb") as fh:
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            sha.update(chunk)
            left -= len(chunk)
    return sha


def _replay_rejects(
    source: _Source, tenant: Tenant, ck: ImportCheckpoint, rejects: _Rejects
) -> None:
    """Write the last committed batch's refusals again (a killed run may have committed the
    batch and not written them), with the rows read again from the file."""
    rejects.keep_before(ck.batch_line)
    problems: dict[int, dict[str, Any]] = {int(line): p for line, p in _decode(ck.pre)}
    problems.update({line: _problem(err) for line, err in ck.failures.items()})
    if not problems:
        return
    shown: dict[int, Any] = {}
    with source.path.open("rb") as fh:
        fh.seek(ck.batch_offset)
        cur = _Cursor(ck.batch_offset, ck.batch_line - 1, None)
        for raw in source.rows(fh, cur, tenant):
            if raw.line > ck.line:
                break
            if raw.line in problems:
                shown[raw.line] = raw.shown
    rejects.write([(line, _reject_line(line, p, shown.get(line))) for line, p in problems.items()])


async def import_file(
    store: Store,
    tenant: Tenant,
    path: Path,
    *,
    resume: bool = False,
    fmt: Format | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[ImportProgress], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Bulk identify every row of ``path`` for ``tenant`` (SPEC §9).

    Args:
        resume: continue after the last committed row of an earlier run of this file; without
            it an import starts from the first row (its earlier checkpoint is dropped).
        fmt: ``ndjson`` or ``csv``; by default from the extension or the first byte.
        batch_rows: rows per function call.
        progress: called after every committed batch.
        notice: told what an operator should know (an earlier run that is not resumed).

    Raises:
        ImportFailed: the file cannot be read, its CSV header is bad, it changed since the
            run being resumed, or another run of it moved the checkpoint.
    """
    started = time.perf_counter()
    source = _Source(path, fmt)
    source.read_header()
    rejects = _Rejects(path.with_name(path.name + REJECTS_SUFFIX))
    bulk = store.bulk
    ck = await bulk.checkpoint(tenant.id, source.id)
    tally = Tally()
    cur = _Cursor(0, 0, hashlib.sha256())
    resumed_at: int | None = None
    expect = 0
    if resume and ck is None and notice is not None:
        notice("no earlier run of this file to resume: importing from the first row")
    if resume and ck is not None:
        sha = await asyncio.to_thread(_prefix_sha, path, ck.offset)
        if ck.offset > source.size or sha.hexdigest() != ck.sha:
            raise ImportFailed(
                f"{path} changed since the run being resumed (its first {ck.offset} bytes "
                "differ): import it again without --resume"
            )
        try:
            _replay_rejects(source, tenant, ck, rejects)
        finally:
            rejects.close()  # opened again by the next write
        tally = Tally(ck.rows, ck.created, ck.updated, ck.unchanged, ck.rejected)
        if ck.done and source.size == ck.offset:  # else rows were appended: they follow
            return ImportSummary(
                path,
                source.format,
                tally,
                0,
                time.perf_counter() - started,
                ck.line,
                rejects.path if rejects.written else None,
                already_done=True,
            )
        cur = _Cursor(ck.offset, ck.line, sha)
        resumed_at, expect = ck.line, ck.offset
    else:
        if ck is not None:
            await bulk.forget_checkpoint(tenant.id, source.id)
            if not ck.done and notice is not None:
                notice(
                    f"an earlier import of this file stopped after line {ck.line}; "
                    "starting over (--resume continues it instead)"
                )
        rejects.start_over()

    run_rows = 0
    run = secrets.token_hex(8)  # tells this run's batches from another run's

    async def commit(batch: _Batch) -> None:
        nonlocal run_rows
        try:
            outcomes = await bulk.import_batch(
                tenant.id,
                source.id,
                expect=batch.expect,
                rows=batch.rows,
                contacts=tenant.contacts,
                companies=tenant.companies,
                mark=_mark(batch, run),
            )
        except CheckpointMoved as exc:
            if not await committed_already(batch, exc.offset):
                raise ImportFailed(
                    f"another run of this import moved its checkpoint (to byte {exc.offset}); "
                    "is it running? Nothing of this batch was written"
                ) from None
            return
        entries = [
            (line, _reject_line(line, _problem(err), shown)) for line, err, shown in batch.refused
        ]
        for _, err, _ in batch.refused:
            tally.count(err)
        for line, outcome in outcomes.items():
            tally.count(outcome)
            if isinstance(outcome, GatewayError):
                entries.append((line, _reject_line(line, _problem(outcome), batch.shown[line])))
        rejects.write(entries)
        run_rows += len(batch.rows) + len(batch.refused)
        if progress is not None:
            progress(ImportProgress(batch.end, source.size, run_rows, tally))

    async def committed_already(batch: _Batch, at: int) -> bool:
        """Whether the batch was committed by this very run: the client library sends a
        command again after a timeout, and the first one may have run. Its outcomes are then
        read back from the checkpoint (the counts, and the refusals of its last batch). The
        same batch committed by another run of the file is not: two runs stop each other."""
        ck = await bulk.checkpoint(tenant.id, source.id)
        if (
            ck is None
            or ck.run != run
            or at != batch.end
            or (ck.sha, ck.batch_line) != (batch.sha, batch.first_line)
        ):
            return False
        nonlocal run_rows
        entries = [(line, _reject_line(line, _problem(e), row)) for line, e, row in batch.refused]
        entries += [
            (line, _reject_line(line, _problem(err), batch.shown.get(line)))
            for line, err in ck.failures.items()
        ]
        rejects.write(entries)
        tally.rows, tally.created, tally.updated = ck.rows, ck.created, ck.updated
        tally.unchanged, tally.rejected = ck.unchanged, ck.rejected
        run_rows += len(batch.rows) + len(batch.refused)
        if progress is not None:
            progress(ImportProgress(batch.end, source.size, run_rows, tally))
        return True

    in_flight: asyncio.Task[None] | None = None
    try:
        with path.open("rb") as fh:
            if cur.offset == 0 and source.rows_start:
                # the header's bytes go into the file's digest like any other
                cur.sha.update(fh.read(source.rows_start))
                cur.offset = source.rows_start
                cur.line = _header_lines(path, source.rows_start)
            else:
                fh.seek(cur.offset)
            for batch in _batches(source, fh, cur, tenant, batch_rows, expect):
                # this batch was read and validated while Redis applied the previous one
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.create_task(commit(batch))
                await asyncio.sleep(0)  # let it send before reading on
            if in_flight is not None:
                await in_flight
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        if in_flight is not None and not in_flight.done():
            # reading failed while a batch was in flight: whether it committed or not, the
            # checkpoint says so; wait for it rather than leave it dangling
            with contextlib.suppress(Exception):
                await in_flight
        rejects.close()
    return ImportSummary(
        path,
        source.format,
        tally,
        run_rows,
        time.perf_counter() - started,
        resumed_at,
        rejects.path if rejects.written else None,
    )


def _header_lines(path: Path, end: int) -> int:
    with path.open("rb") as fh:
        return fh.read(end).count(b"\n")


# --- export -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportProgress:
    contacts: int
    companies: int


async def export_records(
    store: Store,
    tenant: Tenant,
    out: IO[bytes],
    *,
    progress: Callable[[ExportProgress], None] | None = None,
    page: int = 500,
) -> ExportProgress:
    """Write every company, then every contact, of ``tenant`` to ``out`` as NDJSON in the
    canonical JSON of SPEC §2 (as ``GET /v1/contacts/{id}`` answers). Each record is written as
    it is when its page is read; one written while the export runs may be missing or not.

    Returns:
        How many of each were written.
    """
    counts = {"company": 0, "contact": 0}
    entity: Entity
    for entity in ("company", "contact"):
        # SCAN may return a record twice; ids written are remembered to write each once
        seen: set[str] = set()
        fetch = asyncio.create_task(store.bulk.records(tenant.id, entity, "0", page))
        while True:
            cursor, records = await fetch
            if cursor != "0":  # fetch the next page while this one is written
                fetch = asyncio.create_task(store.bulk.records(tenant.id, entity, cursor, page))
            lines = []
            for record in records:
                if record.id not in seen:
                    seen.add(record.id)
                    lines.append(_encode(record))
            if lines:
                try:
                    out.write(b"\n".join(lines) + b"\n")
                except OSError as exc:
                    fetch.cancel()
                    raise ExportFailed(f"cannot write: {exc.strerror or exc}") from None
            counts[entity] += len(lines)
            if progress is not None:
                progress(ExportProgress(counts["contact"], counts["company"]))
            if cursor == "0":
                break
    return ExportProgress(counts["contact"], counts["company"])


# --- inferred fields ----------------------------------------------------------------------


@dataclass(frozen=True)
class InferredField:
    entity: Entity
    key: str
    type: str


async def inferred_fields(store: Store, tenant: Tenant) -> list[InferredField]:
    """The custom fields whose type the tenant inferred (SPEC §3.3), contacts first."""
    found = []
    entity: Entity
    for entity in ("contact", "company"):
        for hfield, type_ in (await store.bulk.inferred_types(tenant.id, entity)).items():
            found.append(InferredField(entity, hfield.removeprefix(CUSTOM_PREFIX), type_))
    return found


def field_name(name: str) -> tuple[Entity, str]:
    """``KEY`` or ``contact.KEY``: a contact field; ``company.KEY``: a company field."""
    if name.startswith("company."):
        return "company", name[len("company.") :]
    return "contact", name.removeprefix("contact.")


ResetOutcome = Literal["forgotten", "unknown", "busy"] | FieldHeld


async def reset_field(
    store: Store, tenant: Tenant, name: str, *, attempts: int = 3
) -> ResetOutcome:
    """Forget the inferred type of field ``name`` (see :func:`field_name`), only when no
    record holds it; the next value stored fixes its type again.

    Every record is scanned for the field, page by page, without blocking the server; then
    one atomic step checks the records written meanwhile (through the outbox) and forgets it.

    Returns:
        ``forgotten``; ``unknown`` (not an inferred field); :class:`FieldHeld` with a record
        holding it; ``busy`` (the outbox moved too far during every attempt).
    """
    entity, key = field_name(name)
    hfield = CUSTOM_PREFIX + key
    bulk = store.bulk
    if hfield not in await bulk.inferred_types(tenant.id, entity):
        return "unknown"
    for _ in range(attempts):
        since = await bulk.outbox_position(tenant.id)
        cursor = "0"
        while True:
            cursor, holders = await bulk.holders(tenant.id, entity, hfield, cursor)
            if holders:
                return FieldHeld(holders[0])
            if cursor == "0":
                break
        outcome = await bulk.forget_type(tenant.id, entity, hfield, since)
        if outcome != "unsure":
            return outcome
    return "busy"
