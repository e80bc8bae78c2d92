"""The shipped vendor adapters, without network I/O (SPEC §6, §6.1; seeds 002-004;
``vendor-api/``).

Each adapter's ``plan(event)`` is driven by hand: every request it yields is recorded and
answered either with a :class:`VendorResponse` chosen by the test or by the vendor's emulator
model (``tests/emulators``), which also checks the request against the vendor's contract.
``check(event)`` is called directly. Adapters are built through the registry, as the gateway
builds them.
"""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from idgateway.delivery import (
    SHIPPED,
    Adapter,
    DeliveryEvent,
    Outcome,
    Report,
    VendorRejected,
    VendorRequest,
    VendorResponse,
    registry,
    settings_issues,
    vendors_dir,
)
from idgateway.delivery._worker import sign_webhook
from tests.emulators import (
    GIST_TOKEN,
    GROOVE_TOKEN,
    PIPEDRIVE_TOKEN,
    SMOOCH,
    SUNSHINE,
    Recorded,
    Rejection,
    model_of,
)

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

SETTINGS: dict[str, dict[str, Any]] = {
    "smooch": {"base_url": "https://api.smooch.test/", **SMOOCH},
    "sunshine": {"base_url": "https://acme.zendesk.test/sc", **SUNSHINE},
    "gist": {"base_url": "https://api.gist.test", "token": GIST_TOKEN},
    "groove": {"base_url": "https://api.groove.test/", "token": GROOVE_TOKEN},
    "pipedrive": {
        "base_url": "https://acme.pipedrive.test",
        "token": PIPEDRIVE_TOKEN,
        "contact_type": "person",
    },
    "webhook": {"url": "https://hooks.example.test/idgw?source=gw", "secret": WEBHOOK_SECRET},
}
SECRET_SETTING = {
    "smooch": "secret",
    "sunshine": "secret",
    "gist": "token",
    "groove": "token",
    "pipedrive": "token",
    "webhook": "secret",
}

# SPEC §6.1: what each shipped adapter takes and sends.
CAPABILITIES: dict[str, set[str]] = {
    "smooch": {"contact.upsert", "contact.delete"},
    "sunshine": {"contact.upsert", "contact.delete"},
    "gist": {"contact.upsert", "contact.delete"},
    "groove": {"contact.upsert"},
    "pipedrive": {"contact.upsert"},
    "webhook": {"contact.upsert", "contact.delete", "company.upsert"},
}
SETTING_NAMES: dict[str, set[str]] = {
    "smooch": {"base_url", "app_id", "key_id", "secret"},
    "sunshine": {"base_url", "app_id", "key_id", "secret"},
    "gist": {"base_url", "token"},
    "groove": {"base_url", "token"},
    "pipedrive": {"base_url", "token", "contact_type"},
    "webhook": {"url", "secret"},
}

CONTACT_ID = "c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"
COMPANY_ID = "co_01JDQ8Z6X4M2V5B7N9P3R6T8W2"


def contact(**changes: Any) -> dict[str, Any]:
    """The canonical contact of SPEC §2.1, with ``changes`` applied (None removes a value)."""
    record: dict[str, Any] = {
        "id": CONTACT_ID,
        "external_id": "12345",
        "email": "fred@example.com",
        "secondary_emails": ["fred.flintstone@example.com"],
        "phone": "+15558234312",
        "first_name": "Fred",
        "last_name": "Flintstone",
        "name": "Fred Flintstone",
        "signed_up_at": "2015-10-08T23:52:11.677Z",
        "facebook": "the-flintstones",
        "twitter": "fredflintstone",
        "tags": ["free", "popular"],
        "properties": {
            "plan": "Pro",
            "active_accounts": 1872,
            "vip": True,
            "dob": "1980-02-24",
            "last_paid_at": "2010-09-03T06:39:06Z",
            "home_address": {
                "street": "1 Main street",
                "city": "Bay city",
                "state": "California",
                "postal_code": "94110",
                "country": "USA",
            },
            "blog_url": {"link": "https://example.com", "text": "Blog"},
        },
        "company_ids": [COMPANY_ID],
        "vendor_refs": {},
        "created_at": "2026-11-21T10:00:00Z",
        "updated_at": "2026-11-21T10:05:00Z",
        "version": 3,
    }
    record.update(changes)
    return record


def company() -> dict[str, Any]:
    return {
        "id": COMPANY_ID,
        "domain": "example.com",
        "secondary_domains": [],
        "facebook": None,
        "twitter": None,
        "linkedin": None,
        "name": "Example Inc.",
        "description": None,
        "properties": {"tier": "gold"},
        "contact_count": 1,
        "created_at": "2026-11-21T10:00:00Z",
        "updated_at": "2026-11-21T10:05:00Z",
        "version": 2,
    }


