"""Fetching a customer's profile data from their webhook (SPEC §7, seed 001).

``GET {webhook_url}?email=…&api_token=…`` through the guarded client. The answer must be one
flat JSON object (scalar or null values), no key with a space, at most 256 KiB; anything else
is a :class:`~idgateway.errors.WebhookFailed` whose detail says what was wrong.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from idgateway.errors import WebhookFailed
from idgateway.net import (
    BlockedDestination,
    GuardedClient,
    OutboundError,
    OutboundTimeout,
    ResponseTooLarge,
)

MAX_BYTES = 256 * 1024


def webhook_request_url(webhook_url: str, email: str, api_token: str) -> str:
    parts = urlsplit(webhook_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("email", "api_token")]
    query += [("email", email), ("api_token", api_token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def check_flat(body: bytes) -> dict[str, Any]:
    """The answer as a flat object, or WebhookFailed saying what is wrong with it."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise WebhookFailed("the webhook did not answer JSON") from None
    except RecursionError:
        raise WebhookFailed("the webhook's answer is nested too deeply") from None
    if not isinstance(data, dict):
        raise WebhookFailed(f"the webhook answered a JSON {type(data).__name__}, not an object")
    for key, value in data.items():
        if any(c.isspace() for c in key):
            raise WebhookFailed(f"the webhook's key {key!r} has a space")
        if isinstance(value, dict | list):
            raise WebhookFailed(f"the webhook's value of {key!r} is nested; answer one flat object")
    return data


async def fetch_profile(
    client: GuardedClient,
    webhook_url: str,
    api_token: str,
    email: str,
    *,
    timeout: float,
    allow_private: bool,
) -> dict[str, Any]:
    url = webhook_request_url(webhook_url, email, api_token)
    try:
        answer = await client.request(
            "GET",
            url,
            headers={"Accept": "application/json"},
            allow_private=allow_private,
            timeout=timeout,
            max_response_bytes=MAX_BYTES,
            purpose="profile",
        )
    except BlockedDestination as exc:
        raise WebhookFailed(f"the webhook address is refused: {exc.reason}") from None
    except OutboundTimeout:
        raise WebhookFailed(f"the webhook did not answer within {timeout:g} s") from None
    except ResponseTooLarge:
        raise WebhookFailed("the webhook's answer is larger than 256 KiB") from None
    except OutboundError as exc:
        raise WebhookFailed(f"the webhook cannot be reached: {type(exc).__name__}") from None
    if not 200 <= answer.status < 300:
        raise WebhookFailed(f"the webhook answered HTTP {answer.status}")
    return check_flat(answer.body)
