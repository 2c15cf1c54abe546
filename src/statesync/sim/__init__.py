"""Deterministic simulation: the real server, protocol sessions and store on a simulated
network and clock, with faults, all from one seed (see :mod:`statesync.sim.world`).

>>> from statesync.sim import simulate
>>> result = simulate("holdem", seed=3, faults="all")
>>> result.ok, result.problems
(True, [])
"""

from statesync.sim.world import FAULTS, SimResult, parse_faults, simulate

__all__ = ["FAULTS", "SimResult", "parse_faults", "simulate"]
