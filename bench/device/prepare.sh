#!/usr/bin/env bash
# What bench/device/scaling.sh needs on a lent machine that has no network, made here:
#
#   bash bench/device/prepare.sh          # from the repository's root
#
# - .whl/: the wheels that machine lacks (MPICH, mpi4py, gensim, smart_open) for its Python
#   ($PYVER, default 3.12: the device image's python3, /work/.library/device/KINDS.md);
# - .devdata/: AP and BBC from $DPSGD_DATA_DIR (default ../shared/data), which is not there.
#
# Both are listed in .git/info/exclude (never committed), so they travel only when named in the
# device tool's carry: run(command="WHEELS=.whl bash bench/device/scaling.sh --budget 400",
# carry=[".whl", ".devdata"], timeout_s=560).
set -euo pipefail
PYVER=${PYVER:-3.12}
DATA=${DPSGD_DATA_DIR:-../shared/data}
[ -d .git ] || { echo "run from the repository's root" >&2; exit 1; }
for path in /.whl/ /.devdata/; do
    grep -qxF "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude
done
rm -rf .whl && mkdir -p .whl .devdata
# the platforms the device README lists for manylinux wheels
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d .whl \
    mpich==5.0.2 mpi4py==4.1.2 gensim==4.4.0 smart_open==9.0.2
for folder in ap_associated_press bbc_news_octis; do
    rm -rf ".devdata/$folder"
    cp -r "$DATA/$folder" .devdata/
    chmod -R u+w ".devdata/$folder"
done
du -sh .whl .devdata
ls .whl
