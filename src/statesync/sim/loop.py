"""An asyncio event loop on a virtual clock, so that a simulation is a pure function of its seed.

:class:`SimLoop` is a real :class:`asyncio.AbstractEventLoop` (tasks, futures, ``sleep``,
``asyncio.timeout``, queues and locks all work unchanged), with two differences:

* :meth:`SimLoop.time` is a virtual clock that starts at 0 and only moves when nothing is
  ready to run: the loop then jumps straight to the next timer instead of waiting for it. A
  simulated minute of network traffic takes as long as the callbacks it runs.
* There is no I/O: the loop's "selector" never reports an event. Everything that happens
  comes from a timer or a callback, and ready callbacks run in FIFO order, so two runs with
  the same inputs take exactly the same steps.

If nothing is ready and no timer is pending, every task waits for something that can never
happen: :meth:`SimLoop.run_until_complete` raises :class:`Stalled` instead of hanging.

Tasks can be grouped: a task created while :data:`GROUP` is set (directly, or by a task that
was itself created in that group) belongs to that group, and :meth:`SimLoop.tasks_of` lists
them. The simulator puts each server incarnation in its own group so that a crash can cancel
exactly the server's tasks.

>>> import asyncio
>>> async def nap() -> float:
...     await asyncio.sleep(3600)
...     return asyncio.get_running_loop().time()
>>> loop = SimLoop()
>>> loop.run_until_complete(nap())
3600.0
>>> loop.close()
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Coroutine, Generator

__all__ = ["GROUP", "SimLoop", "Stalled"]

GROUP: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "statesync_sim_group", default=None
)
"""The task group that tasks created in the current context join (``None``: no group)."""


class Stalled(RuntimeError):
    """Every task is waiting and no timer is pending: the simulation can never progress."""


class _NoSelector:
    """Stands in for the selector: no file descriptors, and waiting advances the clock."""

    def __init__(self, loop: SimLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            raise Stalled("no task can progress and no timer is pending")
        if timeout > 0:
            self._loop._advance(timeout)
        return []

    def close(self) -> None:
        """Nothing to release."""


class SimLoop(asyncio.BaseEventLoop):
    """An event loop whose clock is virtual (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._selector = _NoSelector(self)
        self._group_of: weakref.WeakKeyDictionary[asyncio.Future[Any], str] = (
            weakref.WeakKeyDictionary()
        )
        self.set_task_factory(self._make_task)

    def time(self) -> float:
        """The virtual time in seconds (0 when the loop was made)."""
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds

    def _process_events(self, event_list: list[Any]) -> None:
        """No I/O events exist."""

    def _write_to_self(self) -> None:
        """Nothing to wake: the loop never blocks."""

    def _make_task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kw: Any,
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kw)
        context = kw.get("context")
        group = context.get(GROUP) if context is not None else GROUP.get()
        if group is not None:
            self._group_of[task] = group
        return task

    def group_of(self, task: asyncio.Future[Any]) -> str | None:
        """The group ``task`` was created in (``None``: none)."""
        return self._group_of.get(task)

    def tasks_of(self, group: str) -> list[asyncio.Task[Any]]:
        """The unfinished tasks of ``group``, oldest first (by creation order of their
        names, which asyncio numbers)."""
        tasks = [t for t, g in list(self._group_of.items()) if g == group and not t.done()]
        return sorted(tasks, key=_task_number)  # type: ignore[arg-type]


def _task_number(task: asyncio.Task[Any]) -> tuple[int, str]:
    name = task.get_name()
    head, _, tail = name.rpartition("-")
    return (int(tail), head) if tail.isdigit() else (-1, name)
