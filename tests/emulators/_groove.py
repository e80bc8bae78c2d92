"""Groove API v1 customers, checked against the written contract ``contracts/groove-v1.md``.

Enforced: Bearer token (§1); only ``GET`` and ``PUT /v1/customers/{email}`` (§2: no create, no
delete); ``PUT`` bodies with the documented update parameters only, ``email`` required (the
docs mark it so; whether Groove enforces it is unverified: the strict reading), string values
(``custom`` a hash).

Answers ``{"customer": {...}}``. Unverified, strict or plain reading: ``PUT`` on an unknown
email creates the customer; a different ``email`` in the body renames it; ``custom`` merges key
by key and ``null`` removes a key; ``""`` clears a standard field.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import unquote

from tests.emulators._base import Answer, Recorded, Rejection, VendorModel, bearer, json_body

PARAMETERS = (
    "email",
    "name",
    "about",
    "twitter_username",
    "title",
    "company_name",
    "phone_number",
    "location",
    "linkedin_username",
)
_ids = itertools.count(7_000)


class Groove(VendorModel):
    kind = "groove"

    def __init__(self, token: str) -> None:
        self.token = token
        self.customers: dict[str, dict[str, Any]] = {}  # email -> customer

    def error(self, rejection: Rejection) -> Answer:
        # groove-v1.md §3: error bodies are undocumented
        return Answer(rejection.status, {"error": rejection.message})

    def rejections(self, request: Recorded) -> list[Rejection]:
        found: list[Rejection] = []
        if not bearer(request, self.token):
            found.append(Rejection(401, "unauthorized", "groove-v1.md §1: Bearer <token>"))
        if not re.fullmatch(r"/v1/customers/[^/]+", request.path) or request.method not in (
            "GET",
            "PUT",
        ):
            found.append(Rejection(404, "not_found", "groove-v1.md §2 documents no such call"))
            return found
        if request.method == "PUT":
            body, problem = json_body(request)
            if problem or not isinstance(body, dict):
                return [*found, Rejection(400, "bad_request", problem or "an object")]
            if not isinstance(body.get("email"), str) or "@" not in body["email"]:
                found.append(Rejection(400, "bad_request", "groove-v1.md §2: email is required"))
            for key, value in body.items():
                if key == "custom":
                    if not isinstance(value, dict):
                        found.append(Rejection(400, "bad_request", "custom is a hash"))
                elif key not in PARAMETERS:
                    found.append(Rejection(400, "bad_request", f"undocumented parameter {key!r}"))
                elif not isinstance(value, str):
                    found.append(Rejection(400, "bad_request", f"{key}: a string"))
        return found

    def answer(self, request: Recorded) -> Answer:
        email = unquote(request.path.rsplit("/", 1)[1])
        customer = self.customers.get(email)
        if request.method == "GET":
            if customer is None:
                return Answer(404, {"error": "Customer not found"})
            return Answer(200, {"customer": customer})
        body = request.json()
        if body["email"] != email and body["email"] in self.customers:
            return Answer(409, {"error": "email taken by another customer"})
        if customer is None:
            customer = {"id": str(next(_ids)), "custom": {}}
        self.customers.pop(email, None)
        for key in PARAMETERS:
            if key in body:
                customer[key] = body[key]
        for key, value in (body.get("custom") or {}).items():
            if value is None:
                customer["custom"].pop(key, None)
            else:
                customer["custom"][key] = value
        customer["href"] = f"https://api.groovehq.com/v1/customers/{customer['email']}"
        self.customers[customer["email"]] = customer
        return Answer(200, {"customer": customer})
