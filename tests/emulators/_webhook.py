"""A receiver of Standard Webhooks: every request's signature is verified with the reference
library (PyPI ``standardwebhooks``), and its body must be ``{"type", "timestamp", "data"}``."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.emulators._base import Answer, Recorded, Rejection, VendorModel, json_body

TYPES = ("contact.upserted", "contact.deleted", "company.upserted")


class Receiver(VendorModel):
    kind = "webhook"

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def rejections(self, request: Recorded) -> list[Rejection]:
        if request.method != "POST":
            return [Rejection(405, "method", "webhooks are POSTed")]
        try:
            Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            return [Rejection(401, "signature", f"Standard Webhooks: {exc}")]
        body, problem = json_body(request)
        if problem or not isinstance(body, dict) or set(body) != {"type", "timestamp", "data"}:
            return [Rejection(400, "body", problem or "expected {type, timestamp, data}")]
        if body["type"] not in TYPES or not isinstance(body["data"], dict):
            return [Rejection(400, "body", f"unknown event type {body['type']!r}")]
        return []

    def answer(self, request: Recorded) -> Answer:
        return Answer(200, {})
