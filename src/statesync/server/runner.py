"""Running a server's event loop: on uvloop where it is installed, else on asyncio's own.

uvloop (a default dependency on Linux and macOS) runs the event loop and the socket
transports in C: the server executes ~7 % fewer instructions per delivered update on it
(``bench/network.py --callgrind``). Nothing in statesync depends on which loop runs it; set
``STATESYNC_EVENT_LOOP=asyncio`` to use the standard loop (to debug with asyncio's debug
mode, say)::

    from statesync.server.runner import run

    async def main() -> None:
        ...  # start a Server, wait for a signal

    run(main())
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

__all__ = ["loop_name", "run"]

T = TypeVar("T")

_ENV = "STATESYNC_EVENT_LOOP"


def loop_name() -> str:
    """The loop :func:`run` will use: ``"uvloop"`` or ``"asyncio"``. Raises
    :class:`ValueError` when ``STATESYNC_EVENT_LOOP`` names neither, or names uvloop and it
    is not installed."""
    wanted = os.environ.get(_ENV, "").strip().lower() or "auto"
    if wanted not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"{_ENV} must be auto, uvloop or asyncio, not {wanted!r}")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if wanted == "uvloop":
            raise ValueError(f"{_ENV}=uvloop, but uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop (see the module docstring), like
    :func:`asyncio.run`."""
    try:
        name = loop_name()
    except ValueError:
        main.close()
        raise
    if name == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
