"""Pipedrive persons through RingCentral App Connect's ``createContact`` flow (seed 002;
``vendor-api/pipedrive.md`` §1).

- ``findContact``: ``GET /api/v2/persons/search?term=<national number>&fields=phone``; the
  first person holding the contact's number is the match.
- ``createContact`` when none matches: the placeholder person ``POST /api/v1/persons`` with
  ``name`` and ``phone``; App Connect's ``returnMessage`` (``Contact created.``, success, 2000
  ms) is recorded on the delivery.
- The person id becomes ``vendor_refs.pipedrive``. Later deliveries keep the person's ``name``
  and ``phones`` equal to the contact's with ``PATCH /api/v2/persons/{id}``: a removed phone is
  removed at Pipedrive.

Auth: the ``x-api-token`` header (the ``api_key`` scheme of both OpenAPI documents).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import phonenumbers

from idgateway.delivery import (
    Adapter,
    DeliveryEvent,
    Outcome,
    Plan,
    Report,
    ReturnMessage,
    VendorRejected,
    VendorRequest,
    VendorResponse,
    expect_ok,
)

CREATED = ReturnMessage("Contact created.", "success", 2000)  # App Connect's own words


def national_number(phone: str) -> str:
    """What App Connect searches by: the national significant number (no country code)."""
    try:
        return str(phonenumbers.national_significant_number(phonenumbers.parse(phone)))
    except phonenumbers.NumberParseException:
        return phone.lstrip("+")


def _digits(value: Any) -> str:
    return "".join(c for c in str(value) if c.isdigit())


class PipedriveAdapter(Adapter):
    @classmethod
    def _types(cls) -> list[str]:
        from idgateway.delivery import registry

        extra = registry()["pipedrive"].manifest.extra
        return [str(t["value"]) for t in extra.get("contactTypes", [])]

    @classmethod
    def settings_issues(cls, settings: Any) -> list[tuple[str, str]]:
        types = cls._types()
        chosen = settings.get("contact_type")
        if chosen is not None and chosen not in types:
            return [("contact_type", f"one of the manifest's contactTypes: {', '.join(types)}")]
        return []

    def contact_type(self) -> str:
        chosen = self.settings.get("contact_type")
        return str(chosen) if chosen else str(self.manifest.extra["contactTypes"][0]["value"])

    def _headers(self) -> dict[str, str]:
        return {"x-api-token": str(self.settings["token"])}

    def _base(self) -> str:
        return str(self.settings["base_url"]).rstrip("/")

    def check(self, event: DeliveryEvent) -> list[Report]:
        record = event.record
        if record is not None and not record.get("phone") and not event.vendor_ref(self.vendor):
            return [Report("phone", "dropped", "Pipedrive persons are found by phone: not sent")]
        return []

    def plan(self, event: DeliveryEvent) -> Plan:
        record = event.record or {}
        phone = record.get("phone")
        name = record.get("name") or phone
        headers = self._headers()
        ref = event.vendor_ref(self.vendor)
        if ref is not None:
            phones = [{"value": phone, "primary": True}] if phone else []
            update: dict[str, Any] = {"phones": phones}
            if name:
                update["name"] = name
            answer = yield VendorRequest(
                "PATCH", f"{self._base()}/api/v2/persons/{ref}", headers, json=update
            )
            if answer.status != 404:  # 404: deleted in Pipedrive: find or create anew
                _data(expect_ok(answer))
                return Outcome(vendor_ref=ref)
        if not phone:
            return Outcome(
                message="skipped: no phone number",
                return_message=ReturnMessage("No phone number: nothing to match.", "warning", 3000),
            )
        query = urlencode({"term": national_number(phone), "fields": "phone"})
        found = expect_ok(
            (yield VendorRequest("GET", f"{self._base()}/api/v2/persons/search?{query}", headers))
        )
        data = _data(found)
        items = data.get("items") if isinstance(data, dict) else None
        for entry in items if isinstance(items, list) else []:
            item = entry.get("item") if isinstance(entry, dict) else None
            if not isinstance(item, dict) or item.get("id") is None:
                continue
            if any(
                _digits(p) == _digits(phone) or _digits(p) == national_number(phone)
                for p in item.get("phones") or []
            ):
                return Outcome(vendor_ref=str(item["id"]), message="matched by phone")
        placeholder = {"name": name, "phone": [{"value": phone, "primary": True}]}
        created = expect_ok(
            (
                yield VendorRequest(
                    "POST", f"{self._base()}/api/v1/persons", headers, json=placeholder
                )
            )
        )
        person = _data(created)
        if not isinstance(person, dict) or person.get("id") is None:
            raise VendorRejected(created, "no data.id in Pipedrive's answer")
        return Outcome(
            vendor_ref=str(person["id"]),
            message=f"placeholder {self.contact_type()} created",
            return_message=CREATED,
        )


def _data(answer: VendorResponse) -> Any:
    """``data`` of Pipedrive's ``{success, data}`` envelope; ``success: false`` is a refusal."""
    body = answer.json()
    if not isinstance(body, dict) or body.get("success") is False:
        error = body.get("error") if isinstance(body, dict) else None
        raise VendorRejected(answer, f"Pipedrive refused: {error or 'no success'}")
    return body.get("data")


ADAPTER = PipedriveAdapter
