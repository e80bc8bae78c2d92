"""The adapter contract (SPEC §6, §6.1; STYLE §9): every shipped adapter, through a real
gateway and worker, against a local emulator of its vendor.

One gateway per adapter (its tenant delivers only to that vendor) is shared by the module;
tests keep apart through unique identifiers, filter the emulator's requests by the contact
they concern, and wait until the worker recorded the version as delivered before asserting
what the vendor got. The dry-run tests use one more gateway, with every adapter and no worker.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from idgateway.delivery import registry
from tests.conftest import uniq, uniq_email
from tests.emulators import Answer, Recorded
from tests.integration.delivery_support import (
    SETTINGS,
    WEBHOOK_SECRET,
    DeliveryGateway,
    delivery_gateway,
)

if TYPE_CHECKING:
    from pathlib import Path

ADAPTERS = ("smooch", "gist", "groove", "crm", "webhook")
DELETES = {"smooch", "gist", "webhook"}  # contact.delete in their manifests (SPEC §6.1)
KEEPS_REFS = {"smooch", "gist", "crm"}
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
def dg(gateways: GetGateway, vendor: str) -> DeliveryGateway:
    gateway = gateways((vendor,))
    gateway.emulators[vendor].clear()
    return gateway


@pytest.fixture
def webhook_dg(gateways: GetGateway) -> DeliveryGateway:
    gateway = gateways(("webhook",))
    gateway.emulators["webhook"].clear()
    return gateway


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


class OneOf:
    """Equal to any of ``options`` (a detail SPEC leaves open, e.g. a datetime's spelling)."""

    def __init__(self, *options: Any) -> None:
        self.options = options

    def __eq__(self, other: object) -> bool:
        return any(other == o for o in self.options)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OneOf{self.options!r}"


class Timestamp:
    """An RFC 3339 UTC timestamp."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str) or not other.endswith("Z"):
            return False
        try:
            datetime.fromisoformat(other.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<RFC 3339 timestamp>"


def without_none(value: Any) -> Any:
    """Absent and ``null`` mean the same to the vendor: compare without nulls."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value


# --- what each vendor gets (SPEC §6.1, seeds 002–004) ---------------------------------------------

Call = tuple[str, str, dict[str, list[str]], Any]  # method, path, query, JSON body (None: none)


def _datetime(key: str, value: Any) -> Any:
    return OneOf(value, unix(value)) if key.endswith("_at") and isinstance(value, str) else value


def expected_calls(
    vendor: str, contact: dict[str, Any], company_names: Sequence[str] = ()
) -> list[Call]:
    """The requests a delivery of ``contact`` (as it is at delivery) makes to ``vendor``."""
    props = contact["properties"]
    if vendor == "smooch":
        moved = {k: contact[k] for k in ("phone", "facebook", "twitter") if contact.get(k)}
        if contact["tags"]:
            moved["tags"] = ", ".join(contact["tags"])
        if contact["secondary_emails"]:
            moved["secondary_emails"] = ", ".join(contact["secondary_emails"])
        body = {
            "givenName": contact["first_name"],
            "surname": contact["last_name"],
            "email": contact["email"],
            "signedUpAt": contact["signed_up_at"],
            "properties": {**moved, **{k: _datetime(k, v) for k, v in props.items()}},
        }
        # SPEC §6: the appUser _id Smooch returned is used for later updates and deletes.
        user = contact["vendor_refs"].get("smooch") or contact["external_id"] or contact["id"]
        path = f"/v1.1/apps/app123/appusers/{user}"
        return [("PUT", path, {}, without_none(body))]
    if vendor == "gist":
        if not contact["email"]:
            return []
        custom = {
            k: unix(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in props.items()
        }
        custom.update(
            {
                k: contact[k]
                for k in ("first_name", "last_name", "facebook", "twitter")
                if contact.get(k)
            }
        )
        if contact.get("secondary_emails"):
            custom["secondary_emails"] = ", ".join(contact["secondary_emails"])
        body = {
            "user_id": contact["external_id"] or "",
            "email": contact["email"],
            "name": contact["name"],
            "phone": contact["phone"],
            "signed_up_at": unix(contact["signed_up_at"]) if contact["signed_up_at"] else None,
            "tags": contact["tags"],
            "custom_properties": custom,
        }
        return [("POST", "/contacts", {}, without_none(body))]
    if vendor == "groove":
        if not contact["email"]:
            return []
        body = {
            "name": contact["name"],
            "phone_number": contact["phone"],
            "twitter_username": contact["twitter"],
            "company_name": company_names[0] if company_names else None,
            "custom": {f"contact_{k}": _datetime(k, v) for k, v in props.items()},
        }
        return [("PUT", f"/v1/customers/{contact['email']}", {}, without_none(body))]
    if vendor == "crm":
        if not contact["phone"] or contact["vendor_refs"].get("crm"):
            return []
        placeholder = {
            "phoneNumber": contact["phone"],
            "newContactName": contact["name"] or contact["phone"],
            "newContactType": "cta",  # the configured contact_type
        }
        return [
            ("GET", "/contacts", {"phoneNumber": [contact["phone"]]}, None),
            ("POST", "/contacts", {}, placeholder),
        ]
    assert vendor == "webhook"
    body = {"type": "contact.upserted", "timestamp": Timestamp(), "data": contact}
    return [("POST", "/hooks/idgw", {}, without_none(body))]


def call_of(request: Recorded) -> Call:
    body = request.json()
    return (
        request.method,
        unquote(request.path),
        request.query,
        body if body is None else without_none(body),
    )


def concerns(vendor: str, request: Recorded, contact: dict[str, Any]) -> bool:
    """Whether ``request`` is about ``contact`` (emulators are shared by a module's tests)."""
    body = request.json() if request.body else None
    path = unquote(request.path)
    if vendor == "smooch":
        names = {contact["vendor_refs"].get("smooch"), contact["external_id"], contact["id"]}
        return any(n and path.endswith(f"/appusers/{n}") for n in names)
    if vendor == "gist":
        if request.method == "DELETE":
            return (
                bool(contact["vendor_refs"].get("gist"))
                and path == f"/contacts/{contact['vendor_refs']['gist']}"
            )
        return (
            isinstance(body, dict)
            and body.get("email") == contact["email"]
            and contact["email"] is not None
        )
    if vendor == "groove":
        return path == f"/v1/customers/{contact['email']}"
    if vendor == "crm":
        if not contact["phone"]:
            return False
        if request.method == "GET":
            return request.query.get("phoneNumber") == [contact["phone"]]
        return isinstance(body, dict) and body.get("phoneNumber") == contact["phone"]
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


# --- waiting --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
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


def settle(dg: DeliveryGateway, vendor: str) -> None:
    def idle() -> bool:
        for status in ("queued", "in_flight"):
            answer = dg.api.get("/v1/deliveries", params={"vendor": vendor, "status": status})
            assert answer.status_code == 200, answer.text
            if answer.json()["items"]:
                return False
        return True

    wait_until(idle, f"{vendor}: nothing queued or in flight")


def wait_delivered(dg: DeliveryGateway, vendor: str, record_id: str, version: int) -> None:
    wait_until(
        lambda: (delivered_version(dg, vendor, record_id) or 0) >= version,
        f"{vendor}: {record_id} v{version} delivered",
    )
    settle(dg, vendor)


def wait_requests(
    dg: DeliveryGateway, vendor: str, contact: dict[str, Any], count: int
) -> list[Recorded]:
    wait_until(
        lambda: len(requests_for(dg, vendor, contact)) >= count,
        f"{vendor}: {count} requests for {contact['id']}",
    )
    return requests_for(dg, vendor, contact)


def fetch(dg: DeliveryGateway, contact_id: str) -> dict[str, Any]:
    answer = dg.api.get(f"/v1/contacts/{contact_id}")
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def secrets_of(dg: DeliveryGateway) -> list[str]:
    """Every credential value in the tenant's vendor settings."""
    found: list[str] = []
    for name, emulator in dg.emulators.items():
        settings = SETTINGS[name](emulator)
        for spec in registry()[name].manifest.settings:
            if spec.secret:
                found.append(str(settings[spec.name]))
    found.append(WEBHOOK_SECRET.removeprefix("whsec_"))
    return found


# --- (a) create -----------------------------------------------------------------------------------


def test_a_created_contact_is_delivered_once_in_the_vendor_shape(
    dg: DeliveryGateway, vendor: str
) -> None:
    created = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))
    assert created["created"] is True
    contact = created["contact"]
    wait_delivered(dg, vendor, contact["id"], contact["version"])

    got = requests_for(dg, vendor, contact)
    assert [call_of(r) for r in got] == expected_calls(vendor, contact)
    assert len({key_of(r) for r in got}) == 1  # one delivery


