"""Tests for statesync.draft: mutation tracking through copy-on-write proxies."""

from __future__ import annotations

import copy
import doctest
import gc
import math
from collections.abc import MutableMapping, MutableSequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import statesync.draft
from statesync.delta import patch
from statesync.draft import Draft, DraftDict, DraftList, to_value
from statesync.errors import InvalidValueError, PathError, StateSyncError
from statesync.hashing import IncrementalHash, state_hash
from statesync.ops import Remove, Set, Splice
from statesync.value import copy_value, strict_equal

# -- strategies -------------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "d", "~0", "x/y", ""])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 2**64 - 1, -(2**63), "", "a"]),
    st.text("xyz", max_size=2),
)
values = st.recursive(
    scalars,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(keys, c, max_size=4)),
    max_leaves=12,
)
containers = st.one_of(st.lists(values, max_size=5), st.dictionaries(keys, values, max_size=5))


def reachable(root: Any, target: Any) -> bool:
    """Is ``target`` (a model container) still part of the model tree, by identity?"""
    if root is target:
        return True
    if type(root) is dict:
        return any(reachable(v, target) for v in root.values())
    if type(root) is list:
        return any(reachable(v, target) for v in root)
    return False


def sort_key(x: Any) -> str:
    return state_hash(to_value(x))


def all_containers(v: Any) -> list[Any]:
    out = []
    items = v.values() if type(v) is dict else v if type(v) is list else ()
    for c in items:
        if type(c) in (dict, list):
            out.append(c)
            out.extend(all_containers(c))
    return out


# -- the model-based property test -----------------------------------------------------------

DICT_COMMANDS = "set set aug del pop popitem setdefault update clear get descend descend".split()
LIST_COMMANDS = (
    "append insert pop del delslice setslice setext extend iadd remove sort reverse set aug "
    "clear read descend descend descend"
).split()


