"""The adapter contract (SPEC §6, §6.1; STYLE §9): every shipped adapter, through a real
gateway and worker, against a local emulator of its vendor that checks every request against
the vendor's published contract (``tests/emulators/contracts``) and keeps the vendor's state.

Per adapter: create, update, field removal, tag change, erasure, and each failure class
(retryable, dead, 410). What the vendor *holds* after a delivery is compared with what it
should hold for the contact; the requests themselves must pass the contract (the delivery
fixture fails a test whose emulator recorded a violation). One test shows that each emulator
rejects a request that breaks its contract, so that check can fail.

One gateway per adapter (its tenant delivers only to that vendor) is shared by the module;
tests keep apart through unique identifiers and wait until the worker recorded the version as
delivered. The dry-run tests use one more gateway, with every adapter and no worker.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import phonenumbers
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from idgateway.delivery import registry
from idgateway.store import TenantKeys
from tests.conftest import uniq, uniq_email
from tests.emulators import (
    GIST_TOKEN,
    GROOVE_TOKEN,
    PIPEDRIVE_TOKEN,
    SMOOCH,
    SUNSHINE,
    WEBHOOK_SECRET,
    Answer,
    Pipedrive,
    Recorded,
    Rejection,
    VendorEmulator,
    emulator,
)
from tests.integration.delivery_support import SETTINGS, DeliveryGateway, delivery_gateway

if TYPE_CHECKING:
    from pathlib import Path

ADAPTERS = ("smooch", "sunshine", "gist", "groove", "pipedrive", "webhook")
DELETES = {"smooch", "sunshine", "gist", "webhook"}  # contact.delete in their manifests
KEEPS_REFS = {"smooch", "sunshine", "gist", "groove", "pipedrive"}
NO_WORKER = ("--no-worker",)

GetGateway = Callable[..., DeliveryGateway]


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[GetGateway]:
    """Gateways started on first use and shared by the module, by (adapters, extra args)."""
    started: dict[tuple[tuple[str, ...], tuple[str, ...]], DeliveryGateway] = {}
    with contextlib.ExitStack() as stack:

        def get(adapters: tuple[str, ...], extra_args: tuple[str, ...] = ()) -> DeliveryGateway:
            key = (adapters, extra_args)
            if key not in started:
                folder: Path = tmp_path_factory.mktemp("gw-" + "-".join(adapters))
                started[key] = stack.enter_context(
                    delivery_gateway(folder, redis_url, list(adapters), extra_args=extra_args)
                )
            return started[key]

        yield get


@pytest.fixture(params=ADAPTERS)
def vendor(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def dg(gateways: GetGateway, vendor: str) -> Iterator[DeliveryGateway]:
    gateway = gateways((vendor,))
    gateway.emulators[vendor].clear()
    yield gateway
    # every request of the test passed the vendor's contract
    assert gateway.emulators[vendor].violations == []


@pytest.fixture
def dry(gateways: GetGateway) -> DeliveryGateway:
    """Every adapter, no worker: nothing is ever delivered."""
    return gateways(ADAPTERS, NO_WORKER)


# --- values ---------------------------------------------------------------------------------------

_phones = itertools.count(random.randrange(10_000))


def uniq_phone() -> str:
    return f"+1415555{next(_phones) % 10_000:04d}"


def traits(email: str | None, phone: str | None = None, **more: Any) -> dict[str, Any]:
    """A contact of SPEC §2.1's kind: standard fields and scalar custom ones."""
    out: dict[str, Any] = {
        "first_name": "Fred",
        "last_name": "Flintstone",
        "signed_up_at": "2015-10-08T23:52:11.677Z",
        "twitter": "@" + uniq("Tw"),
        "tags": "free, popular",
        "plan": "Free",
        "active_accounts": 1872,
        "vip": True,
        "last_paid_at": 1283495946,
    }
    if email is not None:
        out["email"] = email
    if phone is not None:
        out["phone"] = phone
    out.update(more)
    return out


