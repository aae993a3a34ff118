"""The package's layers (../shared/DESIGN.md, "one engine, many problems, several exchanges"),
checked on the source: mpi4py only in comm/, no task that names a window or an exchange
class or calls MPI, and dependencies that point one way."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dpsgd"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
# the transport's classes: a task or the CLI that names one has taken the engine's job
TRANSPORT = {"ParameterWindow", "LocalWindow", "open_window", "ServerExchange", "AllreduceExchange",
             "LocalExchange", "open_exchange", "Win"}
# what an MPI call looks like on a communicator, for modules that must not make any
MPI_CALLS = {"allreduce", "Allreduce", "allgather", "Allgather", "gather", "bcast", "Bcast", "Barrier",
             "Split_type", "Get_rank", "Get_size", "reduce", "scatter"}


def _layer(path):
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _parsed(path):
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_mpi4py_is_imported_only_in_comm(path):
    if _layer(path) == "comm":
        return
    assert not [m for m in _imports(_parsed(path)) if m.split(".")[0] == "mpi4py"], \
        f"{path.relative_to(PACKAGE)} imports mpi4py: only dpsgd.comm may"


@pytest.mark.parametrize("path", [p for p in MODULES if _layer(p) in ("tasks", "cli", "data")],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_tasks_cli_and_data_name_no_transport_and_call_no_mpi(path):
    tree = _parsed(path)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {m.rsplit(".", 1)[-1] for m in _imports(tree)}
    assert not names & TRANSPORT, f"{path.relative_to(PACKAGE)} names {sorted(names & TRANSPORT)}"
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not calls & MPI_CALLS, f"{path.relative_to(PACKAGE)} calls {sorted(calls & MPI_CALLS)}: use dpsgd.comm.Topology"


# who may import whom (DESIGN.md): the engine never names a task, comm never a task or the engine
FORBIDDEN = {
    "engine": ("dpsgd.tasks", "dpsgd.cli", "dpsgd.data"),
    "comm": ("dpsgd.tasks", "dpsgd.cli", "dpsgd.engine", "dpsgd.data"),
    "_kernels": ("dpsgd.tasks", "dpsgd.cli", "dpsgd.engine", "dpsgd.comm"),
    "tasks": ("dpsgd.cli",),
    # persist imports dpsgd.tasks lazily, only so that load_model finds the registered estimators
    "persist": ("dpsgd.cli", "dpsgd.engine", "dpsgd.comm"),
    "stepsize": ("dpsgd.tasks", "dpsgd.cli", "dpsgd.engine", "dpsgd.comm"),
}


@pytest.mark.parametrize("path", [p for p in MODULES if _layer(p) in FORBIDDEN],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dependencies_point_one_way(path):
    bad = [m for m in _imports(_parsed(path)) if m.startswith(FORBIDDEN[_layer(path)])]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_every_task_module_is_checked():
    """The checks above see the modules (a moved package would make them pass vacuously)."""
    layers = {_layer(p) for p in MODULES}
    assert {"comm", "engine", "tasks", "cli", "data", "_kernels"} <= layers