def upserted(
    record: dict[str, Any] | None = None, *, companies: Sequence[dict[str, Any]] = ()
) -> DeliveryEvent:
    record = contact() if record is None else record
    return DeliveryEvent(
        kind="contact.upserted",
        delivery_id="d_0123456789abcdef01234567",
        record_id=record["id"],
        version=record["version"],
        timestamp="2026-11-21T10:05:01.000Z",
        record=record,
        companies=tuple(companies),
    )


def deleted(**refs: str) -> DeliveryEvent:
    tombstone: dict[str, Any] = {
        "id": CONTACT_ID,
        "version": 4,
        "external_id": "12345",
        "email": "fred@example.com",
        "phone": "+15558234312",
    }
    if refs:
        tombstone["vendor_refs"] = refs
    return DeliveryEvent(
        kind="contact.deleted",
        delivery_id="d_fedcba9876543210fedcba98",
        record_id=CONTACT_ID,
        version=4,
        timestamp="2026-11-21T10:06:00.000Z",
        tombstone=tombstone,
    )


def build(name: str, **settings: Any) -> Adapter:
    return registry()[name].build(name, {**SETTINGS[name], **settings})


def answer(status: int = 200, body: Any = None) -> VendorResponse:
    return VendorResponse(
        status,
        {"content-type": "application/json"},
        b"" if body is None else json.dumps(body).encode(),
    )


Answerer = Callable[[VendorRequest], VendorResponse]


def drive(
    adapter: Adapter, event: DeliveryEvent, answers: Sequence[VendorResponse] | Answerer = ()
) -> tuple[list[VendorRequest], Outcome]:
    """Run a plan to its end: every yielded request is answered from ``answers`` (in order,
    or by calling it); returns the requests and the outcome."""
    queue = list(answers) if not callable(answers) else []
    sent: list[VendorRequest] = []
    plan = adapter.plan(event)
    try:
        request = next(plan)
        while True:
            assert isinstance(request, VendorRequest)
            sent.append(request)
            assert len(sent) < 10, "a plan that never ends"
            if callable(answers):
                response = answers(request)
            else:
                assert queue, f"no answer left for {request.method} {request.url}"
                response = queue.pop(0)
            request = plan.send(response)
    except StopIteration as done:
        outcome = done.value
    assert isinstance(outcome, Outcome)
    return sent, outcome


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and value is not None


def fields_of(reports: list[Report]) -> dict[str, str]:
    return {r.field: r.action for r in reports}


class Vendor:
    """A vendor emulator model driven in-process: answers a plan's requests as the vendor would,
    and records every way a request breaks the vendor's contract."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.model: Any = model_of(name)
        self.violations: list[str] = []

    def __call__(self, request: VendorRequest) -> VendorResponse:
        parts = urlsplit(request.url)
        base = urlsplit(SETTINGS[self.name].get("base_url", "")).path.rstrip("/")
        path = parts.path.removeprefix(base)  # the vendor's paths start after the base URL
        body = request.content() or b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if body:
            headers.setdefault("content-type", "application/json")
        if request.sign:  # the gateway signs at send time
            ts = 1_700_000_000
            headers.update(
                {
                    "webhook-id": "d_1",
                    "webhook-timestamp": str(ts),
                    "webhook-signature": sign_webhook(WEBHOOK_SECRET, "d_1", ts, body),
                }
            )
        recorded = Recorded(request.method, path, parse_qs(parts.query), headers, body, 0.0)
        rejected = self.model.rejections(recorded) if self.name != "webhook" else []
        self.violations += [r.message for r in rejected]
        reply = self.model.error(rejected[0]) if rejected else self.model.answer(recorded)
        return answer(reply.status, reply.body)


def run(
    name: str, *events: DeliveryEvent, vendor: Vendor | None = None, **settings: Any
) -> tuple[list[list[VendorRequest]], list[Outcome], Vendor]:
    """Deliver ``events`` in order to one vendor model, keeping the vendor refs it answers
    between them, as the worker does; every request must pass the vendor's contract."""
    vendor = vendor or Vendor(name)
    adapter = build(name, **settings)
    refs: dict[str, str] = {}
    sent, outcomes = [], []
    for event in events:
        source = event.record if event.record is not None else event.tombstone
        assert source is not None
        source.setdefault("vendor_refs", {}).update(refs)
        requests, outcome = drive(adapter, event, vendor)
        sent.append(requests)
        outcomes.append(outcome)
        if outcome.vendor_ref:
            refs[name] = outcome.vendor_ref
    assert vendor.violations == [], vendor.violations
    return sent, outcomes, vendor


def calls(requests: Sequence[VendorRequest]) -> list[tuple[str, str]]:
    return [(r.method, urlsplit(r.url).path) for r in requests]


