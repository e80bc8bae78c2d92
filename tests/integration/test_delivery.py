"""Delivery semantics (SPEC §6, §5.3 deliveries, §5.7 metrics, §9 CLI) against a real Redis
and the vendor emulators.

Each test runs its own gateway (``serve`` with the in-process worker unless said otherwise)
with a tenant of its own, so queues, dead letters and metrics never mix. Delivery settings are
the fast ones of :func:`delivery_gateway` (retries 200ms/400ms/600ms, timeout 1s, coalescing
window 100ms) unless a test overrides them.

Timing is asserted only where the behaviour is about time (Retry-After, a hanging vendor not
delaying another), always with generous margins; everything else waits for an outcome.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from idgateway.store import TenantKeys
from tests.conftest import uniq, uniq_email
from tests.emulators import SMOOCH, Answer, Hang, Recorded, Reset, VendorEmulator
from tests.integration.delivery_support import WEBHOOK_SECRET, DeliveryGateway, delivery_gateway

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

T = TypeVar("T")


# --- helpers ----------------------------------------------------------------------------------


def wait_until(
    probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        time.sleep(interval)
        last = probe()
    return last


def hook_events(emu: VendorEmulator) -> list[dict[str, Any]]:
    """Bodies the webhook emulator received, in arrival order."""
    return [r.json() for r in list(emu.requests)]


def for_record(emu: VendorEmulator, record_id: str) -> list[Recorded]:
    return [
        r for r in list(emu.requests) if (r.json() or {}).get("data", {}).get("id") == record_id
    ]


def wait_version(
    emu: VendorEmulator, record_id: str, version: int, timeout: float = 15.0
) -> list[Recorded]:
    """Wait until the webhook received ``record_id`` at ``version``; its requests so far."""

    def probe() -> list[Recorded]:
        got = for_record(emu, record_id)
        return got if any(r.json()["data"].get("version") == version for r in got) else []

    return wait_until(probe, timeout, what=f"{record_id} v{version} at the webhook")


def verify_signature(request: Recorded) -> None:
    """Standard Webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body> under the secret."""
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + request.body, hashlib.sha256).digest()
    ).decode()
    assert f"v1,{expected}" in request.headers["webhook-signature"].split(" ")
    assert abs(int(ts) - time.time()) < 300


def dead_letters(dg: DeliveryGateway, vendor: str | None = None) -> list[dict[str, Any]]:
    params = {"status": "dead"}
    if vendor:
        params["vendor"] = vendor
    response = dg.api.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def metric_samples(dg: DeliveryGateway) -> dict[tuple[str, str, str], float]:
    """This tenant's delivery samples: (sample name, vendor, outcome or "") → value."""
    text = httpx.get(f"{dg.url}/metrics", timeout=10).text
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("tenant") != dg.tenant:
                continue
            key = (sample.name, sample.labels.get("vendor", ""), sample.labels.get("outcome", ""))
            out[key] = sample.value
    return out


def _due_jobs(dg: DeliveryGateway, vendor: str) -> set[str]:
    """Records whose job waits in ``vendor``'s queue with its due time passed."""
    params = {"status": "queued", "vendor": vendor}
    items = dg.api.get("/v1/deliveries", params=params).json()["items"]
    now = datetime.now(UTC)
    return {
        item["record_id"]
        for item in items
        if item["next_attempt_at"]
        and datetime.fromisoformat(item["next_attempt_at"].replace("Z", "+00:00")) <= now
    }


