from __future__ import annotations

import pytest

from statesync.delta import EMPTY
from statesync.errors import HistoryTruncatedError, VersionError
from statesync.history import History, HistoryEntry


def entry(v: int, size: int = 10) -> HistoryEntry:
    return HistoryEntry(v, None, EMPTY, EMPTY, "h", size)


def test_bounded_by_count() -> None:
    h = History(max_versions=3)
    for v in range(1, 6):
        h.append(entry(v))
    assert len(h) == 3
    assert h.base_version == 2
    assert [e.version for e in h.since(2)] == [3, 4, 5]
    with pytest.raises(HistoryTruncatedError):
        h.since(1)


def test_bounded_by_bytes_but_keeps_newest() -> None:
    h = History(max_versions=100, max_bytes=25)
    for v in range(1, 6):
        h.append(entry(v))
    assert len(h) == 2
    h.append(entry(6, size=1000))
    assert [e.version for e in h] == [6]


def test_gapless() -> None:
    h = History()
    h.append(entry(1))
    with pytest.raises(VersionError):
        h.append(entry(3))


def test_future_version() -> None:
    h = History()
    h.append(entry(1))
    with pytest.raises(VersionError):
        h.since(2)


def test_truncate_after() -> None:
    h = History()
    for v in range(1, 5):
        h.append(entry(v))
    dropped = h.truncate_after(2)
    assert [e.version for e in dropped] == [4, 3]
    assert h.head_version == 2
