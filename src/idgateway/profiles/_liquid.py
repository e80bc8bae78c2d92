"""The Liquid environment for profile templates (SPEC §7, seed 001).

Output is HTML-escaped; undefined variables render empty; loops, output size, nesting and the
template's own variables are capped, so a hostile or careless template cannot exhaust the
process. A template that breaks a cap renders a small error box instead of failing the request.
Templates are compiled once and kept by path and modification time.
"""

from __future__ import annotations

import functools
import html
import os
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from liquid import BoundTemplate, Environment, RenderContext
from liquid.builtin.expressions.primitive import RangeLiteral
from liquid.exceptions import (
    LiquidError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.output import LimitedStringIO

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

log = structlog.get_logger(__name__)


_write = StringIO.write


class _Output(LimitedStringIO):
    """python-liquid's capped output stream, counting ASCII text without encoding it: the
    library encodes every write to UTF-8 to count its bytes, while ``str.isascii()`` is O(1)
    in CPython and ASCII text has as many bytes as characters. Same count, same limit, same
    error."""

    def write(self, text: str, /) -> int:
        size = self.size + (len(text) if text.isascii() else len(text.encode("utf-8")))
        if size > self.limit:
            raise OutputStreamLimitError("output stream limit reached", token=None)
        self.size = size
        return _write(self, text)


class _Context(RenderContext):
    def get_buffer(self, buf: TextIO | None = None) -> StringIO:
        limit = self.env.output_stream_limit
        if limit is None:
            return StringIO()
        return _Output(limit=limit - (buf.size if isinstance(buf, LimitedStringIO) else 0))


class _Template(BoundTemplate):
    context_class = _Context

    def _get_buffer(self) -> StringIO:
        limit = self.env.output_stream_limit
        return StringIO() if limit is None else _Output(limit=limit)


class ProfileEnvironment(Environment):
    template_class = _Template
    loop_iteration_limit = 10_000
    output_stream_limit = 256 * 1024
    local_namespace_limit = 64 * 1024
    context_depth_limit = 20
    block_nesting_limit = 30


# A range literal is built whole before any loop counts it: `(1..10000000) | join` would take
# seconds and a gigabyte without passing the loop cap. python-liquid has no setting for this,
# so its one range constructor is wrapped (this process renders only our templates).
_make_range = RangeLiteral._make_range


def _capped_range(self: RangeLiteral, start: Any, stop: Any) -> range:
    made = _make_range(self, start, stop)
    if len(made) > ProfileEnvironment.loop_iteration_limit:
        raise LoopIterationLimitError(
            f"loop iteration limit reached: a range of {len(made)} items is over "
            f"{ProfileEnvironment.loop_iteration_limit}",
            token=self.token,
        )
    return made


RangeLiteral._make_range = _capped_range  # type: ignore[method-assign]


def _size(value: Any) -> int:
    if isinstance(value, list | tuple):
        return sum(len(str(v)) for v in value)
    return len(str(value))


def _capped_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Filters build their result whole before the output cap sees it: `a | append: a` in a
    loop, or a `replace` of every character by a long string, reach gigabytes in a few
    steps. Results that could grow are sized before they are built, every other one after.
    The check is chosen once per filter, not on every call (renders call filters often)."""
    limit = ProfileEnvironment.output_stream_limit

    def over(size: int) -> None:
        if size > limit:
            raise OutputStreamLimitError(
                f"filter `{name}` would make {size} characters (limit {limit})", token=None
            )

    def after(result: Any) -> Any:
        if isinstance(result, str | list | tuple) and len(result) > limit:
            over(len(result))  # a string's size is its length; a list's, its item count
        return result

    if name.startswith("replace"):
        every = name == "replace"

        @functools.wraps(fn)
        def replacing(*args: Any, **kwargs: Any) -> Any:
            if len(args) >= 3:
                text, old, new = (str(a) for a in args[:3])
                count = (text.count(old) if old else len(text) + 1) if every else 1
                over(len(text) + count * max(0, len(new) - len(old)))
            return after(fn(*args, **kwargs))

        return replacing

    if name in ("append", "prepend", "join", "concat"):

        @functools.wraps(fn)
        def growing(*args: Any, **kwargs: Any) -> Any:
            if args:
                over(sum(_size(a) for a in args))
            return after(fn(*args, **kwargs))

        return growing

    @functools.wraps(fn)
    def capped(*args: Any, **kwargs: Any) -> Any:
        return after(fn(*args, **kwargs))

    return capped


ENV = ProfileEnvironment(autoescape=True)
ENV.filters = {name: _capped_filter(name, fn) for name, fn in ENV.filters.items()}
_compiled: dict[str, tuple[float, BoundTemplate]] = {}
_broken: dict[
    str, str
] = {}  # path → why the file on disk does not compile (the last good one is used)


class TemplateProblem(Exception):
    """A template that does not parse: ``message`` names the file, line and column."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(exc: LiquidError) -> str:
    return " ".join(str(exc).split("\n", 2)[:2]).replace("  -> ", "at ")


def compile_source(source: str, name: str = "<draft>") -> BoundTemplate:
    try:
        return ENV.from_string(source, path=name)
    except LiquidError as exc:
        raise TemplateProblem(_describe(exc)) from None


def compile_file(path: str) -> BoundTemplate:
    """The compiled template of a file, compiled again only when the file changes. When the
    file breaks (edited into a syntax error, removed) the last good template keeps serving
    and :func:`file_problem` says why; with none, :class:`TemplateProblem` is raised."""
    cached = _compiled.get(path)
    try:
        # every render, so an edited file is picked up at once: os.stat, not pathlib (cheaper)
        mtime = os.stat(path).st_mtime  # noqa: PTH116
        if cached is not None and cached[0] == mtime:
            return cached[1]
        template = compile_source(Path(path).read_text(encoding="utf-8"), path)
    except (TemplateProblem, OSError, UnicodeDecodeError) as exc:
        problem = exc.message if isinstance(exc, TemplateProblem) else f"cannot read {path}: {exc}"
        if _broken.get(path) != problem:
            log.warning("profile template broken; serving the last good one", problem=problem)
        _broken[path] = problem
        if cached is None:
            raise TemplateProblem(problem) from None
        return cached[1]
    _broken.pop(path, None)
    _compiled[path] = (mtime, template)
    return template


def file_problem(path: str) -> str | None:
    return _broken.get(path)


def syntax_error(path: Path) -> str | None:
    """For ``config check``: the syntax error of a template file, or None."""
    try:
        compile_source(path.read_text(encoding="utf-8"), str(path))
    except TemplateProblem as exc:
        return exc.message
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read template: {exc}"
    return None


def render(template: BoundTemplate, context: dict[str, object]) -> tuple[str, str | None]:
    """(html, problem): a template that breaks a cap or fails renders an error box."""
    try:
        return template.render(**context), None
    except ResourceLimitError as exc:
        problem = f"the profile template went over a limit: {_describe(exc)}"
    except LiquidError as exc:
        problem = f"the profile template failed: {_describe(exc)}"
    except Exception as exc:  # a filter meeting data it cannot take (`"Gold" | sum`)
        problem = f"the profile template failed: {type(exc).__name__}: {exc}"
    return error_box(problem), problem


def error_box(problem: str) -> str:
    return f'<div class="idgw-profile-error">{html.escape(problem)}</div>'