# --- manifests and registry ---------------------------------------------------------------------


def test_every_shipped_adapter_is_registered() -> None:
    assert set(SHIPPED) == set(CAPABILITIES)
    assert set(CAPABILITIES) <= set(registry())
    assert "crm" not in registry()  # replaced by pipedrive (issue 12)


def test_every_vendor_folder_is_a_shipped_adapter() -> None:
    folders = {p.name for p in vendors_dir().iterdir() if (p / "manifest.toml").is_file()}
    assert folders == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_manifest_name_equals_its_folder(name: str) -> None:
    raw = tomllib.loads((vendors_dir() / name / "manifest.toml").read_text(encoding="utf-8"))
    assert raw["name"] == name
    assert registry()[name].manifest.name == name
    assert raw.get("display_name") and raw.get("version")


@pytest.mark.parametrize("name", sorted(set(CAPABILITIES) - {"webhook"}))
def test_manifest_limits_name_the_contract_and_the_removal_rule(name: str) -> None:
    limits = registry()[name].manifest.limits
    assert "vendor-api/" in limits["contract"]
    assert limits.get("removal") or limits.get("erasure")


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_capabilities_match_the_spec_table(name: str) -> None:
    adapter = build(name)
    assert set(adapter.manifest.capabilities) == CAPABILITIES[name]
    for kind, capability in (
        ("contact.upserted", "contact.upsert"),
        ("contact.deleted", "contact.delete"),
        ("company.upserted", "company.upsert"),
    ):
        assert adapter.supports(kind) is (capability in CAPABILITIES[name])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_settings_match_the_spec_and_credentials_are_secret(name: str) -> None:
    specs = {s.name: s for s in registry()[name].manifest.settings}
    assert set(specs) == SETTING_NAMES[name]
    assert {n for n, s in specs.items() if s.secret} == {SECRET_SETTING[name]}


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_the_spec_settings_are_valid(name: str) -> None:
    assert settings_issues(registry()[name], dict(SETTINGS[name])) == []


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_a_missing_credential_is_an_issue(name: str) -> None:
    settings = dict(SETTINGS[name])
    del settings[SECRET_SETTING[name]]
    issues = settings_issues(registry()[name], settings)
    assert (SECRET_SETTING[name], "missing setting") in issues


@pytest.mark.parametrize("name", ["smooch", "sunshine"])
def test_a_raw_key_instead_of_a_key_id_and_secret_is_an_issue(name: str) -> None:
    settings = {k: v for k, v in SETTINGS[name].items() if k not in ("key_id", "secret")}
    issues = settings_issues(registry()[name], {**settings, "key": "raw-key"})
    assert ("key", "unknown setting") in issues
    assert ("key_id", "missing setting") in issues
    assert ("secret", "missing setting") in issues


def test_smooch_key_id_must_be_an_api_key_id() -> None:
    issues = settings_issues(registry()["smooch"], {**SETTINGS["smooch"], "key_id": "secret!"})
    assert [key for key, _ in issues] == ["key_id"]
    assert all("secret!" not in message for _, message in issues)


# --- settings_issues ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no whsec_ prefix
        "whsec_",  # nothing after it
        "whsec_not base64!!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # bad padding
        "sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_webhook_secret_must_be_whsec_and_base64(secret: str) -> None:
    issues = settings_issues(registry()["webhook"], {**SETTINGS["webhook"], "secret": secret})
    assert [key for key, _ in issues] == ["secret"]
    assert all(secret not in message for _, message in issues if len(secret) > 6)


def test_pipedrive_manifest_lists_contact_types() -> None:
    types = registry()["pipedrive"].manifest.extra["contactTypes"]
    assert types and all(set(t) == {"display", "value"} for t in types)
    assert ("Person", "person") in {(t["display"], t["value"]) for t in types}


@pytest.mark.parametrize("contact_type", ["person", None])
def test_pipedrive_contact_type_from_the_manifest_is_valid(contact_type: str | None) -> None:
    settings = {**SETTINGS["pipedrive"], "contact_type": contact_type}
    if contact_type is None:
        del settings["contact_type"]
    assert settings_issues(registry()["pipedrive"], settings) == []


@pytest.mark.parametrize("contact_type", ["cta", "Person", "organization", ""])
def test_pipedrive_contact_type_outside_the_manifest_is_an_issue(contact_type: str) -> None:
    settings = {**SETTINGS["pipedrive"], "contact_type": contact_type}
    issues = settings_issues(registry()["pipedrive"], settings)
    assert [key for key, _ in issues] == ["contact_type"]


# --- smooch (v1.1, smooch-v1.md) ------------------------------------------------------------------

SMOOCH_APP = f"/v1.1/apps/{SMOOCH['app_id']}/appusers"


