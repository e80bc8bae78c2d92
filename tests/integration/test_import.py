"""``idgateway import`` as a use case, in-process against the real Redis (SPEC §9).

What is proved here: a row is an identify body and lands as ``POST /v1/identify`` would land
it (the same records, field for field); a file with bad rows gives the exact rejects file,
each with its line and the problem the API would answer, and a correct summary; rows that
change nothing are ``unchanged``; a resumed run continues after the last committed row and
imports every row exactly once, rewriting the rejects of the batch a killed run may not have
written; a file that changed is refused on resume; a batch whose checkpoint moved writes
nothing. The real command, killed with SIGKILL, is in ``tests/e2e/test_operator_cli.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest

from idgateway import service
from idgateway.config import load_config
from idgateway.store import CheckpointMoved, ImportMark, Store
from idgateway.tenancy import Tenant
from tests.conftest import ACME_SECRET, uniq

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.conftest import RunningGateway


@pytest.fixture
async def api(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ACME_SECRET}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def acme(gateway: RunningGateway) -> Tenant:
    """Tenant ``acme`` of the test gateway (its declared fields, ``unknown_fields = infer``)."""
    return Tenant.build(load_config(gateway.config).tenants["acme"])


def ndjson(path: Path, lines: list[Any]) -> Path:
    """One line per item: a dict or list as JSON, a str as it is (a broken line)."""
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def rejects_of(path: Path) -> list[dict[str, Any]]:
    rejects = path.with_name(path.name + service.REJECTS_SUFFIX)
    return [json.loads(line) for line in rejects.read_text().splitlines()]


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two otherwise equal writes."""
    drop = {"id", "created_at", "updated_at", "company_ids"}
    return {k: v for k, v in record.items() if k not in drop}


async def test_a_file_with_bad_rows_gives_the_exact_rejects_and_summary(
    store: Store, acme: Tenant, tmp_path: Path, api: httpx.AsyncClient
) -> None:
    u = uniq("imp")
    taken = {"user_id": f"{u}-a", "traits": {"email": f"{u}-a@example.org"}}
    path = ndjson(
        tmp_path / "people.ndjson",
        [
            taken,  # 1: created
            {"user_id": f"{u}-b", "traits": {"email": f"{u}-b@example.org", "plan": "free"}},
            "",  # 3: a blank line is no row
            "{not json",  # 4
            {"user_id": f"{u}-c", "traits": {"email": f"{u}-a@example.org"}},  # 5: 409
            {"user_id": f"{u}-d", "traits": {"plan": "Platinum"}},  # 6: 422
            [1, 2],  # 7: not an object
            {"user_id": f"{u}-e", "traits": {"email": f"{u}-e@example.org"}, "extra": 1},  # 8
            taken,  # 9: unchanged
            {"traits": {"first_name": "Nobody"}},  # 10: no identifier
            {"user_id": f"{u}-f", "traits": {"email": f"{u}-f@example.org"}},  # 11: created
        ],
    )

    summary = await service.import_file(store, acme, path)

    t = summary.tally
    assert (t.rows, t.created, t.updated, t.unchanged, t.rejected) == (10, 3, 0, 1, 6)
    assert summary.run_rows == 10
    rejects = rejects_of(path)
    assert [r["line"] for r in rejects] == [4, 5, 6, 7, 8, 10]
    by_line = {r["line"]: r for r in rejects}
    assert by_line[4]["status"] == 400 and by_line[4]["row"] == "{not json"
    assert by_line[5]["status"] == 409
    assert by_line[5]["code"] == "external_id_mismatch"
    assert by_line[5]["row"] == {"user_id": f"{u}-c", "traits": {"email": f"{u}-a@example.org"}}
    assert by_line[6]["status"] == 422
    assert [e["path"] for e in by_line[6]["errors"]] == ["$.traits.plan"]
    assert by_line[7]["status"] == 400 and by_line[7]["row"] == [1, 2]
    assert by_line[8]["status"] == 400 and "extra" in by_line[8]["detail"]
    assert by_line[10]["errors"][0]["code"] == "no_identifier"
    assert all(r["type"].startswith("/problems/") and r["detail"] for r in rejects)
    # what was refused was not written; the rest was
    assert (await api.get("/v1/contacts", params={"user_id": f"{u}-c"})).status_code == 404
    found = (await api.get("/v1/contacts", params={"user_id": f"{u}-b"})).json()
    assert found["properties"]["plan"] == "Free"


