"""Gist contacts and tags (``vendor-api/gist.md``).

- ``POST /contacts`` creates or updates; once Gist answered a contact ``id`` it becomes
  ``vendor_refs.gist`` and every later call names it (§2), so an email change updates the
  same contact instead of making a second one.
- Tags are kept equal to the record's: ``tags`` in ``POST /contacts`` only adds (§4), so every
  tag the answered contact still has but the record has not is removed with
  ``POST /tags {"name", "contacts": [{"id", "untag": true}]}``.
- A custom property or standard field the record no longer has, still on the answered
  contact, is sent again as ``null`` (the merge rules are undocumented; seed 003 documents
  ``null`` as "no value").
- Erasure: ``DELETE /contacts/{id}`` (by ``user_id`` or ``email`` without a stored id).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from idgateway.delivery import (
    Adapter,
    DeliveryEvent,
    Outcome,
    Plan,
    Report,
    VendorRejected,
    VendorRequest,
    VendorResponse,
    expect_ok,
    flat_scalars,
    unix_seconds,
)

MAX = 255
_CLEARABLE = ("name", "phone")  # standard fields removed by sending null


def _gist_id(ref: str) -> int | str:
    """Gist ids are numbers in Gist's answers; send them back as they came."""
    return int(ref) if ref.isdigit() else ref


class GistAdapter(Adapter):
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['token']}"}

    def _base(self) -> str:
        return str(self.settings["base_url"]).rstrip("/")

    def custom_properties(self, record: dict[str, Any], reports: list[Report]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for key, value in record.get("properties", {}).items():
            seconds = (
                unix_seconds(value) if key.endswith("_at") and isinstance(value, str) else None
            )
            if seconds is not None:
                reports.append(Report(f"properties.{key}", "changed", "datetime as unix seconds"))
                value = seconds
            properties[key] = value
        for key in ("first_name", "last_name", "facebook", "twitter", "secondary_emails"):
            if record.get(key):
                properties[key] = record[key]
        return flat_scalars(properties, reports, max_string=MAX)

    def body(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        record = event.record or {}
        body: dict[str, Any] = {
            "email": record.get("email"),
            "name": record.get("name"),
            "phone": record.get("phone"),
            "signed_up_at": unix_seconds(record.get("signed_up_at")),
            "tags": record.get("tags", []),
            "custom_properties": self.custom_properties(record, reports),
        }
        user_id = record.get("external_id")
        if isinstance(user_id, str):
            if len(user_id) >= MAX:  # seed 003: fewer than 255; never cut an identifier
                reports.append(Report("external_id", "dropped", "longer than Gist's user_id takes"))
            else:
                body["user_id"] = user_id
        for key in ("email", "name", "phone"):
            value = body[key]
            if isinstance(value, str) and len(value) > MAX:
                reports.append(Report(key, "changed", f"cut to {MAX} characters"))
                body[key] = value[:MAX]
        ref = event.vendor_ref(self.vendor)
        if ref is not None:
            body["id"] = _gist_id(ref)
        return {k: v for k, v in body.items() if v is not None}

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            if not event.record.get("email") and event.vendor_ref(self.vendor) is None:
                reports.append(Report("email", "dropped", "Gist requires an email: not sent"))
            self.body(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        headers = self._headers()
        ref = event.vendor_ref(self.vendor)
        if event.kind == "contact.deleted":
            tomb = event.tombstone or {}
            if ref is not None:
                url = f"{self._base()}/contacts/{ref}"
            elif tomb.get("external_id"):
                url = f"{self._base()}/contacts?{urlencode({'user_id': tomb['external_id']})}"
            elif tomb.get("email"):
                url = f"{self._base()}/contacts?{urlencode({'email': tomb['email']})}"
            else:
                return Outcome(message="nothing names the contact at Gist")
            answer = yield VendorRequest("DELETE", url, headers)
            if answer.status == 404:
                return Outcome(message="already gone at Gist")
            expect_ok(answer)
            return Outcome(message="deleted")

        record = event.record or {}
        if not record.get("email") and ref is None:
            return Outcome(message="skipped: Gist requires an email")
        body = self.body(event, [])
        answer = expect_ok(
            (yield VendorRequest("POST", f"{self._base()}/contacts", headers, json=body))
        )
        contact = _contact(answer)
        gist_id = contact.get("id")
        if gist_id is None:
            raise VendorRejected(answer, "no contact.id in Gist's answer")
        ref = str(gist_id)

        cleared: dict[str, Any] = {k: None for k in _CLEARABLE if contact.get(k) and k not in body}
        held = contact.get("custom_properties")
        if isinstance(held, dict):
            gone = set(held) - set(body["custom_properties"])
            if gone:
                cleared["custom_properties"] = dict.fromkeys(sorted(gone))
        if cleared:
            expect_ok(
                (
                    yield VendorRequest(
                        "POST",
                        f"{self._base()}/contacts",
                        headers,
                        json={"id": gist_id, **cleared},
                    )
                )
            )
        for tag in sorted(_tag_names(contact) - set(body["tags"])):
            untag = {"name": tag, "contacts": [{"id": gist_id, "untag": True}]}
            expect_ok((yield VendorRequest("POST", f"{self._base()}/tags", headers, json=untag)))
        return Outcome(vendor_ref=ref)


def _contact(answer: VendorResponse) -> dict[str, Any]:
    body = answer.json()
    contact = body.get("contact") if isinstance(body, dict) else None
    return contact if isinstance(contact, dict) else {}


def _tag_names(contact: dict[str, Any]) -> set[str]:
    tags = contact.get("tags")
    if not isinstance(tags, list):
        return set()
    names = (t.get("name") if isinstance(t, dict) else t for t in tags)
    return {n for n in names if isinstance(n, str)}


ADAPTER = GistAdapter
