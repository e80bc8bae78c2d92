"""The store contract, straight against the Redis server (embedded Valkey, or REDIS_URL).

These call the store's :class:`RecordRepository` in-process, so they also pin down what one
identify costs in Redis: one client call (FCALL), observed with MONITOR.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

import msgspec
import pytest
import redis

from idgateway.errors import IdentityConflict, ValidationFailed
from idgateway.fields import FieldInput, RecordOp, build_registry, validate
from idgateway.settings import TenantFile
from idgateway.store import RecordRepository, TenantKeys, bucket
from tests.conftest import RunningGateway, node_url, open_store, uniq, uniq_email

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

TENANT = msgspec.convert(
    {
        "id": "storetest",
        "default_region": "US",
        "fields": {"contact": [{"key": "member_no", "type": "text", "unique": True}]},
    },
    TenantFile,
)
CONTACTS = build_registry(TENANT, "contact")
KEYS = TenantKeys("storetest")


def change(**values: object) -> RecordOp:
    inputs = [FieldInput(k, v, f"$.{k}") for k, v in values.items()]
    found, violations = validate(CONTACTS, inputs)
    assert violations == []
    return RecordOp(found, CONTACTS)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RecordRepository]:
    opened = await open_store(redis_url)
    yield opened.records
    await opened.close()


def index(ns: str, kind: str, value: str) -> tuple[str, str]:
    """(hash key, hash field) of one identifying value, as the key map lays it out."""
    field = f"{kind}:{value}"
    return f"{KEYS.prefix}{ns}x:{bucket(field)}", field


def ulid(result: object) -> str:
    return str(result.record.id).split("_", 1)[1]  # type: ignore[attr-defined]


def test_bucket_matches_the_lua_function(redis_client: redis.Redis) -> None:
    script = """
    local s = ARGV[1]
    local h = 0
    for i = 1, #s do h = (h * 31 + string.byte(s, i)) % 65536 end
    return h
    """
    for field in ["e:fred@example.com", "x:12345", "u.member_no:ÄÖÜ-ünïcode", "p:+15558234312"]:
        assert redis_client.eval(script, 0, field) == bucket(field)


async def test_concurrent_upserts_of_one_new_email_make_one_contact(
    store: RecordRepository,
) -> None:
    email = uniq_email()
    results = await asyncio.gather(
        *(store.upsert("storetest", [change(email=email)]) for _ in range(32))
    )
    ids = {r[0].record.id for r in results}
    assert len(ids) == 1
    assert sum(r[0].created for r in results) == 1


async def test_conflict_writes_nothing(store: RecordRepository, redis_client: redis.Redis) -> None:
    a_email, b_email = uniq_email(), uniq_email()
    a = (await store.upsert("storetest", [change(email=a_email)]))[0]
    b = (await store.upsert("storetest", [change(email=b_email)]))[0]
    before = tuple(redis_client.hgetall(KEYS.record("c", ulid(r))) for r in (a, b))
    outbox = redis_client.xlen(KEYS.outbox)
    with pytest.raises(IdentityConflict) as raised:
        await store.upsert(
            "storetest", [change(email=a_email, secondary_emails=[b_email], first_name="X")]
        )
    owners = {c["value"]: c["record_id"] for c in raised.value.extensions["conflicts"]}
    assert owners == {a_email: a.record.id, b_email: b.record.id}
    after = (
        redis_client.hgetall(KEYS.record("c", ulid(a))),
        redis_client.hgetall(KEYS.record("c", ulid(b))),
    )
    assert after == before
    assert redis_client.xlen(KEYS.outbox) == outbox


async def test_inferred_type_is_fixed_by_the_first_value(store: RecordRepository) -> None:
    key = uniq("k")
    await store.upsert("storetest", [change(email=uniq_email(), **{key: 5})])
    with pytest.raises(ValidationFailed) as raised:
        await store.upsert("storetest", [change(email=uniq_email(), **{key: "five"})])
    assert raised.value.violations[0].code == "type"
    assert raised.value.violations[0].path == f"$.{key}"


async def test_index_always_mirrors_the_record(
    store: RecordRepository, redis_client: redis.Redis
) -> None:
    old, new, member = uniq_email(), uniq_email(), uniq("m")
    first = (await store.upsert("storetest", [change(email=old, member_no=member)]))[0]
    # Change the email through the member number: the old email is freed, the new one claimed.
    await store.upsert("storetest", [change(member_no=member, email=new)])
    email, member_no = CONTACTS.fields["email"], CONTACTS.fields["member_no"]
    assert await store.find("storetest", CONTACTS, email, old) is None
    found = await store.find("storetest", CONTACTS, email, new)
    assert found is not None and found.id == first.record.id
    # Deleting frees every identifier.
    assert await store.erase("storetest", ulid(first), CONTACTS)
    assert await store.find("storetest", CONTACTS, email, new) is None
    assert await store.find("storetest", CONTACTS, member_no, member) is None
    key, field = index("c", "e", new)
    assert redis_client.hget(key, field) is None


def _monitor(url: str, stop: threading.Event, into: list[str]) -> None:
    client = redis.Redis.from_url(url)
    with client.monitor() as monitor:
        for entry in monitor.listen():
            into.append(f"{entry['client_type']} {entry['command']}")
            if stop.is_set() and "XADD" in entry["command"].upper():
                break
    client.close()


def test_identify_is_one_redis_round_trip(gateway: RunningGateway, redis_url: str) -> None:
    with gateway.client() as api:
        api.post("/v1/identify", json={"traits": {"email": uniq_email()}})  # scripts loaded
        seen: list[str] = []
        stop = threading.Event()
        # on a cluster: the primary of tenant acme's slot
        server = node_url(redis_url, "idgw:{acme}:outbox")
        watcher = threading.Thread(target=_monitor, args=(server, stop, seen), daemon=True)
        watcher.start()
        time.sleep(0.3)  # MONITOR is attached
        stop.set()
        email = uniq_email()
        response = api.post(
            "/v1/identify",
            json={"user_id": uniq("id"), "traits": {"email": email, "plan_name": "x"}},
        )
        assert response.status_code == 201
        watcher.join(timeout=5)
    mine = [line for line in seen if email in line or "lua" in line.split()[0]]
    from_client = [line for line in mine if not line.startswith("lua")]
    inside = [line for line in mine if line.startswith("lua")]
    assert len(from_client) == 1, mine
    assert from_client[0].split()[1].upper() == "FCALL"
    assert any("XADD" in line.upper() for line in inside)