def test_smooch_pre_creates_an_unknown_user_with_the_seed_body() -> None:
    (requests,), (outcome,), vendor = run("smooch", upserted())
    assert calls(requests) == [("GET", f"{SMOOCH_APP}/12345"), ("POST", SMOOCH_APP)]
    expected_auth = (
        "Basic " + base64.b64encode(f"{SMOOCH['key_id']}:{SMOOCH['secret']}".encode()).decode()
    )
    assert all(r.headers["Authorization"] == expected_auth for r in requests)
    body = requests[1].json
    assert body["userId"] == "12345"
    assert (body["givenName"], body["surname"], body["email"]) == (
        "Fred",
        "Flintstone",
        "fred@example.com",
    )
    assert body["signedUpAt"] == "2015-10-08T23:52:11.677Z"
    properties = body["properties"]
    assert all(is_scalar(v) for v in properties.values()), properties
    assert properties["home_address_city"] == "Bay city"
    assert properties["phone"] == "+15558234312"
    assert properties["tags"] == "free, popular"
    assert properties["secondary_emails"] == "fred.flintstone@example.com"
    assert outcome.vendor_ref == vendor.model.find("12345")["_id"]


def test_smooch_updates_by_the_app_user_id_it_returned() -> None:
    (_, second), (first_outcome, outcome), _ = run(
        "smooch", upserted(), upserted(contact(first_name="Wilma"))
    )
    ref = first_outcome.vendor_ref
    assert calls(second) == [("GET", f"{SMOOCH_APP}/{ref}"), ("PUT", f"{SMOOCH_APP}/{ref}")]
    assert second[1].json["givenName"] == "Wilma"
    assert outcome.vendor_ref == ref


def test_smooch_removes_what_the_record_lost_with_the_profile_delete() -> None:
    props = dict(contact()["properties"])
    del props["plan"]
    lost = contact(last_name=None, twitter=None, properties=props)
    (_, second), _, vendor = run("smooch", upserted(), upserted(lost))
    ref = vendor.model.find("12345")["_id"]
    assert calls(second) == [
        ("GET", f"{SMOOCH_APP}/{ref}"),
        ("DELETE", f"{SMOOCH_APP}/{ref}/profile"),
        ("PUT", f"{SMOOCH_APP}/{ref}"),
    ]
    user = vendor.model.find(ref)
    assert "surname" not in user
    assert "plan" not in user["properties"] and "twitter" not in user["properties"]
    assert user["givenName"] == "Fred" and user["properties"]["vip"] is True


def test_smooch_without_a_removal_sends_no_profile_delete() -> None:
    (_, second), _, _ = run("smooch", upserted(), upserted(contact(first_name="Barney")))
    assert [m for m, _ in calls(second)] == ["GET", "PUT"]


def test_smooch_escapes_the_user_id_in_the_path() -> None:
    (requests,), _, _ = run("smooch", upserted(contact(external_id="a/b c?d")))
    path = urlsplit(requests[0].url).path
    assert unquote(path.rsplit("/", 1)[1]) == "a/b c?d"
    assert urlsplit(requests[0].url).query == ""


def test_smooch_uses_the_contact_id_without_an_external_id() -> None:
    (requests,), _, _ = run("smooch", upserted(contact(external_id=None)))
    assert requests[1].json["userId"] == CONTACT_ID


def test_smooch_pre_create_conflict_updates_the_existing_user() -> None:
    vendor = Vendor("smooch")
    run("smooch", upserted(contact(external_id="77")), vendor=vendor)
    # the race: GET says 404, the pre-create finds the userId taken -> GET by userId, PUT
    sent: list[str] = []

    def answers(request: VendorRequest) -> VendorResponse:
        sent.append(request.method)
        if len(sent) == 1:
            return answer(404, {"error": {"code": "not_found", "description": "x"}})
        return vendor(request)

    _, outcome = drive(build("smooch"), upserted(contact(external_id="77")), answers)
    assert sent == ["GET", "POST", "GET", "PUT"]
    assert outcome.vendor_ref == vendor.model.find("77")["_id"]


def test_smooch_deletes_the_app_user_by_its_id() -> None:
    (_, deletes), _, vendor = run("smooch", upserted(), deleted())
    ref = deletes[0].url.rsplit("/", 1)[1]
    assert calls(deletes) == [("DELETE", f"{SMOOCH_APP}/{ref}")]
    assert deletes[0].content() is None
    assert vendor.model.users == {}


def test_smooch_delete_of_an_unknown_user_is_done() -> None:
    requests, outcome = drive(build("smooch"), deleted(smooch="gone"), Vendor("smooch"))
    assert len(requests) == 1 and outcome.message


