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
