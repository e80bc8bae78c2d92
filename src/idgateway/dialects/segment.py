"""The Segment-compatible source (SPEC §5.8): Segment's HTTP tracking API as the Segment and
RudderStack libraries send it, and the translation of each event.

A request is a batch (``POST /v1/batch`` or ``/v1/import``: ``{"batch": [event, ...],
"sentAt", "writeKey"?}``) or one event (``/v1/identify``, ``/v1/group``, ``/v1/alias``,
``/v1/track``, ``/v1/page``, ``/v1/screen``: the event itself, its type named by the path).
The request is refused as a whole only when it cannot be read (not JSON, over a limit); each
event is then translated on its own, and one that is wrong becomes a rejection, never a reason
to refuse the others.

Mapping (SPEC §5.8): ``identify`` — ``userId`` → ``external_id``, traits from ``traits`` over
``context.traits``, Segment's reserved traits to the standard fields (:data:`CONTACT_TRAITS`),
``address`` to a declared address field; ``group`` — ``groupId`` → the company's
``external_id``, ``website`` → ``domain``; ``alias`` — ``previousId`` names a session, or the
contact holding it as its external id; ``track`` / ``page`` / ``screen`` are only counted.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from idgateway.dialects._paths import child
from idgateway.errors import Malformed
from idgateway.fields import FieldInput, RecordChange, Registry, Violation, validate
from idgateway.model import MINTED_SESSION_PREFIX

if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_EVENT_BYTES = 32 * 1024  # SPEC §5.8, after decompression
MAX_REQUEST_BYTES = 500 * 1024
CALL_TYPES = ("identify", "group", "alias", "track", "page", "screen")
COUNTED = frozenset({"track", "page", "screen"})
# Segment's reserved traits that name a standard field under another spelling.
CONTACT_TRAITS = {"firstName": "first_name", "lastName": "last_name", "createdAt": "signed_up_at"}
COMPANY_TRAITS = {"website": "domain"}
# Segment's address object → the members of an `address` field (SPEC §3.1).
ADDRESS_MEMBERS = {"postalCode": "postal_code"}
_NAMED_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_DERIVED_PREFIX = "sa_"

Action = Literal[
    "identify", "anonymous_identify", "group", "anonymous_group", "alias", "count", "reject"
]


class _Batch(msgspec.Struct):
    """A batch envelope; members other than these (``sentAt``, ``context``, …) are ignored."""

    batch: list[msgspec.Raw]
    writeKey: Any = None  # noqa: N815 (Segment's own name)


class _Single(msgspec.Struct):
    writeKey: Any = None  # noqa: N815


class SegmentEvent(msgspec.Struct):
    """The members of an event the gateway reads. Any: a wrong type is the event's rejection,
    not a reason to refuse the request. ``context``, ``integrations``, ``timestamp``, … are
    accepted and ignored."""

    type: Any = None
    userId: Any = None  # noqa: N815
    anonymousId: Any = None  # noqa: N815
    messageId: Any = None  # noqa: N815
    traits: Any = None
    context: Any = None
    groupId: Any = None  # noqa: N815
    previousId: Any = None  # noqa: N815


_BATCH = msgspec.json.Decoder(_Batch)
_SINGLE = msgspec.json.Decoder(_Single)
_EVENT = msgspec.json.Decoder(SegmentEvent)


@dataclass(frozen=True)
class SegmentRequest:
    """A request read: its events (raw JSON, with the type its path names, if any) and the
    write key of its body."""

    events: list[tuple[str | None, bytes]]
    write_key: str | None


@dataclass
class SegmentCall:
    """One event translated: what it asks (``action``) and everything wrong with it."""

    type: str  # one of CALL_TYPES, or "other"
    action: Action
    raw: bytes
    message_id: str | None = None
    contact: RecordChange | None = None
    company: RecordChange | None = None
    session_id: str | None = None  # the session of anonymousId (alias: of previousId)
    previous: tuple[str, str, str] | None = None  # alias: previousId as an external id lookup
    violations: list[Violation] = field(default_factory=list)
    refusal: tuple[str, str] | None = None  # (code, message) of an event that cannot be read


def decode_request(body: bytes, call: str | None) -> SegmentRequest:
    """Read a request body (already decompressed): a batch when ``call`` is None, else one
    event of type ``call``.

    Raises:
        Malformed: not JSON of the envelope's shape, or over a limit (``code`` says which).
    """
    if len(body) > MAX_REQUEST_BYTES:
        raise Malformed(
            f"the request is larger than {MAX_REQUEST_BYTES // 1024} KiB", code="payload_too_large"
        )
    try:
        if call is None:
            batch = _BATCH.decode(body)
            raws: list[bytes] = [bytes(raw) for raw in batch.batch]
            write_key = batch.writeKey
        else:
            write_key = _SINGLE.decode(body).writeKey
            raws = [body]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        shape = "{batch: [event, ...]}" if call is None else "one event object"
        raise Malformed(
            f"the body is not JSON of the shape {shape}: {exc}", code="invalid_json"
        ) from None
    for i, raw in enumerate(raws):
        if len(raw) > MAX_EVENT_BYTES:
            where = f"event {i} of the batch" if call is None else "the event"
            raise Malformed(
                f"{where} is larger than {MAX_EVENT_BYTES // 1024} KiB", code="event_too_large"
            )
    return SegmentRequest(
        events=[(call, raw) for raw in raws],
        write_key=write_key if isinstance(write_key, str) and write_key else None,
    )


def session_id_of(anonymous_id: str) -> str:
    """The named session (SPEC §4.2) of a Segment ``anonymousId``, which may be any string: the
    id itself when it is already a valid named session id, else a digest of it."""
    if _NAMED_SESSION.match(anonymous_id) and not anonymous_id.startswith(MINTED_SESSION_PREFIX):
        return anonymous_id
    digest = hashlib.sha256(anonymous_id.encode()).digest()
    return _DERIVED_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _id_text(value: Any) -> str | None:
    """An id member as text: strings as given, integers as their digits, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _traits(sources: Iterable[tuple[Any, str]], violations: list[Violation]) -> dict[str, Any]:
    """Trait key → (value, path), later sources winning over earlier ones."""
    out: dict[str, Any] = {}
    for data, path in sources:
        if data is None:
            continue
        if not isinstance(data, dict):
            violations.append(Violation(path, "type", "traits are a JSON object"))
            continue
        for key, value in data.items():
            out[key] = (value, child(path, key))
    return out


