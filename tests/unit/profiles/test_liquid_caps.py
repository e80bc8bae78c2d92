"""The profile Liquid environment's caps hold against templates that grow data, not loops."""

from __future__ import annotations

import pytest

from idgateway.profiles import compile_source
from idgateway.profiles._liquid import render

BOMBS = {
    "append-doubling": (
        "{% assign a='xxxxxxxx' %}{% for i in (1..40) %}{% assign a = a | append: a %}"
        "{% endfor %}{{ a | size }}"
    ),
    "replace-amplifier": (
        "{% assign a='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
        "{% assign b = a | replace: 'x', a %}{{ b | replace: 'x', b | size }}"
    ),
    "huge-range": "{{ (1..10000000) | join: ',' }}",
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_growing_template_renders_an_error_box(name: str) -> None:
    html, problem = render(compile_source(BOMBS[name]), {})
    assert problem is not None and "limit" in problem
    assert "idgw-profile-error" in html


def test_a_filter_failing_on_data_renders_an_error_box_not_a_crash() -> None:
    html, problem = render(compile_source("{{ plan | sum }}"), {"plan": "Gold"})
    assert problem is not None
    assert "idgw-profile-error" in html


def test_ordinary_filters_still_work() -> None:
    html, problem = render(
        compile_source(
            "{{ a | append: '!' }} {{ list | join: ', ' }} {{ b | replace: 'x', 'yy' }}"
        ),
        {"a": "hi", "list": [1, 2], "b": "axb"},
    )
    assert problem is None
    assert html == "hi! 1, 2 ayyb"


# --- the output cap counts UTF-8 bytes, ASCII or not (its ASCII fast path changes nothing) ----

LIMIT = 256 * 1024


@pytest.mark.parametrize(
    ("char", "size"),
    [("x", 1), ("é", 2), ("€", 3), ("😀", 4)],
)
def test_the_output_cap_counts_bytes_of_every_width(char: str, size: int) -> None:
    template = compile_source("{% for i in (1..n) %}{{ chunk }}{% endfor %}")
    chunk = char * 1024
    within = LIMIT // (1024 * size)  # whole chunks that fit in the cap
    html, problem = render(template, {"chunk": chunk, "n": within})
    assert problem is None
    assert len(html.encode("utf-8")) == within * 1024 * size
    html, problem = render(template, {"chunk": chunk, "n": within + 1})
    assert problem is not None and "limit" in problem


def test_a_capture_counts_against_the_cap_of_the_whole_output() -> None:
    template = compile_source(
        "{{ head }}{% capture c %}{% for i in (1..n) %}{{ chunk }}{% endfor %}{% endcapture %}"
    )
    chunk = "é" * 1024  # 2 KiB a chunk; 20 of them stay within the namespace cap (64 KiB)
    # the capture fits after 200 KiB already written; after 230 KiB, it does not
    assert render(template, {"head": "x" * 200 * 1024, "chunk": chunk, "n": 20})[1] is None
    _html, problem = render(template, {"head": "x" * 230 * 1024, "chunk": chunk, "n": 20})
    assert problem is not None and "output stream limit" in problem
