"""Pipedrive persons: API v2 (search, get, update, delete) and API v1 ``POST /persons``.

Requests are validated against ``contracts/pipedrive-v2-persons.openapi.yaml`` (``/api/v2/...``)
and ``contracts/pipedrive-v1-persons.openapi.yaml`` (``/api/v1/...``, whose server is
``https://api.pipedrive.com/v1``) with openapi-core; the ``x-api-token`` header must carry the
API token (``pipedrive.md`` §2). As ``pipedrive.md`` §3 says, v1 ``email`` / ``phone`` may be a
plain string although the schema types an array: a string is checked as ``[{"value": ...}]``.

Answers use the ``{"success": true, "data": ...}`` envelope; errors ``{"success": false,
"error", "error_info", "data": null, "additional_data": null}``. Search matches a term
inside a person's phone digits, as Pipedrive's search does.
"""

from __future__ import annotations

import hmac
import itertools
import time
from typing import Any

from tests.emulators._base import Answer, Recorded, Rejection, VendorModel, json_body
from tests.emulators._openapi import violations

HOST = "https://api.pipedrive.com"
_ids = itertools.count(501)


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


class Pipedrive(VendorModel):
    kind = "pipedrive"
    documents = ("pipedrive-v1-persons.openapi.yaml", "pipedrive-v2-persons.openapi.yaml")

    def __init__(self, token: str) -> None:
        self.token = token
        self.persons: dict[int, dict[str, Any]] = {}

    def error(self, rejection: Rejection) -> Answer:
        return Answer(
            rejection.status,
            {
                "success": False,
                "error": rejection.message,
                "error_info": "Please check developers.pipedrive.com",
                "data": None,
                "additional_data": None,
            },
        )

    def rejections(self, request: Recorded) -> list[Rejection]:
        found: list[Rejection] = []
        if not hmac.compare_digest(request.headers.get("x-api-token", ""), self.token):
            found.append(Rejection(401, "unauthorized", "unauthorized access: x-api-token"))
        if request.path.startswith("/api/v1/"):
            body: Any = ...
            if request.method in ("POST", "PUT"):
                parsed, _ = json_body(request)
                if isinstance(parsed, dict):
                    body = {
                        k: [{"value": v}] if k in ("email", "phone") and isinstance(v, str) else v
                        for k, v in parsed.items()
                    }
            path = "/v1/" + request.path.removeprefix("/api/v1/")
            errors = violations("pipedrive-v1-persons.openapi.yaml", HOST, path, request, body=body)
        elif request.path.startswith("/api/v2/"):
            errors = violations("pipedrive-v2-persons.openapi.yaml", HOST, request.path, request)
        else:
            errors = [f"no Pipedrive API at {request.path}"]
        found += [Rejection(400, "bad_request", e) for e in errors]
        term = request.query.get("term", [""])[0]
        if request.path.endswith("/persons/search") and len(term) < 2:
            found.append(Rejection(400, "bad_request", "term: at least 2 characters"))
        return found

    def seed(self, name: str, phone: str) -> int:
        """A person that exists in the CRM before the gateway delivers anything."""
        person_id = next(_ids)
        self.persons[person_id] = self._new(person_id, name, [{"value": phone, "primary": True}])
        return person_id

    @staticmethod
    def _new(person_id: int, name: str, phones: list[dict[str, Any]]) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "id": person_id,
            "name": name,
            "phones": [{"label": "work", "primary": False, **p} for p in phones],
            "emails": [],
            "is_deleted": False,
            "add_time": stamp,
            "update_time": stamp,
            "visible_to": 3,
            "custom_fields": {},
        }

    def _missing(self) -> Answer:
        return self.error(Rejection(404, "not_found", "Person not found"))

    def answer(self, request: Recorded) -> Answer:
        if request.path == "/api/v2/persons/search":
            term = _digits(request.query["term"][0])
            items = [
                {
                    "result_score": 1.0,
                    "item": {
                        "id": p["id"],
                        "type": "person",
                        "name": p["name"],
                        "phones": [x["value"] for x in p["phones"]],
                        "emails": [x["value"] for x in p["emails"]],
                        "visible_to": p["visible_to"],
                        "custom_fields": [],
                        "notes": [],
                    },
                }
                for p in self.persons.values()
                if term and any(term in _digits(x["value"]) for x in p["phones"])
            ]
            return Answer(
                200,
                {
                    "success": True,
                    "data": {"items": items},
                    "additional_data": {"next_cursor": None},
                },
            )
        if request.path == "/api/v1/persons" and request.method == "POST":
            body = request.json()
            phones = body.get("phone") or []
            if isinstance(phones, str):
                phones = [{"value": phones, "primary": True}]
            person = self._new(next(_ids), body["name"], phones)
            self.persons[person["id"]] = person
            v1 = {**person, "phone": person["phones"], "email": person["emails"]}
            return Answer(201, {"success": True, "data": v1, "related_objects": {}})
        person = self.persons.get(int(request.path.rsplit("/", 1)[1]))
        if person is None:
            return self._missing()
        if request.method == "DELETE":
            del self.persons[person["id"]]
            return Answer(200, {"success": True, "data": {"id": person["id"]}})
        if request.method == "PATCH":
            body = request.json()
            if "name" in body:
                person["name"] = body["name"]
            if "phones" in body:
                person["phones"] = [
                    {"label": "work", "primary": False, **p} for p in body["phones"]
                ]
        return Answer(200, {"success": True, "data": person})
