"""Driving an adapter's plan, and what a vendor's answer means (SPEC §6). Pure: the I/O is a
function the caller passes in (the worker sends for real; dry-run answers each request with an
empty 200)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from idgateway.delivery._contract import Outcome, VendorRejected

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from idgateway.delivery._contract import Adapter, DeliveryEvent, VendorRequest, VendorResponse

MAX_REQUESTS_PER_PLAN = 10  # find + create + a few follow-ups; a looping adapter stops here


class PlanTooLong(Exception):
    """An adapter's plan asked for more requests than one delivery may send."""


async def drive_plan(
    adapter: Adapter,
    event: DeliveryEvent,
    send: Callable[[VendorRequest], Awaitable[VendorResponse]],
    *,
    max_requests: int = MAX_REQUESTS_PER_PLAN,
) -> tuple[Outcome, list[VendorRequest]]:
    """Run ``adapter.plan(event)``: each request it yields goes to ``send``, each answer goes
    back into the plan; the plan's outcome and the requests sent.

    Raises:
        VendorRejected: the plan refused an answer (the caller classifies its status).
        PlanTooLong: more than ``max_requests`` requests.
    """
    plan = adapter.plan(event)
    sent: list[VendorRequest] = []
    try:
        request = next(plan)
        while True:
            if len(sent) >= max_requests:
                plan.close()
                raise PlanTooLong(
                    f"{adapter.manifest.name} asked for more than {max_requests} requests"
                )
            sent.append(request)
            response = await send(request)
            request = plan.send(response)
    except StopIteration as done:
        outcome: Outcome = done.value or Outcome()
        return outcome, sent


class Verdict(StrEnum):
    """What a failed delivery attempt means for its job."""

    RETRY = "retry"  # try again later (network, timeout, 408, 429, 5xx)
    DEAD = "dead"  # never going to work as it is: dead letters now
    DISABLE = "disable"  # the vendor is gone (410): stop calling it, keep the job


def classify(status: int | None) -> Verdict:
    """The verdict on a failed attempt: ``status`` is the vendor's HTTP status, or None when
    no answer came (network error, timeout, an answer over the size cap)."""
    if status is None:
        return Verdict.RETRY
    if status == 410:
        return Verdict.DISABLE
    if status in (408, 429) or status >= 500:
        return Verdict.RETRY
    return Verdict.DEAD


__all__ = ["PlanTooLong", "VendorRejected", "Verdict", "classify", "drive_plan"]