class Run:
    """Applies random commands to a draft and, in parallel, to a plain model."""

    def __init__(self, data: st.DataObject, original: Any) -> None:
        self.data = data
        self.model = [copy_value(original)]  # boxed: set_root replaces it
        self.hasher = IncrementalHash(original)
        self.draft = Draft(original, self.hasher)
        # (proxy, model container) pairs; the model container is the ground truth of the
        # proxy's position and of whether it is still attached.
        self.handles: list[tuple[Any, Any]] = []
        self.add_root_handle()

    def add_root_handle(self) -> None:
        if type(self.model[0]) in (dict, list):
            self.handles.append((self.draft.root, self.model[0]))

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.data.draw(strategy)

    def value(self) -> tuple[Any, Any]:
        """A value to write: (for the draft, for the model). Sometimes a held proxy."""
        if self.handles and self.draw(st.integers(0, 3)) == 0:
            proxy, m = self.draw(st.sampled_from(self.handles))
            return proxy, copy_value(m)
        v = self.draw(values)
        return v, copy_value(v)

    def values_list(self) -> tuple[list[Any], list[Any]]:
        pairs = [self.value() for _ in range(self.draw(st.integers(0, 3)))]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def step(self) -> None:
        if not self.handles or self.draw(st.integers(0, 30)) == 0:
            d, m = self.value()
            self.draft.set_root(d)
            if not strict_equal(self.model[0], m):
                self.model[0] = m
                self.add_root_handle()
            return
        proxy, m = self.draw(st.sampled_from(self.handles))
        if not reachable(self.model[0], m):
            self.detached(proxy, m)
            return
        if type(m) is dict:
            self.dict_step(proxy, m)
        else:
            self.list_step(proxy, m)
        assert strict_equal(to_value(proxy), m)
        assert proxy == m

    def detached(self, proxy: Any, m: Any) -> None:
        d, _ = self.value()
        write = proxy.__setitem__ if type(m) is dict else proxy.insert
        with pytest.raises(PathError, match="detached"):
            write(0 if type(m) is list else "a", d)
        assert strict_equal(to_value(proxy), m)  # reads still work

    def descend(self, proxy: Any, m: Any, key: Any) -> None:
        if type(m[key]) in (dict, list):
            self.handles.append((proxy[key], m[key]))

    def dict_step(self, p: DraftDict, m: dict[str, Any]) -> None:
        existing = sorted(m)
        key = self.draw(
            st.sampled_from(existing) if existing and self.draw(st.booleans()) else keys
        )
        cmd = self.draw(st.sampled_from(DICT_COMMANDS))
        if cmd == "set":
            d, v = self.value()
            p[key] = d
            if not (key in m and strict_equal(m[key], v)):
                m[key] = v
        elif cmd == "aug":
            if type(m.get(key)) is int and abs(m[key]) < 1000:
                p[key] += 1
                m[key] += 1
        elif cmd == "del":
            if key in m:
                del p[key]
                del m[key]
            else:
                with pytest.raises(KeyError):
                    del p[key]
        elif cmd == "pop":
            if key in m:
                assert strict_equal(p.pop(key), m.pop(key))
            else:
                assert p.pop(key, "dflt") == "dflt"
                with pytest.raises(KeyError):
                    p.pop(key)
        elif cmd == "popitem":
            if m:
                k1, v1 = p.popitem()
                k2, v2 = m.popitem()
                assert k1 == k2
                assert strict_equal(v1, v2)
            else:
                with pytest.raises(KeyError):
                    p.popitem()
        elif cmd == "setdefault":
            d, v = self.value()
            got = p.setdefault(key, d)
            if key not in m:
                m[key] = v
            assert strict_equal(to_value(got), m[key])
        elif cmd == "update":
            n = self.draw(st.integers(0, 3))
            ks = [self.draw(keys) for _ in range(n)]
            pairs = [self.value() for _ in range(n)]
            if self.draw(st.booleans()):
                p.update({k: dv[0] for k, dv in zip(ks, pairs, strict=True)})
            else:
                p.update(**{k: dv[0] for k, dv in zip(ks, pairs, strict=True)})
            for k, (_, v) in {k: dv for k, dv in zip(ks, pairs, strict=True)}.items():
                if not (k in m and strict_equal(m[k], v)):
                    m[k] = v
        elif cmd == "clear":
            p.clear()
            m.clear()
        elif cmd == "get":
            assert strict_equal(to_value(p.get(key)), m.get(key))
            assert (key in p) == (key in m)
        elif key in m:
            self.descend(p, m, key)

    def list_step(self, p: DraftList, m: list[Any]) -> None:
        n = len(m)
        cmd = self.draw(st.sampled_from(LIST_COMMANDS))
        index = self.draw(st.integers(-n - 2, n + 2))
        valid = -n <= index < n
        if cmd == "append":
            d, v = self.value()
            p.append(d)
            m.append(v)
        elif cmd == "insert":
            d, v = self.value()
            p.insert(index, d)
            m.insert(index, v)
        elif cmd == "pop":
            if valid:
                assert strict_equal(p.pop(index), m.pop(index))
            elif n and self.draw(st.booleans()):
                assert strict_equal(p.pop(), m.pop())
            else:
                with pytest.raises(IndexError):
                    p.pop(index if n else -1)
        elif cmd == "del":
            if valid:
                del p[index]
                del m[index]
            else:
                with pytest.raises(IndexError):
                    del p[index]
        elif cmd in ("delslice", "setslice", "setext"):
            a = self.draw(st.none() | st.integers(-n - 1, n + 1))
            b = self.draw(st.none() | st.integers(-n - 1, n + 1))
            step = self.draw(st.sampled_from([None, 1, 2, -1, -2])) if cmd != "setslice" else None
            s = slice(a, b, step)
            if cmd == "delslice":
                del p[s]
                del m[s]
            elif cmd == "setslice":
                ds, vs = self.values_list()
                p[s] = ds
                m[s] = vs
            else:
                targets = range(*s.indices(n))
                pairs = [self.value() for _ in targets]
                p[s] = [dv[0] for dv in pairs]
                if targets.step == 1:  # a plain slice: the elements are replaced (a splice)
                    m[s] = [v for _, v in pairs]
                else:  # an extended slice: element by element, equal writes skipped
                    for i, (_, v) in zip(targets, pairs, strict=True):
                        if not strict_equal(m[i], v):
                            m[i] = v
        elif cmd == "extend":
            ds, vs = self.values_list()
            p.extend(ds)
            m.extend(vs)
        elif cmd == "iadd":
            ds, vs = self.values_list()
            q = p
            q += ds
            assert q is p
            m.extend(vs)
        elif cmd == "remove":
            if m and self.draw(st.booleans()):
                target = copy_value(self.draw(st.sampled_from(m)))
                p.remove(target)
                m.remove(target)
            else:
                missing = {"missing": object.__name__}
                with pytest.raises(ValueError, match="not in list"):
                    p.remove(missing)
        elif cmd == "sort":
            rev = self.draw(st.booleans())
            numbers = all(type(x) in (int, float) for x in m)
            if (numbers or all(type(x) is str for x in m)) and self.draw(st.booleans()):
                p.sort(reverse=rev)
                m.sort(reverse=rev)
            else:
                p.sort(key=sort_key, reverse=rev)
                m.sort(key=sort_key, reverse=rev)
        elif cmd == "reverse":
            p.reverse()
            m.reverse()
        elif cmd == "set":
            if valid:
                d, v = self.value()
                p[index] = d
                if not strict_equal(m[index], v):
                    m[index] = v
            else:
                with pytest.raises(IndexError):
                    p[index] = 1
        elif cmd == "aug":
            if valid and type(m[index]) is int and abs(m[index]) < 1000:
                p[index] += 1
                m[index] += 1
        elif cmd == "clear":
            p.clear()
            m.clear()
        elif cmd == "read":
            assert strict_equal(p[index : index + 2], m[index : index + 2])
            assert len(p) == n
            assert strict_equal([to_value(x) for x in p], m)
            if m:
                probe = m[index] if valid else m[0]
                assert probe in p
                assert p.index(probe) == m.index(probe)
                assert p.count(probe) == m.count(probe)
        elif valid:
            self.descend(p, m, index)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), original=st.one_of(containers, containers, containers, scalars))