async def test_a_row_lands_as_the_same_identify_call_would(
    store: Store, acme: Tenant, tmp_path: Path, api: httpx.AsyncClient
) -> None:
    u = uniq("same")

    def call(tag: str) -> dict[str, Any]:
        return {
            "user_id": f"{u}-{tag}",
            "traits": {
                "email": f"{u}-{tag}@example.org",
                "phone": "(555) 823-4312" if tag == "api" else "(555) 823-4313",
                "first_name": "Fred",
                "last_name": "Flintstone",
                "plan": "support",
                "tags": "free, popular, free",
                "home_address": {"city": "Bedrock", "postal_code": 70777},
                "dob": "1980/02/24",
                "visits": 3,
                "last_login_at": 1420070400,
            },
            "company": {"domain": f"https://www.{u}-{tag}.example.com/x", "name": "Slate"},
        }

    by_api = (await api.post("/v1/identify", json=call("api"))).json()
    path = ndjson(tmp_path / "one.ndjson", [call("file")])

    summary = await service.import_file(store, acme, path)

    assert summary.tally.created == 1
    by_file = (await api.get("/v1/contacts", params={"user_id": f"{u}-file"})).json()
    mine, theirs = comparable(by_file), comparable(by_api["contact"])
    for differs in ("external_id", "email", "phone"):
        mine.pop(differs), theirs.pop(differs)
    assert mine == theirs
    company = (await api.get(f"/v1/companies/{by_file['company_ids'][0]}")).json()
    assert company["domain"] == f"{u}-file.example.com"
    assert company["contact_count"] == 1


async def test_a_csv_file_names_fields_in_its_header(
    store: Store, acme: Tenant, tmp_path: Path, api: httpx.AsyncClient
) -> None:
    u = uniq("csv")
    path = tmp_path / "people.csv"
    path.write_text(
        "\ufeffuser_id,email,first_name,vip,home_address.city,visits,company.domain,company.tier\n"
        f'{u}-1,{u}-1@example.org,"Ann, the first",true,Paris,12,{u}.example.com,gold\n'
        f"{u}-2,{u}-2@example.org,Bob,maybe,,,,\n"  # 3: vip is a boolean
        f"{u}-3,{u}-3@example.org,Cy\n"  # 4: 3 cells
        f'{u}-4,{u}-4@example.org,"Dee\nDee",false,,7,,\n'  # 5-6: a cell over two lines
        f"{u}-5,{u}-5@example.org,Eve,,,,,\n",  # 7
        encoding="utf-8",
    )

    summary = await service.import_file(store, acme, path)

    t = summary.tally
    assert (t.rows, t.created, t.rejected) == (5, 3, 2)
    assert summary.format == "csv"
    assert [(r["line"], r["status"]) for r in rejects_of(path)] == [(3, 422), (4, 400)]
    assert rejects_of(path)[0]["row"]["vip"] == "maybe"
    first = (await api.get("/v1/contacts", params={"user_id": f"{u}-1"})).json()
    assert first["first_name"] == "Ann, the first"
    assert first["properties"]["vip"] is True
    assert first["properties"]["home_address"] == {"city": "Paris"}
    assert first["properties"]["visits"] == 12  # an inferred field, typed as JSON would be
    company = (await api.get(f"/v1/companies/{first['company_ids'][0]}")).json()
    assert company["properties"] == {"tier": "gold"}
    fourth = (await api.get("/v1/contacts", params={"user_id": f"{u}-4"})).json()
    assert fourth["first_name"] == "Dee\nDee"
    assert fourth["properties"]["vip"] is False