def _trait_inputs(
    traits: dict[str, Any], registry: Registry, renames: dict[str, str], own_id: str | None
) -> list[FieldInput]:
    inputs = []
    for key, (value, path) in traits.items():
        # Segment's `id` trait repeats the userId / groupId: nothing to store twice.
        if key == "id" and own_id is not None and _id_text(value) == own_id:
            continue
        canonical = renames.get(key, key)
        spec = registry.fields.get(canonical)
        if spec is not None and spec.type == "address" and isinstance(value, dict):
            value = {ADDRESS_MEMBERS.get(k, k): v for k, v in value.items()}
        inputs.append(FieldInput(canonical, value, path, name=key))
    return inputs


def _external_id(registry: Registry, value: str, path: str) -> tuple[RecordChange, list[Violation]]:
    return validate(registry, [FieldInput("external_id", value, path)])


def _refused(call: SegmentCall, code: str, message: str) -> SegmentCall:
    call.action, call.refusal = "reject", (code, message)
    return call


def translate_event(
    raw: bytes, call_type: str | None, contacts: Registry, companies: Registry
) -> SegmentCall:
    """Translate one event (``call_type``: the type its path names, else its own ``type``)."""
    try:
        event = _EVENT.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        call = SegmentCall(type="other", action="reject", raw=raw)
        return _refused(call, "malformed_event", "an event is a JSON object")
    kind = call_type or event.type
    call = SegmentCall(
        type=kind if kind in CALL_TYPES else "other",
        action="count",
        raw=raw,
        message_id=_id_text(event.messageId),
    )
    if call.type == "other":
        return _refused(call, "unknown_type", f"`type` is one of {', '.join(CALL_TYPES)}")
    user_id = _id_text(event.userId)
    anonymous_id = _id_text(event.anonymousId) or None
    if event.userId is not None and user_id is None:
        return _refused(call, "malformed_event", "`userId` is a string")
    if event.anonymousId is not None and not isinstance(event.anonymousId, str | int):
        return _refused(call, "malformed_event", "`anonymousId` is a string")
    if call.type == "alias":
        return _alias(call, event, user_id, contacts)
    if user_id is None and anonymous_id is None:
        return _refused(call, "missing_identity", "the event has no userId and no anonymousId")
    if call.type in COUNTED:
        return call
    call.session_id = session_id_of(anonymous_id) if anonymous_id is not None else None
    if call.type == "identify":
        return _identify(call, event, user_id, contacts)
    return _group(call, event, user_id, contacts, companies)