# --- (b) update: the current state, a higher version ----------------------------------------------


def test_an_update_is_delivered_with_the_current_state(dg: DeliveryGateway, vendor: str) -> None:
    user_id, email = uniq("u"), uniq_email()
    v1 = dg.identify(user_id=user_id, traits=traits(email))["contact"]  # no phone yet
    wait_delivered(dg, vendor, v1["id"], v1["version"])
    first = requests_for(dg, vendor, v1)
    assert [call_of(r) for r in first] == expected_calls(vendor, v1)

    v2 = dg.identify(
        user_id=user_id, traits={"first_name": "Wilma", "phone": uniq_phone(), "plan": "Pro"}
    )["contact"]
    assert v2["id"] == v1["id"] and v2["version"] > v1["version"]
    wait_delivered(dg, vendor, v2["id"], v2["version"])

    got = requests_for(dg, vendor, v2)
    later = got[len(first) :]
    assert got[: len(first)] == first
    assert [call_of(r) for r in later] == expected_calls(vendor, v2)
    assert later, f"{vendor} got nothing for the update"
    assert later[-1].json() is None or "Wilma" in later[-1].body.decode()
    if first:
        assert {key_of(r) for r in later}.isdisjoint({key_of(r) for r in first})
    if vendor == "webhook":
        assert [r.json()["data"]["version"] for r in got] == [v1["version"], v2["version"]]