def run_cli(dg: DeliveryGateway, *args: str) -> subprocess.CompletedProcess[str]:
    """``idgateway deliveries --config … --tenant … ARGS`` as a subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in ("IDGW_CONFIG", "IDGW_REDIS_URL")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "idgateway",
            "deliveries",
            "--config",
            str(dg.config),
            "--tenant",
            dg.tenant,
            *args,
        ],
        env={**env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


# --- creates, updates, companies, deletes, vendor refs ---------------------------------------


def test_creates_updates_and_companies_reach_vendors_as_current_state(
    tmp_path: Path, redis_url: str
) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook", "smooch"]) as dg:
        hook, smooch = dg.emulators["webhook"], dg.emulators["smooch"]
        email, user = uniq_email(), uniq("u")
        created = dg.identify(user_id=user, traits={"email": email, "first_name": "Fred"})
        contact = created["contact"]
        first = wait_version(hook, contact["id"], 1)[0]
        body = first.json()
        assert body["type"] == "contact.upserted"
        assert body["data"]["email"] == email and body["data"]["first_name"] == "Fred"
        verify_signature(first)
        assert first.headers["idempotency-key"] == first.headers["webhook-id"]

        # Smooch: not found, so pre-created with the app's user id (smooch-v1.md §3)
        # (found by method, not position: a slow run may resend a timed-out request)
        app = f"/v1.1/apps/{SMOOCH['app_id']}/appusers"
        found, create = smooch.wait_for_one("GET", app), smooch.wait_for_one("POST", app)
        assert found.path == f"{app}/{user}" and found.at < create.at
        assert create.path == app
        assert create.json()["userId"] == user
        assert create.json()["email"] == email and create.json()["givenName"] == "Fred"
        # The appUser _id Smooch answers is kept as a vendor ref (without a new version).
        refs = wait_until(
            lambda: dg.api.get(f"/v1/contacts/{contact['id']}").json()["vendor_refs"].get("smooch"),
            what="vendor_refs.smooch",
        )
        assert smooch.model.find(user)["_id"] == refs  # type: ignore[attr-defined]

        # An update: the vendor gets the record as it is now, with a new delivery id.
        dg.identify(user_id=user, traits={"first_name": "Wilma", "plan": "Pro"})
        second = wait_version(hook, contact["id"], 2)[-1]
        data = second.json()["data"]
        assert data["first_name"] == "Wilma" and data["properties"]["plan"] == "Pro"
        assert data["email"] == email
        assert second.headers["idempotency-key"] != first.headers["idempotency-key"]
        put2 = wait_until(
            lambda: [
                r
                for r in list(smooch.requests)
                if r.method == "PUT" and r.json().get("givenName") == "Wilma"
            ],
            what="the PUT with the new name",
        )[0]
        assert put2.path == f"{app}/{refs}"

        # Companies: company.upserted reaches the adapters that take it (the webhook).
        domain = f"{uniq('d')}.example.com"
        group = dg.api.post(
            "/v1/group", json={"user_id": user, "company": {"domain": domain, "name": "Acme"}}
        )
        assert group.status_code in (200, 201), group.text
        company = wait_until(
            lambda: [
                e for e in hook_events(dg.emulators["webhook"]) if e["type"] == "company.upserted"
            ],
            what="company.upserted",
        )[0]
        assert company["data"]["domain"] == domain and company["data"]["name"] == "Acme"


def test_deletes_reach_every_adapter_taking_contact_delete(tmp_path: Path, redis_url: str) -> None:
    adapters = ["webhook", "smooch", "gist", "groove"]
    with delivery_gateway(tmp_path, redis_url, adapters) as dg:
        user, email = uniq("u"), uniq_email()
        contact = dg.identify(user_id=user, traits={"email": email})["contact"]
        for name in adapters:
            dg.emulators[name].wait_for(2 if name == "smooch" else 1)
        wait_until(
            lambda: dg.api.get(f"/v1/contacts/{contact['id']}").json()["vendor_refs"].get("smooch"),
            what="vendor_refs.smooch",
        )
        gist_ref = wait_until(
            lambda: dg.api.get(f"/v1/contacts/{contact['id']}").json()["vendor_refs"].get("gist"),
            what="vendor_refs.gist",
        )
        assert dg.api.delete(f"/v1/contacts/{contact['id']}").status_code == 204

        deleted = wait_until(
            lambda: next(
                (
                    r
                    for r in list(dg.emulators["webhook"].requests)
                    if r.json()["type"] == "contact.deleted"
                ),
                None,
            ),
            what="contact.deleted",
        )
        body = deleted.json()
        assert body["data"]["id"] == contact["id"]
        verify_signature(deleted)
        # After GET and pre-create; found by method, since a slow run may resend one.
        smooch_delete = dg.emulators["smooch"].wait_for_one("DELETE", "/v1.1/")
        # SPEC §6: the delete uses the appUser _id Smooch returned
        ref = dg.emulators["smooch"].wait_for_one("POST", "/v1.1/").json()["userId"]
        assert ref == user
        assert smooch_delete.path.startswith(f"/v1.1/apps/{SMOOCH['app_id']}/appusers/")
        assert smooch_delete.path.rsplit("/", 1)[1] not in (user, contact["id"])
        # Gist deletes by the id it returned: the vendor ref is used for the delete.
        gist_delete = dg.emulators["gist"].wait_for_one("DELETE", "/contacts/")
        assert gist_delete.path == f"/contacts/{gist_ref}"
        # Groove does not take contact.delete: it hears nothing more.
        time.sleep(1.0)
        assert len(dg.emulators["groove"].requests) == 1
        assert len(dg.emulators["webhook"].requests) == 2


def test_an_erasure_during_a_delivery_to_a_vendor_without_erasure_keeps_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    """Groove takes no contact.delete. A contact erased while its update hangs at Groove: the
    hung attempt ends, the job finds the tombstone and sends nothing, and the gateway keeps no
    delivered version of the erased record for Groove (SPEC §5.3: erasure)."""
    # a 3 s vendor timeout: the erasure lands while the first attempt still hangs, even on a
    # loaded machine, so no retry of the update is sent before it
    with delivery_gateway(tmp_path, redis_url, ["groove"], delivery={"timeout": "3s"}) as dg:
        groove = dg.emulators["groove"]
        delivered = TenantKeys(dg.tenant).vendor("dv", "groove")
        user = uniq("u")
        contact = dg.identify(user_id=user, traits={"email": uniq_email()})["contact"]
        wait_until(lambda: dg.redis.hexists(delivered, contact["id"]), what="first delivery")
        groove.always(Hang(6))  # longer than the timeout
        dg.identify(user_id=user, traits={"name": "Wilma"})
        groove.wait_for(2)  # the update is in flight, hanging
        assert dg.api.delete(f"/v1/contacts/{contact['id']}").status_code == 204
        groove.always(None)

        wait_until(lambda: not dg.redis.hexists(delivered, contact["id"]), what="dv cleared")
        assert not dg.redis.hexists(TenantKeys(dg.tenant).vendor("jobs", "groove"), contact["id"])
        time.sleep(1.0)  # behaviour wait: nothing more reaches Groove for the erased contact
        assert [r.method for r in groove.requests] == ["PUT", "PUT"]


# --- retries, dead letters, replay -----------------------------------------------------------


def test_retry_then_success_keeps_one_idempotency_key(tmp_path: Path, redis_url: str) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"]) as dg:
        hook = dg.emulators["webhook"]
        hook.fail(Answer(503, {"error": "down"}))
        hook.fail(Reset())
        hook.fail(Answer(408))
        contact = dg.identify(traits={"email": uniq_email()})["contact"]
        requests = hook.wait_for(4)
        keys = {r.headers["idempotency-key"] for r in requests}
        assert len(keys) == 1, keys
        assert {r.headers["webhook-id"] for r in requests} == keys
        assert [r.json()["data"]["version"] for r in requests] == [1, 1, 1, 1]
        assert all(r.json()["data"]["id"] == contact["id"] for r in requests)
        time.sleep(1.0)  # the fourth succeeded: nothing more is sent, nothing is dead
        assert len(hook.requests) == 4
        assert dead_letters(dg) == []


def test_400_is_dead_lettered_at_once_and_replay_via_api_delivers(
    tmp_path: Path, redis_url: str
) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook", "smooch"]) as dg:
        hook = dg.emulators["webhook"]
        hook.fail(Answer(400, {"error": "bad email for this vendor"}))
        contact = dg.identify(traits={"email": uniq_email()})["contact"]
        first = hook.wait_for(1)[0]
        dead = wait_until(lambda: dead_letters(dg, "webhook"), what="a dead letter")
        time.sleep(1.0)  # longer than the first retry step: a 400 is never retried
        assert len(hook.requests) == 1

        assert len(dead) == 1
        item = dead[0]
        assert item["id"] == first.headers["idempotency-key"]
        assert item["vendor"] == "webhook"
        assert item["event"] == "contact.upserted"
        assert item["record_id"] == contact["id"]
        assert item["status"] == "dead"
        assert item["attempts"] == 1
        assert item["last_status"] == 400
        assert "bad email for this vendor" in item["response_excerpt"]
        assert abs(parse_ts(item["first_attempt_at"]) - first.at) < 5
        # The other vendor got it and has no dead letter.
        dg.emulators["smooch"].wait_for(1)
        assert dead_letters(dg, "smooch") == []

        replayed = dg.api.post(f"/v1/deliveries/{item['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        second = hook.wait_for(2)[1]
        assert second.json()["data"]["id"] == contact["id"]
        assert second.headers["idempotency-key"] == item["id"]  # same version, same id
        assert dead_letters(dg, "webhook") == []
        assert dg.api.post(f"/v1/deliveries/{item['id']}/replay").status_code == 404
        time.sleep(0.5)
        assert len(hook.requests) == 2  # delivered once, not again


def test_exhausted_schedule_is_dead_lettered_then_cli_replay_by_id(
    tmp_path: Path, redis_url: str
) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"]) as dg:
        hook = dg.emulators["webhook"]
        hook.always(Answer(500, {"error": "boom"}))
        contact = dg.identify(traits={"email": uniq_email()})["contact"]
        dead = wait_until(lambda: dead_letters(dg, "webhook"), what="a dead letter")
        # one attempt plus one per retry step (3), then dead; nothing after that
        time.sleep(1.0)
        assert len(hook.requests) == 4
        assert len({r.headers["idempotency-key"] for r in hook.requests}) == 1
        item = dead[0]
        assert item["record_id"] == contact["id"]
        assert item["attempts"] == 4
        assert item["last_status"] == 500
        assert "boom" in item["response_excerpt"]
        assert abs(parse_ts(item["first_attempt_at"]) - hook.requests[0].at) < 5

        listed = run_cli(dg, "list", "--status", "dead", "--vendor", "webhook")
        assert listed.returncode == 0, listed.stderr
        assert item["id"] in listed.stdout

        hook.always(None)
        replayed = run_cli(dg, "replay", item["id"])
        assert replayed.returncode == 0, replayed.stderr
        delivered = hook.wait_for(5)[4]
        assert delivered.json()["data"]["id"] == contact["id"]
        assert dead_letters(dg, "webhook") == []
        unknown = run_cli(dg, "replay", "d_nosuchdelivery")
        assert unknown.returncode == 1


def test_cli_replay_all_dead_delivers_every_dead_letter(tmp_path: Path, redis_url: str) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"]) as dg:
        hook = dg.emulators["webhook"]
        hook.fail(Answer(422, {"error": "rejected"}), times=2)
        ids = [dg.identify(traits={"email": uniq_email()})["contact"]["id"] for _ in range(2)]
        wait_until(lambda: len(dead_letters(dg, "webhook")) == 2, what="two dead letters")
        assert len(hook.requests) == 2

        replayed = run_cli(dg, "replay", "--all-dead")
        assert replayed.returncode == 0, replayed.stderr
        hook.wait_for(4)
        for record_id in ids:
            assert len(for_record(hook, record_id)) == 2
        assert dead_letters(dg) == []


# --- 410, Retry-After, isolation -------------------------------------------------------------


def test_410_disables_the_vendor_others_continue_and_enable_resumes(
    tmp_path: Path, redis_url: str
) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook", "groove"]) as dg:
        hook, groove = dg.emulators["webhook"], dg.emulators["groove"]
        hook.fail(Answer(410, {"error": "gone"}))
        user_a = uniq("a")
        a = dg.identify(user_id=user_a, traits={"email": uniq_email()})["contact"]
        hook.wait_for(1)
        groove.wait_for(1)
        dg.identify(user_id=user_a, traits={"first_name": "Later"})
        b = dg.identify(traits={"email": uniq_email()})["contact"]
        groove.wait_for(3)
        # Both records' jobs wait in the webhook's queue, due, and are not sent: the lane
        # holds them while its vendor is disabled (no fixed sleep: the queue says so).
        wait_until(
            lambda: _due_jobs(dg, "webhook") >= {a["id"], b["id"]},
            15,
            what="both jobs due in the disabled webhook's queue",
        )
        assert len(hook.requests) == 1, "a vendor that answered 410 got more requests"

        enabled = run_cli(dg, "enable", "webhook")
        assert enabled.returncode == 0, enabled.stderr
        wait_version(hook, a["id"], 2, timeout=15)  # the record as it is now
        wait_version(hook, b["id"], 1, timeout=15)
        # a dead letter was not made of it: the record was not at fault
        assert dead_letters(dg, "webhook") == []


def test_retry_after_is_honoured(tmp_path: Path, redis_url: str) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"]) as dg:
        hook = dg.emulators["webhook"]
        hook.fail(Answer(429, {"error": "slow down"}, {"Retry-After": "2"}))
        dg.identify(traits={"email": uniq_email()})
        first, second = hook.wait_for(2, timeout=15)[:2]
        gap = second.at - first.at
        # without Retry-After the next attempt would come after ~200ms
        assert gap >= 1.7, f"the retry came {gap:.2f}s after a 429 with Retry-After: 2"
        assert second.headers["idempotency-key"] == first.headers["idempotency-key"]


# The two tests below give the vendor a 3 s timeout: the window in which the other vendor's
# deliveries must arrive is then wide enough for a loaded machine, and a worker that waited for
# the hung attempt would still land past it.
HUNG_TIMEOUT_S = 3.0


def test_a_hanging_vendor_does_not_delay_another(tmp_path: Path, redis_url: str) -> None:
    with delivery_gateway(
        tmp_path, redis_url, ["webhook", "groove"], delivery={"timeout": "3s"}
    ) as dg:
        hook, groove = dg.emulators["webhook"], dg.emulators["groove"]
        hook.always(Hang(8))  # far longer than the timeout
        dg.identify(traits={"email": uniq_email()})
        hung = hook.wait_for(1)[0]
        groove.wait_for(1)
        # While the webhook's attempt hangs, new changes still reach groove at once.
        for _ in range(2):
            dg.identify(traits={"email": uniq_email()})
        arrived = groove.wait_for(3, timeout=10)
        ends = hung.at + HUNG_TIMEOUT_S  # the hung attempt ends at the timeout
        assert arrived[2].at < ends, (
            f"groove got the change {arrived[2].at - hung.at:.2f}s after the webhook's hung "
            "attempt started, not before it ended"
        )
        hook.always(None)


def test_a_vendor_hanging_on_many_records_does_not_starve_another(
    tmp_path: Path, redis_url: str
) -> None:
    """Every slot of the worker's concurrency held by one hanging vendor must not hold back
    another vendor (SPEC §6: one vendor's outage never delays another's deliveries)."""
    with delivery_gateway(
        tmp_path, redis_url, ["webhook", "groove"], delivery={"concurrency": 4, "timeout": "3s"}
    ) as dg:
        hook, groove = dg.emulators["webhook"], dg.emulators["groove"]
        hook.always(Hang(8))
        for _ in range(8):
            dg.identify(traits={"email": uniq_email()})
        groove.wait_for(8)
        hung = hook.wait_for(4)
        started = max(r.at for r in hung[:4])
        # the webhook has its (concurrency) attempts hanging now; a change for groove:
        dg.identify(traits={"email": uniq_email()})
        arrived = groove.wait_for(9, timeout=15)
        ends = min(r.at for r in hung[:4]) + HUNG_TIMEOUT_S
        assert arrived[8].at < ends, (
            f"groove got the change {arrived[8].at - started:.2f}s after the webhook's attempts "
            "began hanging: it waited for them"
        )
        hook.always(None)


# --- order and coalescing --------------------------------------------------------------------


def test_never_an_older_version_after_a_newer_one(tmp_path: Path, redis_url: str) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"]) as dg:
        hook = dg.emulators["webhook"]
        hook.fail(Hang(0.5))  # the first delivery is slow (and then fails): changes go on
        user = uniq("u")
        record_id = dg.identify(user_id=user, traits={"email": uniq_email(), "n": 0})["contact"][
            "id"
        ]
        final = 1
        for i in range(1, 40):
            time.sleep(0.02)
            final = dg.identify(user_id=user, traits={"n": i})["contact"]["version"]
        got = wait_version(hook, record_id, final)
        time.sleep(0.5)
        got = for_record(hook, record_id)
        versions = [r.json()["data"]["version"] for r in got]
        # the first attempt hung (504): every later one was answered 2xx
        assert versions[0] <= versions[1]
        assert all(a < b for a, b in itertools.pairwise(versions)), versions
        assert versions[-1] == final
        assert got[-1].json()["data"]["properties"]["n"] == 39
        # at most one delivery of the record in flight: nothing came while the first hung
        assert got[1].at >= got[0].at + 0.45, (
            "a second delivery started while the first was in flight"
        )


def test_a_burst_of_100_updates_reaches_the_vendor_as_at_most_5_deliveries(
    tmp_path: Path, redis_url: str
) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"]) as dg:
        hook = dg.emulators["webhook"]
        user = uniq("u")
        record_id = dg.identify(user_id=user, traits={"email": uniq_email(), "n": -1})["contact"][
            "id"
        ]
        wait_version(hook, record_id, 1)
        hook.clear()
        started = time.monotonic()

        def updates(first: int) -> None:  # a burst: four clients at once, 25 updates each
            for i in range(first, first + 25):
                dg.identify(user_id=user, traits={"n": i})

        threads = [threading.Thread(target=updates, args=(k * 25,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
        final = dg.api.get(f"/v1/contacts/{record_id}").json()
        assert final["version"] == 101
        wait_version(hook, record_id, final["version"])
        time.sleep(1.0)
        got = for_record(hook, record_id)
        print(
            f"burst of 100 updates in {took:.2f}s -> {len(got)} deliveries: "
            f"{[r.json()['data']['version'] for r in got]}"
        )
        assert len(got) <= 5, f"{len(got)} deliveries for a burst of 100 updates"
        last = got[-1].json()["data"]
        # state, not diffs: the last delivery is the record as it ended up
        assert last["version"] == 101
        assert last["properties"]["n"] == final["properties"]["n"]


# --- deliveries API, metrics, trimming -------------------------------------------------------


def test_metrics_show_outcomes_retry_depth_dead_letters_and_queued_jobs(
    tmp_path: Path, redis_url: str
) -> None:
    delivery = {"retry_schedule": ["200ms", "60s"]}
    with delivery_gateway(
        tmp_path, redis_url, ["webhook", "smooch", "gist"], delivery=delivery
    ) as dg:
        dg.emulators["smooch"].always(Answer(503, {"error": "maintenance"}))
        dg.emulators["gist"].fail(Answer(400, {"error": "invalid"}))
        contact = dg.identify(traits={"email": uniq_email()})["contact"]
        dg.emulators["webhook"].wait_for(1)
        dg.emulators["smooch"].wait_for(2)  # first attempt, first retry; the next in 60s
        dg.emulators["gist"].wait_for(1)

        def ready() -> dict[tuple[str, str, str], float]:
            m = metric_samples(dg)
            done = (
                m.get(("idgw_deliveries_total", "webhook", "ok"), 0) >= 1
                and m.get(("idgw_deliveries_total", "smooch", "retry"), 0) >= 2
                and m.get(("idgw_deliveries_total", "gist", "dead"), 0) >= 1
                and m.get(("idgw_dead_letters", "gist", ""), 0) >= 1
            )
            return m if done else {}

        m = wait_until(ready, timeout=15, interval=0.5, what="delivery metrics")
        assert m[("idgw_deliveries_total", "gist", "dead")] == 1
        assert m[("idgw_dead_letters", "gist", "")] == 1
        assert m[("idgw_dead_letters", "webhook", "")] == 0
        assert m[("idgw_delivery_retry_depth", "smooch", "")] == 1
        assert m[("idgw_delivery_retry_depth", "webhook", "")] == 0
        for vendor in ("webhook", "smooch", "gist"):
            assert m[("idgw_outbox_lag", vendor, "")] == 0  # every event read

        queued = dg.api.get("/v1/deliveries", params={"status": "queued", "vendor": "smooch"})
        assert queued.status_code == 200, queued.text
        items = queued.json()["items"]
        assert len(items) == 1
        assert items[0]["record_id"] == contact["id"]
        assert items[0]["status"] == "retrying"
        assert items[0]["attempts"] == 2
        assert items[0]["last_status"] == 503
        assert parse_ts(items[0]["next_attempt_at"]) > time.time() + 30

        # Outbox lag: with no worker running, new events wait in the outbox.
        dg.stop()
        dg.start("--no-worker")
        for i in range(3):
            dg.identify(user_id=uniq("u"), traits={"n": i})

        def lagging() -> dict[tuple[str, str, str], float]:
            m = metric_samples(dg)
            return (
                m
                if all(
                    m.get(("idgw_outbox_lag", v, "")) == 3 for v in ("webhook", "smooch", "gist")
                )
                else {}
            )

        wait_until(lagging, timeout=10, interval=0.5, what="outbox lag of 3 per vendor")


def test_outbox_lag_counts_events_of_a_vendor_no_worker_has_read_yet(
    tmp_path: Path, redis_url: str
) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook"], extra_args=("--no-worker",)) as dg:
        for i in range(3):
            dg.identify(user_id=uniq("u"), traits={"n": i})
        assert dg.redis.xlen(f"{dg.prefix}outbox") == 3

        # the vendor's consumer group does not exist yet: all 3 events still wait for it
        deadline = time.monotonic() + 6
        lag = metric_samples(dg).get(("idgw_outbox_lag", "webhook", ""))
        while lag != 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            lag = metric_samples(dg).get(("idgw_outbox_lag", "webhook", ""))
        assert lag == 3, f"idgw_outbox_lag of a vendor no worker has read yet: {lag}, expected 3"


def test_the_outbox_is_trimmed_once_everything_is_delivered(tmp_path: Path, redis_url: str) -> None:
    with delivery_gateway(tmp_path, redis_url, ["webhook", "groove"]) as dg:
        user = uniq("u")
        final = dg.identify(user_id=user, traits={"email": uniq_email(), "n": 0})["contact"][
            "version"
        ]
        for i in range(1, 10):
            final = dg.identify(user_id=user, traits={"n": i})["contact"]["version"]
        outbox = f"{dg.prefix}outbox"
        before = dg.redis.xlen(outbox)
        assert before >= 10
        record_id = dg.api.get("/v1/contacts", params={"user_id": user}).json()["id"]
        wait_version(dg.emulators["webhook"], record_id, final)
        wait_until(
            lambda: any(
                r.json().get("custom", {}).get("n") == 9 for r in dg.emulators["groove"].requests
            ),
            what="groove got the last state",
        )
        wait_until(
            lambda: dg.redis.xlen(outbox) < before,
            timeout=20,
            interval=0.5,
            what="the outbox trimmed",
        )
        assert dg.redis.xlen(outbox) == 0


def test_several_workers_share_the_lanes_without_reordering_or_doubling(
    tmp_path: Path, redis_url: str
) -> None:
    """Any number of workers on one Redis (SPEC §6, §10): every change delivered, per record
    in order, no version twice."""
    with delivery_gateway(tmp_path, redis_url, ["webhook"], extra_args=("--no-worker",)) as dg:
        env = {k: v for k, v in os.environ.items() if k not in ("IDGW_CONFIG", "IDGW_REDIS_URL")}
        workers: list[subprocess.Popen[bytes]] = []
        try:
            for n in range(2):
                with (tmp_path / f"worker-{n}.log").open("ab") as out:
                    workers.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "idgateway",
                                "worker",
                                "--config",
                                str(dg.config),
                            ],
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            env=env,
                        )
                    )
            users = [uniq("u") for _ in range(15)]
            ids = {
                u: dg.identify(user_id=u, traits={"email": uniq_email(), "n": 0})["contact"]["id"]
                for u in users
            }
            for i in range(1, 4):
                for u in users:
                    dg.identify(user_id=u, traits={"n": i})
                time.sleep(0.15)
            hook = dg.emulators["webhook"]
            for u in users:
                wait_version(hook, ids[u], 4, timeout=30)
            time.sleep(0.5)
            for u in users:
                versions = [r.json()["data"]["version"] for r in for_record(hook, ids[u])]
                assert all(a < b for a, b in itertools.pairwise(versions)), versions
                assert versions[-1] == 4
            assert all(w.poll() is None for w in workers)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                w.wait(timeout=10)