def unix(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def millis(value: str) -> str:
    """Smooch and Sunshine Conversations' ``YYYY-MM-DDThh:mm:ss.sssZ``."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def no_none(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


# --- what each vendor should hold for a contact (SPEC §6.1, vendor-api/) --------------------------


def moved(contact: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Standard fields a vendor has no place for, as flat properties."""
    out: dict[str, Any] = {}
    for key in keys:
        value = contact.get(key)
        if isinstance(value, list):
            if value:
                out[key] = ", ".join(value)
        elif value:
            out[key] = value
    return out


def expected(vendor: str, contact: dict[str, Any], company: str | None = None) -> Any:
    """What ``vendor`` holds for ``contact`` once delivered (None: nothing)."""
    props = contact["properties"]
    if vendor == "smooch":
        properties = {
            **moved(contact, ("phone", "facebook", "twitter", "tags", "secondary_emails")),
            **props,
        }
        return no_none(
            {
                "givenName": contact["first_name"],
                "surname": contact["last_name"],
                "email": contact["email"],
                "signedUpAt": millis(contact["signed_up_at"]) if contact["signed_up_at"] else None,
                "properties": properties,
            }
        )
    if vendor == "sunshine":
        metadata = {
            **moved(contact, ("phone", "facebook", "twitter", "tags", "secondary_emails")),
            **props,
        }
        return no_none(
            {
                "externalId": contact["external_id"] or contact["id"],
                "signedUpAt": millis(contact["signed_up_at"]) if contact["signed_up_at"] else None,
                "profile": no_none(
                    {
                        "givenName": contact["first_name"],
                        "surname": contact["last_name"],
                        "email": contact["email"],
                    }
                ),
                "metadata": metadata,
            }
        )
    if vendor == "gist":
        custom = {
            k: unix(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in props.items()
        }
        custom.update(
            moved(contact, ("first_name", "last_name", "facebook", "twitter", "secondary_emails"))
        )
        return no_none(
            {
                "user_id": contact["external_id"],
                "email": contact["email"],
                "name": contact["name"],
                "phone": contact["phone"],
                "signed_up_at": unix(contact["signed_up_at"]) if contact["signed_up_at"] else None,
                "tags": sorted(contact["tags"]),
                "custom_properties": custom,
            }
        )
    if vendor == "groove":
        if not contact["email"]:
            return None
        custom = {
            **moved(contact, ("first_name", "last_name", "facebook", "secondary_emails", "tags")),
            **props,
        }
        return {
            "email": contact["email"],
            "name": contact["name"] or "",
            "phone_number": contact["phone"] or "",
            "twitter_username": contact["twitter"] or "",
            "company_name": company or "",
            "custom": custom,
        }
    if vendor == "pipedrive":
        return {
            "name": contact["name"] or contact["phone"],
            "phones": [contact["phone"]] if contact["phone"] else [],
        }
    assert vendor == "webhook"
    return contact


def held(dg: DeliveryGateway, vendor: str, contact: dict[str, Any]) -> Any:
    """What ``vendor`` holds for ``contact`` now (None: nothing), found by its vendor ref."""
    model: Any = dg.emulators[vendor].model
    ref = contact["vendor_refs"].get(vendor)
    if vendor == "smooch":
        user = model.find(ref) if ref else None
        if user is None:
            return None
        fields = ("givenName", "surname", "email", "signedUpAt")
        return no_none({**{k: user.get(k) for k in fields}, "properties": user["properties"]})
    if vendor == "sunshine":
        user = model.find(ref) if ref else None
        if user is None:
            return None
        keys = ("externalId", "signedUpAt", "profile", "metadata")
        return no_none({k: user.get(k) for k in keys})
    if vendor == "gist":
        found = model.contacts.get(int(ref)) if ref else None
        if found is None:
            return None
        view = model.view(found)
        keys = ("user_id", "email", "name", "phone", "signed_up_at", "custom_properties")
        return no_none({k: view.get(k) for k in keys}) | {
            "tags": sorted(t["name"] for t in view["tags"])
        }
    if vendor == "groove":
        customer = model.customers.get(ref) if ref else None
        if customer is None:
            return None
        keys = ("email", "name", "phone_number", "twitter_username", "company_name", "custom")
        return {k: customer.get(k) for k in keys}
    if vendor == "pipedrive":
        person = model.persons.get(int(ref)) if ref else None
        if person is None:
            return None
        return {"name": person["name"], "phones": [p["value"] for p in person["phones"]]}
    events = [
        r.json()
        for r in dg.emulators[vendor].requests
        if (r.json() or {}).get("data", {}).get("id") == contact["id"]
    ]
    return None if not events or events[-1]["type"] == "contact.deleted" else events[-1]["data"]


def national(phone: str) -> str:
    return str(phonenumbers.national_significant_number(phonenumbers.parse(phone)))


def concerns(vendor: str, request: Recorded, contact: dict[str, Any]) -> bool:
    """Whether ``request`` is about ``contact`` (emulators are shared by a module's tests)."""
    body = request.json() if request.body else None
    ref = contact["vendor_refs"].get(vendor)
    tail = request.path.rsplit("/", 2)
    if vendor in ("smooch", "sunshine"):
        names = {ref, contact["external_id"], contact["id"]}
        in_path = any(n and n in tail for n in names)
        in_body = isinstance(body, dict) and (
            body.get("userId") in names or body.get("externalId") in names
        )
        return in_path or bool(in_body)
    if vendor == "gist":
        if request.path == "/tags":
            return bool(ref) and str(body["contacts"][0]["id"]) == ref
        if request.method == "DELETE":
            return bool(ref) and request.path == f"/contacts/{ref}"
        return isinstance(body, dict) and (
            (body.get("email") is not None and body.get("email") == contact["email"])
            or (bool(ref) and str(body.get("id")) == ref)
        )
    if vendor == "groove":
        return request.path.rsplit("/", 1)[-1] in {quote(contact["email"] or "-", safe="@"), ref}
    if vendor == "pipedrive":
        if request.path.endswith("/search"):
            return bool(contact["phone"]) and request.query["term"] == [national(contact["phone"])]
        if request.method == "POST":
            phones = body.get("phone") if isinstance(body, dict) else None
            return bool(phones) and phones[0]["value"] == contact["phone"]
        return bool(ref) and request.path.endswith(f"/persons/{ref}")
    return (
        isinstance(body, dict)
        and isinstance(body.get("data"), dict)
        and body["data"].get("id") == contact["id"]
    )


def requests_for(dg: DeliveryGateway, vendor: str, contact: dict[str, Any]) -> list[Recorded]:
    return [r for r in list(dg.emulators[vendor].requests) if concerns(vendor, r, contact)]


def key_of(request: Recorded) -> str:
    key = request.headers.get("idempotency-key", "")
    assert key, f"{request.method} {request.path} without Idempotency-Key"
    return key


def vendor_error(dg: DeliveryGateway, vendor: str, status: int, message: str) -> Answer:
    """An answer of ``status`` in the vendor's own error shape."""
    return dg.emulators[vendor].model.error(Rejection(status, "injected", message))


# --- waiting --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def delivered_version(dg: DeliveryGateway, vendor: str, record_id: str) -> int | None:
    """The version the worker recorded as delivered to ``vendor`` (its ``dv`` hash)."""
    raw = dg.redis.hget(f"{dg.prefix}dv:{vendor}", record_id)
    return int(raw) if raw else None


def listed(dg: DeliveryGateway, vendor: str, status: str) -> list[dict[str, Any]]:
    answer = dg.api.get("/v1/deliveries", params={"vendor": vendor, "status": status})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def settle(dg: DeliveryGateway, vendor: str) -> None:
    wait_until(
        lambda: not listed(dg, vendor, "queued") and not listed(dg, vendor, "in_flight"),
        f"{vendor}: nothing queued or in flight",
    )


def wait_delivered(dg: DeliveryGateway, vendor: str, record_id: str, version: int) -> None:
    wait_until(
        lambda: (delivered_version(dg, vendor, record_id) or 0) >= version,
        f"{vendor}: {record_id} v{version} delivered",
    )
    settle(dg, vendor)


def fetch(dg: DeliveryGateway, contact_id: str) -> dict[str, Any]:
    answer = dg.api.get(f"/v1/contacts/{contact_id}")
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def deliver(dg: DeliveryGateway, vendor: str, **body: Any) -> dict[str, Any]:
    """Identify, wait for the delivery, return the contact as stored (with its vendor refs)."""
    contact = dg.identify(**body)["contact"]
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    return fetch(dg, contact["id"])


def secrets_of(dg: DeliveryGateway) -> list[str]:
    """Every credential value in the tenant's vendor settings."""
    found: list[str] = []
    for name, emu in dg.emulators.items():
        settings = SETTINGS[name](emu)
        for spec in registry()[name].manifest.settings:
            if spec.secret:
                found.append(str(settings[spec.name]))
    found.append(WEBHOOK_SECRET.removeprefix("whsec_"))
    return found


# --- create --------------------------------------------------------------------------------------


def test_a_created_contact_is_held_by_the_vendor_as_the_contract_says(
    dg: DeliveryGateway, vendor: str
) -> None:
    created = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))
    assert created["created"] is True
    contact = created["contact"]
    assert contact["vendor_refs"] == {}
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    contact = fetch(dg, contact["id"])

    assert held(dg, vendor, contact) == expected(vendor, contact)
    assert (vendor in KEEPS_REFS) == bool(contact["vendor_refs"].get(vendor))
    got = requests_for(dg, vendor, contact)
    assert got, f"{vendor} got nothing"
    assert len({key_of(r) for r in got}) == 1  # one delivery, however many requests


