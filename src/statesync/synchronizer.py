"""``StateSynchronizer``: one authoritative, versioned table (or a replica of one).

Theory of operation
-------------------
The synchronizer owns a table's full state (four sections, see :mod:`statesync.game`), its
version (gapless, one per accepted action), an incremental hash, a bounded history of forward
and inverse deltas, and the dedupe memory. Actions go through :meth:`submit`:

1. dedupe on ``(client_id, seq)``: a retry gets the remembered outcome, nothing re-applied;
2. the batch is put in a deterministic order (:func:`~statesync.conflict.order_batch`);
3. each action is checked by the engine (seated, connected, game over, base version) and by
   the game's ``validate`` against the *current* state (late actions are rebased, not refused
   for being late, unless the game is strict), then applied to a copy-on-write draft; the
   recorded mutations are the delta, and the hash is updated from them alone;
4. the batch's history entries go to the store; only when the store has them are the outcomes
   returned. If the store fails, the table rolls back to the last durable version and the
   batch is refused with ``store/unavailable``.

Clients catch up with :meth:`sync_state`: a squashed delta from their version, filtered to
their view, or a snapshot when that is smaller, the history does not reach back, they hold
a version from another epoch, or they are so far behind that squashing would cost more than it
could save (:data:`SQUASH_BUDGET`). A replica (:meth:`from_snapshot`) follows with
:meth:`apply_delta`, which checks the base version and the resulting hash.

The core is synchronous and deterministic; the ``async`` methods exist for the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from statesync import reasons
from statesync.actions import Accepted, PlayerAction, Rejected
from statesync.composition import squash
from statesync.conflict import Dedupe, order_batch
from statesync.delta import EMPTY, Delta, apply_ops
from statesync.draft import Draft
from statesync.errors import (
    ActionRejected,
    FencedError,
    HashMismatchError,
    PatchError,
    StateSyncError,
    StoreCorruptError,
    VersionError,
)
from statesync.game import Context, Game, view_of
from statesync.hashing import IncrementalHash, P, state_hash
from statesync.history import History, HistoryEntry
from statesync.inversion import invert
from statesync.ops import Remove, Set, Splice
from statesync.records import Checkpoint, LogRecord, TableMeta
from statesync.rng import Rng
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.value import Value, check_value, copy_value
from statesync.views import (
    FULL,
    Viewer,
    filter_delta,
    private_hash_part,
    public_hash_part,
    touched_players,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from statesync.actions import Outcome
    from statesync.storage import RetentionPolicy, Store, StoredTable

SYSTEM_CLIENT = "$system"
"""``client_id`` of the actions the engine itself creates (join, leave, tick...)."""
JOIN, LEAVE, CONNECT, DISCONNECT, TICK = "$join", "$leave", "$connect", "$disconnect", "$tick"
SYSTEM_TYPES = frozenset({JOIN, LEAVE, CONNECT, DISCONNECT, TICK})
_NO_SECTION = object()
"""What :meth:`StateSynchronizer.view_hash` remembers for a viewer without private state."""
SQUASH_BUDGET = 8
"""A client this far behind gets a snapshot without a squash: when the deltas of the range
add up to more than :data:`SQUASH_MIN` bytes and more than ``SQUASH_BUDGET`` times the size
of the client's view (MessagePack). Squashing costs time in proportion to the range (a few
milliseconds per 64 KiB), and the delta could save less than the view's size in bytes."""
SQUASH_MIN = 64 * 1024
"""See :data:`SQUASH_BUDGET`."""


