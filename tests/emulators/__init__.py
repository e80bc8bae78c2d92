"""Local emulators of the vendors: real HTTP servers on 127.0.0.1 that check every request
against the vendor's published contract (``contracts/``: OpenAPI documents through
``openapi-core``, or the written contract in code), keep the vendor's state, answer in the
vendor's documented shapes — or, when told, with a failure.

    emu = emulator("smooch").start()
    emu.fail(Answer(status=429, headers={"Retry-After": "1"}), times=2)
    emu.fail(Hang(seconds=30))          # never answers in time
    emu.fail(Reset())                   # closes the connection without an answer
    ... emu.requests ... emu.violations ... emu.model.users ... emu.stop()

A request the real vendor would refuse is answered with the vendor's error and recorded in
``violations``; tests assert that list stays empty.
"""

from __future__ import annotations

from tests.emulators._base import (
    Answer,
    Behaviour,
    Hang,
    Recorded,
    Rejection,
    Reset,
    VendorEmulator,
    VendorModel,
)
from tests.emulators._gist import Gist
from tests.emulators._groove import Groove
from tests.emulators._pipedrive import Pipedrive
from tests.emulators._smooch import Smooch, Sunshine
from tests.emulators._webhook import Receiver

# The credentials each emulated vendor accepts (the tests configure the adapters with them).
SMOOCH = {"app_id": "5963c0d619a30a2e00de36b8", "key_id": "app_5963c0d6", "secret": "sm-secret-1"}
SUNSHINE = {"app_id": "6a1f00c0ffee00c0ffee0001", "key_id": "app_6a1f00c0", "secret": "sc-secret-2"}
GIST_TOKEN = "gist-api-key-3"
GROOVE_TOKEN = "groove-token-4"
PIPEDRIVE_TOKEN = "pd-api-token-5"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def model_of(kind: str) -> VendorModel:
    """A fresh vendor model of ``kind`` with the credentials above."""
    if kind == "smooch":
        return Smooch(**SMOOCH)
    if kind == "sunshine":
        return Sunshine(**SUNSHINE)
    if kind == "gist":
        return Gist(GIST_TOKEN)
    if kind == "groove":
        return Groove(GROOVE_TOKEN)
    if kind == "pipedrive":
        return Pipedrive(PIPEDRIVE_TOKEN)
    if kind == "webhook":
        return Receiver(WEBHOOK_SECRET)
    raise ValueError(kind)


def emulator(kind: str) -> VendorEmulator:
    return VendorEmulator(model_of(kind))


__all__ = [
    "GIST_TOKEN",
    "GROOVE_TOKEN",
    "PIPEDRIVE_TOKEN",
    "SMOOCH",
    "SUNSHINE",
    "WEBHOOK_SECRET",
    "Answer",
    "Behaviour",
    "Gist",
    "Groove",
    "Hang",
    "Pipedrive",
    "Receiver",
    "Recorded",
    "Rejection",
    "Reset",
    "Smooch",
    "Sunshine",
    "VendorEmulator",
    "VendorModel",
    "emulator",
    "model_of",
]