def test_vendor_requests_carry_the_vendor_credentials(dg: DeliveryGateway, vendor: str) -> None:
    contact = deliver(dg, vendor, user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))
    got = requests_for(dg, vendor, contact)
    assert got
    for request in got:
        if vendor == "webhook":
            Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
        else:
            assert {k: request.headers.get(k) for k in AUTH[vendor]} == AUTH[vendor]
        if vendor == "pipedrive":  # the header, never the api_token query form
            assert "authorization" not in request.headers
            assert "api_token" not in request.query
        if request.body:
            assert request.headers["content-type"].startswith("application/json")


# --- update ---------------------------------------------------------------------------------------


def test_an_update_reaches_the_vendor_record_it_created(dg: DeliveryGateway, vendor: str) -> None:
    user_id = uniq("u")
    v1 = deliver(dg, vendor, user_id=user_id, traits=traits(uniq_email(), uniq_phone()))
    first = requests_for(dg, vendor, v1)
    ref = v1["vendor_refs"].get(vendor)

    dg.identify(user_id=user_id, traits={"first_name": "Wilma", "plan": "Pro", "seats": 4})
    v2 = fetch(dg, v1["id"])
    assert v2["version"] > v1["version"]
    wait_delivered(dg, vendor, v2["id"], v2["version"])
    v2 = fetch(dg, v1["id"])

    assert v2["vendor_refs"].get(vendor) == ref  # the same vendor record, addressed by its ref
    assert held(dg, vendor, v2) == expected(vendor, v2)
    later = requests_for(dg, vendor, v2)[len(first) :]
    assert later, f"{vendor} got nothing for the update"
    assert {key_of(r) for r in later}.isdisjoint({key_of(r) for r in first})
    if vendor == "gist":  # gist.md §2: the stored Gist id names the contact on updates
        assert later[0].json()["id"] == int(ref)
    if vendor == "sunshine":  # created once, then PATCH by id
        assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in later] == [("PATCH", ref)]