class StateSynchronizer:
    """An authoritative table: versioned state, history, snapshots, conflicts and views.

    >>> import asyncio
    >>> from statesync.games import TicTacToe
    >>> sync = StateSynchronizer(TicTacToe(), players=["alice", "bob"], seed=7)
    >>> act = PlayerAction("alice", "alice-1", 1, 0, "place", {"cell": 4})
    >>> [o.ok for o in asyncio.run(sync.submit([act]))]
    [True]
    >>> sync.version
    1
    """

    def __init__(
        self,
        game: Game,
        *,
        players: Sequence[str] = (),
        config: Value = None,
        seed: int = 0,
        table_id: str = "table",
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        history_versions: int = 1000,
        history_bytes: int = 4 << 20,
        dedupe_window: int = 1024,
        checkpoint_every: int = 1000,
        retention: RetentionPolicy | None = None,
    ) -> None:
        config = check_value(config)
        seated = sorted(set(players))
        setup = game.setup(seated, config, Rng.derive(seed, 0))
        state: dict[str, Any] = {
            "game": setup.get("game"),
            "seats": {p: {"connected": True} for p in seated},
            "players": {p: setup.get("players", {}).get(p, {}) for p in seated},
            "secret": setup.get("secret"),
        }
        state = check_value(copy_value(state))  # type: ignore[assignment]
        self._init(
            game=game,
            table_id=table_id,
            seed=seed,
            config=config,
            store=store,
            clock=clock,
            epoch=0,
            fork_version=0,
            version=0,
            history=History(max_versions=history_versions, max_bytes=history_bytes),
            dedupe=Dedupe(dedupe_window),
            owners={},
            viewer=None,
            keep_history=True,
            state=state,
            hasher=IncrementalHash(state),
            checkpoint_every=checkpoint_every,
            checkpoint_version=0,
            retention=retention,
        )

    def _init(
        self,
        *,
        game: Game,
        table_id: str,
        seed: int,
        config: Value,
        store: Store | None,
        clock: Callable[[], float] | None,
        epoch: int,
        fork_version: int,
        version: int,
        history: History,
        dedupe: Dedupe,
        owners: dict[str, str],
        viewer: str | None,
        keep_history: bool,
        state: dict[str, Any],
        hasher: IncrementalHash,
        checkpoint_every: int,
        checkpoint_version: int,
        retention: RetentionPolicy | None,
    ) -> None:
        """Every attribute, in one place (shared by the constructor, :meth:`from_snapshot`
        and :meth:`restore`)."""
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be positive")
        self.game = game
        self.table_id = table_id
        self.seed = seed
        self.config = config
        self.store = store
        self._clock = clock
        self.epoch = epoch
        self._fork_version = fork_version
        self.version = version
        self.durable_version = version
        self.history = history
        self.dedupe = dedupe
        self.stats: dict[str, int] = {"accepted": 0, "rejected": 0, "duplicates": 0}
        self._client_owner = owners
        self._viewer = viewer
        self._keep_history = keep_history
        self._players: tuple[Any, tuple[str, ...]] | None = None
        self._state = state
        self._hasher = hasher
        self.checkpoint_every = checkpoint_every
        self.retention = retention
        """When set, the store is compacted by this policy after every checkpoint."""
        self._checkpoint_version = checkpoint_version
        self._unsaved: list[LogRecord] = []
        self._busy = False
        self._public_part: tuple[dict[str, Any], int] | None = None
        self._private_parts: dict[str | None, tuple[object, int]] = {}
        self._since_memo: tuple[Any, ...] | None = None
        self.fenced = False
        """True once the store refused a write because another writer owns the table: this
        object is stale, every submit is refused, and the owner must :meth:`load` again."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_snapshot(
        cls,
        snapshot: StateSnapshot,
        game: Game | None = None,
        *,
        seed: int = 0,
        config: Value = None,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        history_versions: int = 1000,
        history_bytes: int = 4 << 20,
        keep_history: bool = False,
    ) -> StateSynchronizer:
        """A synchronizer holding ``snapshot``: a replica that follows with
        :meth:`apply_delta`, or, with the game and a full snapshot, a restored authority.
        A replica keeps no history (nothing to roll back or serve) unless ``keep_history``.

        Raises :class:`~statesync.errors.HashMismatchError` if the snapshot's contents do not
        match its hash.
        """
        state = snapshot.to_state()
        actual = state_hash(state)
        if actual != snapshot.hash:
            raise HashMismatchError(
                f"snapshot of version {snapshot.version} does not match its hash",
                expected_hash=snapshot.hash,
                actual_hash=actual,
                version=snapshot.version,
            )
        self = cls.__new__(cls)
        copied: dict[str, Any] = copy_value(state)  # type: ignore[assignment]
        self._init(
            game=game if game is not None else Game(),
            table_id="replica",
            seed=seed,
            config=check_value(config),
            store=store,
            clock=clock,
            epoch=snapshot.epoch,
            fork_version=0,
            version=snapshot.version,
            history=History(
                max_versions=history_versions, max_bytes=history_bytes, start=snapshot.version
            ),
            dedupe=Dedupe(),
            owners={},
            viewer=snapshot.viewer,
            keep_history=keep_history or game is not None,
            state=copied,
            hasher=IncrementalHash(copied),
            checkpoint_every=1000,
            checkpoint_version=snapshot.version,
            retention=None,
        )
        return self

    @classmethod
    async def create(
        cls,
        game: Game,
        store: Store,
        table_id: str,
        *,
        players: Sequence[str] = (),
        config: Value = None,
        seed: int = 0,
        game_ref: str = "",
        clock: Callable[[], float] | None = None,
        **options: Any,
    ) -> StateSynchronizer:
        """A new table, written to ``store`` at version 0 before it is returned.

        ``game_ref`` (``"module:Class"``) is recorded so that operator tools can re-run the
        log through the rules. Raises :class:`~statesync.errors.TableExistsError`.
        """
        self = cls(
            game,
            players=players,
            config=config,
            seed=seed,
            table_id=table_id,
            store=store,
            clock=clock,
            **options,
        )
        meta = TableMeta(
            table_id, game_ref, seed, self.config, tuple(sorted(set(players))), self._now()
        )
        await store.create_table(meta, self.checkpoint())
        return self

    @classmethod
    async def load(
        cls,
        store: Store,
        table_id: str,
        game: Game,
        *,
        clock: Callable[[], float] | None = None,
        history_versions: int = 1000,
        **options: Any,
    ) -> StateSynchronizer:
        """Recover a table from ``store``: its checkpoint, then every later version replayed
        from the log, each checked against the hash stored with it.

        Raises :class:`~statesync.errors.TableNotFoundError`, or
        :class:`~statesync.errors.HashMismatchError` (with both hashes) if the rebuilt state
        does not match the log.
        """
        stored = await store.load(table_id, retain=history_versions)
        return cls.restore(
            stored, game, store=store, clock=clock, history_versions=history_versions, **options
        )

    @classmethod
    def restore(
        cls,
        stored: StoredTable,
        game: Game,
        *,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        history_versions: int = 1000,
        history_bytes: int = 4 << 20,
        dedupe_window: int = 1024,
        checkpoint_every: int = 1000,
        retention: RetentionPolicy | None = None,
    ) -> StateSynchronizer:
        """The table that :class:`~statesync.storage.StoredTable` describes (no I/O): the
        inverse of what :meth:`submit` wrote. See :meth:`load`."""
        meta, cp = stored.meta, stored.checkpoint
        state: dict[str, Any] = check_value(cp.state)  # type: ignore[assignment]
        hasher = IncrementalHash(state)
        if hasher.hex != cp.hash:
            raise HashMismatchError(
                f"table {meta.table_id!r}: checkpoint of version {cp.version} hashes to "
                f"{hasher.hex}, stored hash is {cp.hash}",
                expected_hash=cp.hash,
                actual_hash=hasher.hex,
                version=cp.version,
            )
        head = stored.head
        keep_from = max(cp.version, head - history_versions)
        history = History(max_versions=history_versions, max_bytes=history_bytes, start=keep_from)
        owners = dict(cp.owners)
        dedupe = Dedupe.restore(cp.dedupe, dedupe_window, owners)
        version = cp.version
        for r in stored.records:
            if r.version != version + 1:
                raise StoreCorruptError(
                    f"table {meta.table_id!r}: log jumps from version {version} to {r.version}"
                )
            keep = r.version > keep_from
            try:
                inverse = invert(r.delta, state) if keep else EMPTY
                state = apply_ops(state, r.delta.ops, hasher=hasher)  # type: ignore[assignment]
            except PatchError as e:
                raise StoreCorruptError(
                    f"table {meta.table_id!r}: the delta of version {r.version} does not apply: {e}"
                ) from e
            if hasher.hex != r.hash:
                raise HashMismatchError(
                    f"table {meta.table_id!r}: state after version {r.version} hashes to "
                    f"{hasher.hex}, the log says {r.hash}",
                    expected_hash=r.hash,
                    actual_hash=hasher.hex,
                    version=r.version,
                )
            if keep:
                history.append(
                    HistoryEntry(
                        r.version, r.action, r.delta, inverse, r.hash, _size(r.delta, inverse)
                    )
                )
            a = r.action
            if a is not None and a.client_id != SYSTEM_CLIENT:
                owners.setdefault(a.client_id, a.player_id)
                dedupe.record(a.client_id, a.seq, Accepted(a, r.version))
            version = r.version
        self = cls.__new__(cls)
        self._init(
            game=game,
            table_id=meta.table_id,
            seed=meta.seed,
            config=meta.config,
            store=store,
            clock=clock,
            epoch=stored.epoch,
            fork_version=stored.fork_version,
            version=version,
            history=history,
            dedupe=dedupe,
            owners=owners,
            viewer=None,
            keep_history=True,
            state=state,
            hasher=hasher,
            checkpoint_every=checkpoint_every,
            checkpoint_version=cp.version,
            retention=retention,
        )
        return self

    async def _compact(self, store: Store, policy: RetentionPolicy) -> None:
        try:
            self.stats["compacted"] = self.stats.get("compacted", 0) + await store.compact(
                self.table_id, policy
            )
        except Exception:  # compaction is housekeeping: the actions are already durable
            self.stats["compaction_failures"] = self.stats.get("compaction_failures", 0) + 1

    def checkpoint(self) -> Checkpoint:
        """The current full state and the engine's memory, as a store keeps it."""
        return Checkpoint(
            self.version,
            self.epoch,
            self.hash,
            self._state,
            self._now(),
            self.dedupe.export(),
            dict(self._client_owner),
        )

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> dict[str, Any]:
        """The current full state. Treat it as read-only: it is shared with the history."""
        return self._state

    @property
    def hash(self) -> str:
        """The hash of the full state held."""
        return self._hasher.hex

    @property
    def players(self) -> tuple[str, ...]:
        """Seated players, sorted."""
        seats = self._state.get("seats", {})
        cached = self._players
        if cached is None or cached[0] is not seats:
            cached = self._players = (seats, tuple(sorted(seats)))
        return cached[1]

    def view(self, player_id: Viewer = FULL) -> dict[str, Any]:
        """``player_id``'s view of the current state (:data:`~statesync.views.FULL`: all)."""
        if player_id is FULL:
            return self._state
        return view_of(self._state, player_id)  # type: ignore[arg-type]

    def view_hash(self, player_id: Viewer = FULL) -> str:
        """The hash of ``player_id``'s view, in constant time: the viewer-independent part is
        computed once per state and shared by every viewer, and a viewer's own part is kept
        until their private section changes (a state is never modified in place, so the
        same section object means the same hash)."""
        if player_id is FULL:
            return self._hasher.hex
        viewer: str | None = player_id  # type: ignore[assignment]
        state = self._state
        public = self._public_part
        if public is None or public[0] is not state:
            public = self._public_part = (state, public_hash_part(self._hasher, state))
        mine = state["players"].get(viewer, _NO_SECTION)
        parts = self._private_parts
        private = parts.get(viewer)
        if private is None or private[0] is not mine:
            if len(parts) > 2 * len(state["players"]) + 8:  # forget departed players
                parts.clear()
            private = parts[viewer] = (mine, private_hash_part(self._hasher, state, viewer))
        h = public[1] + private[1]  # both reduced: one subtraction reduces the sum
        # format_hash, inlined: this runs for every viewer of every version.
        return "%032x" % (h - P if h >= P else h)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else 0.0

    # ------------------------------------------------------------------ the seed's contract

    async def sync_state(
        self, client_version: int, *, player_id: Viewer = FULL, epoch: int | None = None
    ) -> StateDelta | StateSnapshot:
        """What a holder of ``client_version`` needs to reach the current version.

        Returns one squashed :class:`StateDelta` filtered to ``player_id``'s view, or a
        :class:`StateSnapshot` of that view when the version is outside the retained history,
        in the future, from another ``epoch`` past the fork, or when the delta would be larger
        than the snapshot, or when the range is so long that squashing it would cost more than
        it could save (its deltas add up to over :data:`SQUASH_MIN` bytes and over
        :data:`SQUASH_BUDGET` times the snapshot).
        """
        return self.sync(client_version, player_id=player_id, epoch=epoch)

    def sync(
        self, client_version: int, *, player_id: Viewer = FULL, epoch: int | None = None
    ) -> StateDelta | StateSnapshot:
        """Synchronous form of :meth:`sync_state`."""
        return self.sync_views(client_version, (player_id,), epoch=epoch)[0]

    def sync_views(
        self, client_version: int, viewers: Sequence[Viewer], *, epoch: int | None = None
    ) -> list[StateDelta | StateSnapshot]:
        """:meth:`sync` for several viewers who hold the same version: one update per viewer,
        in order, each exactly what ``sync`` gives that viewer. The range checks and the
        history are done once, and viewers whose private section the range does not touch
        share one filtered delta (a table's many subscribers cost one public delta)::

            >>> from statesync.games import TicTacToe
            >>> from statesync.actions import PlayerAction
            >>> table = StateSynchronizer(TicTacToe(), players=["ann", "bob"], seed=1)
            >>> _ = table.submit_nowait([PlayerAction("ann", "a", 1, 0, "place", {"cell": 4})])
            >>> ann, bob, watcher = table.sync_views(0, ["ann", "bob", None])
            >>> bob.delta is watcher.delta and bob.hash != watcher.hash
            True
        """
        stale_epoch = epoch is not None and epoch != self.epoch
        if (
            client_version < self.history.base_version
            or client_version > self.version
            or (stale_epoch and client_version > self._fork_version)
        ):
            return [self.snapshot(viewer) for viewer in viewers]
        version, current_epoch = self.version, self.epoch
        if client_version == version:
            return [
                StateDelta(client_version, version, EMPTY, self.view_hash(viewer), current_epoch)
                for viewer in viewers
            ]
        # Every subscriber group of one flush asks for the same range (only the viewer
        # differs): slice the history once. The entries of a range are fixed by the history
        # object, the epoch and the current version (a rollback starts a new epoch; a replica
        # that jumps gets a new History), so the memo cannot serve another table's past.
        history, version = self.history, self.version
        memo = self._since_memo
        if (
            memo is not None
            and memo[0] is history
            and memo[1] == version
            and memo[2] == self.epoch
            and memo[3] == client_version
        ):
            entries, approx = memo[4], memo[5]
        else:
            entries = history.since(client_version)
            approx = sum(e.size for e in entries)
            self._since_memo = (history, version, self.epoch, client_version, entries, approx)
        # Sharing needs two viewers at least: one asking (sync()) pays no extra scan.
        one = len(entries) == 1
        touched = touched_players(entries[0].delta) if one and len(viewers) > 1 else None
        shared: Delta | None = None  # the delta of every viewer the range leaves alone
        out: list[StateDelta | StateSnapshot] = []
        for viewer in viewers:
            snap_size = len(_sizer.encode(self.view(viewer))) if approx > 512 else 0
            if approx > SQUASH_MIN and approx > SQUASH_BUDGET * snap_size:
                # Squashing costs time in proportion to the range, and a delta cannot save
                # more than the snapshot's size: past the budget, the snapshot it is.
                out.append(self.snapshot(viewer))
                continue
            if touched is not None and viewer is not FULL and viewer not in touched:
                if shared is None:
                    shared = filter_delta(entries[0].delta, None)
                delta = shared
            elif one:
                delta = filter_delta(entries[0].delta, viewer)
            else:
                delta = squash([filter_delta(e.delta, viewer) for e in entries])
            if snap_size and len(_sizer.encode(_ops_value(delta))) >= snap_size:
                out.append(self.snapshot(viewer))
                continue
            out.append(
                StateDelta(client_version, version, delta, self.view_hash(viewer), current_epoch)
            )
        return out

    async def apply_delta(self, delta: StateDelta) -> None:
        """Apply a delta from the authority to this replica (see :meth:`apply`)."""
        self.apply(delta)

    def apply(self, delta: StateDelta) -> None:
        """Apply a delta from the authority to this replica.

        Raises :class:`~statesync.errors.VersionError` if ``delta.base_version`` is not this
        replica's version (or the epoch differs), :class:`~statesync.errors.PatchError` if it
        does not apply, and :class:`~statesync.errors.HashMismatchError` if the result does
        not hash to ``delta.hash``. In every error case the replica is unchanged.
        """
        if delta.epoch != self.epoch:
            raise VersionError(
                f"delta is for epoch {delta.epoch}, replica holds epoch {self.epoch}",
                expected=self.epoch,
                actual=delta.epoch,
            )
        if delta.base_version != self.version:
            raise VersionError(
                f"delta applies to version {delta.base_version}, replica holds {self.version}",
                expected=self.version,
                actual=delta.base_version,
            )
        hasher = self._hasher.copy()
        new_state = apply_ops(self._state, delta.delta.ops, hasher=hasher)
        if hasher.hex != delta.hash:
            raise HashMismatchError(
                f"state after applying delta to version {delta.version} does not match",
                expected_hash=delta.hash,
                actual_hash=hasher.hex,
                version=delta.version,
            )
        if not self._keep_history:
            pass
        elif delta.version == self.version + 1 and delta.delta:
            inverse = invert(delta.delta, self._state)
            self.history.append(
                HistoryEntry(
                    delta.version,
                    None,
                    delta.delta,
                    inverse,
                    hasher.hex,
                    _size(delta.delta, inverse),
                )
            )
        else:  # a squashed jump: older versions are no longer reachable by delta
            self.history = History(
                max_versions=self.history.max_versions,
                max_bytes=self.history.max_bytes,
                start=delta.version,
            )
        self._state = new_state  # type: ignore[assignment]
        self._hasher = hasher
        self.version = self.durable_version = delta.version

    async def validate_state(self, snapshot: StateSnapshot) -> bool:
        """True when ``snapshot`` is internally consistent *and* matches this table's state
        at its version (for the viewer it was made for). Never raises for a bad snapshot."""
        if snapshot.epoch != self.epoch or not snapshot.verify():
            return False
        viewer: Viewer = FULL if snapshot.full else snapshot.viewer
        if snapshot.version == self.version:
            return snapshot.hash == self.view_hash(viewer)
        try:
            old = self.state_at(snapshot.version)
        except StateSyncError:
            return False
        return snapshot.hash == state_hash(old if viewer is FULL else view_of(old, viewer))  # type: ignore[arg-type]

    async def create_snapshot(self, player_id: Viewer = FULL) -> StateSnapshot:
        """A snapshot of the current state (or of ``player_id``'s view)."""
        return self.snapshot(player_id)

    def snapshot(self, player_id: Viewer = FULL) -> StateSnapshot:
        """Synchronous form of :meth:`create_snapshot`."""
        viewer = None if player_id is FULL else player_id
        if player_id is FULL and "secret" not in self._state:
            # A replica of one player's view: its "whole state" is that view.
            return StateSnapshot.of(
                self.version,
                self._state,
                timestamp=self._now(),
                epoch=self.epoch,
                viewer=self._viewer,
            )
        return StateSnapshot(
            version=self.version,
            hash=self.view_hash(player_id),
            game_state=copy_value(self._state["game"]),
            player_states=copy_value(self.view(player_id)["players"]),  # type: ignore[arg-type]
            timestamp=self._now(),
            seats=copy_value(self._state["seats"]),  # type: ignore[arg-type]
            secret_state=copy_value(self._state["secret"]) if player_id is FULL else None,
            full=player_id is FULL,
            epoch=self.epoch,
            viewer=viewer,  # type: ignore[arg-type]
        )

    async def resolve_conflict(self, actions: Sequence[PlayerAction]) -> Value:
        """Apply a batch of concurrent actions in the deterministic order and return the
        resulting game state (the outcomes are in :attr:`last_outcomes`)."""
        self.last_outcomes = await self.submit(actions)
        return copy_value(self._state["game"])

    # ------------------------------------------------------------------ acting

    async def submit(self, actions: Iterable[PlayerAction]) -> list[Outcome]:
        """Apply a batch of actions; returns one outcome per action, in the order given.

        Outcomes are returned only once the accepted versions are in the store (with a
        checkpoint every ``checkpoint_every`` versions). If the store raises, every action of
        the batch is refused with ``store/unavailable`` and the table is back at its last
        durable version (except a re-sent action applied before this batch: it keeps its
        answer, accepted as a duplicate). Calls on one table must not overlap: a table's owner
        submits one batch at a time, batching whatever arrived while the previous one was
        committing.
        """
        if self._busy:
            raise RuntimeError("submit() calls on one table must not overlap")
        acts = list(actions)
        if self.fenced:
            return [
                self._reject(a, reasons.STORE_UNAVAILABLE, "table is fenced: reload it")
                for a in acts
            ]
        start = self.version
        self._busy = True
        try:
            outcomes = self.submit_nowait(acts)
            store = self.store
            if store is not None and self._unsaved:
                records, self._unsaved = self._unsaved, []
                checkpoint = None
                if self.version - self._checkpoint_version >= self.checkpoint_every:
                    checkpoint = self.checkpoint()
                try:
                    await store.append(self.table_id, self.epoch, records, checkpoint)
                except Exception as e:
                    return self._abort_batch(acts, outcomes, start, e)
                if checkpoint is not None:
                    self._checkpoint_version = checkpoint.version
                    if self.retention is not None:
                        await self._compact(store, self.retention)
        finally:
            self._busy = False
        self.durable_version = self.version
        return outcomes

    def submit_nowait(self, actions: Sequence[PlayerAction]) -> list[Outcome]:
        """Apply a batch in memory without waiting for the store (callers must not
        acknowledge the outcomes until the new versions are durable)."""
        if len(actions) == 1:
            return [self._submit_one(actions[0])]
        results: dict[int, Outcome] = {}
        fresh: list[PlayerAction] = []
        for i, a in enumerate(actions):
            remembered = self.dedupe.lookup(a.client_id, a.seq)
            if remembered is not None and a.client_id != SYSTEM_CLIENT:
                self.stats["duplicates"] += 1
                results[i] = _as_duplicate(remembered, a)
            elif a.client_id != SYSTEM_CLIENT and self.dedupe.too_old(a.client_id, a.seq):
                results[i] = self._reject(a, reasons.SEQ_TOO_OLD, "seq is below the dedupe window")
            else:
                fresh.append(a)
        by_identity: dict[tuple[str, int], list[int]] = {}
        for i, a in enumerate(actions):
            if i not in results:
                by_identity.setdefault((a.client_id, a.seq), []).append(i)
        seen: set[tuple[str, int]] = set()
        unique = []
        for a in fresh:
            k = (a.client_id, a.seq)
            if k not in seen or a.client_id == SYSTEM_CLIENT:
                seen.add(k)
                unique.append(a)
        for a in order_batch(unique, self.version):
            outcome = self._apply_one(a)
            if a.client_id != SYSTEM_CLIENT:
                self.dedupe.record(a.client_id, a.seq, outcome)
            for n, i in enumerate(by_identity.get((a.client_id, a.seq), [])):
                results.setdefault(i, outcome if n == 0 else _as_duplicate(outcome, actions[i]))
        return [results[i] for i in range(len(actions))]

    def _submit_one(self, a: PlayerAction) -> Outcome:
        """:meth:`submit_nowait` for a batch of one (the common case): no ordering needed."""
        if a.client_id == SYSTEM_CLIENT:
            return self._apply_one(a)
        remembered = self.dedupe.lookup(a.client_id, a.seq)
        if remembered is not None:
            self.stats["duplicates"] += 1
            return _as_duplicate(remembered, a)
        if self.dedupe.too_old(a.client_id, a.seq):
            return self._reject(a, reasons.SEQ_TOO_OLD, "seq is below the dedupe window")
        outcome = self._apply_one(a)
        self.dedupe.record(a.client_id, a.seq, outcome)
        return outcome

    def _abort_batch(
        self, acts: list[PlayerAction], outcomes: list[Outcome], start: int, error: Exception
    ) -> list[Outcome]:
        self._unsaved = []
        self.fenced = self.fenced or isinstance(error, FencedError)
        self._rewind(start)
        for a, o in zip(acts, outcomes, strict=True):
            if not o.duplicate:
                self.dedupe.forget(a.client_id, a.seq)
        return [
            o
            if o.duplicate and isinstance(o, Accepted) and o.version <= start
            else Rejected(
                a,
                reasons.STORE_UNAVAILABLE,
                f"store write failed: {type(error).__name__}",
                version=self.version,
            )
            for a, o in zip(acts, outcomes, strict=True)
        ]

    async def join(self, player_id: str) -> Outcome:
        """Seat ``player_id`` (the game's :meth:`~statesync.Game.join` may refuse)."""
        return (await self.submit([self._system(JOIN, player_id)]))[0]

    async def leave(self, player_id: str) -> Outcome:
        """Remove ``player_id``'s seat and private state."""
        return (await self.submit([self._system(LEAVE, player_id)]))[0]

    async def set_connected(self, player_id: str, connected: bool) -> Outcome:
        """Record that a seated player's connection dropped or came back."""
        return (await self.submit([self._system(CONNECT if connected else DISCONNECT, player_id)]))[
            0
        ]

    async def tick(self) -> Outcome:
        """Advance a real-time game by one step (the game's :meth:`~statesync.Game.tick`)."""
        return (await self.submit([self._system(TICK, "")]))[0]

    def _system(self, kind: str, player_id: str) -> PlayerAction:
        return PlayerAction(player_id, SYSTEM_CLIENT, self.version + 1, self.version, kind, None)

    def _reject(self, a: PlayerAction, code: str, message: str = "") -> Rejected:
        self.stats["rejected"] += 1
        return Rejected(a, code, message, version=self.version)

    def _check(self, a: PlayerAction, ctx: Context) -> str | None:
        """Engine-level checks; returns a reason code or None."""
        state = self._state
        if a.client_id == SYSTEM_CLIENT:
            if a.type not in SYSTEM_TYPES:
                return reasons.UNKNOWN_TYPE
            seated = a.player_id in state["seats"]
            if a.type == JOIN and seated:
                return reasons.ALREADY_SEATED
            if a.type in (LEAVE, CONNECT, DISCONNECT) and not seated:
                return reasons.NOT_SEATED
            return None
        if a.type.startswith("$"):
            return reasons.UNKNOWN_TYPE
        owner = self._client_owner.setdefault(a.client_id, a.player_id)
        if owner != a.player_id:
            return reasons.FORGED_IDENTITY
        if a.base_version > self.version:
            return reasons.FUTURE_BASE
        if self.game.strict_base and a.base_version < self.version:
            return reasons.STALE_BASE
        seat = state["seats"].get(a.player_id)
        if seat is None:
            return reasons.NOT_SEATED
        if not self.game.allow_disconnected and not seat.get("connected", True):
            return reasons.DISCONNECTED
        if self.game.is_over(state):
            return reasons.GAME_OVER
        try:
            check_value(a.payload)
        except StateSyncError:
            return reasons.INVALID_PAYLOAD
        return self.game.validate(state, a, ctx)

    def _apply_one(self, a: PlayerAction) -> Outcome:
        version = self.version + 1
        ctx = Context(version, self.players, Rng.derive(self.seed, version), self.config)
        try:
            code = self._check(a, ctx)
        except ActionRejected as e:
            return self._reject(a, e.code, str(e))
        except Exception as e:
            return self._reject(a, reasons.RULES_FAILED, f"validate raised {type(e).__name__}")
        if code is not None:
            return self._reject(a, code)
        hasher = self._hasher.copy()
        draft = Draft(self._state, hasher=hasher)
        try:
            code = self._mutate(draft.root, a, ctx)
            if code is not None:
                return self._reject(a, code)
            new_state, delta = draft.finish()
        except ActionRejected as e:
            return self._reject(a, e.code, str(e))
        except Exception as e:
            return self._reject(a, reasons.RULES_FAILED, f"rules raised {type(e).__name__}: {e}")
        inverse = draft.inverse()
        entry = HistoryEntry(version, a, delta, inverse, hasher.hex, _size(delta, inverse))
        self.history.append(entry)
        if self.store is not None:
            self._unsaved.append(LogRecord(version, self.epoch, a, delta, entry.hash, self._now()))
        self._state = new_state  # type: ignore[assignment]
        self._hasher = hasher
        self.version = version
        self.stats["accepted"] += 1
        return Accepted(a, version)

    def _mutate(self, root: Any, a: PlayerAction, ctx: Context) -> str | None:
        game = self.game
        if a.client_id != SYSTEM_CLIENT:
            game.apply(root, a, ctx)
            return None
        pid = a.player_id
        if a.type == JOIN:
            root["seats"][pid] = {"connected": True}
            players = tuple(sorted((*ctx.players, pid)))
            return game.join(root, pid, Context(ctx.version, players, ctx.rng, ctx.config))
        if a.type == LEAVE:
            game.leave(root, pid, ctx)
            del root["seats"][pid]
            root["players"].pop(pid, None)
            return None
        if a.type in (CONNECT, DISCONNECT):
            connected = a.type == CONNECT
            if root["seats"][pid]["connected"] != connected:
                root["seats"][pid]["connected"] = connected
                game.connection_changed(root, pid, connected, ctx)
            return None
        game.tick(root, ctx)
        return None

    # ------------------------------------------------------------------ rollback

    def state_at(self, version: int) -> dict[str, Any]:
        """The full state at a retained ``version`` (rewinds a copy with inverse deltas).

        Raises :class:`~statesync.errors.HistoryTruncatedError` /
        :class:`~statesync.errors.VersionError` outside the retained range.
        """
        entries = self.history.since(version)
        state: Value = self._state
        for e in reversed(entries):
            state = apply_ops(state, e.inverse.ops)
        return state  # type: ignore[return-value]

    async def rollback(self, to_version: int) -> None:
        """Rewind the table to a retained version and start a new epoch.

        Clients that hold a later version of the old epoch get a snapshot on their next
        sync. Raises :class:`~statesync.errors.HistoryTruncatedError` if ``to_version`` is
        older than the retained history, :class:`~statesync.errors.VersionError` if it is in
        the future.
        """
        if self._busy:
            raise RuntimeError("rollback() while a submit() is in progress")
        self.history.since(to_version)  # validates the range
        store = self.store
        if store is not None:
            # Durable first: the store moves to the new epoch, or nothing changes.
            state = self.state_at(to_version)
            dedupe = Dedupe.restore(self.dedupe.export(), self.dedupe.window, self._client_owner)
            for e in self.history.since(to_version):
                if e.action is not None and e.action.client_id != SYSTEM_CLIENT:
                    dedupe.forget(e.action.client_id, e.action.seq)
            checkpoint = Checkpoint(
                to_version,
                self.epoch + 1,
                state_hash(state),
                state,
                self._now(),
                dedupe.export(),
                dict(self._client_owner),
            )
            await store.reset(self.table_id, self.epoch, checkpoint)
            self._checkpoint_version = to_version
        for e in self._rewind(to_version):
            if e.action is not None and e.action.client_id != SYSTEM_CLIENT:
                self.dedupe.forget(e.action.client_id, e.action.seq)
        self.epoch += 1
        self._fork_version = to_version
        self.durable_version = min(self.durable_version, to_version)

    def _rewind(self, to_version: int) -> list[HistoryEntry]:
        dropped = self.history.truncate_after(to_version)
        state: Value = self._state
        hasher = self._hasher
        for e in dropped:
            state = apply_ops(state, e.inverse.ops, hasher=hasher)
        self._state = state  # type: ignore[assignment]
        self.version = to_version
        return dropped


