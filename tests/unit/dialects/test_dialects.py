"""Each dialect's translation into canonical changes, without a server (SPEC §5.2–§5.5).

The HTTP suites prove the same rules end to end; these pin down what a dialect hands the store
(identifying lookups, values by hash field, steps of a widget call list) and every violation it
reports, so a regression shows in milliseconds and names the dialect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import msgspec
import pytest

from idgateway.dialects.gist import GistIdentify, translate_gist
from idgateway.dialects.groove import CallsRequest, translate_calls, user_hash_ok
from idgateway.dialects.smooch import SmoochAppUserUpdate, app_user, translate_smooch
from idgateway.dialects.unified import (
    GroupRequest,
    IdentifyRequest,
    translate_group,
    translate_identify,
    translate_lookup,
)
from idgateway.errors import Malformed, ValidationFailed
from idgateway.fields import IdentifyStep, LogoutStep, SetStep, build_registry
from idgateway.model import Contact
from idgateway.settings import TenantFile

TENANT = msgspec.convert(
    {
        "id": "acme",
        "default_region": "US",
        "fields": {
            "contact": [
                {"key": "customer_number", "type": "text", "unique": True},
                {"key": "plan", "type": "dropdown", "options": ["Free", "Pro"]},
            ],
            "company": [{"key": "vat", "type": "text", "unique": True}],
        },
    },
    TenantFile,
)
CONTACTS = build_registry(TENANT, "contact")
COMPANIES = build_registry(TENANT, "company")
SECRET = "identity-secret"


def values(sets: dict[str, str]) -> dict[str, Any]:
    return {hf: json.loads(v) for hf, v in sets.items()}


def codes(violations: list[Any]) -> list[tuple[str, str]]:
    return [(v.path, v.code) for v in violations]


# --- unified (SPEC §5.2) ----------------------------------------------------------------------


def test_identify_takes_user_id_as_external_id_and_traits_as_fields() -> None:
    call = translate_identify(
        IdentifyRequest(user_id=12345, traits={"email": "Fred@Example.com", "plan": "pro"}),
        CONTACTS,
        COMPANIES,
    )
    assert call.violations == []
    assert call.contact is not None
    assert values(call.contact.sets) == {
        "external_id": "12345",
        "email": "fred@example.com",
        "p.plan": "Pro",
    }
    assert [(k, v) for k, v, _ in call.contact.lookups] == [
        ("x", "12345"),
        ("e", "fred@example.com"),
    ]
    assert call.company is None


def test_identify_with_a_company_and_a_session() -> None:
    sid = "anon-" + "0" * 16
    call = translate_identify(
        IdentifyRequest(traits={"email": "a@example.org"}, company={"domain": "www.Example.org"},
                        anonymous_id=sid),
        CONTACTS,
        COMPANIES,
    )  # fmt: skip
    assert call.violations == [] and call.session_id == sid
    assert call.company is not None
    assert values(call.company.sets) == {"domain": "example.org"}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (IdentifyRequest(traits={"plan": "Free"}), [("$", "no_identifier")]),
        (
            IdentifyRequest(user_id="u1", traits={"external_id": "u2"}),
            [("$.traits.external_id", "conflicting_values")],
        ),
        (IdentifyRequest(traits={"email": "nope"}), [("$.traits.email", "email")]),
        (
            IdentifyRequest(traits={"email": "a@example.org"}, company={"name": "X"}),
            [("$.company", "no_identifier")],
        ),
    ],
)
def test_identify_violations(request_: IdentifyRequest, expected: list[tuple[str, str]]) -> None:
    call = translate_identify(request_, CONTACTS, COMPANIES)
    assert codes(call.violations) == expected


def test_group_needs_exactly_one_of_user_id_or_contact_id() -> None:
    both = translate_group(
        GroupRequest(company={"domain": "example.org"}, user_id="u", contact_id="c_x"),
        CONTACTS,
        COMPANIES,
    )
    assert codes(both.violations) == [("$", "one_of")]
    bad_id = translate_group(
        GroupRequest(company={"domain": "example.org"}, contact_id="c_nope"), CONTACTS, COMPANIES
    )
    assert codes(bad_id.violations) == [("$.contact_id", "id")]
    by_id = translate_group(
        GroupRequest(company={"domain": "example.org"}, contact_id="c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"),
        CONTACTS,
        COMPANIES,
    )
    assert by_id.violations == [] and by_id.contact_target == "01JDQ8Z6X4M2V5B7N9P3R6T8W1"


def test_lookup_normalises_and_names_the_field() -> None:
    spec, value = translate_lookup(CONTACTS, {"email": " Fred@Example.COM "}, {})
    assert (spec.key, value) == ("email", "fred@example.com")
    spec, value = translate_lookup(CONTACTS, {"user_id": "42"}, {"user_id": "external_id"})
    assert (spec.key, value) == ("external_id", "42")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, Malformed),
        ({"email": "a@example.org", "phone": "+15558234312"}, Malformed),
        ({"first_name": "Fred"}, Malformed),
        ({"secondary_emails": "a@example.org"}, Malformed),
        ({"email": "anonymous"}, ValidationFailed),
        ({"email": "not-an-email"}, ValidationFailed),
    ],
)
def test_lookup_refusals(params: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        translate_lookup(CONTACTS, params, {"user_id": "external_id"})


# --- Groove widget (SPEC §5.4) ----------------------------------------------------------------


def calls(*items: dict[str, Any]) -> CallsRequest:
    return msgspec.convert({"calls": list(items)}, CallsRequest)


def translate(request: CallsRequest, *, publishable: bool, verification: str = "required") -> Any:
    return translate_calls(
        request,
        CONTACTS,
        COMPANIES,
        identity_secret=SECRET,
        verification=verification,  # type: ignore[arg-type]
        publishable=publishable,
    )


def sign(value: str) -> str:
    return hmac.new(SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_widget_calls_become_steps_in_order() -> None:
    out = translate(
        calls(
            {"op": "setContact", "properties": {"contact_first_name": "Tak", "contact_gender": "x",
                                                "favourite": 1}},
            {"op": "identifyContact", "key": "contact_email", "value": "Tak@Envoys.com",
             "user_hash": sign("tak@envoys.com")},
            {"op": "setCompany", "properties": {"company_name": "Envoys"}},
            {"op": "logout"},
        ),
        publishable=True,
    )  # fmt: skip
    assert out.violations == [] and out.unverified == [] and out.claims == []
    kinds = [type(step) for step in out.steps]
    assert kinds == [SetStep, IdentifyStep, SetStep, LogoutStep]
    identify = out.steps[1]
    assert isinstance(identify, IdentifyStep)
    # the identify value only names the record: it is set on create only
    assert identify.op.on_create == {"email": '"tak@envoys.com"'}
    assert identify.op.change.sets == {}
    assert sorted(out.discarded) == ["contact_gender", "favourite"]


def test_a_publishable_key_cannot_set_an_identifying_field() -> None:
    out = translate(
        calls(
            {"op": "setContact", "properties": {"contact_email": "alice@example.com",
                                                "contact_customer_number": None,
                                                "contact_first_name": "Mallory"}},
            {"op": "setCompany", "properties": {"company_secondary_domains": ["a.example"]}},
        ),
        publishable=True,
    )  # fmt: skip
    assert out.claims == [
        "$.calls[0].properties.contact_email",
        "$.calls[0].properties.contact_customer_number",
        "$.calls[1].properties.company_secondary_domains",
    ]


@pytest.mark.parametrize(("publishable", "verification"), [(False, "required"), (True, "optional")])
def test_servers_and_unverified_tenants_may_set_identifying_fields(
    publishable: bool, verification: str
) -> None:
    out = translate(
        calls({"op": "setContact", "properties": {"contact_email": "alice@example.com"}}),
        publishable=publishable,
        verification=verification,
    )
    assert out.claims == [] and out.violations == []


def test_identify_needs_a_valid_user_hash_from_a_publishable_key() -> None:
    out = translate(
        calls(
            {"op": "identifyContact", "key": "contact_email", "value": "a@example.org"},
            {"op": "identifyCompany", "key": "company_domain", "value": "example.org",
             "user_hash": "0" * 64},
            {"op": "identifyContact", "key": "contact_email", "value": "b@example.org",
             "user_hash": sign("b@example.org")},
        ),
        publishable=True,
    )  # fmt: skip
    assert out.unverified == ["$.calls[0].user_hash", "$.calls[1].user_hash"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"op": "identifyContact", "key": "contact_first_name", "value": "x"},
         ("$.calls[0].key", "not_identifying")),
        ({"op": "identifyContact", "key": "contact_secondary_emails",
          "value": ["a@x.io", "b@x.io"]},
         ("$.calls[0].value", "one_value")),
        ({"op": "identifyCompany", "key": "company_domain", "value": "not a domain"},
         ("$.calls[0].value", "domain")),
    ],
)  # fmt: skip
def test_identify_violations_in_widget_calls(
    call: dict[str, Any], expected: tuple[str, str]
) -> None:
    out = translate(calls(call), publishable=False)
    assert codes(out.violations) == [expected]


def test_user_hash_of_the_raw_or_the_normalised_value() -> None:
    assert user_hash_ok(SECRET, " Fred@Example.com", "fred@example.com", sign("fred@example.com"))
    assert user_hash_ok(SECRET, " Fred@Example.com", "fred@example.com", sign(" Fred@Example.com"))
    assert not user_hash_ok(SECRET, "fred@example.com", "fred@example.com", sign("x@example.com"))
    assert not user_hash_ok(SECRET, "fred@example.com", "fred@example.com", "é" * 64)


# --- Gist (SPEC §5.5, seed 003) ---------------------------------------------------------------


def gist(user_id: str, **properties: Any) -> Any:
    return translate_gist(GistIdentify(user_id=user_id, properties=properties), CONTACTS)


def test_gist_maps_its_standard_properties_and_custom_ones() -> None:
    call = gist(
        "12345", email="fred@example.com", name="Fred F", phone="+15558234312",
        signed_up_at=1444348331, last_seen_at=1444348331, tags="free, popular", plan="Pro",
    )  # fmt: skip
    assert call.violations == []
    assert call.contact is not None
    stored = values(call.contact.sets)
    assert stored["external_id"] == "12345" and stored["name"] == "Fred F"
    assert stored["signed_up_at"] == "2015-10-08T23:52:11Z"
    assert stored["p.last_seen_at"] == "2015-10-08T23:52:11Z"
    assert stored["tags"] == ["free", "popular"]
    assert call.contact.tags_add is None


def test_gist_overwrite_tags_false_adds_tags() -> None:
    call = gist("", email="a@example.org", tags="vip", overwrite_tags=False)
    assert call.violations == [] and call.contact is not None
    assert call.contact.tags_add == ["vip"] and "tags" not in call.contact.sets
    assert "external_id" not in call.contact.sets  # "" means the user id is unknown


@pytest.mark.parametrize(
    ("user_id", "properties", "expected"),
    [
        ("u" * 255, {"email": "a@example.org"}, ("$.user_id", "too_long")),
        ("u1", {"name": "no email"}, ("$.properties.email", "required")),
        ("u1", {"email": "a@example.org", "x": {"nested": 1}}, ("$.properties.x", "not_scalar")),
        ("u1", {"email": "a@example.org", "x": "y" * 256}, ("$.properties.x", "too_long")),
        ("u1", {"email": "a@example.org", "seen_at": "yesterday"},
         ("$.properties.seen_at", "unix_seconds")),
        ("u1", {"email": "a@example.org", "tags": ["a"]}, ("$.properties.tags", "not_scalar")),
        ("u1", {"email": "a@example.org", "tags": 5}, ("$.properties.tags", "type")),
        ("u1", {"email": "a@example.org", "overwrite_tags": "no"},
         ("$.properties.overwrite_tags", "type")),
    ],
)  # fmt: skip
def test_gist_seed_rules(
    user_id: str, properties: dict[str, Any], expected: tuple[str, str]
) -> None:
    call = translate_gist(GistIdentify(user_id=user_id, properties=properties), CONTACTS)
    assert expected in codes(call.violations)


# --- Smooch (SPEC §5.5, seed 004) -------------------------------------------------------------


def test_smooch_maps_structured_fields_and_epoch_milliseconds() -> None:
    body = msgspec.convert(
        {"givenName": "Steve", "surname": "Smooch", "email": "steve@example.org",
         "signedUpAt": 1444348331677, "properties": {"plan": "Pro", "logins": 3}},
        SmoochAppUserUpdate,
    )  # fmt: skip
    call = translate_smooch("user-1", body, CONTACTS)
    assert call.violations == [] and call.contact is not None
    stored = values(call.contact.sets)
    assert stored["external_id"] == "user-1" and stored["first_name"] == "Steve"
    assert stored["signed_up_at"] == "2015-10-08T23:52:11.677Z"
    assert stored["p.plan"] == "Pro" and stored["p.logins"] == 3


def test_smooch_properties_are_flat() -> None:
    body = msgspec.convert({"properties": {"address": {"city": "x"}}}, SmoochAppUserUpdate)
    call = translate_smooch("user-1", body, CONTACTS)
    assert codes(call.violations) == [("$.properties.address", "not_scalar")]


def test_smooch_app_user_answers_the_contact_and_defaults_signed_up_at() -> None:
    contact = Contact(
        id="c_01JDQ8Z6X4M2V5B7N9P3R6T8W1", external_id="user-1", first_name="Steve",
        properties={"plan": "Pro", "address": {"city": "x"}},
        created_at="2026-11-21T10:00:00Z", updated_at="2026-11-21T10:00:00Z", version=1,
    )  # fmt: skip
    user = app_user(contact).appUser
    assert (user.id, user.userId, user.givenName) == (contact.id, "user-1", "Steve")
    assert user.signedUpAt == contact.created_at
    assert user.properties == {"plan": "Pro"}  # only the flat scalars