def test_a_retry_sends_the_state_current_at_the_retry(dg: DeliveryGateway, vendor: str) -> None:
    """State, not diffs: a change made while a delivery waits for its retry is what the retry
    sends — as a new version, with a new Idempotency-Key."""
    emulator = dg.emulators[vendor]
    emulator.fail(Answer(429, {"error": "slow down"}, headers={"Retry-After": "1"}))
    user_id = uniq("u")
    v1 = dg.identify(user_id=user_id, traits=traits(uniq_email(), uniq_phone()))["contact"]
    refused = wait_requests(dg, vendor, v1, 1)[0]
    assert call_of(refused) == expected_calls(vendor, v1)[0]

    v2 = dg.identify(user_id=user_id, traits={"first_name": "Wilma", "plan": "Pro"})["contact"]
    assert v2["version"] > v1["version"]
    wait_delivered(dg, vendor, v2["id"], v2["version"])

    got = requests_for(dg, vendor, v2)
    assert got[0] == refused
    assert [call_of(r) for r in got[1:]] == expected_calls(vendor, v2)
    assert len({key_of(r) for r in got[1:]}) == 1
    assert key_of(got[1]) != key_of(refused)
    if vendor == "webhook":
        assert [r.json()["data"]["version"] for r in got] == [v1["version"], v2["version"]]


# --- (c) Idempotency-Key --------------------------------------------------------------------------


def test_retries_of_one_version_carry_the_same_idempotency_key(
    dg: DeliveryGateway, vendor: str
) -> None:
    dg.emulators[vendor].fail(Answer(500, {"error": "boom"}))
    contact = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_delivered(dg, vendor, contact["id"], contact["version"])

    got = requests_for(dg, vendor, contact)
    expected = expected_calls(vendor, contact)
    assert len(got) == len(expected) + 1  # the refused request, then the whole delivery
    assert [call_of(r) for r in got[1:]] == expected
    assert call_of(got[0]) == expected[0]
    keys = [key_of(r) for r in got]
    assert len(set(keys)) == 1, keys