def _as_duplicate(o: Outcome, action: PlayerAction) -> Outcome:
    """The remembered outcome ``o``, as the answer to a repeat delivery ``action``."""
    if isinstance(o, Accepted):
        return Accepted(action, o.version, duplicate=True)
    return Rejected(action, o.code, o.message, o.version, duplicate=True, detail=o.detail)


def _ops_value(delta: Delta) -> list[Value]:
    """A plain value holding a delta's contents (to compare a delta's size with a snapshot)."""
    out: list[Value] = []
    for op in delta.ops:
        out.append(list(op.path))
        for v in (getattr(op, "value", None), getattr(op, "insert", None)):
            if v is not None:
                out.append(list(v) if isinstance(v, tuple) else v)
    return out


def _size(delta: Delta, inverse: Delta) -> int:
    """Approximate bytes a history entry holds: the encoded values (one encoder call for
    all of them) plus 8 bytes per path item and 4 per op."""
    values: list[object] = []
    total = 0
    # This runs for every accepted action: dispatch on the native operation types (a draft
    # makes only those) before probing for the attributes of the others.
    for ops in (delta.ops, inverse.ops):
        total += 4 * len(ops)
        for op in ops:
            total += 8 * len(op.path)
            if type(op) is Set:
                if op.value is not None:
                    values.append(op.value)
            elif type(op) is Splice:
                if op.insert:
                    values.append(op.insert)
            elif type(op) is not Remove:
                value = getattr(op, "value", None)
                if value is not None:
                    values.append(value)
                insert = getattr(op, "insert", None)
                if insert:
                    values.append(insert)
    return total + len(_sizer.encode(values))


_sizer = msgspec.msgpack.Encoder()
