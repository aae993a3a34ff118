"""Build the Cython kernels of dpsgd, with OpenMP when the compiler has it.

OpenMP is detected by compiling *and running* a tiny program (the way
scikit-learn's ``_build_utils/openmp_helpers.py`` does), because a compiler may
accept ``-fopenmp`` and still fail to link or load the runtime. Set
``DPSGD_NO_OPENMP=1`` to force a serial build; a failed probe gives the same
serial build with a warning. The kernels compile either way (see
``_kernels/omp_shim.h``); ``dpsgd.openmp_enabled()`` tells which one you got.
"""

import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["openmp_info", "rng", "sgd", "svi", "envs", "a2c", "hsa2c", "prox", "bcd", "natural"]
# envs: Gymnasium's arithmetic exactly (no fused multiply-adds); a2c: no trapping math and no
# errno, so that GCC may vectorise mlp.h's tanh (its selects would otherwise be branches) and
# the optimizers' square roots (no call to set errno)
KERNEL_FLAGS = {"envs": ["-ffp-contract=off"], "a2c": ["-fno-trapping-math", "-fno-math-errno"],
                "svi": ["-fno-trapping-math", "-fno-math-errno"]}
KERNEL_DIR = os.path.join("src", "dpsgd", "_kernels")

PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0);
        return 0;
    }
    """
)


# (compile flags, link flags) to try, in order: GCC and LLVM clang take -fopenmp; Apple's
# clang needs the preprocessor flag and libomp (brew install libomp), as scikit-learn's build
# does. CPPFLAGS/CFLAGS/LDFLAGS from the environment are passed to the probe (e.g. libomp's
# include and lib folders).
OPENMP_CANDIDATES = [
    (["-fopenmp"], ["-fopenmp"]),
    (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
]


def _probe(cc, compile_flags, link_flags):
    """Compile, link and run PROBE with these flags; True when it printed 1."""
    env_flags = [f for name in ("CPPFLAGS", "CFLAGS") for f in os.environ.get(name, "").split()]
    ld_flags = os.environ.get("LDFLAGS", "").split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(src, "w") as f:
            f.write(PROBE)
        try:
            subprocess.run(cc.split() + env_flags + compile_flags + [src, "-o", exe] + ld_flags + link_flags,
                           check=True, capture_output=True)
            out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return False
    return out.strip() == "1"


def _openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or None when unavailable."""
    if os.environ.get("DPSGD_NO_OPENMP", "0") not in ("", "0"):
        warnings.warn("DPSGD_NO_OPENMP is set: building dpsgd without OpenMP (one thread only).")
        return None
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    for compile_flags, link_flags in OPENMP_CANDIDATES:
        if _probe(cc, compile_flags, link_flags):
            return compile_flags, link_flags
    warnings.warn(
        f"OpenMP probe failed with {cc} (tried {[' '.join(c) for c, _ in OPENMP_CANDIDATES]}); "
        "building dpsgd WITHOUT OpenMP: every kernel will run on one thread. Install a compiler "
        "with OpenMP (gcc, or clang with libomp; on macOS: brew install libomp, and set CPPFLAGS "
        "and LDFLAGS to its include and lib folders) and reinstall to get threads."
    )
    return None


OPENMP = _openmp_flags()


class BuildExt(build_ext):
    """build_ext that compiles on every core and rebuilds everything when the OpenMP
    configuration changed.

    setuptools reuses object files that are newer than their sources and does not
    look at compiler flags, so switching DPSGD_NO_OPENMP in a tree built before
    would otherwise mix serial and OpenMP modules.
    """

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:  # every core unless -j says otherwise (pip gives no -j)
            self.parallel = os.cpu_count() or 1
        self._stamp = os.path.join(self.build_temp, "dpsgd-openmp-config")
        try:
            with open(self._stamp) as f:
                previous = f.read()
        except OSError:
            previous = None
        if previous != repr(OPENMP):
            self.force = True

    def run(self):
        super().run()
        os.makedirs(os.path.dirname(self._stamp), exist_ok=True)
        with open(self._stamp, "w") as f:
            f.write(repr(OPENMP))


def _extensions():
    omp = OPENMP
    # -fopenmp-simd: "omp simd" loops (simd.h) vectorise even in a serial build
    compile_args = ["-O3", "-fopenmp-simd"]
    link_args = []
    if omp is not None:
        compile_args += omp[0]
        link_args += omp[1]
    if sys.platform != "win32":
        compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]
    exts = [
        Extension(
            f"dpsgd._kernels.{name}",
            [os.path.join(KERNEL_DIR, f"{name}.pyx")],
            include_dirs=[np.get_include(), KERNEL_DIR],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            extra_compile_args=compile_args + KERNEL_FLAGS.get(name, []),
            extra_link_args=link_args,
        )
        for name in KERNELS
    ]
    return cythonize(
        exts,
        nthreads=os.cpu_count() or 1,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
