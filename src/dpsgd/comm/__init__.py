"""Parameter exchange between workers: the only package that imports mpi4py, and lazily.

``ParameterWindow`` keeps the global parameters in an MPI one-sided (RMA) window;
``LocalWindow`` offers the same interface inside one process, with no MPI.
"""

from dpsgd.comm.failure import abort_on_exception
from dpsgd.comm.window import LocalWindow, ParameterWindow, open_window

__all__ = ["LocalWindow", "ParameterWindow", "abort_on_exception", "open_window"]
