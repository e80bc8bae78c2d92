"""Structured logs (structlog): JSON off a terminal, console on one; a request id per request.

Standard-library records (uvicorn, redis) go through the same renderer. Tracebacks are
rendered without frame locals, so no secret held in a local variable reaches a log line.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, Literal

import msgspec
import structlog
from structlog.tracebacks import ExceptionDictTransformer

_json = msgspec.json.Encoder()

# The request a log line belongs to (request id, tenant): one context variable set per request,
# read only when a line is logged. Cheaper than structlog's bind_contextvars, which clears and
# binds a context variable per key on every request, most of which log nothing.
_REQUEST: ContextVar[dict[str, str] | None] = ContextVar("idgw_request", default=None)


def new_request(request_id: str) -> None:
    """Start the log context of a request (in the request's own task)."""
    _REQUEST.set({"request_id": request_id})


def bind_request(**values: str) -> None:
    """Add to the current request's log context (e.g. its tenant, once the key is known)."""
    context = _REQUEST.get()
    if context is None:
        _REQUEST.set(dict(values))
    else:
        context.update(values)


def _merge_request(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    context = _REQUEST.get()
    if context:
        for key, value in context.items():
            event.setdefault(key, value)
    return event


def _serialize(obj: Any, **_: Any) -> str:
    return _json.encode(obj).decode()


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info"
) -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _merge_request,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if as_json:
        renderer = structlog.processors.JSONRenderer(serializer=_serialize)
        shared_tail: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
            if getattr(structlog.dev, "rich", None) is not None
            else structlog.dev.plain_traceback
        )
        shared_tail = []
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Drops calls below the level before any processor runs: a disabled debug line on a
        # hot path (every outbound request) costs a method call, not a timestamp and a merge.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *shared_tail,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request at INFO: outbound calls are counted in metrics instead.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