def test_smooch_check_reports_flattened_and_moved_fields() -> None:
    fields = fields_of(build("smooch").check(upserted()))
    assert fields["properties.home_address"] == "changed"
    for moved in ("phone", "twitter", "tags", "facebook", "secondary_emails"):
        assert fields[moved] == "changed"


# --- sunshine (v2 OpenAPI) ------------------------------------------------------------------------

SUNSHINE_USERS = f"/sc/v2/apps/{SUNSHINE['app_id']}/users"


def test_sunshine_creates_the_user_once_then_patches_it_by_id() -> None:
    (first, second), (created, updated), vendor = run(
        "sunshine", upserted(), upserted(contact(first_name="Wilma"))
    )
    assert calls(first) == [("POST", SUNSHINE_USERS)]
    body = first[0].json
    assert body["externalId"] == "12345"
    assert body["profile"] == {
        "givenName": "Fred",
        "surname": "Flintstone",
        "email": "fred@example.com",
    }
    assert body["signedUpAt"] == "2015-10-08T23:52:11.677Z"
    assert all(is_scalar(v) for v in body["metadata"].values())
    ref = created.vendor_ref
    assert ref == vendor.model.find("12345")["id"]
    assert calls(second) == [("PATCH", f"{SUNSHINE_USERS}/{ref}")]
    assert second[0].json["profile"]["givenName"] == "Wilma"
    assert updated.vendor_ref == ref


def test_sunshine_removes_profile_fields_with_null_and_stale_metadata() -> None:
    props = dict(contact()["properties"])
    del props["plan"]
    (_, second), _, vendor = run(
        "sunshine", upserted(), upserted(contact(last_name=None, properties=props))
    )
    assert second[0].json["profile"]["surname"] is None  # nullable: explicit removal
    # the emulator merges metadata (the strict reading): cleared, then sent whole again
    assert [r.json for r in second[1:]] == [
        {"metadata": None},
        {"metadata": second[0].json["metadata"]},
    ]
    user = vendor.model.find("12345")
    assert "surname" not in user["profile"]
    assert "plan" not in user["metadata"] and user["metadata"]["vip"] is True


def test_sunshine_409_on_create_updates_the_user_by_external_id() -> None:
    vendor = Vendor("sunshine")
    run("sunshine", upserted(), vendor=vendor)
    event = upserted(contact(first_name="Pebbles"))  # no ref kept: creates again
    requests, outcome = drive(build("sunshine"), event, vendor)
    assert [r.method for r in requests] == ["POST", "PATCH"]
    assert requests[1].url.endswith("/users/12345")
    assert outcome.vendor_ref == vendor.model.find("12345")["id"]
    assert vendor.violations == []


def test_sunshine_metadata_is_kept_within_4_kb_and_reported() -> None:
    props = {f"k{i:03d}": "v" * 200 for i in range(40)}
    event = upserted(contact(properties=props))
    (requests,), _, _ = run("sunshine", event)
    metadata = requests[0].json["metadata"]
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) <= 4096
    dropped = {r.field for r in build("sunshine").check(event) if r.action == "dropped"}
    assert dropped and dropped == {f"properties.{k}" for k in props if k not in metadata}


def test_sunshine_long_names_are_cut_to_the_profile_limit() -> None:
    event = upserted(contact(first_name="F" * 200))
    (requests,), _, _ = run("sunshine", event)
    assert requests[0].json["profile"]["givenName"] == "F" * 128
    assert fields_of(build("sunshine").check(event))["first_name"] == "changed"


def test_sunshine_deletes_the_user_by_its_id() -> None:
    (_, deletes), (created, _), vendor = run("sunshine", upserted(), deleted())
    assert calls(deletes) == [("DELETE", f"{SUNSHINE_USERS}/{created.vendor_ref}")]
    assert vendor.model.users == {}


# --- gist (gist.md) -------------------------------------------------------------------------------


def test_gist_posts_the_contact() -> None:
    (requests,), (outcome,), vendor = run("gist", upserted())
    assert calls(requests) == [("POST", "/contacts")]
    assert requests[0].headers["Authorization"] == f"Bearer {GIST_TOKEN}"
    body = requests[0].json
    assert "id" not in body
    assert body["user_id"] == "12345"
    assert body["email"] == "fred@example.com"
    assert body["name"] == "Fred Flintstone"
    assert body["signed_up_at"] == 1444348331  # unix seconds
    assert body["tags"] == ["free", "popular"]
    custom = body["custom_properties"]
    assert all(is_scalar(v) for v in custom.values()), custom
    assert custom["last_paid_at"] == 1283495946
    assert custom["home_address_city"] == "Bay city"
    assert custom["twitter"] == "fredflintstone"
    assert outcome.vendor_ref in {str(i) for i in vendor.model.contacts}


