"""Sunshine Conversations API v2 users (``vendor-api/sunshine-conversations-v2.openapi.yaml``).

- Auth: HTTP Basic with the API key id and its secret.
- Upsert: the user is created once (``POST /v2/apps/{app}/users`` with ``externalId``,
  ``signedUpAt``, ``profile`` and ``metadata``); its ``id`` becomes ``vendor_refs.sunshine``;
  later deliveries ``PATCH /v2/apps/{app}/users/{id}``. A ``409`` on create (the externalId is
  taken) patches that user by its externalId instead.
- Removal: profile fields are nullable, so a removed one is sent as ``null``. ``metadata`` is
  sent whole; whether PATCH merges it is not documented, so when the answer still holds keys the
  record no longer has, metadata is cleared (``null``) and sent again.
- Erasure: ``DELETE /v2/apps/{app}/users/{id}`` (removes the user, its clients and history).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from idgateway.delivery import (
    Adapter,
    DeliveryEvent,
    Outcome,
    Plan,
    Report,
    VendorRejected,
    VendorRequest,
    VendorResponse,
    basic_auth,
    expect_ok,
    flat_scalars,
    identity_fields_as_properties,
    iso_millis,
)

PROFILE_MAX = 128  # profile.givenName / surname / email maxLength
METADATA_BYTES = 4096  # "The metadata is limited to 4KB in size."


class SunshineAdapter(Adapter):
    def _users(self) -> str:
        base = str(self.settings["base_url"]).rstrip("/")
        return f"{base}/v2/apps/{quote(str(self.settings['app_id']), safe='')}/users"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": basic_auth(str(self.settings["key_id"]), str(self.settings["secret"]))
        }

    def _external_id(self, event: DeliveryEvent) -> str:
        source = event.record if event.record is not None else event.tombstone or {}
        return str(source.get("external_id") or event.record_id)

    def profile(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        """Every profile field the gateway owns; ``None`` where the record has none."""
        record = event.record or {}
        profile: dict[str, Any] = {}
        for key, field in (("givenName", "first_name"), ("surname", "last_name")):
            value = record.get(field)
            if isinstance(value, str) and len(value) > PROFILE_MAX:
                reports.append(Report(field, "changed", f"cut to {PROFILE_MAX} characters"))
                value = value[:PROFILE_MAX]
            profile[key] = value
        email = record.get("email")
        if isinstance(email, str) and len(email) > PROFILE_MAX:
            reports.append(Report("email", "dropped", f"longer than {PROFILE_MAX} characters"))
            email = None
        profile["email"] = email
        return profile

    def metadata(self, event: DeliveryEvent, reports: list[Report]) -> dict[str, Any]:
        record = event.record or {}
        moved = identity_fields_as_properties(record)
        for key in moved:
            reports.append(Report(key, "changed", "no profile field: sent in metadata"))
        metadata: dict[str, Any] = flat_scalars({**moved, **record.get("properties", {})}, reports)
        # The documented 4 KB: drop keys from the end until the JSON fits, and say which.
        while metadata and len(msgspec.json.encode(metadata)) > METADATA_BYTES:
            key = next(reversed(metadata))
            del metadata[key]
            path = key if key in moved else f"properties.{key}"
            reports.append(Report(path, "dropped", "metadata is limited to 4 KB"))
        return metadata

    def check(self, event: DeliveryEvent) -> list[Report]:
        reports: list[Report] = []
        if event.record is not None:
            self.profile(event, reports)
            self.metadata(event, reports)
        return reports

    def plan(self, event: DeliveryEvent) -> Plan:
        headers = self._headers()
        ref = event.vendor_ref(self.vendor)
        if event.kind == "contact.deleted":
            user = ref or self._external_id(event)
            answer = yield VendorRequest(
                "DELETE", f"{self._users()}/{quote(user, safe='')}", headers
            )
            if answer.status == 404:
                return Outcome(message="already gone at Sunshine Conversations")
            expect_ok(answer)
            return Outcome(message="deleted")

        profile = self.profile(event, [])
        metadata = self.metadata(event, [])
        signed_up = iso_millis((event.record or {}).get("signed_up_at"))
        update: dict[str, Any] = {"profile": profile, "metadata": metadata}
        if signed_up is not None:
            update["signedUpAt"] = signed_up
        if ref is not None:
            answer = yield VendorRequest(
                "PATCH", f"{self._users()}/{quote(ref, safe='')}", headers, json=update
            )
            if answer.status != 404:  # 404: deleted at the vendor meanwhile: create anew
                expect_ok(answer)
                yield from _clear_left_behind(self, ref, answer, metadata, headers)
                return Outcome(vendor_ref=ref)
        create: dict[str, Any] = {
            "externalId": self._external_id(event),
            "profile": {k: v for k, v in profile.items() if v is not None},
            "metadata": metadata,
        }
        if signed_up is not None:
            create["signedUpAt"] = signed_up
        answer = yield VendorRequest("POST", self._users(), headers, json=create)
        if answer.status != 409:
            return Outcome(vendor_ref=_user_id(expect_ok(answer)), message="created")
        by_external = quote(self._external_id(event), safe="")
        answer = expect_ok(
            (yield VendorRequest("PATCH", f"{self._users()}/{by_external}", headers, json=update))
        )
        user = _user_id(answer)
        yield from _clear_left_behind(self, user, answer, metadata, headers)
        return Outcome(vendor_ref=user)


def _user(answer: VendorResponse) -> dict[str, Any]:
    body = answer.json()
    user = body.get("user") if isinstance(body, dict) else None
    return user if isinstance(user, dict) else {}


def _user_id(answer: VendorResponse) -> str:
    user = _user(answer).get("id")
    if not isinstance(user, str) or not user:
        raise VendorRejected(answer, "no user.id in the answer")
    return user


def _clear_left_behind(
    adapter: SunshineAdapter,
    user: str,
    answer: VendorResponse,
    metadata: dict[str, Any],
    headers: dict[str, str],
) -> Plan:
    """When PATCH merged metadata (keys the record no longer has are still there), clear it
    and send it again: the record's metadata is what the vendor keeps."""
    held = _user(answer).get("metadata")
    if isinstance(held, dict) and set(held) - set(metadata):
        url = f"{adapter._users()}/{quote(user, safe='')}"
        expect_ok((yield VendorRequest("PATCH", url, headers, json={"metadata": None})))
        if metadata:
            expect_ok((yield VendorRequest("PATCH", url, headers, json={"metadata": metadata})))
    return Outcome(vendor_ref=user)


ADAPTER = SunshineAdapter
