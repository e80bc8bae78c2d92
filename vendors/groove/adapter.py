"""Groove API v1 customers (``vendor-api/groove-v1.md``).

``PUT /v1/customers/{email}`` with ``email`` in the body (documented as required) and only the
documented update parameters; custom fields go in the ``custom`` hash under their own keys.
The email Groove knows the customer by is kept as ``vendor_refs.groove``, so after an email
change the path names the old address and the body carries the new one.

Removal: a removed standard field is sent as ``""`` (a string, the documented type); a custom
key the answered customer still holds but the record no longer has is sent again as ``null``.
v1 documents no customer delete: erasure is not forwarded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from idgateway.delivery import (
    Adapter,
    DeliveryEvent,
    Outcome,
    Plan,
    Report,
    VendorRequest,
    expect_ok,
    flat_scalars,
)


class GrooveAdapter(Adapter):
    def custom(self, record: dict[str, Any], reports: list[Report]) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for key in ("first_name", "last_name", "facebook"):
            if record.get(key):
                extra[key] = record[key]
        for key in ("secondary_emails", "tags"):
            if record.get(key):
                extra[key] = ", ".join(record[key])
        return flat_scalars({**extra, **record.get("properties", {})}, reports)

    def body(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        record = event.record or {}
        company = next((c.get("name") for c in event.companies if c.get("name")), None)
        return {
            "email": record.get("email"),
            # "" clears: every field the gateway owns is sent, so a removal reaches Groove
            "name": record.get("name") or "",
            "phone_number": record.get("phone") or "",
            "twitter_username": record.get("twitter") or "",
            "company_name": company or "",
            "custom": self.custom(record, reports),
        }

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            if not event.record.get("email"):
                reports.append(
                    Report("email", "dropped", "Groove keys customers by email: not sent")
                )
            self.body(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        email = (event.record or {}).get("email")
        if not email:
            return Outcome(message="skipped: Groove requires an email")
        base = str(self.settings["base_url"]).rstrip("/")
        headers = {"Authorization": f"Bearer {self.settings['token']}"}
        known = event.vendor_ref(self.vendor) or email
        body = self.body(event, [])
        url = f"{base}/v1/customers/{quote(known, safe='@')}"
        answer = expect_ok((yield VendorRequest("PUT", url, headers, json=body)))
        reply = answer.json()
        customer = reply.get("customer") if isinstance(reply, dict) else None
        held = customer.get("custom") if isinstance(customer, dict) else None
        if isinstance(held, dict):
            gone = sorted(set(held) - set(body["custom"]))
            if gone:
                url = f"{base}/v1/customers/{quote(email, safe='@')}"
                clear = {"email": email, "custom": dict.fromkeys(gone)}
                expect_ok((yield VendorRequest("PUT", url, headers, json=clear)))
        return Outcome(vendor_ref=email)


ADAPTER = GrooveAdapter
