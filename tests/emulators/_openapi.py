"""Request validation against a vendor's OpenAPI document (PyPI ``openapi-core``).

Documents load once per process (a few seconds each). The host given to :func:`violations`
must be one of the document's ``servers``: emulators map their own address onto it.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

if TYPE_CHECKING:
    from tests.emulators._base import Recorded

CONTRACTS = Path(__file__).parent / "contracts"
_lock = threading.Lock()


@cache
def spec(name: str) -> OpenAPI:
    """``contracts/<name>`` as an ``openapi_core.OpenAPI`` (the document is trusted as
    published: ``openapi-spec-validator`` accepts each, see contracts/README.md)."""
    data = yaml.load((CONTRACTS / name).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return OpenAPI.from_dict(data)


def violations(
    name: str, host: str, path: str, request: Recorded, body: Any = ..., **headers: str
) -> list[str]:
    """Every way ``request`` (seen at ``host`` + ``path``) breaks the document ``name``: an
    unknown path or method, a bad parameter, body or security scheme. ``body`` replaces the
    request's JSON body when given (e.g. a documented alternative form normalised)."""
    content = request.body if body is ... else json.dumps(body).encode()
    mock = MockRequest(
        host,
        request.method.lower(),
        path,
        args=[(k, v) for k, values in request.query.items() for v in values],
        headers={**request.headers, **headers},
        data=content or None,
        content_type=request.headers.get("content-type", "application/json").split(";")[0],
    )
    with _lock:
        result = spec(name).unmarshal_request(mock)
    found = []
    for error in result.errors:
        cause = error.__cause__
        detail = f": {cause}" if cause is not None and str(cause) not in str(error) else ""
        found.append(f"{name}: {error}{detail}")
    return found
