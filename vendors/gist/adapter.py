"""Gist contacts: POST the contact with flat scalar ``custom_properties`` (seed 003 rules:
strings at most 255 characters, dates as unix seconds). Gist's contact ``id`` becomes
``vendor_refs.gist``; erasure deletes by it."""

from __future__ import annotations

from typing import Any

from idgateway.delivery import (
    Adapter,
    DeliveryEvent,
    Outcome,
    Plan,
    Report,
    VendorRequest,
    expect_ok,
    flat_scalars,
    unix_seconds,
)

MAX = 255


class GistAdapter(Adapter):
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['token']}"}

    def _base(self) -> str:
        return str(self.settings["base_url"]).rstrip("/")

    def _body(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        record = event.record or {}
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
        body: dict[str, Any] = {
            "user_id": record.get("external_id") or "",
            "email": record.get("email"),
            "name": record.get("name"),
            "phone": record.get("phone"),
            "signed_up_at": unix_seconds(record.get("signed_up_at")),
            "tags": record.get("tags", []),
            "custom_properties": flat_scalars(properties, reports, max_string=MAX),
        }
        if len(body["user_id"]) >= MAX:  # seed 003: fewer than 255; never cut an identifier
            reports.append(Report("external_id", "dropped", "longer than Gist's user_id takes"))
            body["user_id"] = ""
        for key in ("email", "name", "phone"):
            value = body[key]
            if isinstance(value, str) and len(value) > MAX:
                reports.append(Report(key, "changed", f"cut to {MAX} characters"))
                body[key] = value[:MAX]
        return {k: v for k, v in body.items() if v is not None}

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            if not event.record.get("email"):
                reports.append(Report("email", "dropped", "Gist requires an email: not sent"))
            self._body(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        if event.kind == "contact.deleted":
            ref = event.vendor_ref(self.vendor)
            if ref is None:
                return Outcome(message="never delivered to Gist: nothing to delete")
            expect_ok(
                (yield VendorRequest("DELETE", f"{self._base()}/contacts/{ref}", self._headers()))
            )
            return Outcome(message="deleted")
        if not (event.record or {}).get("email"):
            return Outcome(message="skipped: Gist requires an email")
        answer = expect_ok(
            (
                yield VendorRequest(
                    "POST", f"{self._base()}/contacts", self._headers(), json=self._body(event, [])
                )
            )
        )
        body = answer.json()
        contact = body.get("contact") if isinstance(body, dict) else None
        ref = contact.get("id") if isinstance(contact, dict) else None
        return Outcome(vendor_ref=str(ref) if ref is not None else None)


ADAPTER = GistAdapter
