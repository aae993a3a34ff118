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


# L1 logistic on a9a's first 2,000 rows without an intercept (tests of PIAG and of Async-BCD
# across ranks): liblinear keeps 15 of the 123 weights (12%)
A9A_2000_C = 0.05


@pytest.fixture(scope="session")
def a9a_2000(a9a):
    """a9a's first 2,000 rows (CSR) and their labels in {-1, +1}."""
    X, y, _, _ = a9a
    return X[:2000].tocsr(), np.where(y[:2000] > 0, 1.0, -1.0)


@pytest.fixture(scope="session")
def a9a_2000_optimum(a9a_2000):
    """P*, the support and the weights of L1 logistic (C = A9A_2000_C, no intercept) on
    a9a_2000: liblinear's solution."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from dpsgd._kernels import prox

    X, y = a9a_2000
    # scikit-learn 1.8 deprecates penalty for l1_ratio, which before it needs 'elasticnet'
    l1 = dict(l1_ratio=1.0) if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 8) else \
        dict(penalty="l1")
    # (random_state: liblinear's coordinate order, which decides where the undecided weights go)
    m = LogisticRegression(**l1, C=A9A_2000_C, solver="liblinear", fit_intercept=False, tol=1e-12,
                           max_iter=100_000, random_state=0).fit(X, y)
    w = m.coef_[0]
    return prox.objective(X.data, X.indices, X.indptr, y, w, 0.0, C=A9A_2000_C, penalty="l1"), w != 0, w


def assert_liblinears_support(X, y, coef, optimum):
    """``coef`` has the support of liblinear's ``optimum`` (a9a_2000_optimum) but where the
    optimum leaves it undecided: a9a's one-hot groups each sum to a column of ones, so X has a
    null space along which the objective is flat where the L1 norm is, and a weight on such a
    direction may be 0 or not at the same objective (liblinear, itself randomised, puts
    columns 21 and 35's -0.016 on either). There the model whose weight is 0 has its gradient
    at the L1 threshold (within 1e-4), as no decided weight's has; at most two may differ so."""
    from dpsgd._kernels import prox

    _, support, w_star = optimum
    coef = np.asarray(coef)
    differ = np.flatnonzero((coef != 0) != support)
    grads = [prox.gradient(X.data, X.indices, X.indptr, y, w, 0.0, C=A9A_2000_C)[1] for w in (coef, w_star)]
    at_zero = np.where(coef[differ] == 0, grads[0][differ], grads[1][differ])
    assert differ.size <= 2 and np.all(np.abs(np.abs(at_zero) - 1) < 1e-4), (differ, coef[differ], w_star[differ])


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