def test_an_email_change_updates_the_same_vendor_record(dg: DeliveryGateway, vendor: str) -> None:
    user_id = uniq("u")
    v1 = deliver(dg, vendor, user_id=user_id, traits=traits(uniq_email(), uniq_phone()))
    new_email = uniq_email()
    dg.identify(user_id=user_id, traits={"email": new_email})
    v2 = fetch(dg, v1["id"])
    wait_delivered(dg, vendor, v2["id"], v2["version"])
    v2 = fetch(dg, v1["id"])

    assert held(dg, vendor, v2) == expected(vendor, v2)
    if vendor == "gist":
        assert (
            len(
                [
                    c
                    for c in dg.emulators[vendor].model.contacts.values()
                    if c.get("user_id") == user_id
                ]
            )
            == 1
        )
    if vendor == "groove":  # the old address names the customer, the body carries the new one
        assert v2["vendor_refs"]["groove"] == new_email
        assert v1["email"] not in dg.emulators[vendor].model.customers


# --- removal: fields and tags ---------------------------------------------------------------------


def test_removed_fields_are_removed_at_the_vendor(dg: DeliveryGateway, vendor: str) -> None:
    user_id = uniq("u")
    v1 = deliver(
        dg, vendor, user_id=user_id, traits=traits(uniq_email(), uniq_phone(), coupon="PREM")
    )
    before = held(dg, vendor, v1)
    assert before == expected(vendor, v1)

    gone = {"coupon": None, "plan": None, "vip": None, "twitter": None, "last_name": None}
    if vendor in ("gist", "pipedrive", "smooch", "sunshine", "groove"):
        gone["phone"] = None
    dg.identify(user_id=user_id, traits=gone)
    v2 = fetch(dg, v1["id"])
    wait_delivered(dg, vendor, v2["id"], v2["version"])
    v2 = fetch(dg, v1["id"])
    assert v2["properties"].keys().isdisjoint({"coupon", "plan", "vip"})

    now = held(dg, vendor, v2)
    assert now == expected(vendor, v2)
    assert now != before
    text = json.dumps(now)
    for value in ("PREM", v1["twitter"], "Flintstone"):
        assert value not in text, f"{vendor} still holds {value!r}"
    if "phone" in gone:
        assert v1["phone"] not in text


def test_a_tag_change_leaves_the_vendor_with_the_new_tags_only(
    dg: DeliveryGateway, vendor: str
) -> None:
    user_id = uniq("u")
    v1 = deliver(dg, vendor, user_id=user_id, traits=traits(uniq_email(), uniq_phone()))
    assert v1["tags"] == ["free", "popular"]
    dg.identify(user_id=user_id, traits={"tags": "vip"})
    v2 = fetch(dg, v1["id"])
    assert v2["tags"] == ["vip"]
    wait_delivered(dg, vendor, v2["id"], v2["version"])

    assert held(dg, vendor, v2) == expected(vendor, v2)
    if vendor == "gist":  # gist.md §4: removed through POST /tags with untag
        untags = [r.json() for r in requests_for(dg, vendor, v2) if r.path == "/tags"]
        assert sorted(u["name"] for u in untags) == ["free", "popular"]
        assert all(
            u["contacts"] == [{"id": int(v2["vendor_refs"]["gist"]), "untag": True}] for u in untags
        )
    if vendor not in ("pipedrive", "webhook"):
        assert "popular" not in json.dumps(held(dg, vendor, v2))


# --- erasure --------------------------------------------------------------------------------------