def test_random_mutations_match_a_plain_model(data: st.DataObject, original: Any) -> None:
    # Sometimes share one subtree at two places: the draft must track positions, not objects.
    inner = all_containers(original)
    if inner and data.draw(st.booleans()):
        shared = data.draw(st.sampled_from(inner))
        if type(original) is dict:
            original["alias"] = shared
        else:
            original.append(shared)
    snapshot = copy_value(original)
    run = Run(data, original)
    for _ in range(data.draw(st.integers(0, 30))):
        run.step()
    new_state, delta = run.draft.finish()
    model = run.model[0]
    assert strict_equal(new_state, model)
    assert strict_equal(patch(original, delta), model)
    assert strict_equal(original, snapshot)
    # The recorded inverse undoes the whole draft, even after later in-place mutations.
    assert strict_equal(patch(new_state, run.draft.inverse()), snapshot)
    assert delta.is_native()
    assert all(type(op) in (Set, Remove, Splice) for op in delta.ops)
    assert run.hasher.hex == state_hash(model)
    assert run.draft.finish() == (new_state, delta)


# -- unit tests -------------------------------------------------------------------------------


def test_basic_usage_from_the_brief() -> None:
    state = {"seats": [{"chips": 100} for _ in range(5)], "log": ["a", "b"]}
    hasher = IncrementalHash(state)
    draft = Draft(state, hasher)
    root = draft.root
    root["seats"][3]["chips"] -= 20
    root["log"].append("Alice calls 20")
    del root["log"][0]
    new_state, delta = draft.finish()
    assert delta.ops == (
        Set(("seats", 3, "chips"), 80),
        Splice(("log",), 2, 0, ("Alice calls 20",)),
        Splice(("log",), 0, 1, ()),
    )
    assert new_state == {
        "seats": [{"chips": 100}] * 3 + [{"chips": 80}, {"chips": 100}],
        "log": ["b", "Alice calls 20"],
    }
    assert state["seats"][3]["chips"] == 100
    assert state["log"] == ["a", "b"]
    assert strict_equal(patch(state, delta), new_state)
    assert hasher.hex == state_hash(new_state)


def test_proxies_are_collections() -> None:
    root = Draft({"d": {}, "l": []}).root
    assert isinstance(root, MutableMapping)
    assert isinstance(root["l"], MutableSequence)
    assert root["d"] is root["d"]
    assert repr(root["l"]) == "DraftList([])"
    assert root == {"d": {}, "l": []}
    assert root["d"] == Draft({}).root


