"""Groove customers: PUT by email with the standard fields and the custom fields under
``custom`` as ``contact_<key>``. A contact without an email cannot be sent."""

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
    def _body(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        record = event.record or {}
        custom = flat_scalars(record.get("properties", {}), reports)
        body: dict[str, Any] = {
            "name": record.get("name"),
            "phone_number": record.get("phone"),
            "twitter_username": record.get("twitter"),
            "company_name": next((c.get("name") for c in event.companies if c.get("name")), None),
            "custom": {f"contact_{k}": v for k, v in custom.items()},
        }
        return {k: v for k, v in body.items() if v is not None}

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            if not event.record.get("email"):
                reports.append(
                    Report("email", "dropped", "Groove keys customers by email: not sent")
                )
            self._body(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        email = (event.record or {}).get("email")
        if not email:
            return Outcome(message="skipped: Groove requires an email")
        base = str(self.settings["base_url"]).rstrip("/")
        headers = {"Authorization": f"Bearer {self.settings['token']}"}
        url = f"{base}/v1/customers/{quote(email, safe='@')}"
        expect_ok((yield VendorRequest("PUT", url, headers, json=self._body(event, []))))
        return Outcome()


ADAPTER = GrooveAdapter
