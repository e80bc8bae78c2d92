"""Smooch API v1.1 appUsers and Sunshine Conversations API v2 users.

Requests are validated against ``contracts/smooch-v1.1.openapi.yaml`` and
``contracts/sunshine-conversations-v2.openapi.yaml`` (openapi-core), plus what the written
contract adds (``contracts/smooch-v1.md``): the API key's Basic credentials or a JWT signed
with its secret, flat scalar ``properties`` / ``metadata``, the 4 KB metadata limit.

Answers follow the documents: ``{"appUser": ...}`` / ``{"user": ...}``, errors as
``{"error": {"code", "description"}}`` (v1.1) and ``{"errors": [{"code", "title"}]}`` (v2).
Where the contract leaves a behaviour unverified the emulator takes the strict reading:
``PUT`` on an unknown appUser is 404, a duplicate pre-create ``userId`` is 409, and v2
``PATCH`` merges ``metadata`` key by key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import re
from typing import Any

from tests.emulators._base import Answer, Recorded, Rejection, VendorModel, json_body
from tests.emulators._openapi import violations

HOST = "https://api.smooch.io"  # a server of both documents
_ids = itertools.count(1)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def auth_problem(request: Recorded, key_id: str, secret: str) -> str | None:
    """smooch-v1.md §2: Basic ``keyId:secret``, or a JWT (HS256) whose header ``kid`` is the
    key id, signed with the secret, with ``scope`` app. A raw key as Bearer is refused."""
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed Basic credentials"
        if hmac.compare_digest(user, key_id) and hmac.compare_digest(password, secret):
            return None
        return "unknown API key id or wrong secret"
    if header.startswith("Bearer "):
        parts = header[7:].split(".")
        if len(parts) != 3:
            return "Bearer credentials are not a JWT (a raw key is refused)"
        try:
            head, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error):
            return "malformed JWT"
        expected = hmac.new(
            secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
        ).digest()
        if head.get("alg") != "HS256" or head.get("kid") != key_id:
            return "JWT header must carry alg HS256 and the key id as kid"
        if not hmac.compare_digest(signature, expected) or claims.get("scope") != "app":
            return "JWT signature or scope is wrong"
        return None
    return "Authorization is required"


def flat_scalars_problem(what: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"{what} must be an object"
    for key, inner in value.items():
        if not isinstance(inner, str | int | float | bool):
            return f"{what}.{key}: only strings, numbers and booleans (a flat object)"
    return None


class Smooch(VendorModel):
    """Smooch v1.1 appUsers of one app."""

    kind = "smooch"
    documents = ("smooch-v1.1.openapi.yaml",)

    def __init__(self, app_id: str, key_id: str, secret: str) -> None:
        self.app_id, self.key_id, self.secret = app_id, key_id, secret
        self.users: dict[str, dict[str, Any]] = {}  # _id -> appUser

    def error(self, rejection: Rejection) -> Answer:
        return Answer(
            rejection.status, {"error": {"code": rejection.code, "description": rejection.message}}
        )

    def rejections(self, request: Recorded) -> list[Rejection]:
        found = [
            Rejection(400, "bad_request", v)
            for v in violations("smooch-v1.1.openapi.yaml", HOST, request.path, request)
        ]
        problem = auth_problem(request, self.key_id, self.secret)
        if problem:
            found.insert(0, Rejection(401, "unauthorized", problem))
        match = re.match(r"^/v1\.1/apps/([^/]+)/", request.path)
        if match and match.group(1) != self.app_id:
            found.append(Rejection(403, "forbidden", "the key has no access to this app"))
        if request.method in ("PUT", "POST"):
            body, _ = json_body(request)
            problem = flat_scalars_problem(
                "properties", body.get("properties") if isinstance(body, dict) else None
            )
            if problem:
                found.append(Rejection(400, "bad_request", problem))
        return found

    def find(self, user: str) -> dict[str, Any] | None:
        if user in self.users:
            return self.users[user]
        return next((u for u in self.users.values() if u.get("userId") == user), None)

    def answer(self, request: Recorded) -> Answer:
        rest = request.path.split("/appusers", 1)[1].strip("/")
        user_id, _, sub = rest.partition("/")
        body = request.json() or {}
        missing = Answer(404, {"error": {"code": "not_found", "description": "App user not found"}})
        if request.method == "POST" and not user_id:
            if self.find(body["userId"]) is not None:
                return Answer(409, {"error": {"code": "conflict", "description": "userId taken"}})
            user = {
                "_id": f"{next(_ids):024x}",
                "conversationStarted": False,
                "properties": {},
                "clients": [],
                "pendingClients": [],
            }
            self.users[user["_id"]] = user
            self._apply(user, body)
            user["userId"] = body["userId"]
            return Answer(201, {"appUser": user})
        user = self.find(user_id)
        if user is None:
            return missing
        if request.method == "GET":
            return Answer(200, {"appUser": user})
        if request.method == "PUT":
            self._apply(user, body)
            return Answer(200, {"appUser": user})
        if sub == "profile":  # DELETE .../profile
            for key in ("givenName", "surname", "email"):
                user.pop(key, None)
            user["properties"] = {}
            return Answer(200, {"appUser": user})
        del self.users[user["_id"]]
        return Answer(200, {})

    @staticmethod
    def _apply(user: dict[str, Any], body: dict[str, Any]) -> None:
        """smooch-v1.md §5: additive; only the keys sent change."""
        for key in ("givenName", "surname", "email", "signedUpAt"):
            if key in body:
                user[key] = body[key]
        user["properties"].update(body.get("properties") or {})


class Sunshine(VendorModel):
    """Sunshine Conversations v2 users of one app."""

    kind = "sunshine"
    documents = ("sunshine-conversations-v2.openapi.yaml",)
    METADATA_BYTES = 4096

    def __init__(self, app_id: str, key_id: str, secret: str) -> None:
        self.app_id, self.key_id, self.secret = app_id, key_id, secret
        self.users: dict[str, dict[str, Any]] = {}  # id -> user

    def error(self, rejection: Rejection) -> Answer:
        return Answer(
            rejection.status, {"errors": [{"code": rejection.code, "title": rejection.message}]}
        )

    def rejections(self, request: Recorded) -> list[Rejection]:
        found = [
            Rejection(400, "bad_request", v)
            for v in violations(
                "sunshine-conversations-v2.openapi.yaml", HOST, request.path, request
            )
        ]
        problem = auth_problem(request, self.key_id, self.secret)
        if problem:
            found.insert(0, Rejection(401, "unauthorized", problem))
        match = re.match(r"^/v2/apps/([^/]+)/", request.path)
        if match and match.group(1) != self.app_id:
            found.append(Rejection(403, "forbidden", "the key has no access to this app"))
        if len(request.body) > 100 * 1024:
            found.append(Rejection(413, "payload_too_large", "JSON bodies are limited to 100kb"))
        if request.method in ("POST", "PATCH"):
            body, _ = json_body(request)
            metadata = body.get("metadata") if isinstance(body, dict) else None
            problem = flat_scalars_problem("metadata", metadata)
            if problem:
                found.append(Rejection(400, "bad_request", problem))
            elif (
                metadata
                and len(json.dumps(metadata, separators=(",", ":")).encode()) > self.METADATA_BYTES
            ):
                found.append(Rejection(400, "bad_request", "metadata is limited to 4KB"))
        return found

    def find(self, user: str) -> dict[str, Any] | None:
        if user in self.users:
            return self.users[user]
        return next((u for u in self.users.values() if u.get("externalId") == user), None)

    def answer(self, request: Recorded) -> Answer:
        rest = request.path.split("/users", 1)[1].strip("/")
        body = request.json() or {}
        missing = Answer(404, {"errors": [{"code": "user_not_found", "title": "User not found"}]})
        if request.method == "POST" and not rest:
            if body.get("externalId") and self.find(body["externalId"]) is not None:
                return Answer(
                    409, {"errors": [{"code": "conflict", "title": "User already exists"}]}
                )
            user = {
                "id": f"{next(_ids):024x}",
                "externalId": body.get("externalId"),
                "profile": {},
                "metadata": {},
                "identities": [],
            }
            self.users[user["id"]] = user
            self._apply(user, body)
            return Answer(201, {"user": user})
        user = self.find(rest)
        if user is None:
            return missing
        if request.method == "GET":
            return Answer(200, {"user": user})
        if request.method == "PATCH":
            self._apply(user, body)
            return Answer(200, {"user": user})
        del self.users[user["id"]]
        return Answer(200, {})

    @staticmethod
    def _apply(user: dict[str, Any], body: dict[str, Any]) -> None:
        if "signedUpAt" in body:
            user["signedUpAt"] = body["signedUpAt"]
        for key, value in (body.get("profile") or {}).items():
            if value is None:  # the profile fields are nullable: null clears
                user["profile"].pop(key, None)
            else:
                user["profile"][key] = value
        if "metadata" in body:
            if body["metadata"] is None:
                user["metadata"] = {}
            else:  # the strict reading of an undocumented point: PATCH merges metadata
                user["metadata"].update(body["metadata"])