def _identify(
    call: SegmentCall, event: SegmentEvent, user_id: str | None, contacts: Registry
) -> SegmentCall:
    violations: list[Violation] = []
    context_traits = event.context.get("traits") if isinstance(event.context, dict) else None
    traits = _traits([(context_traits, "$.context.traits"), (event.traits, "$.traits")], violations)
    inputs: list[FieldInput] = []
    if user_id is not None:
        inputs.append(FieldInput("external_id", user_id, "$.userId"))
        other = traits.get("external_id")
        if other is not None and _id_text(other[0]) != user_id:
            violations.append(Violation(other[1], "conflicting_values", "differs from userId"))
    inputs += _trait_inputs(traits, contacts, CONTACT_TRAITS, user_id)
    call.contact, found = validate(contacts, inputs, base_path="$.traits")
    call.violations = violations + found
    call.action = "identify" if user_id is not None else "anonymous_identify"
    return call


def _group(
    call: SegmentCall,
    event: SegmentEvent,
    user_id: str | None,
    contacts: Registry,
    companies: Registry,
) -> SegmentCall:
    group_id = _id_text(event.groupId)
    if not group_id:
        return _refused(call, "malformed_event", "a group call names its `groupId`")
    violations: list[Violation] = []
    traits = _traits([(event.traits, "$.traits")], violations)
    inputs = [FieldInput("external_id", group_id, "$.groupId")]
    inputs += _trait_inputs(traits, companies, COMPANY_TRAITS, group_id)
    call.company, found = validate(companies, inputs, base_path="$.traits")
    violations += found
    if user_id is not None:
        call.contact, found = _external_id(contacts, user_id, "$.userId")
        violations += found
    call.violations = violations
    call.action = "group" if user_id is not None else "anonymous_group"
    return call


def _alias(
    call: SegmentCall, event: SegmentEvent, user_id: str | None, contacts: Registry
) -> SegmentCall:
    previous_id = _id_text(event.previousId)
    if user_id is None or not previous_id:
        return _refused(call, "malformed_event", "an alias call names `userId` and `previousId`")
    call.contact, call.violations = _external_id(contacts, user_id, "$.userId")
    # previousId is an anonymousId (a session) or an earlier userId (a contact's external
    # id): the store decides which, by whether a contact holds it.
    previous, problems = _external_id(contacts, previous_id, "$.previousId")
    if not problems and previous.lookups:
        call.previous = previous.lookups[0]
    call.session_id = session_id_of(previous_id)
    call.action = "alias"
    return call


def event_summary(raw: bytes) -> dict[str, Any]:
    """``type``, ``message_id``, ``user_id``, ``anonymous_id`` of an event as received (None
    where absent or unreadable) and the event itself (``event``, the JSON value)."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        value = raw.decode(errors="replace")
    event = value if isinstance(value, dict) else {}
    return {
        "type": event.get("type") if isinstance(event.get("type"), str) else None,
        "message_id": _id_text(event.get("messageId")),
        "user_id": _id_text(event.get("userId")),
        "anonymous_id": _id_text(event.get("anonymousId")),
        "event": value,
    }