def test_gist_updates_by_the_stored_id() -> None:
    (_, second), (created, _), vendor = run(
        "gist", upserted(), upserted(contact(email="fred@bedrock.example"))
    )
    assert second[0].json["id"] == int(created.vendor_ref or "0")
    assert len(vendor.model.contacts) == 1  # no second contact after the email change
    (only,) = vendor.model.contacts.values()
    assert only["email"] == "fred@bedrock.example"


def test_gist_keeps_tags_equal_to_the_record() -> None:
    (_, second), (created, _), vendor = run("gist", upserted(), upserted(contact(tags=["vip"])))
    gist_id = int(created.vendor_ref or "0")
    assert calls(second) == [("POST", "/contacts"), ("POST", "/tags"), ("POST", "/tags")]
    assert [r.json for r in second[1:]] == [
        {"name": "free", "contacts": [{"id": gist_id, "untag": True}]},
        {"name": "popular", "contacts": [{"id": gist_id, "untag": True}]},
    ]
    assert vendor.model.contacts[gist_id]["tag_names"] == {"vip"}


def test_gist_sends_null_for_removed_fields_still_at_gist() -> None:
    props = dict(contact()["properties"])
    del props["plan"]
    (_, second), (created, _), vendor = run(
        "gist", upserted(), upserted(contact(phone=None, properties=props))
    )
    gist_id = int(created.vendor_ref or "0")
    assert calls(second) == [("POST", "/contacts"), ("POST", "/contacts")]
    assert second[1].json == {"id": gist_id, "phone": None, "custom_properties": {"plan": None}}
    held = vendor.model.contacts[gist_id]
    assert "phone" not in held and "plan" not in held["custom_properties"]


def test_gist_without_user_id_sends_none() -> None:
    (requests,), _, _ = run("gist", upserted(contact(external_id=None)))
    assert "user_id" not in requests[0].json


def test_gist_cuts_strings_to_255_characters_and_reports_it() -> None:
    record = contact(properties={"bio": "x" * 300, "plan": "Pro", "nested": {"note": "y" * 256}})
    (requests,), _, _ = run("gist", upserted(record))
    custom = requests[0].json["custom_properties"]
    assert custom["bio"] == "x" * 255
    assert custom["nested_note"] == "y" * 255
    fields = fields_of(build("gist").check(upserted(record)))
    assert fields["properties.bio"] == "changed"
    assert fields["properties.nested.note"] == "changed"


def test_gist_without_email_is_skipped_with_a_report() -> None:
    event = upserted(contact(email=None))
    requests, outcome = drive(build("gist"), event)
    assert requests == []
    assert outcome.message
    assert fields_of(build("gist").check(event))["email"] == "dropped"


def test_gist_deletes_by_its_contact_id() -> None:
    (_, deletes), (created, _), vendor = run("gist", upserted(), deleted())
    assert calls(deletes) == [("DELETE", f"/contacts/{created.vendor_ref}")]
    assert vendor.model.contacts == {}


def test_gist_delete_without_a_ref_names_the_user_id() -> None:
    vendor = Vendor("gist")
    run("gist", upserted(), vendor=vendor)
    requests, _ = drive(build("gist"), deleted(smooch="other"), vendor)
    assert [(r.method, r.url) for r in requests] == [
        ("DELETE", "https://api.gist.test/contacts?user_id=12345")
    ]
    assert vendor.model.contacts == {}


# --- groove (groove-v1.md) ------------------------------------------------------------------------


def test_groove_puts_the_customer_with_email_and_documented_fields() -> None:
    event = upserted(
        companies=[{"id": COMPANY_ID, "name": "Example Inc.", "domain": "example.com"}]
    )
    (requests,), (outcome,), _ = run("groove", event)
    assert calls(requests) == [("PUT", "/v1/customers/fred@example.com")]
    assert requests[0].headers["Authorization"] == f"Bearer {GROOVE_TOKEN}"
    body = requests[0].json
    assert set(body) <= {
        "email",
        "name",
        "about",
        "twitter_username",
        "title",
        "company_name",
        "phone_number",
        "location",
        "linkedin_username",
        "custom",
    }
    assert body["email"] == "fred@example.com"
    assert body["name"] == "Fred Flintstone"
    assert body["phone_number"] == "+15558234312"
    assert body["twitter_username"] == "fredflintstone"
    assert body["company_name"] == "Example Inc."
    custom = body["custom"]
    assert not any(k.startswith("contact_") for k in custom)
    assert all(is_scalar(v) for v in custom.values()), custom
    assert custom["plan"] == "Pro" and custom["home_address_city"] == "Bay city"
    assert outcome.vendor_ref == "fred@example.com"


def test_groove_email_change_names_the_old_address() -> None:
    (_, second), _, vendor = run(
        "groove", upserted(), upserted(contact(email="fred@bedrock.example"))
    )
    assert calls(second) == [("PUT", "/v1/customers/fred@example.com")]
    assert second[0].json["email"] == "fred@bedrock.example"
    assert set(vendor.model.customers) == {"fred@bedrock.example"}


