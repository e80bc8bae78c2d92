"""Smooch API v1.1 appUsers (``vendor-api/smooch-v1.1.openapi.yaml``, ``smooch-v1.md``).

- Auth: HTTP Basic with the API key id and its secret (smooch-v1.md §2).
- Upsert: ``GET .../appusers/{user}``; on 404 the user is pre-created (``POST .../appusers``
  with ``userId``: the only documented way to create one); else ``PUT`` the seed-004 body.
- Removal: ``PUT`` is additive (§5) and ``null`` is not documented to remove anything, so when
  the user at Smooch holds a field or property the record no longer has, the adapter first
  calls ``DELETE .../appusers/{_id}/profile`` (documented to clear the structured fields and
  every property) and then ``PUT``\\s the whole current profile.
- Erasure: ``DELETE .../appusers/{_id}``.

The appUser ``_id`` becomes ``vendor_refs.smooch`` and addresses every later call.
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
    VendorRejected,
    VendorRequest,
    basic_auth,
    expect_ok,
    flat_scalars,
    identity_fields_as_properties,
    iso_millis,
)

_STRUCTURED = ("givenName", "surname", "email")


class SmoochAdapter(Adapter):
    @classmethod
    def settings_issues(cls, settings: Any) -> list[tuple[str, str]]:
        key_id = settings.get("key_id")
        if isinstance(key_id, str) and not key_id.startswith(("app_", "act_")):
            # smooch-v1.md §2: an app key id starts with app_, an account key id with act_
            return [("key_id", "a Smooch API key id starts with app_ or act_")]
        return []

    def _base(self) -> str:
        base = str(self.settings["base_url"]).rstrip("/")
        return f"{base}/v1.1/apps/{quote(str(self.settings['app_id']), safe='')}/appusers"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": basic_auth(str(self.settings["key_id"]), str(self.settings["secret"]))
        }

    def _user_id(self, event: DeliveryEvent) -> str:
        """The business ``userId``: the app's own user id, else the gateway's contact id."""
        source = event.record if event.record is not None else event.tombstone or {}
        return str(source.get("external_id") or event.record_id)

    def body(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        record = event.record or {}
        moved = identity_fields_as_properties(record)
        for key in moved:
            reports.append(Report(key, "changed", "no Smooch field: sent as a property"))
        properties = flat_scalars({**moved, **record.get("properties", {})}, reports)
        body: dict[str, Any] = {
            "givenName": record.get("first_name"),
            "surname": record.get("last_name"),
            "email": record.get("email"),
            "signedUpAt": iso_millis(record.get("signed_up_at")),
            "properties": properties,
        }
        return {k: v for k, v in body.items() if v is not None}

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            self.body(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        headers = self._headers()
        if event.kind == "contact.deleted":
            user = event.vendor_ref(self.vendor) or self._user_id(event)
            url = f"{self._base()}/{quote(user, safe='')}"
            answer = yield VendorRequest("DELETE", url, headers)
            if answer.status == 404:
                return Outcome(message="already gone at Smooch")
            expect_ok(answer)
            return Outcome(message="deleted")

        body = self.body(event, [])
        user = event.vendor_ref(self.vendor) or self._user_id(event)
        found = yield VendorRequest("GET", f"{self._base()}/{quote(user, safe='')}", headers)
        if found.status == 404:
            created = yield VendorRequest(
                "POST", self._base(), headers, json={"userId": self._user_id(event), **body}
            )
            if created.status != 409:  # 409: the userId exists after all (a race)
                return Outcome(vendor_ref=_app_user_id(expect_ok(created)), message="created")
            user = self._user_id(event)
            found = yield VendorRequest("GET", f"{self._base()}/{quote(user, safe='')}", headers)
        expect_ok(found)
        existing = _app_user(found)
        ref = existing.get("_id") if isinstance(existing.get("_id"), str) else None
        url = f"{self._base()}/{quote(ref or user, safe='')}"
        if _left_behind(existing, body):
            expect_ok((yield VendorRequest("DELETE", f"{url}/profile", headers)))
        answer = expect_ok((yield VendorRequest("PUT", url, headers, json=body)))
        return Outcome(vendor_ref=_app_user_id(answer) if ref is None else ref)


def _app_user(answer: Any) -> dict[str, Any]:
    body = answer.json()
    user = body.get("appUser") if isinstance(body, dict) else None
    return user if isinstance(user, dict) else {}


def _app_user_id(answer: Any) -> str | None:
    ref = _app_user(answer).get("_id")
    if not isinstance(ref, str) or not ref:
        raise VendorRejected(answer, "no appUser._id in Smooch's answer")
    return ref


def _left_behind(existing: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether Smooch holds a structured field or property the record no longer has."""
    for key in _STRUCTURED:
        if existing.get(key) not in (None, "") and key not in body:
            return True
    held = existing.get("properties")
    return isinstance(held, dict) and bool(set(held) - set(body.get("properties", {})))


ADAPTER = SmoochAdapter