def test_a_new_version_gets_a_new_idempotency_key(dg: DeliveryGateway, vendor: str) -> None:
    """v1 is refused for good (a dead letter named by its key); v2 is a new delivery."""
    dg.emulators[vendor].fail(Answer(422, {"error": "invalid"}))
    user_id = uniq("u")
    v1 = dg.identify(user_id=user_id, traits=traits(uniq_email(), uniq_phone()))["contact"]
    refused = wait_requests(dg, vendor, v1, 1)[0]

    def dead_ids() -> list[str]:
        answer = dg.api.get("/v1/deliveries", params={"vendor": vendor, "status": "dead"})
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"] if item["record_id"] == v1["id"]]

    wait_until(lambda: bool(dead_ids()), "the dead letter")
    assert dead_ids() == [key_of(refused)]

    v2 = dg.identify(user_id=user_id, traits={"first_name": "Barney"})["contact"]
    wait_delivered(dg, vendor, v2["id"], v2["version"])
    got = requests_for(dg, vendor, v2)
    assert [call_of(r) for r in got[1:]] == expected_calls(vendor, v2)
    assert got[1:], f"{vendor} got nothing for v{v2['version']}"
    assert {key_of(r) for r in got[1:]} != {key_of(refused)}
    assert len({key_of(r) for r in got[1:]}) == 1


# --- (d) vendor refs ------------------------------------------------------------------------------


def test_vendor_refs_are_stored(dg: DeliveryGateway, vendor: str) -> None:
    emulator = dg.emulators[vendor]
    user_id = uniq("u")
    ref: str | None = None
    if vendor == "smooch":
        ref = uniq("app")
        emulator.fail(Answer(200, {"appUser": {"_id": ref, "userId": user_id}}))
    elif vendor == "gist":
        number = random.randrange(10**8, 10**9)
        ref = str(number)
        emulator.fail(Answer(200, {"contact": {"id": number}}))
    elif vendor == "crm":
        ref = uniq("crm-")
        emulator.fail(Answer(200, {"successful": True, "matchedContactInfo": []}))
        emulator.fail(
            Answer(
                200,
                {
                    "contactInfo": {"id": ref, "name": "Fred Flintstone"},
                    "returnMessage": {
                        "message": "Contact created",
                        "messageType": "success",
                        "ttl": 3000,
                    },
                },
            )
        )
    contact = dg.identify(user_id=user_id, traits=traits(uniq_email(), uniq_phone()))["contact"]
    assert contact["vendor_refs"] == {}
    wait_delivered(dg, vendor, contact["id"], contact["version"])

    stored = fetch(dg, contact["id"])
    assert stored["vendor_refs"].get(vendor) == ref
    assert (vendor in KEEPS_REFS) == (ref is not None)
    assert stored["version"] == contact["version"]  # keeping a ref is no change of the contact


# --- (e) deletes ----------------------------------------------------------------------------------


def test_a_delete_reaches_the_adapters_that_take_it(dg: DeliveryGateway, vendor: str) -> None:
    contact = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    contact = fetch(dg, contact["id"])  # with its vendor refs
    upserts = requests_for(dg, vendor, contact)
    assert len(upserts) == len(expected_calls(vendor, {**contact, "vendor_refs": {}}))

    assert dg.api.delete(f"/v1/contacts/{contact['id']}").status_code == 204
    assert dg.api.get(f"/v1/contacts/{contact['id']}").status_code == 404
    if vendor in DELETES:
        wait_requests(dg, vendor, contact, len(upserts) + 1)
    # a later change, delivered after the delete was read from the outbox: nothing else follows
    sentinel = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_delivered(dg, vendor, sentinel["id"], sentinel["version"])

    got = requests_for(dg, vendor, contact)
    assert got[: len(upserts)] == upserts
    deletes = got[len(upserts) :]
    if vendor == "smooch":
        # SPEC §6: the delete uses the appUser _id Smooch returned for the upsert
        ref = contact["vendor_refs"]["smooch"]
        assert [(r.method, r.path) for r in deletes] == [
            ("DELETE", f"/v1.1/apps/app123/appusers/{ref}")
        ]
    elif vendor == "gist":
        assert [(r.method, r.path) for r in deletes] == [
            ("DELETE", f"/contacts/{contact['vendor_refs']['gist']}")
        ]
    elif vendor == "webhook":
        assert [(r.method, r.path) for r in deletes] == [("POST", "/hooks/idgw")]
        event = deletes[0].json()
        assert event["type"] == "contact.deleted"
        assert event["data"]["id"] == contact["id"]
        assert event["timestamp"] == Timestamp()
    else:
        assert deletes == []
    for request in deletes:
        assert key_of(request) not in {key_of(r) for r in upserts}