def test_groove_removes_fields_and_custom_keys() -> None:
    props = dict(contact()["properties"])
    del props["plan"]
    (_, second), _, vendor = run(
        "groove", upserted(), upserted(contact(phone=None, properties=props))
    )
    assert second[0].json["phone_number"] == ""
    assert second[1].json == {"email": "fred@example.com", "custom": {"plan": None}}
    held = vendor.model.customers["fred@example.com"]
    assert held["phone_number"] == "" and "plan" not in held["custom"]


def test_groove_escapes_the_email_in_the_path() -> None:
    (requests,), _, _ = run("groove", upserted(contact(email="fred+test/x@example.com")))
    path = urlsplit(requests[0].url).path
    assert unquote(path.removeprefix("/v1/customers/")) == "fred+test/x@example.com"


def test_groove_without_email_is_skipped_with_a_report() -> None:
    event = upserted(contact(email=None))
    requests, outcome = drive(build("groove"), event)
    assert requests == []
    assert outcome.message
    assert fields_of(build("groove").check(event))["email"] == "dropped"


# --- pipedrive (App Connect createContact, pipedrive.md) ------------------------------------------


def test_pipedrive_searches_by_phone_then_creates_the_placeholder() -> None:
    (requests,), (outcome,), vendor = run("pipedrive", upserted())
    assert calls(requests) == [("GET", "/api/v2/persons/search"), ("POST", "/api/v1/persons")]
    find, create = requests
    assert parse_qs(urlsplit(find.url).query) == {"term": ["5558234312"], "fields": ["phone"]}
    assert find.content() is None
    assert create.json == {
        "name": "Fred Flintstone",
        "phone": [{"value": "+15558234312", "primary": True}],
    }
    for request in requests:
        assert request.headers == {"x-api-token": PIPEDRIVE_TOKEN}
    assert outcome.vendor_ref in {str(i) for i in vendor.model.persons}
    assert outcome.return_message is not None
    assert outcome.return_message.to_json() == {
        "message": "Contact created.",
        "messageType": "success",
        "ttl": 2000,
    }


def test_pipedrive_keeps_a_person_found_by_phone() -> None:
    vendor = Vendor("pipedrive")
    person = vendor.model.seed("Fred (quarry)", "+15558234312")
    (requests,), (outcome,), _ = run("pipedrive", upserted(), vendor=vendor)
    assert [r.method for r in requests] == ["GET"]
    assert outcome.vendor_ref == str(person)
    assert outcome.return_message is None


def test_pipedrive_updates_name_and_phones_once_the_person_is_known() -> None:
    (_, second, third), (created, _, _), vendor = run(
        "pipedrive",
        upserted(),
        upserted(contact(name="Fred F.", phone="+15558234399")),
        upserted(contact(name="Fred F.", phone=None)),
    )
    person = int(created.vendor_ref or "0")
    assert calls(second) == [("PATCH", f"/api/v2/persons/{person}")]
    assert second[0].json == {
        "name": "Fred F.",
        "phones": [{"value": "+15558234399", "primary": True}],
    }
    assert third[0].json == {"name": "Fred F.", "phones": []}  # the removed phone
    assert vendor.model.persons[person]["phones"] == []


def test_pipedrive_without_phone_sends_nothing_and_warns() -> None:
    event = upserted(contact(phone=None))
    requests, outcome = drive(build("pipedrive"), event)
    assert requests == []
    assert outcome.vendor_ref is None
    assert outcome.return_message is not None
    assert outcome.return_message.message_type == "warning"
    assert fields_of(build("pipedrive").check(event)) == {"phone": "dropped"}


def test_pipedrive_success_false_is_a_refusal() -> None:
    with pytest.raises(VendorRejected):
        drive(
            build("pipedrive"),
            upserted(),
            [answer(200, {"success": False, "error": "nope", "data": None})],
        )


def test_pipedrive_answer_without_person_id_is_rejected() -> None:
    with pytest.raises(VendorRejected):
        drive(
            build("pipedrive"),
            upserted(),
            [answer(200, {"success": True, "data": {"items": []}}), answer(201, {"success": True})],
        )


# --- webhook (Standard Webhooks) ------------------------------------------------------------------


def test_webhook_posts_the_signed_event() -> None:
    event = upserted()
    requests, _ = drive(build("webhook"), event, [answer(204)])
    assert len(requests) == 1
    post = requests[0]
    assert (post.method, post.url) == ("POST", "https://hooks.example.test/idgw?source=gw")
    assert post.sign is True
    assert post.json == {
        "type": "contact.upserted",
        "timestamp": event.timestamp,
        "data": contact(),
    }
    assert WEBHOOK_SECRET not in json.dumps(post.headers)
    assert WEBHOOK_SECRET.encode() not in (post.content() or b"")


