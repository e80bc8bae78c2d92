"""Edges of the write and delivery scripts found in review: each would lose or corrupt data."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from idgateway.store import DeliveryOutcome, DeliveryQueues, JobResult, TenantKeys
from tests.conftest import RunningGateway, open_store, uniq, uniq_email

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx
    import redis

WEBHOOK = "webhook"


@pytest.fixture
async def queues(redis_url: str) -> AsyncIterator[DeliveryQueues]:
    store = await open_store(redis_url)
    yield store.deliveries
    await store.close()


def test_a_call_with_too_many_fields_is_refused_whole(api: httpx.Client) -> None:
    email = uniq_email()
    traits = {"email": email, **{f"k{uniq('')}{i}": i for i in range(600)}}
    response = api.post("/v1/identify", json={"traits": traits})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "too_many_fields"
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404


def test_a_call_with_hundreds_of_fields_is_written_whole(api: httpx.Client) -> None:
    """More hash fields than one Lua unpack() takes: written in chunks, all or nothing."""
    prefix = uniq("f")
    traits = {"email": uniq_email(), **{f"{prefix}_{i}": i for i in range(480)}}
    response = api.post("/v1/identify", json={"traits": traits})
    assert response.status_code == 201, response.text
    properties = response.json()["contact"]["properties"]
    assert len([k for k in properties if k.startswith(prefix)]) == 480
    contact = api.get(f"/v1/contacts/{response.json()['contact']['id']}").json()
    assert contact["properties"][f"{prefix}_479"] == 479


def test_a_buffered_value_cannot_take_the_identifying_value_from_a_found_contact(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    email = uniq_email()
    fred = api.post("/v1/identify", json={"traits": {"email": email}}).json()["contact"]
    session = "s" + uniq("")
    with gateway.client() as client:
        response = client.post(
            f"/v1/sessions/{session}-000000/calls",
            json={
                "calls": [
                    {
                        "op": "setContact",
                        "properties": {"contact_email": uniq_email(), "contact_first_name": "Fred"},
                    },
                    {"op": "identifyContact", "key": "contact_email", "value": email},
                ]
            },
        )
    assert response.status_code == 200, response.text
    found = response.json()["contact"]
    assert found["id"] == fred["id"]
    assert found["email"] == email  # the identify value stays
    assert found["first_name"] == "Fred"  # other buffered values still apply
    assert api.get("/v1/contacts", params={"email": email}).json()["id"] == fred["id"]


def test_merge_never_stores_an_empty_list_as_an_object(api: httpx.Client) -> None:
    email = uniq_email()
    into = api.post(
        "/v1/identify", json={"traits": {"email": email, "secondary_emails": [email]}}
    ).json()["contact"]
    other = api.post("/v1/identify", json={"traits": {"email": uniq_email()}}).json()["contact"]
    merged = api.post("/v1/contacts/merge", json={"into": into["id"], "from": other["id"]})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert isinstance(body["secondary_emails"], list)
    assert email not in body["secondary_emails"]


async def _claim(queues: DeliveryQueues, tenant: str, lease_ms: int = 60_000) -> list[str]:
    """The lease tokens of the jobs claimed."""
    jobs, _next = await queues.claim(tenant, WEBHOOK, lease_ms=lease_ms, limit=10)
    return [job.token for job in jobs]


async def _complete(
    queues: DeliveryQueues, tenant: str, rec: str, token: str, version: int, ref: str | None = None
) -> None:
    result = JobResult(rec, DeliveryOutcome.OK, token=token, version=version, ref=ref)
    await queues.complete(tenant, WEBHOOK, 100, [result])


async def test_a_stale_lease_cannot_complete_a_job_another_worker_holds(
    queues: DeliveryQueues, redis_client: redis.Redis
) -> None:
    tenant = uniq("lease")
    keys = TenantKeys(tenant)
    rec = "c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"
    redis_client.zadd(keys.vendor("q", WEBHOOK), {rec: 0})
    first = await _claim(queues, tenant)
    assert len(first) == 1
    old_token = first[0]
    # the first worker stalls past its lease: another worker claims the job
    redis_client.zadd(keys.vendor("f", WEBHOOK), {rec: 0})
    second = await _claim(queues, tenant)
    assert len(second) == 1 and second[0] != old_token
    # the stalled worker wakes up and reports: ignored, the lease stays with the second
    await _complete(queues, tenant, rec, old_token, 1)
    assert redis_client.zscore(keys.vendor("f", WEBHOOK), rec) is not None
    assert redis_client.hget(keys.vendor("dv", WEBHOOK), rec) is None
    await _complete(queues, tenant, rec, second[0], 2)
    assert redis_client.zscore(keys.vendor("f", WEBHOOK), rec) is None
    assert redis_client.hget(keys.vendor("dv", WEBHOOK), rec) == b"2"


async def test_a_vendor_ref_of_a_record_deleted_in_flight_goes_to_its_tombstone(
    queues: DeliveryQueues, redis_client: redis.Redis
) -> None:
    tenant = uniq("tomb")
    keys = TenantKeys(tenant)
    rec = "c_01JDQ8Z6X4M2V5B7N9P3R6T8W2"
    redis_client.set(f"{keys.prefix}tomb:{rec}", json.dumps({"id": rec, "version": 3}))
    redis_client.zadd(keys.vendor("q", WEBHOOK), {rec: 0})
    token = (await _claim(queues, tenant))[0]
    await _complete(queues, tenant, rec, token, 2, ref="vendor-42")
    tomb = json.loads(redis_client.get(f"{keys.prefix}tomb:{rec}"))
    assert tomb["vendor_refs"] == {WEBHOOK: "vendor-42"}


def test_erasing_a_contact_erases_its_cached_profile_data(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email = uniq_email()
    contact = api.post("/v1/identify", json={"traits": {"email": email}}).json()["contact"]
    cache = f"idgw:{{acme}}:pf:{email}"
    redis_client.hset(cache, mapping={"d": "{}", "at": "1"})
    assert api.delete(f"/v1/contacts/{contact['id']}").status_code == 204
    assert redis_client.exists(cache) == 0


def test_a_non_ascii_user_hash_is_refused_not_a_crash(gateway: RunningGateway) -> None:
    from tests.conftest import VERIFIED_PUBLISHABLE

    with gateway.client(None, **{"X-Idgw-Key": VERIFIED_PUBLISHABLE}) as browser:
        sid = browser.post("/v1/sessions").json()["id"]
        response = browser.post(
            f"/v1/sessions/{sid}/calls",
            json={
                "calls": [
                    {
                        "op": "identifyContact",
                        "key": "contact_email",
                        "value": uniq_email(),
                        "user_hash": "é" * 64,
                    }
                ]
            },
        )
    assert response.status_code == 403


@pytest.mark.parametrize("query", ["cursor=garbage", "status=queued&cursor=abc"])
def test_a_malformed_deliveries_cursor_is_400(api: httpx.Client, query: str) -> None:
    response = api.get(f"/v1/deliveries?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