def test_a_refused_delete_is_retried_with_the_same_key(dg: DeliveryGateway, vendor: str) -> None:
    """SPEC §6 Retries: a 5xx answer to an erasure is retried like any other delivery."""
    contact = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    contact = fetch(dg, contact["id"])
    upserts = requests_for(dg, vendor, contact)

    dg.emulators[vendor].fail(Answer(503, {"error": "unavailable"}))
    assert dg.api.delete(f"/v1/contacts/{contact['id']}").status_code == 204
    if vendor in DELETES:  # the erasure is recorded as delivered once the vendor took it
        wait_until(
            lambda: delivered_version(dg, vendor, contact["id"]) is None, "the erasure delivered"
        )
    sentinel = dg.identify(user_id=uniq("u"), traits=traits(uniq_email(), uniq_phone()))["contact"]
    wait_delivered(dg, vendor, sentinel["id"], sentinel["version"])

    deletes = requests_for(dg, vendor, contact)[len(upserts) :]
    if vendor in DELETES:
        assert len(deletes) == 2
        assert call_of(deletes[0])[:2] == call_of(deletes[1])[:2]
        assert key_of(deletes[0]) == key_of(deletes[1])
    else:
        assert deletes == []
        # the erasure sent nothing, so the injected failure fell to the sentinel, which retried
        assert len(requests_for(dg, vendor, sentinel)) == len(expected_calls(vendor, sentinel)) + 1


# --- companies ------------------------------------------------------------------------------------


def test_company_events_reach_only_adapters_that_take_them(
    dg: DeliveryGateway, vendor: str
) -> None:
    domain = f"{uniq('d')}.example"
    result = dg.identify(
        user_id=uniq("u"),
        traits=traits(uniq_email(), uniq_phone()),
        company={"domain": domain, "name": "Slate Rock and Gravel"},
    )
    contact, company = result["contact"], result["company"]
    assert contact["company_ids"] == [company["id"]]
    wait_delivered(dg, vendor, contact["id"], contact["version"])
    assert [call_of(r) for r in requests_for(dg, vendor, contact)] == expected_calls(
        vendor, contact, ["Slate Rock and Gravel"]
    )

    if vendor == "webhook":
        wait_delivered(dg, vendor, company["id"], company["version"])
        about = [
            r
            for r in dg.emulators[vendor].requests
            if (r.json() or {}).get("data", {}).get("id") == company["id"]
        ]
        current = dg.api.get(f"/v1/companies/{company['id']}")
        assert current.status_code == 200
        assert [r.json() for r in about] == [
            {"type": "company.upserted", "timestamp": Timestamp(), "data": current.json()}
        ]
    else:
        settle(dg, vendor)
        assert delivered_version(dg, vendor, company["id"]) is None
        assert not [
            r
            for r in dg.emulators[vendor].requests
            if company["id"].encode() in r.body or domain.encode() in r.body
        ]


# --- (f) webhook: Standard Webhooks ---------------------------------------------------------------


def verify(request: Recorded, secret: str) -> bool:
    """A receiver's check (Standard Webhooks): any ``v1,`` signature over ``id.timestamp.body``."""
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(
        key, f"{msg_id}.{timestamp}.".encode() + request.body, hashlib.sha256
    ).digest()
    expected = base64.b64encode(digest).decode()
    offered = [
        s.split(",", 1)[1]
        for s in request.headers["webhook-signature"].split()
        if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, s) for s in offered)


def test_webhook_requests_are_signed(webhook_dg: DeliveryGateway) -> None:
    domain = f"{uniq('d')}.example"
    result = webhook_dg.identify(
        user_id=uniq("u"), traits=traits(uniq_email()), company={"domain": domain, "name": "Acme"}
    )
    contact, company = result["contact"], result["company"]
    wait_delivered(webhook_dg, "webhook", contact["id"], contact["version"])
    wait_delivered(webhook_dg, "webhook", company["id"], company["version"])

    got = [
        r
        for r in webhook_dg.emulators["webhook"].requests
        if (r.json() or {}).get("data", {}).get("id") in (contact["id"], company["id"])
    ]
    assert sorted(r.json()["type"] for r in got) == ["company.upserted", "contact.upserted"]
    for request in got:
        assert verify(request, WEBHOOK_SECRET), request.headers
        assert request.headers["webhook-id"] == request.headers["idempotency-key"]
        assert request.headers["webhook-timestamp"].isdigit()
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
        assert request.headers["content-type"].startswith("application/json")
        # the check is not vacuous: another body or another secret does not verify
        forged = Recorded(
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body + b" ",
            request.at,
        )
        assert not verify(forged, WEBHOOK_SECRET)
        assert not verify(request, "whsec_" + base64.b64encode(b"another secret key").decode())


