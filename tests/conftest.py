import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts):
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is not next to this checkout)")
    return path


@pytest.fixture(scope="session")
def a9a():
    from dpsgd.data import load_a9a

    return load_a9a()


def random_csr(n, d, density, seed, *, dtype=np.float64, index_dtype=np.int32):
    """Random CSR matrix without explicit zeros, with the given dtypes."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    X.data = rng.normal(size=X.nnz)
    X = X.astype(dtype)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X


os.environ.setdefault("OMP_PROC_BIND", "false")


def run_mpi(script, n, *args, timeout=120, exact=False):
    """Run tests/mpi/SCRIPT under ``mpiexec -n N`` (the pip-installed MPICH); never hangs.

    ``DPSGD_TEST_RANKS=K`` in the environment runs every test with K ranks instead, except
    those that need their count (``exact=True``: a scripted interleaving of two ranks). The
    result's ``ranks`` says how many ran; tests assert with it, never with a literal.
    Skips, with the reason, where mpi4py or mpiexec is missing."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'dpsgd[mpi]')")
    local = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(local) if local.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec on this machine (pip install mpich)")
    if script.endswith(".py"):
        command = [str(Path(__file__).resolve().parent / "mpi" / script)]
    else:  # a module: run_mpi("dpsgd", 3, "train", ...) is mpiexec -n 3 python -m dpsgd train ...
        command = ["-m", script]
    forced = os.environ.get("DPSGD_TEST_RANKS")
    if forced and not exact:
        n = int(forced)
    out = subprocess.run([mpiexec, "-n", str(n), sys.executable, *command, *map(str, args)],
                         capture_output=True, text=True, timeout=timeout)
    out.ranks = n
    return out
