"""The adapter contract (SPEC §6.1): what an adapter gets, what it returns.

An adapter is pure: :meth:`Adapter.plan` is a generator that *yields* the vendor requests one
at a time and is *sent* each answer; the gateway performs the I/O (guarded client, timeouts,
signing, metrics). A multi-step exchange (find, then create) is just several yields. When an
answer means failure the adapter raises :class:`VendorRejected` (or calls :func:`expect_ok`);
the gateway classifies the status (retry, dead letter, disable on 410).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

EventKind = Literal["contact.upserted", "contact.deleted", "company.upserted"]
Capability = Literal["contact.upsert", "contact.delete", "company.upsert"]
CAPABILITY_OF: dict[EventKind, Capability] = {
    "contact.upserted": "contact.upsert",
    "contact.deleted": "contact.delete",
    "company.upserted": "company.upsert",
}


@dataclass(frozen=True)
class SettingSpec:
    name: str
    type: Literal["string", "url", "integer", "boolean"] = "string"
    required: bool = True
    secret: bool = False
    default: Any = None


@dataclass(frozen=True)
class Manifest:
    name: str
    display_name: str
    version: str
    capabilities: frozenset[Capability]
    settings: tuple[SettingSpec, ...]
    limits: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # adapter-specific tables


@dataclass(frozen=True)
class DeliveryEvent:
    """What to deliver: the record as it is now (``record``), or, once it is gone, the last
    identifiers it had (``tombstone``)."""

    kind: EventKind
    delivery_id: str
    record_id: str
    version: int
    timestamp: str
    record: dict[str, Any] | None = None
    tombstone: dict[str, Any] | None = None
    companies: tuple[dict[str, Any], ...] = ()  # a contact's linked companies (id, name, domain)

    def vendor_ref(self, vendor: str) -> str | None:
        source = self.record if self.record is not None else self.tombstone or {}
        ref = source.get("vendor_refs", {}).get(vendor)
        return ref if isinstance(ref, str) else None


@dataclass(frozen=True)
class VendorRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    body: bytes | None = None
    sign: bool = False  # Standard Webhooks signature headers, added by the gateway

    def content(self) -> bytes | None:
        if self.body is not None:
            return self.body
        return None if self.json is None else msgspec.json.encode(self.json)


@dataclass(frozen=True)
class VendorResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.body) if self.body else None
        except msgspec.DecodeError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Report:
    """What the constraint check dropped or changed to fit the vendor's rules."""

    field: str
    action: Literal["dropped", "changed"]
    reason: str


@dataclass(frozen=True)
class ReturnMessage:
    """App Connect's ``returnMessage`` (seed 002): what the adapter tells the operator about a
    delivery. Kept on the delivery record and shown by ``GET /v1/deliveries``."""

    message: str
    message_type: Literal["success", "warning", "danger"] = "success"
    ttl: int = 2000  # milliseconds, as App Connect shows it

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "messageType": self.message_type, "ttl": self.ttl}


@dataclass(frozen=True)
class Outcome:
    """What a delivered plan leaves: the vendor's id of the record (kept in ``vendor_refs``),
    a message for the log, and a return message kept on the delivery record."""

    vendor_ref: str | None = None
    message: str | None = None  # logged; free text
    return_message: ReturnMessage | None = None  # recorded on the delivery record


class VendorRejected(Exception):
    """The vendor answered with a failure; the gateway decides retry / dead / disable."""

    def __init__(self, response: VendorResponse, message: str | None = None) -> None:
        super().__init__(message or f"vendor answered {response.status}")
        self.response = response


def expect_ok(response: VendorResponse) -> VendorResponse:
    if not response.ok:
        raise VendorRejected(response)
    return response


Plan = Generator[VendorRequest, VendorResponse, Outcome]


class Adapter:
    """Base of every adapter. Built once per configured vendor with its validated settings;
    subclasses implement :meth:`plan` and usually :meth:`check`."""

    def __init__(self, vendor: str, settings: Mapping[str, Any], manifest: Manifest) -> None:
        self.vendor = vendor
        self.settings = settings
        self.manifest = manifest

    @classmethod
    def settings_issues(cls, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Checks beyond the manifest's types, as ``(key, message)``; never echo a value."""
        return []

    def supports(self, kind: EventKind) -> bool:
        return CAPABILITY_OF[kind] in self.manifest.capabilities

    def check(self, event: DeliveryEvent) -> list[Report]:
        """The vendor-rule check of the record (SPEC §6 constraint check)."""
        return []

    def plan(self, event: DeliveryEvent) -> Plan:
        """Yield each request; receive each answer; return the outcome."""
        raise NotImplementedError
