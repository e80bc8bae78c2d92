"""A signed webhook (Standard Webhooks): ``POST {url}`` with
``{"type", "timestamp", "data"}``; the gateway adds ``webhook-id`` (the delivery id),
``webhook-timestamp`` and ``webhook-signature``."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from idgateway.delivery import Adapter, DeliveryEvent, Outcome, Plan, VendorRequest, expect_ok


class WebhookAdapter(Adapter):
    @classmethod
    def settings_issues(cls, settings: Any) -> list[tuple[str, str]]:
        secret = settings.get("secret")
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            return [("secret", "expected whsec_ followed by base64")]
        try:
            if not base64.b64decode(secret[6:], validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            return [("secret", "expected whsec_ followed by base64")]
        return []

    def plan(self, event: DeliveryEvent) -> Plan:
        data = event.record if event.record is not None else event.tombstone
        body = {"type": event.kind, "timestamp": event.timestamp, "data": data}
        expect_ok((yield VendorRequest("POST", str(self.settings["url"]), json=body, sign=True)))
        return Outcome()


ADAPTER = WebhookAdapter