def test_untouched_subtrees_are_shared_and_touched_ones_copied() -> None:
    old = {"untouched": {"deep": [1, 2]}, "touched": {"x": 1, "keep": [3]}, "n": 1}
    draft = Draft(old)
    draft.root["touched"]["x"] = 2
    _ = draft.root["untouched"]["deep"][0]  # reading copies nothing
    new, _delta = draft.finish()
    assert new is not old
    assert new["untouched"] is old["untouched"]
    assert new["touched"] is not old["touched"]
    assert new["touched"]["keep"] is old["touched"]["keep"]
    assert old == {"untouched": {"deep": [1, 2]}, "touched": {"x": 1, "keep": [3]}, "n": 1}


def test_a_draft_without_writes_returns_the_input_and_no_ops() -> None:
    state = {"a": [1, {"b": 2}]}
    draft = Draft(state)
    assert to_value(draft.root["a"][1]) == {"b": 2}
    new, delta = draft.finish()
    assert new is state
    assert not delta


def test_writing_a_proxy_copies_its_current_value() -> None:
    draft = Draft({"a": {"x": [1]}, "l": []})
    root = draft.root
    root["a"]["x"].append(2)
    root["b"] = root["a"]
    root["l"].append(root["a"]["x"])
    root["a"]["x"].append(3)
    new, delta = draft.finish()
    assert new == {"a": {"x": [1, 2, 3]}, "b": {"x": [1, 2]}, "l": [[1, 2]]}
    assert new["b"] is not new["a"]
    assert new["b"]["x"] is not new["a"]["x"]
    assert delta.ops[1] == Set(("b",), {"x": [1, 2]})
    assert delta.ops[2] == Splice(("l",), 0, 0, ([1, 2],))


def test_caller_cannot_alias_written_values_or_recorded_ops() -> None:
    draft = Draft({})
    v: dict[str, Any] = {"k": [1]}
    draft.root["a"] = v
    v["k"].append(2)
    draft.root["a"]["k"].append(3)
    new, delta = draft.finish()
    assert new == {"a": {"k": [1, 3]}}
    assert delta.ops[0] == Set(("a",), {"k": [1]})


def test_returned_values_are_plain_copies() -> None:
    state = {"a": {"x": [1]}, "l": [{"y": 1}]}
    draft = Draft(state)
    popped = draft.root.pop("a")
    popped["x"].append(2)
    item = draft.root["l"].pop()
    item["y"] = 5
    assert state == {"a": {"x": [1]}, "l": [{"y": 1}]}
    assert draft.root["l"][0:] == []
    sliced = Draft(state).root["l"][:]
    sliced[0]["y"] = 9
    assert state["l"][0]["y"] == 1
    assert type(to_value(Draft(state).root)) is dict
    assert copy.deepcopy(Draft(state).root["a"]) == {"x": [1]}


def test_a_held_proxy_follows_its_element_when_the_list_shifts() -> None:
    state = {"l": [{"k": i} for i in range(5)]}
    draft = Draft(state)
    lst = draft.root["l"]
    p = lst[3]
    lst.insert(0, {"k": "new"})
    p["k"] = 1
    del lst[0:2]
    p["k"] = 2
    lst.reverse()
    p["k"] = 3
    lst.sort(key=lambda e: str(e["k"]))
    p["k"] = 4
    new, delta = draft.finish()
    paths = [op.path for op in delta.ops]
    assert paths == [
        ("l",),
        ("l", 4, "k"),
        ("l",),
        ("l", 2, "k"),
        ("l",),
        ("l", 1, "k"),
        ("l",),
        ("l", 2, "k"),
    ]
    assert new["l"] == [{"k": 1}, {"k": 2}, {"k": 4}, {"k": 4}]
    assert strict_equal(patch(state, delta), new)


def test_aliased_input_is_tracked_by_position() -> None:
    shared = {"v": 0}
    state = [shared, shared]
    hasher = IncrementalHash(state)
    draft = Draft(state, hasher)
    second = draft.root[1]
    draft.root.insert(0, {"v": 9})
    second["v"] = 2
    draft.root[1]["v"] = 1
    new, delta = draft.finish()
    assert new == [{"v": 9}, {"v": 1}, {"v": 2}]
    assert delta.ops[1] == Set((2, "v"), 2)
    assert shared == {"v": 0}
    assert hasher.hex == state_hash(new)