def test_an_erasure_reaches_the_adapters_that_take_it(dg: DeliveryGateway, vendor: str) -> None:
    contact = deliver(dg, vendor, user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))
    assert held(dg, vendor, contact) is not None
    upserts = requests_for(dg, vendor, contact)
    assert kept_for(dg, vendor, contact["id"]), "the version delivered is kept until the erasure"
    if vendor == "pipedrive":  # with App Connect's return message
        assert [i["record_id"] for i in listed(dg, vendor, "delivered")].count(contact["id"]) == 1

    assert dg.api.delete(f"/v1/contacts/{contact['id']}").status_code == 204
    if vendor in DELETES:
        wait_until(lambda: held(dg, vendor, contact) is None, f"{vendor}: the erasure")
    # a later change, delivered after the delete was read from the outbox: nothing else follows
    sentinel = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_delivered(dg, vendor, sentinel["id"], sentinel["version"])

    deletes = requests_for(dg, vendor, contact)[len(upserts) :]
    if vendor in DELETES:
        assert held(dg, vendor, contact) is None
        assert len(deletes) == 1
        assert deletes[0].method == ("POST" if vendor == "webhook" else "DELETE")
        assert key_of(deletes[0]) not in {key_of(r) for r in upserts}
        if vendor == "webhook":
            assert deletes[0].json()["type"] == "contact.deleted"
    else:  # Groove v1 and SPEC's pipedrive flow have no erasure: the record stays (README)
        assert deletes == []
        assert held(dg, vendor, contact) == expected(vendor, contact)
    # Either way the gateway keeps nothing of the erased record for the vendor (SPEC §5.3).
    wait_until(lambda: not kept_for(dg, vendor, contact["id"]), f"{vendor}: state of the erased")
    assert contact["id"] not in [i["record_id"] for i in listed(dg, vendor, "delivered")]


def kept_for(dg: DeliveryGateway, vendor: str, record_id: str) -> bool:
    """Whether the gateway keeps a delivered version or a return message of the record."""
    keys = TenantKeys(dg.tenant)
    return any(dg.redis.hexists(keys.vendor(kind, vendor), record_id) for kind in ("dv", "notes"))


# --- failure classes ------------------------------------------------------------------------------


def test_a_retryable_failure_is_retried_with_the_same_key(dg: DeliveryGateway, vendor: str) -> None:
    dg.emulators[vendor].fail(vendor_error(dg, vendor, 503, "maintenance"))
    contact = deliver(dg, vendor, user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))

    assert held(dg, vendor, contact) == expected(vendor, contact)
    got = requests_for(dg, vendor, contact)
    assert len(got) >= 2
    assert (got[0].method, got[0].path) == (got[1].method, got[1].path)  # the plan again
    assert len({key_of(r) for r in got}) == 1


def test_a_429_waits_for_retry_after_and_sends_the_current_state(
    dg: DeliveryGateway, vendor: str
) -> None:
    """State, not diffs: a change made while a delivery waits for its retry is what the retry
    sends — as a new version, with a new Idempotency-Key."""
    answer = vendor_error(dg, vendor, 429, "slow down")
    dg.emulators[vendor].fail(Answer(answer.status, answer.body, {"Retry-After": "1"}))
    user_id = uniq("u")
    v1 = dg.identify(user_id=user_id, traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_until(lambda: bool(requests_for(dg, vendor, v1)), f"{vendor}: the first attempt")
    refused = requests_for(dg, vendor, v1)[0]

    dg.identify(user_id=user_id, traits={"first_name": "Wilma", "plan": "Pro"})
    v2 = fetch(dg, v1["id"])
    wait_delivered(dg, vendor, v2["id"], v2["version"])
    v2 = fetch(dg, v1["id"])

    assert held(dg, vendor, v2) == expected(vendor, v2)
    got = requests_for(dg, vendor, v2)
    assert got[0] == refused
    assert len({key_of(r) for r in got[1:]}) == 1
    assert key_of(got[1]) != key_of(refused)


def test_a_refusal_is_a_dead_letter_named_by_its_key(dg: DeliveryGateway, vendor: str) -> None:
    dg.emulators[vendor].fail(vendor_error(dg, vendor, 422, "invalid"))
    contact = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]

    def dead() -> list[dict[str, Any]]:
        return [i for i in listed(dg, vendor, "dead") if i["record_id"] == contact["id"]]

    wait_until(lambda: bool(dead()), "the dead letter")
    refused = requests_for(dg, vendor, contact)
    assert len(refused) == 1
    (item,) = dead()
    assert item["id"] == key_of(refused[0])
    assert item["last_status"] == 422
    assert item["attempts"] == 1
    assert "invalid" in (item["response_excerpt"] or "")
    if vendor != "webhook":  # a receiver holds no state
        assert held(dg, vendor, fetch(dg, contact["id"])) is None