async def test_a_bad_csv_header_stops_the_import(
    store: Store, acme: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,email,email\n1,a@b.co,c@d.co\n")

    with pytest.raises(service.ImportFailed, match="named twice"):
        await service.import_file(store, acme, path)


async def test_csv_records_csv_cannot_read_are_rejects_and_the_rest_lands(
    store: Store, acme: Tenant, tmp_path: Path, api: httpx.AsyncClient
) -> None:
    """A stray carriage return, a cell past csv's field size limit and a number past Python's
    int digits neither stop the import nor each later --resume: each is a reject with its line
    and reason (the number is read as text, too long for one), and the rest lands."""
    u = uniq("csvbad")
    path = tmp_path / "odd.csv"
    path.write_bytes(
        b"user_id,email,visits_note\n"
        + f"{u}-1,{u}-1@example.org,a\rb\n".encode()  # 2: csv refuses it
        + f"{u}-2,{u}-2@example.org,{'x' * 200_000}\n".encode()  # 3: past the size limit
        + f"{u}-3,{u}-3@example.org,{'9' * 5000}\n".encode()  # 4: int() would raise
        + f"{u}-4,{u}-4@example.org,ok\n".encode()  # 5
    )

    summary = await service.import_file(store, acme, path)

    t = summary.tally
    assert (t.rows, t.created, t.rejected) == (4, 1, 3)
    rejects = rejects_of(path)
    assert [(r["line"], r["status"]) for r in rejects] == [(2, 400), (3, 400), (4, 422)]
    assert all("not CSV" in r["detail"] for r in rejects[:2]), rejects
    assert rejects[0]["row"].startswith(f"{u}-1,")
    assert len(rejects[1]["row"]) <= 2000
    assert rejects[2]["errors"][0]["code"] == "too_long"
    assert (await api.get("/v1/contacts", params={"user_id": f"{u}-4"})).status_code == 200
    for n in (1, 2, 3):
        assert (await api.get("/v1/contacts", params={"user_id": f"{u}-{n}"})).status_code == 404


async def test_a_csv_header_that_is_not_utf8_stops_the_import_clearly(
    store: Store, acme: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"user_id,email,pr\xe9nom\nu1,a@b.co,Zoe\n")

    with pytest.raises(service.ImportFailed, match="not valid UTF-8"):
        await service.import_file(store, acme, path)


async def test_an_ndjson_file_with_a_byte_order_mark_keeps_its_first_row(
    store: Store, acme: Tenant, tmp_path: Path, api: httpx.AsyncClient
) -> None:
    u = uniq("bom")
    path = tmp_path / "bom.ndjson"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"user_id": u, "traits": {"email": f"{u}@x.org"}}).encode()
    )

    summary = await service.import_file(store, acme, path)

    assert (summary.tally.rows, summary.tally.created, summary.tally.rejected) == (1, 1, 0)
    assert (await api.get("/v1/contacts", params={"user_id": u})).status_code == 200


async def test_importing_again_changes_nothing_and_rewrites_the_rejects(
    store: Store, acme: Tenant, tmp_path: Path
) -> None:
    u = uniq("again")
    rows = [{"user_id": f"{u}-{i}", "traits": {"email": f"{u}-{i}@example.org"}} for i in range(5)]
    path = ndjson(tmp_path / "again.ndjson", [*rows, "oops"])

    first = await service.import_file(store, acme, path, batch_rows=2)
    second = await service.import_file(store, acme, path, batch_rows=2)

    assert (first.tally.created, first.tally.rejected) == (5, 1)
    assert (second.tally.rows, second.tally.unchanged, second.tally.rejected) == (6, 5, 1)
    assert [r["line"] for r in rejects_of(path)] == [6]


class Killed(Exception):
    """Stands for the process dying at that point."""