@pytest.mark.parametrize(
    "detach",
    [
        lambda r: r.__setitem__("a", 1),
        lambda r: r.__delitem__("a"),
        lambda r: r.pop("a"),
        lambda r: r.clear(),
        lambda r: r.update(a={"b": [0]}),
    ],
)
def test_a_replaced_dict_member_detaches_its_proxy(detach: Any) -> None:
    draft = Draft({"a": {"b": [1]}, "c": 1})
    held = draft.root["a"]
    deeper = held["b"]
    detach(draft.root)
    with pytest.raises(PathError, match="detached") as info:
        held["b"] = 2
    assert isinstance(info.value, StateSyncError)
    with pytest.raises(PathError, match="detached"):
        deeper.append(2)
    assert held["b"] == [1]  # reading a detached proxy still works
    new, delta = draft.finish()
    assert strict_equal(patch({"a": {"b": [1]}, "c": 1}, delta), new)


def test_removed_list_elements_detach_their_proxies() -> None:
    draft = Draft({"l": [[0], [1], [2], [3]]})
    lst = draft.root["l"]
    first, second, third, fourth = lst[0], lst[1], lst[2], lst[3]
    del lst[1]
    lst[1:2] = [[9]]
    lst[0] = [5]
    for gone in (first, second, third):
        with pytest.raises(PathError, match="detached"):
            gone.append(1)
    fourth.append(4)
    assert draft.finish()[0] == {"l": [[5], [9], [3, 4]]}


def test_set_root_and_finish_detach_everything() -> None:
    draft = Draft({"a": {}})
    held = draft.root["a"]
    old_root = draft.root
    draft.set_root({"a": {}, "b": 1})
    with pytest.raises(PathError, match="detached"):
        held["x"] = 1
    with pytest.raises(PathError, match="detached"):
        old_root["x"] = 1
    draft.root["a"]["x"] = 1
    live = draft.root["a"]
    new, delta = draft.finish()
    assert new == {"a": {"x": 1}, "b": 1}
    assert delta.ops == (Set((), {"a": {}, "b": 1}), Set(("a", "x"), 1))
    with pytest.raises(PathError, match="finished"):
        live["y"] = 2
    with pytest.raises(PathError, match="finished"):
        draft.set_root(1)
    assert draft.root["a"] == {"x": 1}
    assert draft.finished


def test_a_root_first_read_after_finish_is_read_only() -> None:
    draft = Draft({"a": [1]})
    new, _ = draft.finish()
    assert draft.root["a"][0] == 1
    with pytest.raises(PathError, match="finished"):
        draft.root["a"].append(2)
    assert new == {"a": [1]}


def test_a_finished_draft_leaves_no_reference_cycles() -> None:
    # Proxies point at their parents and cache their kids; finish() breaks those cycles, so a
    # table's drafts (one per action) are freed at once instead of by the cyclic collector.
    state = {"seats": [{"chips": 5}, {"chips": 7}], "log": ["a"], "deep": {"x": {"y": [1]}}}
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds goes to gc.garbage
    try:
        for _ in range(3):
            draft = Draft(state, IncrementalHash(state))
            root = draft.root
            root["seats"][1]["chips"] -= 2
            root["log"].append("b")
            root["deep"]["x"]["y"].append(2)
            new, _delta = draft.finish()
            del draft, root
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, (Draft, DraftDict, DraftList))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
    assert new == {
        "seats": [{"chips": 5}, {"chips": 5}],
        "log": ["a", "b"],
        "deep": {"x": {"y": [1, 2]}},
    }


def test_proxies_held_past_finish_still_read() -> None:
    draft = Draft({"deep": {"x": {"y": [1]}}})
    held = draft.root["deep"]["x"]
    held["y"].append(2)
    draft.finish()
    assert held["y"] == [1, 2]
    assert held["y"][1] == 2
    assert draft.root["deep"]["x"] == {"y": [1, 2]}
    with pytest.raises(PathError, match="finished"):
        held["y"].append(3)
    with pytest.raises(PathError, match="finished"):
        held["z"] = 1


def test_operations_share_one_tuple_per_path() -> None:
    state = {"seats": [{"chips": 5}], "n": 0}
    paths = []
    for i in range(2):
        draft = Draft(state)
        draft.root["seats"][0]["chips"] = 10 + i
        draft.root["n"] = i + 1
        paths.append([op.path for op in draft.finish()[1].ops])
    assert paths[0] == [("seats", 0, "chips"), ("n",)]
    assert all(a is b for a, b in zip(*paths, strict=True))