def test_a_410_disables_the_vendor_until_it_is_enabled(dg: DeliveryGateway, vendor: str) -> None:
    dg.emulators[vendor].fail(vendor_error(dg, vendor, 410, "gone"))
    contact = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    state_key = f"{dg.prefix}vstate"
    wait_until(lambda: dg.redis.hget(state_key, vendor) is not None, f"{vendor} disabled")
    assert json.loads(dg.redis.hget(state_key, vendor) or b"{}")["disabled"] is True
    assert len(requests_for(dg, vendor, contact)) == 1
    queued = [i["record_id"] for i in listed(dg, vendor, "queued")]
    assert contact["id"] in queued  # kept, not dead: a 410 is the vendor's fault, not the record's

    dg.redis.hdel(state_key, vendor)  # what `idgateway` does when the operator enables it again
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    contact = fetch(dg, contact["id"])
    assert held(dg, vendor, contact) == expected(vendor, contact)


# --- the emulators enforce the contracts ----------------------------------------------------------


def _broken_request(vendor: str, url: str) -> httpx.Request:
    """A request the vendor's real API refuses (mostly what the old adapters sent)."""
    if vendor == "smooch":  # issue 12: the raw key as Bearer
        return httpx.Request(
            "PUT",
            f"{url}/v1.1/apps/{SMOOCH['app_id']}/appusers/u1",
            headers={"Authorization": f"Bearer {SMOOCH['secret']}"},
            json={"givenName": "Fred"},
        )
    basic = (
        "Basic " + base64.b64encode(f"{SUNSHINE['key_id']}:{SUNSHINE['secret']}".encode()).decode()
    )
    if vendor == "sunshine":  # profile.email must be an email; metadata flat
        return httpx.Request(
            "POST",
            f"{url}/v2/apps/{SUNSHINE['app_id']}/users",
            headers={"Authorization": basic},
            json={"externalId": "u1", "profile": {"email": "not-an-email"}},
        )
    if vendor == "gist":  # gist.md §4: contacts in /tags are named by id
        return httpx.Request(
            "POST",
            f"{url}/tags",
            headers={"Authorization": f"Bearer {GIST_TOKEN}"},
            json={"name": "vip", "contacts": [{"email": "fred@example.com", "untag": True}]},
        )
    if vendor == "groove":  # issue 12: PUT without email in the body, contact_ custom keys
        return httpx.Request(
            "PUT",
            f"{url}/v1/customers/fred@example.com",
            headers={"Authorization": f"Bearer {GROOVE_TOKEN}"},
            json={"name": "Fred", "contact_plan": "Pro"},
        )
    if vendor == "pipedrive":  # issue 12: the old crm adapter's App Connect-interface call
        return httpx.Request(
            "GET",
            f"{url}/api/v2/persons/search?phoneNumber=%2B15558234312",
            headers={"x-api-token": PIPEDRIVE_TOKEN},
        )
    return httpx.Request(  # a body that is not what was signed
        "POST",
        f"{url}/hooks/idgw",
        headers={
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,"
            + base64.b64encode(hmac.new(b"k", b"x", hashlib.sha256).digest()).decode(),
        },
        json={"type": "contact.upserted", "timestamp": "x", "data": {}},
    )


@pytest.mark.parametrize("vendor_name", ADAPTERS)
def test_each_emulator_rejects_a_request_that_breaks_its_contract(vendor_name: str) -> None:
    with emulator(vendor_name) as emu, httpx.Client(timeout=10) as client:
        answer = client.send(_broken_request(vendor_name, emu.url))
        assert 400 <= answer.status_code < 500, answer.text
        assert emu.violations, "the refusal is recorded: the delivery fixture fails on it"
        # the refusal is in the vendor's own error shape
        body = answer.json()
        shape = {
            "smooch": lambda b: set(b["error"]) == {"code", "description"},
            "sunshine": lambda b: set(b["errors"][0]) == {"code", "title"},
            "gist": lambda b: set(b["errors"][0]) == {"code", "message"},
            "groove": lambda b: "error" in b,
            "pipedrive": lambda b: b["success"] is False and "error" in b,
            "webhook": lambda b: "error" in b,
        }[vendor_name]
        assert shape(body), body


def test_a_delivery_the_contract_refuses_fails_the_suite(tmp_path: Path, redis_url: str) -> None:
    """A wrong Smooch secret: the emulator refuses every request (401, a violation), the
    delivery is a dead letter, and the delivery fixture would fail the test that made it."""
    refused = pytest.raises(AssertionError, match="requests the real API refuses")
    with refused, delivery_gateway(tmp_path, redis_url, ["smooch"]) as gw:
        gw.emulators["smooch"].model.secret = "rotated"  # type: ignore[attr-defined]
        contact = gw.identify(user_id=uniq("u"), traits=traits(uniq_email()))["contact"]
        wait_until(
            lambda: any(i["record_id"] == contact["id"] for i in listed(gw, "smooch", "dead")),
            "the dead letter",
        )
        (item,) = listed(gw, "smooch", "dead")
        assert item["last_status"] == 401
        assert "unauthorized" in (item["response_excerpt"] or "")


