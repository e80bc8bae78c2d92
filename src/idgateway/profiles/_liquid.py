"""The Liquid environment for profile templates (SPEC §7, seed 001).

Output is HTML-escaped; undefined variables render empty; loops, output size, nesting and the
template's own variables are capped, so a hostile or careless template cannot exhaust the
process. A template that breaks a cap renders a small error box instead of failing the request.
Templates are compiled once and kept by path and modification time.
"""

from __future__ import annotations

import html
from pathlib import Path

from typing import Any

from liquid import Environment, Template
from liquid.builtin.expressions.primitive import RangeLiteral
from liquid.exceptions import LiquidError, LoopIterationLimitError, ResourceLimitError


class ProfileEnvironment(Environment):
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

ENV = ProfileEnvironment(autoescape=True)
_compiled: dict[str, tuple[float, Template]] = {}


class TemplateProblem(Exception):
    """A template that does not parse: ``message`` names the file, line and column."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(exc: LiquidError) -> str:
    return " ".join(str(exc).split("\n", 2)[:2]).replace("  -> ", "at ")


def compile_source(source: str, name: str = "<draft>") -> Template:
    try:
        return ENV.from_string(source, path=name)
    except LiquidError as exc:
        raise TemplateProblem(_describe(exc)) from None


def compile_file(path: str) -> Template:
    """The compiled template of a file, compiled again only when the file changes."""
    mtime = Path(path).stat().st_mtime
    cached = _compiled.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    template = compile_source(Path(path).read_text(encoding="utf-8"), path)
    _compiled[path] = (mtime, template)
    return template


def syntax_error(path: Path) -> str | None:
    """For ``config check``: the syntax error of a template file, or None."""
    try:
        compile_source(path.read_text(encoding="utf-8"), str(path))
    except TemplateProblem as exc:
        return exc.message
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read template: {exc}"
    return None


def render(template: Template, context: dict[str, object]) -> tuple[str, str | None]:
    """(html, problem): a template that breaks a cap or fails renders an error box."""
    try:
        return template.render(**context), None
    except ResourceLimitError as exc:
        problem = f"the profile template went over a limit: {_describe(exc)}"
    except LiquidError as exc:
        problem = f"the profile template failed: {_describe(exc)}"
    box = f'<div class="idgw-profile-error">{html.escape(problem)}</div>'
    return box, problem
