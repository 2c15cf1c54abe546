"""RFC 6902 JSON Patch import/export and RFC 6901 JSON Pointer (statesync.jsonpatch)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import statesync.jsonpatch as jsonpatch_module
from statesync.delta import Delta, patch
from statesync.errors import JsonPatchError, PatchError, TestFailedError
from statesync.jsonpatch import format_pointer, from_json_patch, parse_pointer, to_json_patch
from statesync.ops import END, Add, Copy, Move, Op, Remove, Replace, Set, Splice, Test
from statesync.value import INT_MAX, INT_MIN, Path, Value, get_path, strict_equal


def apply_json(doc: Any, ops: Any) -> Value:
    """Apply a JSON Patch document the way a user would."""
    return patch(doc, Delta.from_json_patch(ops))


def assert_patch_fails(
    doc: Any, ops: list[dict[str, Any]], error: type[PatchError] = PatchError
) -> PatchError:
    """The patch raises ``error`` and leaves ``doc`` exactly as it was."""
    before = copy.deepcopy(doc)
    with pytest.raises(error) as info:
        apply_json(doc, ops)
    assert strict_equal(doc, before)
    return info.value


# --- RFC 6902 Appendix A ------------------------------------------------------------------


def test_a1_adding_an_object_member() -> None:
    doc = {"foo": "bar"}
    ops = [{"op": "add", "path": "/baz", "value": "qux"}]
    assert apply_json(doc, ops) == {"baz": "qux", "foo": "bar"}


def test_a2_adding_an_array_element() -> None:
    doc = {"foo": ["bar", "baz"]}
    ops = [{"op": "add", "path": "/foo/1", "value": "qux"}]
    assert apply_json(doc, ops) == {"foo": ["bar", "qux", "baz"]}


def test_a3_removing_an_object_member() -> None:
    doc = {"baz": "qux", "foo": "bar"}
    ops = [{"op": "remove", "path": "/baz"}]
    assert apply_json(doc, ops) == {"foo": "bar"}


def test_a4_removing_an_array_element() -> None:
    doc = {"foo": ["bar", "qux", "baz"]}
    ops = [{"op": "remove", "path": "/foo/1"}]
    assert apply_json(doc, ops) == {"foo": ["bar", "baz"]}


def test_a5_replacing_a_value() -> None:
    doc = {"baz": "qux", "foo": "bar"}
    ops = [{"op": "replace", "path": "/baz", "value": "boo"}]
    assert apply_json(doc, ops) == {"baz": "boo", "foo": "bar"}


def test_a6_moving_a_value() -> None:
    doc = {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}
    ops = [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]
    assert apply_json(doc, ops) == {
        "foo": {"bar": "baz"},
        "qux": {"corge": "grault", "thud": "fred"},
    }


def test_a7_moving_an_array_element() -> None:
    doc = {"foo": ["all", "grass", "cows", "eat"]}
    ops = [{"op": "move", "from": "/foo/1", "path": "/foo/3"}]
    assert apply_json(doc, ops) == {"foo": ["all", "cows", "eat", "grass"]}


def test_a8_testing_a_value_success() -> None:
    doc = {"baz": "qux", "foo": ["a", 2, "c"]}
    ops = [
        {"op": "test", "path": "/baz", "value": "qux"},
        {"op": "test", "path": "/foo/1", "value": 2},
    ]
    assert apply_json(doc, ops) == doc


def test_a9_testing_a_value_error() -> None:
    doc = {"baz": "qux"}
    ops = [{"op": "test", "path": "/baz", "value": "bar"}]
    assert_patch_fails(doc, ops, TestFailedError)


def test_a10_adding_a_nested_member_object() -> None:
    doc = {"foo": "bar"}
    ops = [{"op": "add", "path": "/child", "value": {"grandchild": {}}}]
    assert apply_json(doc, ops) == {"foo": "bar", "child": {"grandchild": {}}}


def test_a11_ignoring_unrecognized_elements() -> None:
    doc = {"foo": "bar"}
    ops = [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]
    assert apply_json(doc, ops) == {"foo": "bar", "baz": "qux"}


def test_a12_adding_to_a_nonexistent_target() -> None:
    doc = {"foo": "bar"}
    ops = [{"op": "add", "path": "/baz/bat", "value": "qux"}]
    assert_patch_fails(doc, ops)


# A.13 (Invalid JSON Patch Document) is an operation object with a duplicate "op" member.
# A Python dict cannot hold duplicate keys -- json.loads keeps the last one -- so the case
# cannot reach from_json_patch; it is the JSON parser's business.


def test_a14_tilde_escape_ordering() -> None:
    doc = {"/": 9, "~1": 10}
    ops = [{"op": "test", "path": "/~01", "value": 10}]
    assert apply_json(doc, ops) == {"/": 9, "~1": 10}


def test_a15_comparing_strings_and_numbers() -> None:
    doc = {"/": 9, "~1": 10}
    ops = [{"op": "test", "path": "/~01", "value": "10"}]
    assert_patch_fails(doc, ops, TestFailedError)


def test_a16_adding_an_array_value() -> None:
    doc = {"foo": ["bar"]}
    ops = [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]
    assert apply_json(doc, ops) == {"foo": ["bar", ["abc", "def"]]}


# --- RFC 6901 JSON Pointer ----------------------------------------------------------------

RFC6901_DOC: dict[str, Value] = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}

RFC6901_EXAMPLES: list[tuple[str, Value]] = [
    ("", RFC6901_DOC),
    ("/foo", ["bar", "baz"]),
    ("/foo/0", "bar"),
    ("/", 0),
    ("/a~1b", 1),
    ("/c%d", 2),
    ("/e^f", 3),
    ("/g|h", 4),
    ("/i\\j", 5),
    ('/k"l', 6),
    ("/ ", 7),
    ("/m~0n", 8),
]


def _native_path(doc: Value, tokens: tuple[str, ...]) -> Path:
    """Turn the tokens that meet a list into ints, as an evaluator must (RFC 6901 §4)."""
    out: list[str | int] = []
    for token in tokens:
        out.append(int(token) if type(get_path(doc, tuple(out))) is list else token)
    return tuple(out)


@pytest.mark.parametrize(("pointer", "expected"), RFC6901_EXAMPLES)
def test_rfc6901_examples_via_test_op(pointer: str, expected: Value) -> None:
    ops = [{"op": "test", "path": pointer, "value": expected}]
    assert apply_json(RFC6901_DOC, ops) == RFC6901_DOC


@pytest.mark.parametrize(("pointer", "expected"), RFC6901_EXAMPLES)
def test_rfc6901_examples_via_get_path(pointer: str, expected: Value) -> None:
    path = _native_path(RFC6901_DOC, parse_pointer(pointer))
    assert strict_equal(get_path(RFC6901_DOC, path), expected)


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("", ()),
        ("/", ("",)),
        ("//", ("", "")),
        ("/foo/0", ("foo", "0")),
        ("/a~1b", ("a/b",)),
        ("/m~0n", ("m~n",)),
        ("/~01", ("~1",)),  # ~1 is decoded first, so ~01 is "~1", never "/"
        ("/~10", ("/0",)),
        ("/~0~1~0~1", ("~/~/",)),
        ("/-", ("-",)),
        ("/é/日本", ("é", "日本")),
    ],
)
def test_parse_pointer(pointer: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(pointer) == tokens


@pytest.mark.parametrize(
    "pointer",
    ["a", "foo/bar", "#/foo", " /a", "/~", "/a~", "/~2", "/~a", "/a/~/b", "/\ud800"],
)
def test_parse_pointer_rejects_malformed(pointer: str) -> None:
    with pytest.raises(JsonPatchError):
        parse_pointer(pointer)


@pytest.mark.parametrize("pointer", [1, None, b"/a", ["a"]])
def test_parse_pointer_rejects_non_str(pointer: Any) -> None:
    with pytest.raises(JsonPatchError):
        parse_pointer(pointer)


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ((), ""),
        (("",), "/"),
        (("a/b", "m~n"), "/a~1b/m~0n"),
        (("~1",), "/~01"),
        (("foo", 0, 12), "/foo/0/12"),
        (("foo", END), "/foo/-"),
    ],
)
def test_format_pointer(path: Path, pointer: str) -> None:
    assert format_pointer(path) == pointer


@pytest.mark.parametrize("path", [(-2,), ("a", 1.5), (None,)])
def test_format_pointer_rejects_non_pointer_items(path: Any) -> None:
    with pytest.raises(JsonPatchError):
        format_pointer(path)


# --- import: well-formed documents --------------------------------------------------------


def test_import_builds_each_op_class_with_str_tokens() -> None:
    doc = [
        {"op": "add", "path": "/a/0", "value": 1},
        {"op": "remove", "path": "/a/-"},
        {"op": "replace", "path": "", "value": {}},
        {"op": "move", "from": "/x", "path": "/y/~1"},
        {"op": "copy", "from": "/y", "path": "/z"},
        {"op": "test", "path": "/z", "value": [True]},
    ]
    assert from_json_patch(doc).ops == (
        Add(("a", "0"), 1),
        Remove(("a", "-")),
        Replace((), {}),
        Move(("x",), ("y", "/")),
        Copy(("y",), ("z",)),
        Test(("z",), [True]),
    )


def test_import_empty_document_is_empty_delta() -> None:
    assert from_json_patch([]) == Delta()


@pytest.mark.parametrize("name", ["add", "replace", "test"])
def test_import_null_value_is_present(name: str) -> None:
    op = from_json_patch([{"op": name, "path": "/a", "value": None}]).ops[0]
    assert op.path == ("a",)
    assert op.value is None  # type: ignore[union-attr]


def test_import_ignores_extra_members() -> None:
    doc = [
        {"op": "remove", "path": "/a", "value": 1, "from": 2},
        {"op": "move", "from": "/b", "path": "/c", "value": object()},
    ]
    assert from_json_patch(doc).ops == (Remove(("a",)), Move(("b",), ("c",)))


def test_import_copies_values() -> None:
    doc: list[dict[str, Any]] = [{"op": "add", "path": "/a", "value": {"b": [1]}}]
    delta = from_json_patch(doc)
    doc[0]["value"]["b"].append(2)
    assert delta.ops == (Add(("a",), {"b": [1]}),)


def test_delta_from_json_patch_classmethod() -> None:
    doc = [{"op": "add", "path": "/a", "value": 1}]
    assert Delta.from_json_patch(doc) == from_json_patch(doc)


# --- import: malformed documents ----------------------------------------------------------

_OK = {"op": "add", "path": "/ok", "value": 0}

MALFORMED_OPS: list[Any] = [
    pytest.param(1, id="op-not-object-int"),
    pytest.param(None, id="op-not-object-null"),
    pytest.param([["add", "/a", 1]], id="op-not-object-list"),
    pytest.param("add", id="op-not-object-str"),
    pytest.param({"path": "/a", "value": 1}, id="missing-op"),
    pytest.param({"op": 1, "path": "/a"}, id="op-not-str"),
    pytest.param({"op": None, "path": "/a"}, id="op-null"),
    pytest.param({"op": "ADD", "path": "/a", "value": 1}, id="op-wrong-case"),
    pytest.param({"op": "get", "path": "/a"}, id="unknown-op"),
    pytest.param({"op": "", "path": "/a"}, id="empty-op"),
    pytest.param({"op": "add", "value": 1}, id="add-missing-path"),
    pytest.param({"op": "remove"}, id="remove-missing-path"),
    pytest.param({"op": "replace", "value": 1}, id="replace-missing-path"),
    pytest.param({"op": "move", "from": "/a"}, id="move-missing-path"),
    pytest.param({"op": "copy", "from": "/a"}, id="copy-missing-path"),
    pytest.param({"op": "test", "value": 1}, id="test-missing-path"),
    pytest.param({"op": "add", "path": "/a"}, id="add-missing-value"),
    pytest.param({"op": "replace", "path": "/a"}, id="replace-missing-value"),
    pytest.param({"op": "test", "path": "/a"}, id="test-missing-value"),
    pytest.param({"op": "move", "path": "/a"}, id="move-missing-from"),
    pytest.param({"op": "copy", "path": "/a"}, id="copy-missing-from"),
    pytest.param({"op": "remove", "path": 1}, id="path-int"),
    pytest.param({"op": "remove", "path": None}, id="path-null"),
    pytest.param({"op": "remove", "path": ["a"]}, id="path-list"),
    pytest.param({"op": "move", "from": 0, "path": "/a"}, id="from-int"),
    pytest.param({"op": "copy", "from": None, "path": "/a"}, id="from-null"),
    pytest.param({"op": "remove", "path": "a"}, id="path-no-slash"),
    pytest.param({"op": "remove", "path": "#/a"}, id="path-uri-fragment"),
    pytest.param({"op": "remove", "path": "/a~2"}, id="path-bad-escape"),
    pytest.param({"op": "remove", "path": "/a~"}, id="path-trailing-tilde"),
    pytest.param({"op": "move", "from": "a", "path": "/b"}, id="from-no-slash"),
    pytest.param({"op": "copy", "from": "/~x", "path": "/b"}, id="from-bad-escape"),
    pytest.param({"op": "remove", "path": "/\udc00"}, id="path-lone-surrogate"),
    pytest.param({"op": "add", "path": "/a", "value": float("nan")}, id="value-nan"),
    pytest.param({"op": "add", "path": "/a", "value": float("inf")}, id="value-inf"),
    pytest.param({"op": "add", "path": "/a", "value": INT_MAX + 1}, id="value-int-too-big"),
    pytest.param({"op": "add", "path": "/a", "value": INT_MIN - 1}, id="value-int-too-small"),
    pytest.param({"op": "replace", "path": "/a", "value": (1, 2)}, id="value-tuple"),
    pytest.param({"op": "replace", "path": "/a", "value": b"x"}, id="value-bytes"),
    pytest.param({"op": "test", "path": "/a", "value": {1: 2}}, id="value-int-key"),
    pytest.param({"op": "test", "path": "/a", "value": {"a": [{1}]}}, id="value-nested-set"),
    pytest.param({"op": "add", "path": "/a", "value": "\ud800"}, id="value-lone-surrogate"),
]


@pytest.mark.parametrize("doc", [None, {}, "[]", 1, ({"op": "remove", "path": "/a"},)])
def test_import_rejects_non_list_document(doc: Any) -> None:
    with pytest.raises(JsonPatchError, match="list of operations"):
        from_json_patch(doc)


@pytest.mark.parametrize("bad", MALFORMED_OPS)
def test_import_rejects_malformed_op_and_names_its_index(bad: Any) -> None:
    with pytest.raises(JsonPatchError, match=r"\boperation 2\b"):
        from_json_patch([_OK, _OK, bad, _OK])


def test_import_rejects_without_changing_the_state() -> None:
    # Malformed documents fail before any target is touched.
    doc = {"a": 1}
    with pytest.raises(JsonPatchError):
        apply_json(doc, [{"op": "remove", "path": "/a"}, {"op": "nope", "path": "/a"}])
    assert doc == {"a": 1}


# --- export -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (Set(("a",), 1), [{"op": "add", "path": "/a", "value": 1}]),
        (Set(("a", 2), 1), [{"op": "replace", "path": "/a/2", "value": 1}]),
        (Set((), {"x": 1}), [{"op": "replace", "path": "", "value": {"x": 1}}]),
        (Set(("a/b", "~"), None), [{"op": "add", "path": "/a~1b/~0", "value": None}]),
        (Remove(("a", 0)), [{"op": "remove", "path": "/a/0"}]),
        (Add(("a", END), 1), [{"op": "add", "path": "/a/-", "value": 1}]),
        (Add(("a", "0"), 1), [{"op": "add", "path": "/a/0", "value": 1}]),
        (Replace(("a",), 2), [{"op": "replace", "path": "/a", "value": 2}]),
        (Test(("a",), [1]), [{"op": "test", "path": "/a", "value": [1]}]),
        (Move(("a",), ("b",)), [{"op": "move", "from": "/a", "path": "/b"}]),
        (Copy(("a", 1), ("b", END)), [{"op": "copy", "from": "/a/1", "path": "/b/-"}]),
        (
            Splice(("l",), 1, 2, ("x", "y")),
            [
                {"op": "remove", "path": "/l/1"},
                {"op": "remove", "path": "/l/1"},
                {"op": "add", "path": "/l/1", "value": "x"},
                {"op": "add", "path": "/l/2", "value": "y"},
            ],
        ),
        (
            Splice(("l",), END, 0, (1, 2)),
            [{"op": "add", "path": "/l/-", "value": 1}, {"op": "add", "path": "/l/-", "value": 2}],
        ),
        (Splice(("l",), 0, 0, ()), []),
    ],
)
def test_export_mapping(op: Op, expected: list[dict[str, Any]]) -> None:
    assert to_json_patch(Delta((op,))) == expected
    assert Delta((op,)).to_json_patch() == expected


def test_export_splice_applies_like_the_native_op() -> None:
    state: Value = {"l": [0, 1, 2, 3]}
    delta = Delta((Splice(("l",), 1, 2, ("x", "y", "z")), Splice(("l",), END, 0, (9,))))
    assert patch(state, delta) == {"l": [0, "x", "y", "z", 3, 9]}
    assert apply_json(state, to_json_patch(delta)) == patch(state, delta)


def test_export_copies_values() -> None:
    value: Value = {"b": [1]}
    delta = Delta((Set(("a",), value), Splice(("l",), 0, 0, (value,)), Test(("a",), value)))
    doc = to_json_patch(delta)
    for obj in doc:
        obj["value"]["b"].append(2)
    assert value == {"b": [1]}
    assert to_json_patch(delta)[0]["value"] == {"b": [1]}


def test_export_empty_delta() -> None:
    assert to_json_patch(Delta()) == []


def test_all_lists_the_public_names() -> None:
    public = {
        name
        for name, obj in vars(jsonpatch_module).items()
        if not name.startswith("_")
        and callable(obj)
        and getattr(obj, "__module__", None) == jsonpatch_module.__name__
    }
    assert sorted(jsonpatch_module.__all__) == jsonpatch_module.__all__
    assert set(jsonpatch_module.__all__) == public


# --- the patcher against RFC 6902 semantics -----------------------------------------------

DOC: dict[str, Value] = {"foo": ["a", "b"], "obj": {"k": 1, "sub": {"x": [1]}}, "n": 1}

# (name, operations, expected error). Each case is run after a successful first operation,
# so a partial result would be visible.
TARGET_ERRORS: list[Any] = [
    # path not found
    pytest.param([{"op": "remove", "path": "/nope"}], PatchError, id="remove-missing-key"),
    pytest.param(
        [{"op": "replace", "path": "/nope", "value": 1}], PatchError, id="replace-missing"
    ),
    pytest.param([{"op": "test", "path": "/nope", "value": 1}], PatchError, id="test-missing"),
    pytest.param(
        [{"op": "move", "from": "/nope", "path": "/b"}], PatchError, id="move-from-missing"
    ),
    pytest.param(
        [{"op": "copy", "from": "/nope", "path": "/b"}], PatchError, id="copy-from-missing"
    ),
    pytest.param(
        [{"op": "add", "path": "/nope/x", "value": 1}], PatchError, id="add-missing-parent"
    ),
    pytest.param(
        [{"op": "add", "path": "/n/x", "value": 1}], PatchError, id="add-into-scalar-member"
    ),
    pytest.param([{"op": "add", "path": "/foo/0/x", "value": 1}], PatchError, id="add-into-str"),
    pytest.param([{"op": "remove", "path": "/obj/sub/y"}], PatchError, id="remove-nested-missing"),
    # index out of bounds
    pytest.param([{"op": "add", "path": "/foo/3", "value": 1}], PatchError, id="add-index-gt-len"),
    pytest.param([{"op": "remove", "path": "/foo/2"}], PatchError, id="remove-index-eq-len"),
    pytest.param(
        [{"op": "replace", "path": "/foo/2", "value": 1}], PatchError, id="replace-index-eq-len"
    ),
    pytest.param([{"op": "test", "path": "/foo/2", "value": 1}], PatchError, id="test-index-oob"),
    pytest.param([{"op": "move", "from": "/foo/2", "path": "/b"}], PatchError, id="move-from-oob"),
    pytest.param([{"op": "copy", "from": "/foo/9", "path": "/b"}], PatchError, id="copy-from-oob"),
    pytest.param(
        [{"op": "move", "from": "/foo/0", "path": "/foo/2"}], PatchError, id="move-to-oob"
    ),
    # leading zeros and other non-index tokens against a list
    pytest.param([{"op": "add", "path": "/foo/01", "value": 1}], PatchError, id="add-leading-0"),
    pytest.param([{"op": "remove", "path": "/foo/01"}], PatchError, id="remove-leading-0"),
    pytest.param(
        [{"op": "replace", "path": "/foo/00", "value": 1}], PatchError, id="replace-leading-0"
    ),
    pytest.param([{"op": "test", "path": "/foo/01", "value": "b"}], PatchError, id="test-lead-0"),
    pytest.param([{"op": "move", "from": "/foo/01", "path": "/b"}], PatchError, id="from-lead-0"),
    pytest.param([{"op": "remove", "path": "/foo/-1"}], PatchError, id="negative-index"),
    pytest.param([{"op": "remove", "path": "/foo/+1"}], PatchError, id="plus-sign-index"),
    pytest.param([{"op": "remove", "path": "/foo/1.0"}], PatchError, id="float-index"),
    pytest.param([{"op": "remove", "path": "/foo/ 1"}], PatchError, id="space-index"),
    pytest.param([{"op": "remove", "path": "/foo/\uff11"}], PatchError, id="non-ascii-digit"),
    pytest.param([{"op": "remove", "path": "/foo/a"}], PatchError, id="word-index"),
    pytest.param([{"op": "remove", "path": "/foo/"}], PatchError, id="empty-index"),
    # "-" names no existing element
    pytest.param([{"op": "remove", "path": "/foo/-"}], PatchError, id="remove-dash"),
    pytest.param([{"op": "replace", "path": "/foo/-", "value": 1}], PatchError, id="replace-dash"),
    pytest.param([{"op": "test", "path": "/foo/-", "value": "b"}], PatchError, id="test-dash"),
    pytest.param([{"op": "move", "from": "/foo/-", "path": "/b"}], PatchError, id="move-from-dash"),
    pytest.param([{"op": "copy", "from": "/foo/-", "path": "/b"}], PatchError, id="copy-from-dash"),
    pytest.param(
        [{"op": "add", "path": "/foo/-/x", "value": 1}], PatchError, id="dash-in-the-middle"
    ),
    # move into its own child
    pytest.param([{"op": "move", "from": "/obj", "path": "/obj/k2"}], PatchError, id="move-child"),
    pytest.param(
        [{"op": "move", "from": "/obj", "path": "/obj/sub/x/0"}], PatchError, id="move-grandchild"
    ),
    pytest.param([{"op": "move", "from": "", "path": "/a"}], PatchError, id="move-root-down"),
    # test failures
    pytest.param([{"op": "test", "path": "/n", "value": 2}], TestFailedError, id="test-other-int"),
    pytest.param([{"op": "test", "path": "/n", "value": True}], TestFailedError, id="test-1-true"),
    pytest.param([{"op": "test", "path": "/n", "value": "1"}], TestFailedError, id="test-1-str"),
    pytest.param([{"op": "test", "path": "/n", "value": None}], TestFailedError, id="test-null"),
    pytest.param(
        [{"op": "test", "path": "/foo", "value": ["b", "a"]}], TestFailedError, id="test-order"
    ),
    pytest.param(
        [{"op": "test", "path": "/obj", "value": {"k": 1}}], TestFailedError, id="test-extra-member"
    ),
    pytest.param(
        [{"op": "test", "path": "", "value": {}}], TestFailedError, id="test-root-mismatch"
    ),
    # failure after several good operations
    pytest.param(
        [
            {"op": "add", "path": "/foo/-", "value": "c"},
            {"op": "move", "from": "/obj/k", "path": "/k"},
            {"op": "test", "path": "/k", "value": 2},
        ],
        TestFailedError,
        id="late-failure",
    ),
]


@pytest.mark.parametrize(("ops", "error"), TARGET_ERRORS)
def test_target_errors_leave_the_state_untouched(
    ops: list[dict[str, Any]], error: type[PatchError]
) -> None:
    first = {"op": "add", "path": "/obj/sub/x/-", "value": 2}
    exc = assert_patch_fails(DOC, [first, *ops], error)
    assert exc.op_index == len(ops)
    assert type(exc) is error


@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        pytest.param(
            {"a": {"b": 1}},
            [{"op": "move", "from": "/a", "path": "/a"}],
            {"a": {"b": 1}},
            id="move-member-to-itself",
        ),
        pytest.param(
            {"l": [1, 2, 3]},
            [{"op": "move", "from": "/l/1", "path": "/l/1"}],
            {"l": [1, 2, 3]},
            id="move-element-to-itself",
        ),
        pytest.param(
            {"l": [1, 2]},
            [{"op": "add", "path": "/l/2", "value": 3}],
            {"l": [1, 2, 3]},
            id="add-at-len",
        ),
        pytest.param(
            {"l": []}, [{"op": "add", "path": "/l/0", "value": 1}], {"l": [1]}, id="add-to-empty"
        ),
        pytest.param(
            {"l": [1, 2, 3]},
            [{"op": "remove", "path": "/l/2"}, {"op": "remove", "path": "/l/0"}],
            {"l": [2]},
            id="remove-elements",
        ),
        pytest.param(
            {"a": [1], "l": [0]},
            [{"op": "copy", "from": "/a", "path": "/l/-"}],
            {"a": [1], "l": [0, [1]]},
            id="copy-into-dash",
        ),
        pytest.param(
            {"a": 1, "l": [0]},
            [{"op": "move", "from": "/a", "path": "/l/-"}],
            {"l": [0, 1]},
            id="move-into-dash",
        ),
        pytest.param(
            {"l": [1, 2, 3]},
            [{"op": "move", "from": "/l/0", "path": "/l/-"}],
            {"l": [2, 3, 1]},
            id="move-element-to-end",
        ),
        pytest.param(
            {"l": [1, 2, 3], "m": ["x"]},
            [{"op": "move", "from": "/l/2", "path": "/m/0"}],
            {"l": [1, 2], "m": [3, "x"]},
            id="move-between-lists",
        ),
        pytest.param(
            {"a": [1]},
            [{"op": "copy", "from": "/a", "path": "/b"}, {"op": "add", "path": "/b/-", "value": 2}],
            {"a": [1], "b": [1, 2]},
            id="copy-is-deep",
        ),
        pytest.param(
            {"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}, id="add-replaces-member"
        ),
        pytest.param(
            {"a": 1}, [{"op": "add", "path": "/-", "value": 2}], {"a": 1, "-": 2}, id="dash-key"
        ),
        pytest.param(
            {"a": 1}, [{"op": "add", "path": "/0", "value": 2}], {"a": 1, "0": 2}, id="digit-key"
        ),
        pytest.param({"a": 1}, [{"op": "add", "path": "", "value": [1]}], [1], id="add-root"),
        pytest.param({"a": 1}, [{"op": "replace", "path": "", "value": 2}], 2, id="replace-root"),
        pytest.param(
            {"a": {"b": 2}}, [{"op": "move", "from": "/a", "path": ""}], {"b": 2}, id="move-to-root"
        ),
        pytest.param(
            {"a": None},
            [
                {"op": "test", "path": "/a", "value": None},
                {"op": "test", "path": "", "value": {"a": None}},
            ],
            {"a": None},
            id="test-null-and-root",
        ),
        pytest.param(
            [[0, 1]],
            [{"op": "replace", "path": "/0/1", "value": 9}],
            [[0, 9]],
            id="list-root",
        ),
    ],
)
def test_patcher_semantics(doc: Value, ops: list[dict[str, Any]], expected: Value) -> None:
    before = copy.deepcopy(doc)
    assert strict_equal(apply_json(doc, ops), expected)
    assert strict_equal(doc, before)


def test_test_op_compares_numbers_numerically() -> None:
    assert apply_json({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}]) == {"a": 1}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"l": [[9], {"0": 5}, [7]]}, {"l": [{"0": 5}, [[9], 7]]}),
        ({"l": [[9], [7], {"0": 5}]}, {"l": [[7], {"0": [9]}]}),
    ],
)
def test_move_path_is_read_after_the_removal(doc: Value, expected: Value) -> None:
    ops = [{"op": "move", "from": "/l/0", "path": "/l/1/0"}]
    assert apply_json(doc, ops) == expected


# --- properties ---------------------------------------------------------------------------

keys = st.one_of(st.text(max_size=4), st.text(alphabet="~/01-", max_size=3))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT_MIN, INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4),
    max_leaves=12,
)


def _nodes(value: Value, path: Path = ()) -> list[tuple[Path, Value]]:
    out: list[tuple[Path, Value]] = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, (*path, i))
    return out


@st.composite
def native_ops(draw: st.DrawFn, state: Value) -> Op:
    """One Set/Remove/Splice that applies to ``state``, at a path that exists in it."""
    path, node = draw(st.sampled_from(_nodes(state)))
    kinds = ["set", "remove"] if path else ["set"]
    if isinstance(node, dict):
        kinds.append("set-new-member")
    if isinstance(node, list):
        kinds.append("splice")
    kind = draw(st.sampled_from(kinds))
    if kind == "set":
        return Set(path, draw(values))
    if kind == "remove":
        return Remove(path)
    if kind == "set-new-member":
        return Set((*path, draw(keys)), draw(values))
    assert isinstance(node, list)
    index = draw(st.integers(0, len(node)))
    delete = draw(st.integers(0, len(node) - index))
    insert = tuple(draw(st.lists(values, max_size=3)))
    if index == len(node) and delete == 0 and draw(st.booleans()):
        index = END
    return Splice(path, index, delete, insert)


@st.composite
def states_and_deltas(draw: st.DrawFn) -> tuple[Value, Delta, Value]:
    """A state ``a``, a native delta built by random edits, and ``b = patch(a, delta)``."""
    a = draw(values)
    state, ops = a, []
    for _ in range(draw(st.integers(0, 6))):
        op = draw(native_ops(state))
        state = patch(state, Delta((op,)))
        ops.append(op)
    return a, Delta(tuple(ops)), state


def _json_round_trip(doc: list[dict[str, Any]]) -> Any:
    return json.loads(json.dumps(doc))


@given(states_and_deltas())
def test_exported_patch_applies_like_the_delta(case: tuple[Value, Delta, Value]) -> None:
    a, delta, b = case
    before = copy.deepcopy(a)
    imported = Delta.from_json_patch(_json_round_trip(delta.to_json_patch()))
    assert strict_equal(patch(a, imported), patch(a, delta))
    assert strict_equal(patch(a, imported), b)
    assert strict_equal(a, before)


@given(states_and_deltas())
def test_json_patch_document_round_trips(case: tuple[Value, Delta, Value]) -> None:
    _, delta, _ = case
    doc = to_json_patch(delta)
    again = to_json_patch(from_json_patch(_json_round_trip(doc)))
    assert strict_equal(again, doc)  # type: ignore[arg-type]


@given(st.lists(st.one_of(st.text(), st.text(alphabet="~/01", max_size=4)), max_size=5))
def test_pointer_round_trips(tokens: list[str]) -> None:
    path = tuple(tokens)
    assert parse_pointer(format_pointer(path)) == path


json_garbage = st.recursive(
    st.one_of(
        scalars,
        st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "/", "", "/~", "/0"]),
    ),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(["op", "path", "from", "value", "x"]), kids, max_size=4)
    ),
    max_leaves=20,
)


@given(st.lists(json_garbage, max_size=4) | json_garbage, values)
def test_garbage_is_parsed_or_rejected_with_typed_errors(doc: Any, state: Value) -> None:
    before = copy.deepcopy(state)
    try:
        delta = from_json_patch(doc)
    except JsonPatchError:
        return
    try:
        patch(state, delta)
    except PatchError:
        pass
    assert strict_equal(state, before)
