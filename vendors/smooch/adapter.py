"""Smooch appUsers (seed 004): PUT the structured fields and flat scalar properties; DELETE
for erasure. The appUser ``_id`` Smooch answers becomes ``vendor_refs.smooch``."""

from __future__ import annotations

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

_MOVED_TO_PROPERTIES = ("phone", "facebook", "twitter", "tags", "secondary_emails")


class SmoochAdapter(Adapter):
    def _url(self, event: DeliveryEvent) -> str:
        # The appUser `_id` Smooch gave us wins (SPEC §6: refs are used for later updates and
        # deletes); before that, the userId: the external id, or the contact id.
        source = event.record if event.record is not None else event.tombstone or {}
        user = event.vendor_ref(self.vendor) or source.get("external_id") or event.record_id
        base = str(self.settings["base_url"]).rstrip("/")
        app = quote(str(self.settings["app_id"]), safe="")
        return f"{base}/v1.1/apps/{app}/appusers/{quote(user, safe='')}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['key']}"}

    def _body(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, object]:
        record = event.record or {}
        extra = {k: record[k] for k in _MOVED_TO_PROPERTIES if record.get(k)}
        for key in extra:
            reports.append(Report(key, "changed", "no Smooch field: sent as a property"))
        properties = flat_scalars({**extra, **record.get("properties", {})}, reports)
        body: dict[str, object] = {
            "givenName": record.get("first_name"),
            "surname": record.get("last_name"),
            "email": record.get("email"),
            "signedUpAt": record.get("signed_up_at"),
            "properties": properties,
        }
        return {k: v for k, v in body.items() if v is not None}

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            self._body(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        if event.kind == "contact.deleted":
            answer = yield VendorRequest("DELETE", self._url(event), self._headers())
            if answer.status == 404:
                return Outcome(message="already gone at Smooch")
            expect_ok(answer)
            return Outcome(message="deleted")
        answer = expect_ok(
            (
                yield VendorRequest(
                    "PUT", self._url(event), self._headers(), json=self._body(event, [])
                )
            )
        )
        body = answer.json()
        app_user = body.get("appUser") if isinstance(body, dict) else None
        ref = app_user.get("_id") if isinstance(app_user, dict) else None
        return Outcome(vendor_ref=ref if isinstance(ref, str) else None)


ADAPTER = SmoochAdapter