# --- vendor specifics -----------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["pipedrive"])
def test_pipedrive_records_app_connect_return_message(dg: DeliveryGateway, vendor: str) -> None:
    contact = deliver(dg, vendor, user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))
    got = requests_for(dg, vendor, contact)
    assert [(r.method, r.path) for r in got] == [
        ("GET", "/api/v2/persons/search"),
        ("POST", "/api/v1/persons"),
    ]
    assert got[0].query == {"term": [national(contact["phone"])], "fields": ["phone"]}
    assert got[1].json() == {
        "name": contact["name"],
        "phone": [{"value": contact["phone"], "primary": True}],
    }
    items = [i for i in listed(dg, vendor, "delivered") if i["record_id"] == contact["id"]]
    assert len(items) == 1
    assert items[0]["return_message"] == {
        "message": "Contact created.",
        "messageType": "success",
        "ttl": 2000,
    }
    assert items[0]["id"] == key_of(got[0])
    assert items[0]["status"] == "delivered"


@pytest.mark.parametrize("vendor", ["pipedrive"])
def test_pipedrive_keeps_a_person_found_by_phone(dg: DeliveryGateway, vendor: str) -> None:
    phone = uniq_phone()
    model = dg.emulators[vendor].model
    assert isinstance(model, Pipedrive)
    person = model.seed("Fred at the quarry", phone)
    contact = deliver(dg, vendor, user_id=uniq("u"), traits=traits(uniq_email(), phone))

    assert contact["vendor_refs"]["pipedrive"] == str(person)
    assert [r.method for r in requests_for(dg, vendor, contact)] == ["GET"]  # nothing created
    assert not [i for i in listed(dg, vendor, "delivered") if i["record_id"] == contact["id"]]


