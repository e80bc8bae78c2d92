"""Request counts and latency at the ASGI level (SPEC §5.7), for every request, whichever path
serves it (Litestar's routes or the lean path of the hot writes, ``api/_hot.py``).

The metrics keep the names and labels of Litestar's Prometheus plugin (``idgw_requests_total``,
``idgw_request_duration_seconds``, ``idgw_requests_in_progress``, ``idgw_requests_error_total``
with ``method``, ``path`` as the route's template, ``status_code``, ``app_name``; requests in
progress by ``method`` only, as they are counted before routing), counted here
once per request instead of by a middleware Litestar builds per route; label children are
cached, so a request costs a dictionary lookup and three updates.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

APP_NAME = "idgateway"
UNMATCHED = "<unmatched>"  # requests no route answered: one label, not one per path

REQUESTS = Counter(
    "idgw_requests_total",
    "Total requests",
    ["method", "path", "status_code", "app_name"],
)
REQUEST_SECONDS = Histogram(
    "idgw_request_duration_seconds",
    "Request duration, in seconds",
    ["method", "path", "status_code", "app_name"],
)
IN_PROGRESS = Gauge(
    "idgw_requests_in_progress",
    "Total requests currently in progress",
    ["method", "app_name"],  # counted before routing: no route template yet
    multiprocess_mode="livesum",
)
ERRORS = Counter(
    "idgw_requests_error_total",
    "Total errors in requests",
    ["method", "path", "status_code", "app_name"],
)

_done: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_running: dict[str, Any] = {}


def running(method: str) -> Any:
    """The in-progress gauge of ``method`` (``inc()`` when a request starts, ``dec()`` when
    it ends)."""
    gauge = _running.get(method)
    if gauge is None:
        gauge = _running[method] = IN_PROGRESS.labels(method, APP_NAME)
    return gauge


def finished(method: str, path: str, status: int, seconds: float) -> None:
    """One request answered: ``path`` is its route's template (or :data:`UNMATCHED`)."""
    key = (method, path, status)
    children = _done.get(key)
    if children is None:
        labels = (method, path, str(status), APP_NAME)
        children = _done[key] = (REQUESTS.labels(*labels), REQUEST_SECONDS.labels(*labels))
        if status >= 500:
            ERRORS.labels(*labels)
    children[0].inc()
    children[1].observe(seconds)
    if status >= 500:
        ERRORS.labels(method, path, str(status), APP_NAME).inc()