def test_scalar_root() -> None:
    hasher = IncrementalHash(3)
    draft = Draft(3, hasher)
    assert draft.root == 3
    draft.set_root(3)
    draft.set_root([1])
    draft.root.append(2)
    new, delta = draft.finish()
    assert new == [1, 2]
    assert delta.ops == (Set((), [1]), Splice((), 1, 0, (2,)))
    assert hasher.hex == state_hash(new)


BAD_VALUES = [
    math.nan,
    math.inf,
    {1: 2},
    (1, 2),
    {1, 2},
    b"x",
    2**64,
    "\ud800",
    {"\ud800": 1},
    [1, {"a": [math.nan]}],
    {"ok": 1, "bad": (1,)},
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=repr)
@pytest.mark.parametrize(
    "write",
    [
        lambda r, v: r.__setitem__("a", v),
        lambda r, v: r.__setitem__("new", v),
        lambda r, v: r.setdefault("new", v),
        lambda r, v: r.update({"z": 1, "new": v}),
        lambda r, v: r["l"].append(v),
        lambda r, v: r["l"].insert(0, v),
        lambda r, v: r["l"].extend([1, v]),
        lambda r, v: r["l"].__setitem__(0, v),
        lambda r, v: r["l"].__setitem__(slice(0, 1), [2, v]),
        lambda r, v: r["l"].__setitem__(slice(None, None, -1), [v, 1]),
        lambda r, v: r["d"].__setitem__("k", [r["l"], v]),
    ],
)
def test_invalid_values_raise_and_leave_the_draft_unchanged(bad: Any, write: Any) -> None:
    state = {"a": 1, "l": [0, 1], "d": {}}
    hasher = IncrementalHash(state)
    draft = Draft(state, hasher)
    before = hasher.hex
    with pytest.raises(InvalidValueError):
        write(draft.root, bad)
    new, delta = draft.finish()
    assert new == state
    assert strict_equal(new, state)
    assert hasher.hex == before
    assert not delta


def test_non_str_keys_are_invalid() -> None:
    draft = Draft({})
    with pytest.raises(InvalidValueError, match="not a str"):
        draft.root[1] = 2
    with pytest.raises(InvalidValueError, match="surrogate"):
        draft.root["\udc80"] = 2
    with pytest.raises(InvalidValueError, match="not a str"):
        draft.root.update({"ok": 1, 2: 3})
    with pytest.raises(InvalidValueError) as info:
        draft.root["a"] = {"b": {3: 4}}
    assert info.value.path == ("b",)
    assert draft.finish() == ({}, draft.finish()[1])
    assert not draft.finish()[1]


def test_strictly_equal_writes_are_skipped_but_1_and_1_0_differ() -> None:
    draft = Draft({"n": 1, "l": [True, {"a": [1]}]})
    root = draft.root
    held = root["l"][1]
    root["n"] = 1
    root["l"][1] = {"a": [1]}
    root["l"][0] = True
    held["a"].append(2)  # still attached: nothing replaced it
    root["n"] = 1.0
    root["l"][0] = 1
    _new, delta = draft.finish()
    assert delta.ops == (
        Splice(("l", 1, "a"), 1, 0, (2,)),
        Set(("n",), 1.0),
        Set(("l", 0), 1),
    )


def test_no_op_mutations_record_nothing() -> None:
    draft = Draft({"d": {}, "l": [1, 2, 3]})
    root = draft.root
    root["d"].clear()
    root["d"].update({})
    root["l"].extend([])
    root["l"][1:1] = []
    del root["l"][5:]
    root["l"].sort()
    root["d"].setdefault("x", 1)
    root["d"].setdefault("x", 2)
    assert draft.finish()[1].ops == (Set(("d", "x"), 1),)


def test_sort_reverse_and_clear_record_one_op() -> None:
    state = {"l": [3, 1, 2], "d": {"a": 1, "b": 2}, "e": {"a": 1}}
    draft = Draft(state)
    root = draft.root
    root["l"].sort()
    root["l"].reverse()
    root["d"].clear()
    root["e"].clear()
    root["l"].clear()
    new, delta = draft.finish()
    assert delta.ops == (
        Set(("l",), [1, 2, 3]),
        Set(("l",), [3, 2, 1]),
        Set(("d",), {}),
        Remove(("e", "a")),
        Splice(("l",), 0, 3, ()),
    )
    assert new == {"l": [], "d": {}, "e": {}}