def test_webhook_requests_verify_with_the_reference_library(gateways: GetGateway) -> None:
    gw = gateways(("webhook",))
    gw.emulators["webhook"].clear()
    contact = deliver(gw, "webhook", user_id=uniq("u"), traits=traits(uniq_email()))
    (request,) = requests_for(gw, "webhook", contact)
    assert Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)["data"] == contact
    assert request.headers["webhook-id"] == request.headers["idempotency-key"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(request.body + b" ", request.headers)
    assert gw.emulators["webhook"].violations == []


def test_company_events_reach_only_the_webhook(dg: DeliveryGateway, vendor: str) -> None:
    domain = f"{uniq('d')}.example"
    result = dg.identify(
        user_id=uniq("u"),
        traits=traits(uniq_email(), uniq_phone()),
        company={"domain": domain, "name": "Slate Rock and Gravel"},
    )
    contact, company = result["contact"], result["company"]
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    contact = fetch(dg, contact["id"])
    assert held(dg, vendor, contact) == expected(vendor, contact, "Slate Rock and Gravel")
    if vendor == "webhook":
        wait_delivered(dg, vendor, company["id"], company["version"])
        about = [
            r.json()
            for r in dg.emulators[vendor].requests
            if (r.json() or {}).get("data", {}).get("id") == company["id"]
        ]
        assert [e["type"] for e in about] == ["company.upserted"]
    else:
        settle(dg, vendor)
        assert delivered_version(dg, vendor, company["id"]) is None
        assert not [r for r in dg.emulators[vendor].requests if domain.encode() in r.body]


# --- dry-run -------------------------------------------------------------------------------------

# what the constraint check must report for the contact of ``traits`` (SPEC §6)
REPORTS: dict[str, dict[str, str]] = {
    "smooch": {"phone": "changed", "twitter": "changed", "tags": "changed"},
    "sunshine": {"phone": "changed", "twitter": "changed", "tags": "changed"},
    "gist": {"properties.last_paid_at": "changed"},
    "groove": {},
    "pipedrive": {},
    "webhook": {},
}
# the first request of a delivery of a contact the vendor does not know yet
FIRST: dict[str, tuple[str, str]] = {
    "smooch": ("GET", "/v1.1/apps/{app}/appusers/{user}"),
    "sunshine": ("POST", "/v2/apps/{app}/users"),
    "gist": ("POST", "/contacts"),
    "groove": ("PUT", "/v1/customers/{email}"),
    "pipedrive": ("GET", "/api/v2/persons/search"),
    "webhook": ("POST", "/hooks/idgw"),
}


def dry_run(dg: DeliveryGateway, contact_id: str, vendor: str) -> dict[str, Any]:
    answer = dg.api.post(f"/v1/contacts/{contact_id}/dry-run", params={"vendor": vendor})
    assert answer.status_code == 200, answer.text
    for secret in secrets_of(dg):
        assert secret not in answer.text
    body: dict[str, Any] = answer.json()
    assert body["contact_id"] == contact_id
    assert [v["vendor"] for v in body["vendors"]] == [vendor]
    return body["vendors"][0]


AUTH = {
    "smooch": {
        "authorization": "Basic "
        + base64.b64encode(f"{SMOOCH['key_id']}:{SMOOCH['secret']}".encode()).decode()
    },
    "sunshine": {
        "authorization": "Basic "
        + base64.b64encode(f"{SUNSHINE['key_id']}:{SUNSHINE['secret']}".encode()).decode()
    },
    "gist": {"authorization": f"Bearer {GIST_TOKEN}"},
    "groove": {"authorization": f"Bearer {GROOVE_TOKEN}"},
    "pipedrive": {"x-api-token": PIPEDRIVE_TOKEN},
}


def as_recorded(shown: dict[str, Any], vendor: str, emulator: VendorEmulator) -> Recorded:
    """A shown request as the vendor would receive it: the redacted credentials put back."""
    parts = urlsplit(shown["url"])
    assert f"{parts.scheme}://{parts.netloc}" == emulator.url
    headers = {k.lower(): v for k, v in shown["headers"].items()}
    assert all(headers[k] == "***" for k in AUTH[vendor])  # never shown
    headers.update(AUTH[vendor])
    body = b"" if shown["body"] is None else json.dumps(shown["body"]).encode()
    if body:
        headers.setdefault("content-type", "application/json")
    return Recorded(shown["method"], parts.path, parse_qs(parts.query), headers, body, 0.0)


def test_dry_run_shows_the_exact_requests_in_the_vendor_shape(
    dry: DeliveryGateway, vendor: str
) -> None:
    result = dry.identify(
        user_id=uniq("u"),
        traits=traits(uniq_email(), uniq_phone()),
        company={"domain": f"{uniq('d')}.example", "name": "Slate Rock and Gravel"},
    )
    contact = result["contact"]
    shown = dry_run(dry, contact["id"], vendor)
    assert shown["event"] == "contact.upserted"
    assert shown["requests"], shown
    method, path = FIRST[vendor]
    path = path.format(
        app=SMOOCH["app_id"] if vendor == "smooch" else SUNSHINE["app_id"],
        user=contact["external_id"],
        email=contact["email"],
    )
    first = shown["requests"][0]
    assert (first["method"], urlsplit(first["url"]).path) == (method, path)
    assert first["headers"]["Idempotency-Key"].startswith("d_")
    emulator = dry.emulators[vendor]
    for request in shown["requests"]:
        if vendor != "webhook":  # its signature is made at send time
            rejected = emulator.model.rejections(as_recorded(request, vendor, emulator))
            assert rejected == [], rejected
    if vendor == "sunshine":
        body = first["body"]
        assert body["externalId"] == contact["external_id"]
        assert body["profile"] == {
            "givenName": "Fred",
            "surname": "Flintstone",
            "email": contact["email"],
        }
    if vendor == "groove":
        assert first["body"]["email"] == contact["email"]
        assert first["body"]["company_name"] == "Slate Rock and Gravel"
    reports = {r["field"]: r["action"] for r in shown["reports"]}
    assert all(reports.get(f) == a for f, a in REPORTS[vendor].items()), shown["reports"]
    if not REPORTS[vendor]:
        assert shown["reports"] == []
    assert all(r["reason"] for r in shown["reports"])
    # nothing was sent, nor even connected to
    assert emulator.requests == []
    assert emulator.connections == 0
    assert fetch(dry, contact["id"])["vendor_refs"] == {}


def test_dry_run_reports_what_a_vendor_cannot_take(dry: DeliveryGateway, vendor: str) -> None:
    """A contact known only by its user id: no email (Gist, Groove), no phone (Pipedrive)."""
    contact = dry.identify(user_id=uniq("u"), traits={"first_name": "Pebbles"})["contact"]
    shown = dry_run(dry, contact["id"], vendor)
    dropped = {r["field"] for r in shown["reports"] if r["action"] == "dropped"}
    needs = {"gist": "email", "groove": "email", "pipedrive": "phone"}.get(vendor)
    if needs:
        assert shown["requests"] == []
        assert dropped == {needs}
    else:
        assert shown["requests"]
        assert dropped == set()
    if vendor == "pipedrive":  # App Connect's warning, as the delivery would record it
        assert shown["return_message"]["messageType"] == "warning"
    assert dry.emulators[vendor].requests == []


def test_dry_run_of_an_unknown_vendor_is_404(dry: DeliveryGateway) -> None:
    contact = dry.identify(user_id=uniq("u"), traits=traits(uniq_email()))["contact"]
    answer = dry.api.post(f"/v1/contacts/{contact['id']}/dry-run", params={"vendor": "zendesk"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert all(e.requests == [] for e in dry.emulators.values())
