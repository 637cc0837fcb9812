"""The API's parsers measure JSON nesting as the decoder would meet it, without recursing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portal.api_parsers import json_depth

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('[]{}"\\ab,:')),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    return 0


@given(JSON_VALUES)
def test_the_depth_scan_agrees_with_the_structure(value: Any) -> None:
    # Strings full of brackets, quotes and backslashes are not nesting.
    assert json_depth(json.dumps(value)) == depth_of(value)


def test_a_deep_body_is_measured_without_recursing() -> None:
    assert json_depth("[" * 1_000_000 + "]" * 1_000_000) == 1_000_000