def test_webhook_retries_keep_the_webhook_id(webhook_dg: DeliveryGateway) -> None:
    webhook_dg.emulators["webhook"].fail(Answer(503))
    contact = webhook_dg.identify(user_id=uniq("u"), traits=traits(uniq_email()))["contact"]
    wait_delivered(webhook_dg, "webhook", contact["id"], contact["version"])
    got = requests_for(webhook_dg, "webhook", contact)
    assert len(got) == 2
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"] == key_of(got[0])
    assert all(verify(r, WEBHOOK_SECRET) for r in got)
    assert got[0].json()["data"] == got[1].json()["data"] == contact


# --- (g) dry-run ----------------------------------------------------------------------------------

# what the constraint check must report for the contact of ``traits`` (SPEC §6)
REPORTS: dict[str, dict[str, str]] = {
    "smooch": {
        "phone": "changed",
        "twitter": "changed",
        "tags": "changed",
    },  # no Smooch field: properties
    "gist": {"properties.last_paid_at": "changed"},  # a datetime as unix seconds
    "groove": {},
    "crm": {},
    "webhook": {},
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


def shown_call(dg: DeliveryGateway, vendor: str, shown: dict[str, Any]) -> Call:
    parts = urlsplit(shown["url"])
    assert f"{parts.scheme}://{parts.netloc}" == dg.emulators[vendor].url
    body = shown["body"]
    return (
        shown["method"],
        unquote(parts.path),
        parse_qs(parts.query),
        body if body is None else without_none(body),
    )


def test_dry_run_shows_the_exact_requests_without_sending(
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
    assert [shown_call(dry, vendor, r) for r in shown["requests"]] == [
        (method, path, query, body if vendor != "webhook" else {**body, "timestamp": Timestamp()})
        for method, path, query, body in expected_calls(vendor, contact, ["Slate Rock and Gravel"])
    ]
    reports = {r["field"]: r["action"] for r in shown["reports"]}
    assert all(reports.get(f) == a for f, a in REPORTS[vendor].items()), shown["reports"]
    if not REPORTS[vendor]:
        assert shown["reports"] == []
    assert all(r["reason"] for r in shown["reports"])
    # nothing was sent, nor even connected to
    assert dry.emulators[vendor].requests == []
    assert dry.emulators[vendor].connections == 0
    assert fetch(dry, contact["id"])["vendor_refs"] == {}


def test_dry_run_reports_what_a_vendor_cannot_take(dry: DeliveryGateway, vendor: str) -> None:
    """A contact known only by its user id: no email (Gist, Groove), no phone (CRM)."""
    contact = dry.identify(user_id=uniq("u"), traits={"first_name": "Pebbles"})["contact"]
    shown = dry_run(dry, contact["id"], vendor)
    dropped = {r["field"] for r in shown["reports"] if r["action"] == "dropped"}
    needs = {"gist": "email", "groove": "email", "crm": "phone"}.get(vendor)
    if needs:
        assert shown["requests"] == []
        assert dropped == {needs}
    else:
        assert [shown_call(dry, vendor, r)[:2] for r in shown["requests"]] == [
            c[:2] for c in expected_calls(vendor, contact)
        ]
        assert dropped == set()
    assert dry.emulators[vendor].requests == []


def test_dry_run_of_an_unknown_vendor_is_404(dry: DeliveryGateway) -> None:
    contact = dry.identify(user_id=uniq("u"), traits=traits(uniq_email()))["contact"]
    answer = dry.api.post(f"/v1/contacts/{contact['id']}/dry-run", params={"vendor": "zendesk"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert all(e.requests == [] for e in dry.emulators.values())


def test_dry_run_of_an_unknown_contact_is_404(dry: DeliveryGateway) -> None:
    answer = dry.api.post(
        "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1/dry-run", params={"vendor": "smooch"}
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
