#!/usr/bin/env bash
# One-shot scaling run for a many-core machine (bench/device/scaling.py says what it measures).
#
#   bash bench/device/scaling.sh [--quick] [--budget SECONDS]
#
# Run from the repository's root. Builds the kernels in place (all cores), then runs
# bench/device/scaling.py with the results in $OUT (default: ./scaling-out). With WHEELS=DIR,
# the wheels in DIR (mpich, mpi4py, gensim and smart_open, for a machine without them and
# without a network: bench/device/prepare.sh) are installed first, into $PREFIX. AP and BBC are read from
# $DPSGD_DATA_DIR (default ../shared/data, or .devdata where that is absent). Output is also saved to $OUT/log.txt.
set -euo pipefail
OUT=${OUT:-$PWD/scaling-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
PY=${PYTHON:-python3}
echo "# $(date -u '+%F %T UTC'); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)); uptime: $(uptime)"
echo "# thread settings: $(env | grep -E '^(OMP|GOMP|KMP|OPENBLAS|MKL)_' | tr '\n' ' ')"
if [ -n "${WHEELS:-}" ]; then
    # into a prefix of their own, so that nothing depends on the running environment being
    # writable: MPICH's mpiexec goes to $PREFIX/bin and its libmpi to $PREFIX/lib, where
    # mpi4py finds it through LD_LIBRARY_PATH (pip's --target would drop the library)
    PREFIX=${PREFIX:-/tmp/dpsgd-wheels}
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --prefix "$PREFIX" "$WHEELS"/*.whl
    SITE=$("$PY" -c 'import sys, sysconfig; print(sysconfig.get_path("purelib", vars={"base": sys.argv[1], "platbase": sys.argv[1]}))' "$PREFIX")
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} PATH=$PREFIX/bin:$PATH
    export LD_LIBRARY_PATH=$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "# wheels installed in $PREFIX: $(ls "$WHEELS" | tr '\n' ' ')"
fi
tic=$(date +%s)
"$PY" setup.py -q build_ext --inplace -j "$(nproc)" > "$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }
echo "# built in $(( $(date +%s) - tic )) s; OpenMP: $(PYTHONPATH=src "$PY" -c 'import dpsgd; print(dpsgd.openmp_enabled())')"
DATA=${DPSGD_DATA_DIR:-../shared/data}
[ -d "$DATA" ] || DATA=.devdata
PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 "$PY" bench/device/scaling.py --out "$OUT" --data-dir "$DATA" "$@"