async def test_a_run_killed_after_a_commit_is_resumed_exactly_once(
    store: Store, acme: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run dies after its third batch committed but before that batch's rejects reached
    the file: the resumed run writes them, continues with the fourth batch, and counts every
    row once (a row applied twice would count as ``unchanged``)."""
    u = uniq("kill")
    lines: list[Any] = []
    for i in range(1, 31):
        if i % 7 == 0:
            lines.append(f"broken line {i}")
        else:
            lines.append({"user_id": f"{u}-{i}", "traits": {"email": f"{u}-{i}@example.org"}})
    path = ndjson(tmp_path / "kill.ndjson", lines)
    writes = 0
    real_write = service._bulk._Rejects.write

    def dying_write(self: Any, entries: list[tuple[int, bytes]]) -> None:
        nonlocal writes
        writes += 1
        if writes == 3:
            raise Killed
        real_write(self, entries)

    monkeypatch.setattr(service._bulk._Rejects, "write", dying_write)
    with pytest.raises(Killed):
        await service.import_file(store, acme, path, batch_rows=5)
    monkeypatch.setattr(service._bulk._Rejects, "write", real_write)
    assert [r["line"] for r in rejects_of(path)] == [7]  # line 14 was lost with the kill

    summary = await service.import_file(store, acme, path, batch_rows=5, resume=True)

    t = summary.tally
    assert summary.resumed_at_line == 15
    assert (t.rows, t.created, t.unchanged, t.rejected) == (30, 26, 0, 4)
    assert summary.run_rows == 15
    assert [r["line"] for r in rejects_of(path)] == [7, 14, 21, 28]
    assert rejects_of(path)[1]["row"] == "broken line 14"


async def test_a_resume_refuses_a_file_that_changed(
    store: Store, acme: Tenant, tmp_path: Path
) -> None:
    """The import's id is a digest of the file's first 64 KiB; a change after them, in what a
    checkpoint covers, is caught by the digest of everything read."""
    u = uniq("chg")
    rows = [
        {
            "user_id": f"{u}-{i:04d}",
            "traits": {"email": f"{u}-{i:04d}@example.org", "bio": "x" * 200},
        }
        for i in range(400)
    ]
    path = ndjson(tmp_path / "chg.ndjson", rows)
    assert path.stat().st_size > 80 * 1024
    await service.import_file(store, acme, path, batch_rows=100)
    data = bytearray(path.read_bytes())
    at = data.index(f"{u}-0350@".encode())
    data[at : at + len(u) + 5] = f"{u}-9350".encode()  # same length, past the first 64 KiB
    path.write_bytes(bytes(data))

    with pytest.raises(service.ImportFailed, match="changed"):
        await service.import_file(store, acme, path, resume=True)


async def test_a_resume_of_another_file_starts_from_the_first_row(
    store: Store, acme: Tenant, tmp_path: Path
) -> None:
    u = uniq("other")
    path = ndjson(tmp_path / "o.ndjson", [{"user_id": u, "traits": {"email": f"{u}@x.org"}}])
    notices: list[str] = []

    summary = await service.import_file(store, acme, path, resume=True, notice=notices.append)

    assert summary.resumed_at_line is None and summary.tally.created == 1
    assert notices == ["no earlier run of this file to resume: importing from the first row"]


async def test_a_resume_of_a_finished_import_does_nothing(
    store: Store, acme: Tenant, tmp_path: Path
) -> None:
    u = uniq("fin")
    path = ndjson(tmp_path / "fin.ndjson", [{"user_id": u, "traits": {"email": f"{u}@x.org"}}])
    await service.import_file(store, acme, path)

    summary = await service.import_file(store, acme, path, resume=True)

    assert summary.already_done
    assert (summary.run_rows, summary.tally.created) == (0, 1)


async def test_a_resume_after_rows_were_appended_imports_only_them(
    store: Store, acme: Tenant, tmp_path: Path, api: httpx.AsyncClient
) -> None:
    """The import's id is a digest of the file's first 64 KiB: a finished import of a larger
    file, with rows appended since, is resumed from where it ended."""
    u = uniq("app")
    rows = [{"user_id": f"{u}-{i}", "traits": {"email": f"{u}-{i}@x.org"}} for i in range(1500)]
    path = ndjson(tmp_path / "grow.ndjson", rows)
    assert path.stat().st_size > 64 * 1024
    await service.import_file(store, acme, path)
    with path.open("a") as fh:
        fh.write(json.dumps({"user_id": f"{u}-new", "traits": {"email": f"{u}-new@x.org"}}))
        fh.write("\n")

    summary = await service.import_file(store, acme, path, resume=True)

    assert not summary.already_done
    assert summary.run_rows == 1
    assert (summary.tally.rows, summary.tally.created) == (1501, 1501)
    assert (await api.get("/v1/contacts", params={"user_id": f"{u}-new"})).status_code == 200


async def test_a_batch_whose_checkpoint_moved_writes_nothing(
    store: Store, acme: Tenant, api: httpx.AsyncClient
) -> None:
    from idgateway.dialects.unified import IdentifyRequest, translate_identify
    from idgateway.fields import RecordOp
    from idgateway.store import ImportRow

    u = uniq("stale")
    call = translate_identify(
        IdentifyRequest(user_id=u, traits={"email": f"{u}@example.org"}),
        acme.contacts,
        acme.companies,
    )
    row = ImportRow(1, [RecordOp(call.contact, acme.contacts)])  # type: ignore[arg-type]
    mark = ImportMark(
        offset=100, line=1, sha="0" * 64, batch_offset=0, batch_line=1, rows=1, rejected=0, pre="[]"
    )

    with pytest.raises(CheckpointMoved):
        await store.bulk.import_batch(
            acme.id,
            uniq("file"),
            expect=50,  # no checkpoint: it is at 0
            rows=[row],
            contacts=acme.contacts,
            companies=acme.companies,
            mark=mark,
        )

    assert (await api.get("/v1/contacts", params={"user_id": u})).status_code == 404


async def test_a_batch_sent_again_after_its_reply_was_lost_counts_once(
    store: Store, acme: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis client sends a command again after a timeout; the first may have run. The
    second finds the checkpoint already at the batch's end: the run reads the batch's
    outcome back from the checkpoint instead of failing or counting it twice."""
    u = uniq("retry")
    lines: list[Any] = [
        {"user_id": f"{u}-{i}", "traits": {"email": f"{u}-{i}@x.org"}} for i in range(9)
    ]
    lines[4] = {"user_id": f"{u}-4", "traits": {"email": f"{u}-0@x.org"}}  # 409 in Redis
    lines[6] = "not json"
    path = ndjson(tmp_path / "retry.ndjson", lines)
    real = type(store.bulk).import_batch

    async def twice(self: Any, *args: Any, **kwargs: Any) -> Any:
        await real(self, *args, **kwargs)  # ran, but its reply never arrived
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(type(store.bulk), "import_batch", twice)

    summary = await service.import_file(store, acme, path, batch_rows=4)

    t = summary.tally
    assert (t.rows, t.created, t.unchanged, t.rejected) == (9, 7, 0, 2)
    assert [(r["line"], r["status"]) for r in rejects_of(path)] == [(5, 409), (7, 400)]


async def test_two_runs_of_one_file_at_once_stop_each_other(
    store: Store, acme: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run of the same file commits this run's first batch (same boundaries) just
    before this run sends it: this run stops instead of taking it for its own lost reply."""
    u = uniq("race")
    lines = [{"user_id": f"{u}-{i}", "traits": {"email": f"{u}-{i}@x.org"}} for i in range(6)]
    path = ndjson(tmp_path / "race.ndjson", lines)
    real = type(store.bulk).import_batch
    raced: list[bool] = []

    async def after_another_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not raced:
            raced.append(True)
            other = msgspec.structs.replace(kwargs["mark"], run="another-run")
            await real(self, *args, **{**kwargs, "mark": other})
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(type(store.bulk), "import_batch", after_another_run)

    with pytest.raises(service.ImportFailed, match="another run"):
        await service.import_file(store, acme, path, batch_rows=3)
