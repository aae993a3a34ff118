"""The engine: one loop that runs any problem over any exchange (see :mod:`dpsgd.engine.loop`).

A task hands :func:`run` a :class:`Problem` (parameter layout, local steps, model) and the
:class:`~dpsgd.comm.topology.Topology` of its ranks; the engine opens the exchange, runs the
rounds under the global budget (:class:`Limits`), measures delays (:class:`RoundStats`)
and reports through one callback shape. ``Dense``, ``Rows`` and ``Sparse`` are the changes a
problem's round may push (:mod:`dpsgd.comm.codecs`).
"""

from dpsgd.comm.codecs import Dense, Rows, Sparse
from dpsgd.engine.limits import Limits
from dpsgd.engine.loop import Result, run, shared_rounds
from dpsgd.engine.problem import MasterStep, Problem, Round
from dpsgd.engine.stats import RoundStats

__all__ = ["Dense", "Limits", "MasterStep", "Problem", "Result", "Round", "RoundStats", "Rows", "Sparse", "run",
           "shared_rounds"]
