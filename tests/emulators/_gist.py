"""Gist contacts and tags, checked against the written contract ``contracts/gist.md``.

Enforced: Bearer API key (§1); the documented routes only (§2-§4); ``POST /contacts`` body
fields and types from §2 (unknown fields refused), ``email`` to create; ``custom_properties``
flat with seed 003's value rules (§6: strings at most 255 characters, numbers, booleans, and
``null``, which seed 003 documents as "no value"), keys without ``.``, ``$`` or special
characters; ``user_id`` shorter than 255; ``POST /tags`` naming contacts by ``id`` only (§4).

Answers: ``{"contact": {...}}`` with ``tags`` as ``[{id, name}]``; errors
``{"errors": [{code, message}]}``. Unverified behaviours, strict reading: ``tags`` in
``POST /contacts`` only adds; keys left out of an update are kept; ``null`` clears.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any
from urllib.parse import unquote

from tests.emulators._base import Answer, Recorded, Rejection, VendorModel, bearer, json_body

_FIELDS = {
    "id": (int, str),
    "user_id": (str, int),
    "email": (str,),
    "name": (str,),
    "phone": (str,),
    "signed_up_at": (int,),
    "last_seen_ip": (str,),
    "last_seen_user_agent": (str,),
    "unsubscribed_from_emails": (bool,),
    "custom_properties": (dict,),
    "tags": (list,),
    "type": (str,),
}
_BAD_KEY = re.compile(r"[.$~`!@#%^&*'{}|\\\"\x00]")
_ids = itertools.count(40_000_000)


class Gist(VendorModel):
    kind = "gist"

    def __init__(self, token: str) -> None:
        self.token = token
        self.contacts: dict[int, dict[str, Any]] = {}
        self.tags: dict[str, int] = {}  # name -> tag id

    def error(self, rejection: Rejection) -> Answer:
        return Answer(
            rejection.status, {"errors": [{"code": rejection.code, "message": rejection.message}]}
        )

    # --- the contract -------------------------------------------------------------------------

    def rejections(self, request: Recorded) -> list[Rejection]:
        found: list[Rejection] = []
        if not bearer(request, self.token):
            found.append(Rejection(401, "unauthorized", "gist.md §1: Bearer <API key> required"))
        route = (request.method, re.sub(r"/\d+$", "/{id}", request.path))
        if route in (("GET", "/contacts"), ("DELETE", "/contacts")):
            if set(request.query) not in ({"email"}, {"user_id"}):
                found.append(Rejection(400, "bad_request", "gist.md §3: by email or user_id"))
        elif route == ("POST", "/contacts"):
            found += self._contact_problems(request)
        elif route == ("POST", "/tags"):
            found += self._tag_problems(request)
        elif route not in (("GET", "/contacts/{id}"), ("DELETE", "/contacts/{id}")):
            found.append(Rejection(404, "not_found", f"gist.md documents no {route}"))
        return found

    def _contact_problems(self, request: Recorded) -> list[Rejection]:
        body, problem = json_body(request)
        if problem or not isinstance(body, dict):
            return [Rejection(400, "bad_request", problem or "the body must be an object")]
        found = []
        for key, value in body.items():
            types = _FIELDS.get(key)
            if types is None:
                found.append(Rejection(400, "bad_request", f"gist.md §2: no field {key!r}"))
            elif value is not None and (
                not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
            ):
                found.append(Rejection(400, "bad_request", f"{key}: wrong type"))
        if isinstance(body.get("user_id"), str) and len(body["user_id"]) >= 255:
            found.append(Rejection(400, "bad_request", "user_id: fewer than 255 characters"))
        if body.get("user_id") == "":
            found.append(Rejection(400, "bad_request", "user_id: empty"))
        tags = body.get("tags")
        if isinstance(tags, list) and not all(isinstance(t, str) and t for t in tags):
            found.append(Rejection(400, "bad_request", "tags: a list of tag names"))
        for key, value in (body.get("custom_properties") or {}).items():
            if _BAD_KEY.search(key) or not key:
                found.append(Rejection(400, "bad_request", f"custom_properties key {key!r}"))
            if value is not None and not isinstance(value, str | int | float | bool):
                found.append(Rejection(400, "bad_request", f"custom_properties.{key}: scalar"))
            if isinstance(value, str) and len(value) > 255:
                found.append(Rejection(400, "bad_request", f"custom_properties.{key}: > 255"))
        return found

    def _tag_problems(self, request: Recorded) -> list[Rejection]:
        body, problem = json_body(request)
        if problem or not isinstance(body, dict):
            return [Rejection(400, "bad_request", problem or "the body must be an object")]
        found = []
        if not isinstance(body.get("name"), str) or not body["name"]:
            found.append(Rejection(400, "bad_request", "gist.md §4: a tag name"))
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            found.append(Rejection(400, "bad_request", "gist.md §4: contacts[]"))
            return found
        for entry in contacts:
            if not isinstance(entry, dict) or "id" not in entry:
                found.append(Rejection(400, "bad_request", "gist.md §4: contacts by id only"))
            elif set(entry) - {"id", "untag"} or not isinstance(entry.get("untag", True), bool):
                found.append(Rejection(400, "bad_request", f"gist.md §4: {sorted(entry)}"))
        return found

    # --- the vendor -----------------------------------------------------------------------------

    def _find(self, key: str, value: Any) -> dict[str, Any] | None:
        return next((c for c in self.contacts.values() if c.get(key) == value), None)

    def view(self, contact: dict[str, Any]) -> dict[str, Any]:
        tags = [{"id": self.tags[n], "name": n} for n in sorted(contact["tag_names"])]
        return {k: v for k, v in contact.items() if k != "tag_names"} | {"tags": tags}

    def answer(self, request: Recorded) -> Answer:
        missing = Answer(404, {"errors": [{"code": "not_found", "message": "Contact not found"}]})
        if request.path == "/tags":
            return self._tag(request.json())
        if request.path == "/contacts" and request.method == "POST":
            return self._upsert(request.json())
        if request.path == "/contacts":
            ((key, values),) = request.query.items()
            contact = self._find(key, unquote(values[0]))
        else:
            contact = self.contacts.get(int(request.path.rsplit("/", 1)[1]))
        if contact is None:
            return missing
        if request.method == "DELETE":
            del self.contacts[contact["id"]]
            return Answer(200, {})
        return Answer(200, {"contact": self.view(contact)})

    def _upsert(self, body: dict[str, Any]) -> Answer:
        now = int(time.time())
        contact = None
        if body.get("id") is not None:
            contact = self.contacts.get(int(body["id"]))
            if contact is None:
                return Answer(404, {"errors": [{"code": "not_found", "message": "no such id"}]})
        if contact is None and body.get("user_id") is not None:
            contact = self._find("user_id", body["user_id"])
        if contact is None and body.get("email"):
            contact = self._find("email", body["email"])
        if contact is None:
            if not body.get("email"):
                return Answer(
                    422, {"errors": [{"code": "email_required", "message": "email is required"}]}
                )
            contact = {
                "id": next(_ids),
                "custom_properties": {},
                "tag_names": set(),
                "created_at": now,
            }
            self.contacts[contact["id"]] = contact
        for key, value in body.items():
            if key in ("id", "tags", "custom_properties"):
                continue
            if value is None:
                contact.pop(key, None)
            else:
                contact[key] = value
        for key, value in (body.get("custom_properties") or {}).items():
            if value is None:
                contact["custom_properties"].pop(key, None)
            else:
                contact["custom_properties"][key] = value
        for name in body.get("tags") or []:  # add-only (gist.md §4)
            self.tags.setdefault(name, next(_ids))
            contact["tag_names"].add(name)
        contact["updated_at"] = now
        return Answer(200, {"contact": self.view(contact)})

    def _tag(self, body: dict[str, Any]) -> Answer:
        tag_id = self.tags.setdefault(body["name"], next(_ids))
        for entry in body["contacts"]:
            contact = self.contacts.get(int(entry["id"]))
            if contact is None:
                continue
            if entry.get("untag"):
                contact["tag_names"].discard(body["name"])
            else:
                contact["tag_names"].add(body["name"])
        return Answer(200, {"tag": {"id": tag_id, "name": body["name"]}})