def test_list_api_matches_list_semantics() -> None:
    plain: list[Any] = [5, 3, [1], 3]
    proxy = Draft(copy_value(plain)).root
    assert proxy[-1] == 3
    assert proxy[-2] == [1]
    assert proxy.index(3) == 1
    assert proxy.index(3, 2) == 3
    assert proxy.count(3) == 2
    assert [1] in proxy
    assert list(reversed(proxy)) == [3, [1], 3, 5]
    with pytest.raises(IndexError):
        proxy[4]
    with pytest.raises(IndexError):
        proxy.pop(-5)
    with pytest.raises(ValueError, match="extended slice"):
        proxy[::2] = [1]
    for p in (proxy, plain):
        p.insert(-100, "first")
        p.insert(100, "last")
        p.remove(3)
        p[1:3] = ["x", "y", "z"]
        del p[::-2]
    assert proxy == plain


def test_to_value_unwraps_nested_proxies() -> None:
    draft = Draft({"a": {"b": [1]}})
    mixed = {"p": draft.root["a"], "l": [draft.root["a"]["b"], 2]}
    out = to_value(mixed)
    assert out == {"p": {"b": [1]}, "l": [[1], 2]}
    assert type(out["p"]) is dict
    assert draft.unwrap(draft.root) == {"a": {"b": [1]}}
    assert to_value(5) == 5


def test_module_doctests() -> None:
    result = doctest.testmod(statesync.draft)
    assert result.attempted > 0
    assert result.failed == 0


def test_peek_reads_the_current_node_without_copying() -> None:
    state: Any = {"seats": [{"chips": 5}, {"chips": 0}], "n": 1}
    draft = Draft(state)
    seats = draft.root["seats"]
    assert statesync.draft.peek(seats) is state["seats"]  # untouched: the input itself
    seats[1]["chips"] = 7
    plain = statesync.draft.peek(seats)
    assert plain is not state["seats"]  # copied on write: peek again after writing
    assert plain == [{"chips": 5}, {"chips": 7}]
    assert statesync.draft.peek(3) == 3
    assert statesync.draft.peek(state) is state
    assert state == {"seats": [{"chips": 5}, {"chips": 0}], "n": 1}


def test_proxies_made_after_a_shift_record_their_new_path() -> None:
    draft = Draft({"l": [{"a": 0}, {"a": 1}, {"a": 2}]})
    lst = draft.root["l"]
    held = lst[1]
    lst.insert(0, {"a": -1})
    fresh = lst[3]  # made after the shift, under a parent whose path is known
    fresh["a"] = 20
    held["a"] = 10
    lst[0]["a"] = -10
    new, delta = draft.finish()
    assert [op.path for op in delta.ops] == [("l",), ("l", 3, "a"), ("l", 2, "a"), ("l", 0, "a")]
    assert new == {"l": [{"a": -10}, {"a": 0}, {"a": 10}, {"a": 20}]}


def test_fast_write_path_records_the_same_ops_as_the_general_one() -> None:
    state: Any = {"a": 1, "s": "x", "l": ["p"]}
    hasher = IncrementalHash(state)
    draft = Draft(state, hasher)
    root = draft.root
    root["a"] = 2
    root["s"] = "é"  # not ASCII: checked the slow way, and valid
    root["f"] = -0.0
    root["b"] = True
    root["n"] = None
    root["l"].append("q")
    del root["l"][0]
    new, delta = draft.finish()
    assert delta.ops == (
        Set(("a",), 2),
        Set(("s",), "é"),
        Set(("f",), -0.0),
        Set(("b",), True),
        Set(("n",), None),
        Splice(("l",), 1, 0, ("q",)),
        Splice(("l",), 0, 1, ()),
    )
    assert all(type(op) in (Set, Splice) for op in delta.ops)
    assert draft.inverse().ops == (
        Splice(("l",), 0, 0, ("p",)),
        Splice(("l",), 1, 1, ()),
        Remove(("n",)),
        Remove(("b",)),
        Remove(("f",)),
        Set(("s",), "x"),
        Set(("a",), 1),
    )
    assert patch(new, draft.inverse()) == state
    assert hasher.hex == state_hash(new)
