"""The shipped vendor adapters, without any I/O (SPEC §6, §6.1; seeds 002, 003, 004).

Each adapter's ``plan(event)`` is driven by hand: every request it yields is recorded and
answered with a :class:`VendorResponse` chosen by the test. ``check(event)`` is called
directly. Adapters are built the way the gateway builds them, through the registry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tomllib
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

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

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

SETTINGS: dict[str, dict[str, Any]] = {
    "smooch": {
        "base_url": "https://api.smooch.test/",
        "app_id": "5963c0d619a30a2e00de36b8",
        "key": "smooch-secret-key",
    },
    "gist": {"base_url": "https://api.gist.test", "token": "gist-secret-token"},
    "groove": {"base_url": "https://api.groove.test/", "token": "groove-secret-token"},
    "crm": {"base_url": "https://crm.test/api", "token": "crm-secret-token", "contact_type": "cta"},
    "webhook": {"url": "https://hooks.example.test/idgw?source=gw", "secret": WEBHOOK_SECRET},
}
SECRET_SETTING = {
    "smooch": "key",
    "gist": "token",
    "groove": "token",
    "crm": "token",
    "webhook": "secret",
}

# SPEC §6.1: what each shipped adapter takes and sends.
CAPABILITIES: dict[str, set[str]] = {
    "smooch": {"contact.upsert", "contact.delete"},
    "gist": {"contact.upsert", "contact.delete"},
    "groove": {"contact.upsert"},
    "crm": {"contact.upsert"},
    "webhook": {"contact.upsert", "contact.delete", "company.upsert"},
}
SETTING_NAMES: dict[str, set[str]] = {
    "smooch": {"base_url", "app_id", "key"},
    "gist": {"base_url", "token"},
    "groove": {"base_url", "token"},
    "crm": {"base_url", "token", "contact_type"},
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


# --- manifests and registry ---------------------------------------------------------------------


def test_every_shipped_adapter_is_registered() -> None:
    assert set(SHIPPED) == set(CAPABILITIES)
    assert set(CAPABILITIES) <= set(registry())


def test_every_vendor_folder_is_a_shipped_adapter() -> None:
    folders = {p.name for p in vendors_dir().iterdir() if (p / "manifest.toml").is_file()}
    assert folders == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_manifest_name_equals_its_folder(name: str) -> None:
    raw = tomllib.loads((vendors_dir() / name / "manifest.toml").read_text(encoding="utf-8"))
    assert raw["name"] == name
    assert registry()[name].manifest.name == name
    assert raw.get("display_name") and raw.get("version")


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


def test_crm_manifest_lists_the_seed_contact_types() -> None:
    types = registry()["crm"].manifest.extra["contactTypes"]
    assert all(set(t) == {"display", "value"} for t in types)
    # seed 002's example manifest
    assert {(t["display"], t["value"]) for t in types} >= {
        ("TestContactType", "testContact"),
        ("Contact", "cta"),
    }


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


@pytest.mark.parametrize("contact_type", ["cta", "testContact", None])
def test_crm_contact_type_from_the_manifest_is_valid(contact_type: str | None) -> None:
    settings = {**SETTINGS["crm"], "contact_type": contact_type}
    if contact_type is None:
        del settings["contact_type"]
    assert settings_issues(registry()["crm"], settings) == []


@pytest.mark.parametrize("contact_type", ["person", "Contact", "CTA", ""])
def test_crm_contact_type_outside_the_manifest_is_an_issue(contact_type: str) -> None:
    issues = settings_issues(registry()["crm"], {**SETTINGS["crm"], "contact_type": contact_type})
    assert [key for key, _ in issues] == ["contact_type"]


# --- smooch (seed 004) ---------------------------------------------------------------------------


def test_smooch_puts_the_app_user_with_the_seed_body() -> None:
    requests, outcome = drive(
        build("smooch"), upserted(), [answer(200, {"appUser": {"_id": "deb920657bbc3adc3fec7963"}})]
    )
    assert len(requests) == 1
    put = requests[0]
    assert put.method == "PUT"
    assert put.url == "https://api.smooch.test/v1.1/apps/5963c0d619a30a2e00de36b8/appusers/12345"
    assert put.headers.get("Authorization") == "Bearer smooch-secret-key"
    body = put.json
    assert body["givenName"] == "Fred"
    assert body["surname"] == "Flintstone"
    assert body["email"] == "fred@example.com"
    assert body["signedUpAt"] == "2015-10-08T23:52:11.677Z"
    assert set(body) <= {"givenName", "surname", "email", "signedUpAt", "properties"}
    properties = body["properties"]
    assert all(is_scalar(v) for v in properties.values()), properties
    assert properties["plan"] == "Pro"
    assert properties["active_accounts"] == 1872
    assert properties["vip"] is True
    assert properties["home_address_city"] == "Bay city"
    assert properties["blog_url_link"] == "https://example.com"
    # fields Smooch has no structured place for travel as properties
    assert properties["phone"] == "+15558234312"
    assert properties["twitter"] == "fredflintstone"
    assert properties["tags"] == "free, popular"
    assert outcome.vendor_ref == "deb920657bbc3adc3fec7963"


def test_smooch_body_is_valid_json_as_sent() -> None:
    requests, _ = drive(build("smooch"), upserted(), [answer(200, {"appUser": {"_id": "x"}})])
    content = requests[0].content()
    assert content is not None
    assert json.loads(content) == requests[0].json


def test_smooch_uses_the_contact_id_without_an_external_id() -> None:
    requests, _ = drive(
        build("smooch"),
        upserted(contact(external_id=None)),
        [answer(200, {"appUser": {"_id": "x"}})],
    )
    assert requests[0].url.endswith(f"/appusers/{CONTACT_ID}")


def test_smooch_escapes_the_user_id_in_the_path() -> None:
    requests, _ = drive(
        build("smooch"),
        upserted(contact(external_id="a/b c?d")),
        [answer(200, {"appUser": {"_id": "x"}})],
    )
    path = urlsplit(requests[0].url).path
    assert path.startswith("/v1.1/apps/5963c0d619a30a2e00de36b8/appusers/")
    assert unquote(path.rsplit("/", 1)[1]) == "a/b c?d"
    assert urlsplit(requests[0].url).query == ""


def test_smooch_deletes_the_app_user_by_the_id_it_returned() -> None:
    adapter = build("smooch")
    put, _ = drive(
        adapter, upserted(), [answer(200, {"appUser": {"_id": "deb920657bbc3adc3fec7963"}})]
    )
    requests, _ = drive(adapter, deleted(smooch="deb920657bbc3adc3fec7963"), [answer(200, {})])
    # SPEC §6: vendor refs are used for later updates and deletes
    assert [(r.method, r.url) for r in requests] == [
        ("DELETE", put[0].url.rsplit("/", 1)[0] + "/deb920657bbc3adc3fec7963")
    ]
    assert requests[0].headers.get("Authorization") == "Bearer smooch-secret-key"
    assert requests[0].content() is None


def test_smooch_check_reports_flattened_and_moved_fields() -> None:
    reports = build("smooch").check(upserted())
    fields = fields_of(reports)
    assert fields["properties.home_address"] == "changed"
    assert fields["properties.blog_url"] == "changed"
    for moved in ("phone", "twitter", "tags"):
        assert fields[moved] == "changed"
    assert all(r.reason for r in reports)


def test_smooch_check_of_a_flat_contact_reports_nothing() -> None:
    record = contact(
        phone=None,
        twitter=None,
        facebook=None,
        tags=[],
        secondary_emails=[],
        properties={"plan": "Pro", "active_accounts": 3},
    )
    assert build("smooch").check(upserted(record)) == []


# --- gist (seed 003) ------------------------------------------------------------------------------


def test_gist_posts_the_contact() -> None:
    requests, outcome = drive(build("gist"), upserted(), [answer(200, {"contact": {"id": 4242}})])
    assert len(requests) == 1
    post = requests[0]
    assert (post.method, post.url) == ("POST", "https://api.gist.test/contacts")
    assert post.headers.get("Authorization") == "Bearer gist-secret-token"
    body = post.json
    assert body["user_id"] == "12345"
    assert body["email"] == "fred@example.com"
    assert body["name"] == "Fred Flintstone"
    assert body["phone"] == "+15558234312"
    assert body["signed_up_at"] == 1444348331  # unix seconds
    assert body["tags"] == ["free", "popular"]
    custom = body["custom_properties"]
    assert all(is_scalar(v) for v in custom.values()), custom
    assert custom["plan"] == "Pro"
    assert custom["active_accounts"] == 1872
    assert custom["vip"] is True
    assert custom["last_paid_at"] == 1283495946  # datetimes as unix seconds
    assert custom["home_address_city"] == "Bay city"
    assert custom["dob"] == "1980-02-24"
    # "the other fields": standard ones without a place of their own
    assert custom["first_name"] == "Fred"
    assert custom["last_name"] == "Flintstone"
    assert custom["twitter"] == "fredflintstone"
    assert outcome.vendor_ref == "4242"


def test_gist_user_id_is_empty_when_unknown() -> None:
    requests, _ = drive(
        build("gist"), upserted(contact(external_id=None)), [answer(200, {"contact": {"id": 1}})]
    )
    assert requests[0].json["user_id"] == ""


def test_gist_cuts_strings_to_255_characters_and_reports_it() -> None:
    record = contact(properties={"bio": "x" * 300, "plan": "Pro", "nested": {"note": "y" * 256}})
    requests, _ = drive(build("gist"), upserted(record), [answer(200, {"contact": {"id": 1}})])
    custom = requests[0].json["custom_properties"]
    assert custom["bio"] == "x" * 255
    assert custom["nested_note"] == "y" * 255
    assert custom["plan"] == "Pro"
    assert all(len(v) <= 255 for v in custom.values() if isinstance(v, str))
    fields = fields_of(build("gist").check(upserted(record)))
    assert fields["properties.bio"] == "changed"
    assert fields["properties.nested"] == "changed"  # flattened
    assert fields["properties.nested.note"] == "changed"  # cut


def test_gist_check_reports_flattened_objects_and_converted_datetimes() -> None:
    fields = fields_of(build("gist").check(upserted()))
    assert fields["properties.home_address"] == "changed"
    assert fields["properties.blog_url"] == "changed"
    assert fields["properties.last_paid_at"] == "changed"
    assert "email" not in fields


def test_gist_sends_or_reports_every_other_field() -> None:
    """SPEC §6.1: custom_properties hold "the other fields"; §6: the check reports what it
    had to drop. ``secondary_emails`` must therefore be sent or reported."""
    requests, _ = drive(build("gist"), upserted(), [answer(200, {"contact": {"id": 1}})])
    custom = requests[0].json["custom_properties"]
    reported = fields_of(build("gist").check(upserted()))
    assert "secondary_emails" in custom or "secondary_emails" in reported


def test_gist_without_email_is_skipped_with_a_report() -> None:
    event = upserted(contact(email=None))
    requests, outcome = drive(build("gist"), event)
    assert requests == []
    assert outcome.message
    assert fields_of(build("gist").check(event))["email"] == "dropped"


def test_gist_deletes_by_its_contact_id() -> None:
    requests, _ = drive(build("gist"), deleted(gist="4242", smooch="other"), [answer(200, {})])
    assert [(r.method, r.url) for r in requests] == [
        ("DELETE", "https://api.gist.test/contacts/4242")
    ]
    assert requests[0].headers.get("Authorization") == "Bearer gist-secret-token"


def test_gist_delete_without_a_ref_sends_nothing() -> None:
    requests, _ = drive(build("gist"), deleted(smooch="other"))
    assert requests == []


# --- groove ---------------------------------------------------------------------------------------


def test_groove_puts_the_customer_by_email() -> None:
    event = upserted(
        companies=[{"id": COMPANY_ID, "name": "Example Inc.", "domain": "example.com"}]
    )
    requests, _ = drive(build("groove"), event, [answer(200, {"customer": {}})])
    assert len(requests) == 1
    put = requests[0]
    assert (put.method, put.url) == ("PUT", "https://api.groove.test/v1/customers/fred@example.com")
    assert put.headers.get("Authorization") == "Bearer groove-secret-token"
    body = put.json
    assert body["name"] == "Fred Flintstone"
    assert body["phone_number"] == "+15558234312"
    assert body["twitter_username"] == "fredflintstone"
    assert body["company_name"] == "Example Inc."
    custom = body["custom"]
    assert all(k.startswith("contact_") for k in custom)
    assert all(is_scalar(v) for v in custom.values()), custom
    assert custom["contact_plan"] == "Pro"
    assert custom["contact_active_accounts"] == 1872
    assert custom["contact_vip"] is True
    assert custom["contact_home_address_city"] == "Bay city"


def test_groove_escapes_the_email_in_the_path() -> None:
    record = contact(email="fred+test/x@example.com")
    requests, _ = drive(build("groove"), upserted(record), [answer(200, {})])
    path = urlsplit(requests[0].url).path
    assert path.startswith("/v1/customers/")
    assert unquote(path.removeprefix("/v1/customers/")) == "fred+test/x@example.com"


def test_groove_without_email_is_skipped_with_a_report() -> None:
    event = upserted(contact(email=None))
    requests, outcome = drive(build("groove"), event)
    assert requests == []
    assert outcome.message
    assert fields_of(build("groove").check(event))["email"] == "dropped"


def test_groove_check_reports_flattened_objects() -> None:
    fields = fields_of(build("groove").check(upserted()))
    assert fields["properties.home_address"] == "changed"
    assert "email" not in fields


# --- crm (seed 002, App Connect createContact) ----------------------------------------------------

CREATED = {
    "contactInfo": {"id": "xxxx-xxxxx", "name": "Fred Flintstone"},
    "returnMessage": {"message": "Contact created", "messageType": "success", "ttl": 30000},
}


def test_crm_finds_by_phone_then_creates_a_placeholder() -> None:
    requests, outcome = drive(
        build("crm"),
        upserted(),
        [answer(200, {"successful": True, "matchedContactInfo": []}), answer(200, CREATED)],
    )
    assert [r.method for r in requests] == ["GET", "POST"]
    find, create = requests
    parts = urlsplit(find.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://crm.test/api/contacts"
    assert parse_qs(parts.query) == {"phoneNumber": ["+15558234312"]}
    assert find.content() is None
    assert create.url == "https://crm.test/api/contacts"
    assert create.json == {
        "phoneNumber": "+15558234312",
        "newContactName": "Fred Flintstone",
        "newContactType": "cta",
    }
    for request in requests:
        assert request.headers.get("Authorization") == "Bearer crm-secret-token"
    assert outcome.vendor_ref == "xxxx-xxxxx"
    assert outcome.message == "Contact created"  # returnMessage surfaced


def test_crm_creates_when_the_find_answers_404() -> None:
    requests, outcome = drive(build("crm"), upserted(), [answer(404, {}), answer(200, CREATED)])
    assert [r.method for r in requests] == ["GET", "POST"]
    assert outcome.vendor_ref == "xxxx-xxxxx"


def test_crm_placeholder_type_is_the_configured_contact_type() -> None:
    adapter = build("crm", contact_type="testContact")
    requests, _ = drive(
        adapter, upserted(), [answer(200, {"matchedContactInfo": []}), answer(200, CREATED)]
    )
    assert requests[1].json["newContactType"] == "testContact"


def test_crm_placeholder_type_defaults_to_one_of_the_manifest_types() -> None:
    settings = {k: v for k, v in SETTINGS["crm"].items() if k != "contact_type"}
    adapter = registry()["crm"].build("crm", settings)
    requests, _ = drive(
        adapter, upserted(), [answer(200, {"matchedContactInfo": []}), answer(200, CREATED)]
    )
    types = [t["value"] for t in registry()["crm"].manifest.extra["contactTypes"]]
    assert requests[1].json["newContactType"] in types


def test_crm_keeps_the_matched_contact_when_found() -> None:
    found = {
        "successful": True,
        "matchedContactInfo": [
            {"id": "p-77", "name": "Fred", "phone": "+15558234312", "type": "contact"}
        ],
    }
    requests, outcome = drive(build("crm"), upserted(), [answer(200, found)])
    assert [r.method for r in requests] == ["GET"]
    assert outcome.vendor_ref == "p-77"


def test_crm_without_phone_sends_nothing_and_reports_it() -> None:
    event = upserted(contact(phone=None))
    requests, outcome = drive(build("crm"), event)
    assert requests == []
    assert outcome.vendor_ref is None
    assert fields_of(build("crm").check(event)) == {"phone": "dropped"}


def test_crm_check_of_a_contact_with_phone_reports_nothing() -> None:
    assert build("crm").check(upserted()) == []


def test_crm_answer_without_contact_id_is_rejected() -> None:
    with pytest.raises(VendorRejected):
        drive(
            build("crm"),
            upserted(),
            [
                answer(200, {"matchedContactInfo": []}),
                answer(200, {"returnMessage": {"message": "?"}}),
            ],
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
    assert WEBHOOK_SECRET not in json.dumps(post.headers) and WEBHOOK_SECRET.encode() not in (
        post.content() or b""
    )


def test_webhook_posts_the_tombstone_on_erasure() -> None:
    event = deleted(smooch="x")
    requests, _ = drive(build("webhook"), event, [answer(200)])
    assert requests[0].sign is True
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


def test_standard_webhooks_signature_matches_the_reference_vector() -> None:
    # The example published with the Standard Webhooks specification.
    signature = sign_webhook(
        WEBHOOK_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    body = b'{"a":1}'
    expected = base64.b64encode(
        hmac.new(key, b"d_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert sign_webhook(WEBHOOK_SECRET, "d_1", 1700000000, body) == f"v1,{expected}"


# --- every adapter: failures and vendor refs ------------------------------------------------------

# A successful answer per (adapter, request), so a plan can be run to a given step.
SUCCESS: dict[str, Answerer] = {
    "smooch": lambda r: answer(
        200, {} if r.method == "DELETE" else {"appUser": {"_id": "deb920657bbc3adc3fec7963"}}
    ),
    "gist": lambda r: answer(200, {} if r.method == "DELETE" else {"contact": {"id": 4242}}),
    "groove": lambda r: answer(200, {}),
    "crm": lambda r: answer(200, {"matchedContactInfo": []} if r.method == "GET" else CREATED),
    "webhook": lambda r: answer(200, {}),
}
EXPECTED_REF = {
    "smooch": "deb920657bbc3adc3fec7963",
    "gist": "4242",
    "groove": None,
    "crm": "xxxx-xxxxx",
    "webhook": None,
}


def all_events(name: str) -> list[DeliveryEvent]:
    events = [upserted()]
    if "contact.delete" in CAPABILITIES[name]:
        events.append(deleted(**{name: "ref-1"}))
    return events


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_vendor_refs_are_returned(name: str) -> None:
    _, outcome = drive(build(name), upserted(), SUCCESS[name])
    assert outcome.vendor_ref == EXPECTED_REF[name]


CASES = [
    (name, index, event.kind, status)
    for name in sorted(CAPABILITIES)
    for event in all_events(name)
    for index in range(len(drive(build(name), event, SUCCESS[name])[0]))
    for status in (400, 429, 503)
]


@pytest.mark.parametrize(("name", "index", "kind", "status"), CASES)
def test_a_failure_answer_raises_vendor_rejected(
    name: str, index: int, kind: str, status: int
) -> None:
    """Any non-2xx answer to any request of a plan (bar a CRM find answering 404: no match)
    is the vendor's refusal, for the gateway to classify (retry, dead letter)."""
    event = next(e for e in all_events(name) if e.kind == kind)
    calls = 0

    def answers(request: VendorRequest) -> VendorResponse:
        nonlocal calls
        calls += 1
        return answer(status, {"error": "nope"}) if calls == index + 1 else SUCCESS[name](request)

    with pytest.raises(VendorRejected) as raised:
        drive(build(name), event, answers)
    assert raised.value.response.status == status


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_plans_send_no_credentials_in_urls_or_bodies(name: str) -> None:
    secret = SETTINGS[name][SECRET_SETTING[name]]
    for event in all_events(name):
        requests, _ = drive(build(name), event, SUCCESS[name])
        for request in requests:
            assert secret not in request.url
            assert secret.encode() not in (request.content() or b"")


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_plans_and_checks_leave_the_record_untouched(name: str) -> None:
    event = upserted(
        companies=[{"id": COMPANY_ID, "name": "Example Inc.", "domain": "example.com"}]
    )
    drive(build(name), event, SUCCESS[name])
    build(name).check(event)
    assert event.record == contact()
