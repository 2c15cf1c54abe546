"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from statesync.ops import Remove, Set, Splice

keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 1.0, 0.0, -0.0, True, False, "", "a"]),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
containers = st.one_of(st.lists(values, max_size=6), st.dictionaries(keys, values, max_size=6))


def _containers(state: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = []
    if isinstance(state, (dict, list)):
        out.append((path, state))
        items = state.items() if isinstance(state, dict) else enumerate(state)
        for k, v in items:
            out.extend(_containers(v, (*path, k)))
    return out


@st.composite
def native_op(draw: st.DrawFn, state: Any) -> Set | Remove | Splice:
    """A random native op that applies to ``state`` (which must be a container)."""
    path, node = draw(st.sampled_from(_containers(state)))
    if isinstance(node, dict):
        if node and draw(st.booleans()):
            k = draw(st.sampled_from(sorted(node)))
            if draw(st.booleans()):
                return Remove((*path, k))
            return Set((*path, k), draw(values))
        return Set((*path, draw(keys)), draw(values))
    n = len(node)
    if n and draw(st.booleans()):
        return Set((*path, draw(st.integers(0, n - 1))), draw(values))
    i = draw(st.integers(0, n))
    d = draw(st.integers(0, n - i))
    ins = tuple(draw(st.lists(values, max_size=3)))
    return Splice(path, i, d, ins)
