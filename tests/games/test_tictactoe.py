from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync import reasons
from statesync.games import TicTacToe
from statesync.games import tictactoe as ttt
from statesync.value import check_value

from .driver import Table


def table(players: list[str] | None = None) -> Table:
    return Table(TicTacToe(), ["bob", "alice"] if players is None else players)


def play(t: Table, cells: list[int]) -> None:
    """Alternate moves starting with whoever's turn it is."""
    for cell in cells:
        t.must(t.g["turn"], "place", {"cell": cell})


def test_setup_seats_sorted_players_x_first() -> None:
    t = table()
    assert t.g["order"] == ["alice", "bob"]
    assert t.g["turn"] == "alice"
    assert t.g["status"] == "playing"
    t.must("alice", "place", {"cell": 4})
    assert t.g["board"][4] == "X"
    assert t.g["turn"] == "bob"
    t.must("bob", "place", {"cell": 0})
    assert t.g["board"][0] == "O"
    assert t.g["moves"] == 2


@pytest.mark.parametrize(
    ("cells", "line"),
    [
        ([0, 3, 1, 4, 2], [0, 1, 2]),  # row
        ([1, 0, 4, 3, 7], [1, 4, 7]),  # column
        ([0, 1, 4, 2, 8], [0, 4, 8]),  # diagonal
        ([2, 0, 4, 1, 6], [2, 4, 6]),  # anti-diagonal
    ],
)
def test_x_wins(cells: list[int], line: list[int]) -> None:
    t = table()
    play(t, cells)
    assert t.g["status"] == "won"
    assert t.g["winner"] == "alice"
    assert t.g["line"] == line
    assert t.g["turn"] is None
    assert TicTacToe().is_over(t.state)


def test_o_wins_on_a_column() -> None:
    t = table()
    play(t, [0, 2, 1, 5, 3, 8])
    assert t.g["winner"] == "bob"
    assert t.g["line"] == [2, 5, 8]


def test_win_on_the_last_cell_is_a_win_not_a_draw() -> None:
    t = table()
    play(t, [0, 1, 2, 3, 4, 5, 7, 6, 8])  # X O X / O X O / O X X
    assert t.g["status"] == "won"
    assert t.g["line"] == [0, 4, 8]


def test_draw() -> None:
    t = table()
    play(t, [0, 1, 2, 5, 3, 6, 4, 8, 7])  # X O X / X X O / O X O
    assert t.g["status"] == "draw"
    assert t.g["winner"] is None
    assert t.g["turn"] is None
    assert t.act("alice", "place", {"cell": 0}) == reasons.GAME_OVER


def test_every_reason_code() -> None:
    seen: set[str | None] = set()
    waiting = table(["alice"])
    seen.add(waiting.act("alice", "place", {"cell": 0}))
    assert seen == {ttt.WAITING}
    t = table()
    seen.add(t.act("bob", "place", {"cell": 0}))
    seen.add(t.act("alice", "jump", {"cell": 0}))
    for bad in (None, {}, {"cell": "1"}, {"cell": True}, [4], {"cell": 1.0}):
        assert t.act("alice", "place", bad) == reasons.INVALID_PAYLOAD
    seen.add(reasons.INVALID_PAYLOAD)
    seen.add(t.act("alice", "place", {"cell": 9}))
    assert t.act("alice", "place", {"cell": -1}) == ttt.BAD_CELL
    t.must("alice", "place", {"cell": 4})
    seen.add(t.act("bob", "place", {"cell": 4}))
    play(t, [0, 1, 2, 7])  # X: 4 1 7 wins column 1-4-7
    assert t.g["winner"] == "alice"
    seen.add(t.act("bob", "place", {"cell": 8}))
    assert seen == ttt.REASONS


def test_created_empty_seats_by_join_order() -> None:
    t = table([])
    assert t.g["status"] == "waiting"
    assert t.join("zed") is None
    assert t.act("zed", "place", {"cell": 0}) == ttt.WAITING
    assert t.join("amy") is None
    assert t.g["order"] == ["zed", "amy"]
    assert t.g["turn"] == "zed"
    assert t.join("third") == "action/table_full"
    t.must("zed", "place", {"cell": 0})
    assert t.g["board"][0] == "X"


def test_leave_before_start_frees_the_seat() -> None:
    t = table(["amy"])
    t.leave("amy")
    assert t.g["order"] == []
    t.join("bo")
    t.join("cy")
    assert t.g["order"] == ["bo", "cy"]


def test_leave_during_the_game_forfeits() -> None:
    t = table()
    t.must("alice", "place", {"cell": 0})
    t.leave("alice")
    assert t.g["status"] == "won"
    assert t.g["winner"] == "bob"
    assert t.g["line"] is None


def test_setup_refuses_three_players() -> None:
    with pytest.raises(ValueError, match="2 players"):
        TicTacToe().setup(["a", "b", "c"], None, None)  # type: ignore[arg-type]


def test_legal_actions() -> None:
    t = table()
    assert len(ttt.legal_actions(t.state, "alice")) == 9
    assert ttt.legal_actions(t.state, "bob") == []
    t.must("alice", "place", {"cell": 4})
    cells = [p["cell"] for _, p in ttt.legal_actions(t.state, "bob")]  # type: ignore[index]
    assert cells == [0, 1, 2, 3, 5, 6, 7, 8]


garbage = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)


@settings(max_examples=60, deadline=None)
@given(
    choices=st.lists(st.integers(0, 1000), max_size=12),
    noise=st.lists(st.tuples(st.sampled_from(["place", "x"]), garbage), max_size=4),
)
def test_random_games_stay_valid(choices: list[int], noise: list[tuple[str, object]]) -> None:
    t = table()
    for i, choice in enumerate(choices):
        for kind, payload in noise:
            player = t.g["order"][i % 2]
            code = t.act(player, kind, payload)
            assert code is None or code in ttt.REASONS
        legal = [
            (p, kind, payload)
            for p in t.g["order"]
            for kind, payload in ttt.legal_actions(t.state, p)
        ]
        if not legal:
            assert t.g["status"] in ("won", "draw")
            break
        t.must(*legal[choice % len(legal)])
        check_value(t.state)
        assert sum(c is not None for c in t.g["board"]) == t.g["moves"]


def test_games_package_exports() -> None:
    import statesync.games as games
    from statesync.game import Game

    assert games.__all__ == sorted(games.__all__) == ["Arena", "Holdem", "TicTacToe"]
    names = {getattr(games, n).name for n in games.__all__}
    assert names == {"arena", "holdem", "tictactoe"}
    assert all(issubclass(getattr(games, n), Game) for n in games.__all__)