def test_webhook_posts_the_tombstone_on_erasure() -> None:
    event = deleted(smooch="x")
    requests, _ = drive(build("webhook"), event, [answer(200)])
    assert requests[0].json == {
        "type": "contact.deleted",
        "timestamp": event.timestamp,
        "data": event.tombstone,
    }


def test_webhook_posts_companies() -> None:
    event = DeliveryEvent(
        kind="company.upserted",
        delivery_id="d_0000000000000000000000aa",
        record_id=COMPANY_ID,
        version=2,
        timestamp="2026-11-21T10:05:01.000Z",
        record=company(),
    )
    requests, _ = drive(build("webhook"), event, [answer(200)])
    assert requests[0].json == {
        "type": "company.upserted",
        "timestamp": event.timestamp,
        "data": company(),
    }


def test_standard_webhooks_signature_matches_the_reference_library() -> None:
    # The example published with the Standard Webhooks specification.
    signature = sign_webhook(
        WEBHOOK_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    now = int(datetime.now(UTC).timestamp())
    body = b'{"a":1}'
    headers = {
        "webhook-id": "d_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign_webhook(WEBHOOK_SECRET, "d_1", now, body),
    }
    assert Webhook(WEBHOOK_SECRET).verify(body, headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(b'{"a":2}', headers)


# --- every adapter: failures, credentials, the record -----------------------------------------


def all_events(name: str) -> list[DeliveryEvent]:
    events = [upserted()]
    if "contact.delete" in CAPABILITIES[name]:
        events.append(deleted())
    return events


def plan_steps(name: str) -> list[tuple[str, int, str]]:
    """(adapter, request index, event kind) of every request each plan makes."""
    steps = []
    for index, event in enumerate(all_events(name)):
        sent, _, _ = run(name, *all_events(name)[: index + 1])
        steps += [(name, i, event.kind) for i in range(len(sent[-1]))]
    return steps


CASES = [
    (name, index, kind, status)
    for name in sorted(CAPABILITIES)
    for name, index, kind in plan_steps(name)
    for status in (400, 401, 422, 429, 503)
]


@pytest.mark.parametrize(("name", "index", "kind", "status"), CASES)
def test_a_failure_answer_raises_vendor_rejected(
    name: str, index: int, kind: str, status: int
) -> None:
    """Any failure answer to any request of a plan (bar the documented 'not found' answers an
    adapter handles) is the vendor's refusal, for the gateway to classify (retry, dead)."""
    vendor = Vendor(name)
    events = all_events(name)
    upto = next(i for i, e in enumerate(events) if e.kind == kind)
    if upto:
        run(name, *events[:upto], vendor=vendor)
    calls_made = 0

    def answers(request: VendorRequest) -> VendorResponse:
        nonlocal calls_made
        calls_made += 1
        if calls_made == index + 1:
            return answer(status, vendor.model.error(Rejection(status, "x", "nope")).body)
        return vendor(request)

    event = events[upto]
    if upto:
        refs = {name: vendor_ref_of(vendor, name)}
        event = deleted(**refs) if event.kind == "contact.deleted" else event
    with pytest.raises(VendorRejected) as raised:
        drive(build(name), event, answers)
    assert raised.value.response.status == status


def vendor_ref_of(vendor: Vendor, name: str) -> str:
    model = vendor.model
    if name == "smooch":
        return str(model.find("12345")["_id"])
    if name == "sunshine":
        return str(model.find("12345")["id"])
    if name == "gist":
        return str(next(iter(model.contacts)))
    return "x"


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_plans_send_no_credentials_in_urls_or_bodies(name: str) -> None:
    secret = SETTINGS[name][SECRET_SETTING[name]]
    sent, _, _ = run(name, *all_events(name))
    for request in [r for requests in sent for r in requests]:
        assert secret not in request.url
        assert secret.encode() not in (request.content() or b"")


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_plans_and_checks_leave_the_record_untouched(name: str) -> None:
    event = upserted(
        companies=[{"id": COMPANY_ID, "name": "Example Inc.", "domain": "example.com"}]
    )
    drive(build(name), event, Vendor(name))
    build(name).check(event)
    assert event.record == contact()


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_every_request_of_every_plan_passes_the_vendor_contract(name: str) -> None:
    vendor = Vendor(name)
    run(name, *all_events(name), vendor=vendor)
    assert vendor.violations == []
    # and the check is not vacuous: the same model refuses a request without credentials
    if name != "webhook":
        bare = Recorded("GET", "/nowhere", {}, {}, b"", 0.0)
        assert vendor.model.rejections(bare)
