"""How dpsgd's OpenMP threads wait: a short spin unless the user chose, and nothing leaked."""

import os
import subprocess
import sys

import pytest

import dpsgd


def _import_dpsgd(**env):
    """stderr and stdout of a fresh `import dpsgd` with OMP_DISPLAY_ENV (libgomp prints its
    settings at load), the environment cleared of wait settings and given ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    code = "import os, dpsgd; print('GOMP_SPINCOUNT' in os.environ, 'KMP_BLOCKTIME' in os.environ)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**clean, "OMP_DISPLAY_ENV": "verbose", **env})
    return out.stderr, out.stdout.strip()


def _spincounts(stderr):
    return [line.split("=")[1].strip().strip("'") for line in stderr.splitlines() if "GOMP_SPINCOUNT" in line]


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
def test_the_runtime_spins_briefly_and_the_setting_does_not_leak():
    stderr, leaked = _import_dpsgd()
    assert leaked == "False False"  # other libraries and child processes do not see it
    counts = _spincounts(stderr)
    if not counts:
        pytest.skip("not libgomp (it alone prints GOMP_SPINCOUNT)")
    # libgomp's default when nothing is set is 300000 spins (milliseconds of a busy core);
    # scikit-learn's own vendored libgomp, loaded too, may print its default
    assert "10000" in counts


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
@pytest.mark.parametrize("env", [{"GOMP_SPINCOUNT": "7"}, {"OMP_WAIT_POLICY": "active"}])
def test_a_users_choice_is_kept(env):
    stderr, _ = _import_dpsgd(**env)
    counts = _spincounts(stderr)
    if not counts:
        pytest.skip("not libgomp")
    assert "10000" not in counts
