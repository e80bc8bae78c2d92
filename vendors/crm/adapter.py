"""A CRM in RingCentral App Connect style (seed 002): find the contact by phone; when none
matches, create a placeholder with ``phoneNumber``, ``newContactName`` and ``newContactType``
(one of the manifest's ``contactTypes``). The CRM's ``contactInfo.id`` becomes
``vendor_refs.crm``; its ``returnMessage`` is surfaced as the delivery's message."""

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
    expect_ok,
)


class CrmAdapter(Adapter):
    @classmethod
    def settings_issues(cls, settings: Any) -> list[tuple[str, str]]:
        from idgateway.delivery import registry

        types = [t["value"] for t in registry()["crm"].manifest.extra.get("contactTypes", [])]
        chosen = settings.get("contact_type")
        if chosen is not None and chosen not in types:
            return [("contact_type", f"one of the manifest's contactTypes: {', '.join(types)}")]
        return []

    def _type(self) -> str:
        chosen = self.settings.get("contact_type")
        if chosen:
            return str(chosen)
        return str(self.manifest.extra["contactTypes"][0]["value"])

    def check(self, event: DeliveryEvent) -> list[Report]:
        if event.record is not None and not event.record.get("phone"):
            return [Report("phone", "dropped", "the CRM finds contacts by phone: not sent")]
        return []

    def plan(self, event: DeliveryEvent) -> Plan:
        record = event.record or {}
        phone = record.get("phone")
        known = event.vendor_ref(self.vendor)
        if not phone:
            return Outcome(vendor_ref=known, message="skipped: no phone number")
        if known:
            return Outcome(vendor_ref=known, message="already matched")
        base = str(self.settings["base_url"]).rstrip("/")
        headers = {"Authorization": f"Bearer {self.settings['token']}"}
        found = yield VendorRequest(
            "GET", f"{base}/contacts?{urlencode({'phoneNumber': phone})}", headers
        )
        if found.status != 404:
            body = expect_ok(found).json() or {}
            matched = body.get("matchedContactInfo") if isinstance(body, dict) else None
            if isinstance(matched, list) and matched and isinstance(matched[0], dict):
                return Outcome(vendor_ref=str(matched[0].get("id")), message="matched by phone")
        placeholder = {
            "phoneNumber": phone,
            "newContactName": record.get("name") or phone,
            "newContactType": self._type(),
        }
        created = expect_ok(
            (yield VendorRequest("POST", f"{base}/contacts", headers, json=placeholder))
        )
        body = created.json()
        info = body.get("contactInfo") if isinstance(body, dict) else None
        if not isinstance(info, dict) or info.get("id") is None:
            raise VendorRejected(created, "no contactInfo.id in the CRM's answer")
        message = body.get("returnMessage", {})
        text = message.get("message") if isinstance(message, dict) else None
        return Outcome(vendor_ref=str(info["id"]), message=text)


ADAPTER = CrmAdapter
