"""What two threads that share nothing get from this machine's cores, beside a line's round trip.

    python bench/core_capacity.py               # 8 samples
    python bench/core_capacity.py --samples 20

Each sample times a cache line's round trip between two threads (bench/thread_wait.py's
program), then two workloads in a small C program (needs ``cc``), each on one thread and then
on two threads at once, every thread with its own data:

- ``memory``: a sparse dot product and step over 32,768 doubles (256 KB, with its 128 KB of
  indices: resident in one core's L2 cache, missing L1 on nearly every access), the access
  pattern of an SGD kernel on a model of that size;
- ``alu``: eight chains of multiply-adds, no memory at all.

The capacity is 2 x one thread's time / the slower of the two threads' time: 2.0 where the
two threads run as on two cores, about 1.0 where they take turns on one. On a VM whose two
vCPUs are a host core's two hyperthreads, the ALU chains still give ~2.0 and the memory
workload much less (its threads share the core's L1 cache and its misses' buffers).
"""

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from thread_wait import round_trip_probe

CAPACITY_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define N 32768
static int alu;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static pthread_barrier_t bar;
typedef struct { double *w; unsigned *idx; double secs, sink; } job;
static void *work(void *p) {
    job *j = p;
    pthread_barrier_wait(&bar);
    double t = now(), s = 0;
    if (alu) {
        double a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        for (long i = 0; i < 4000000; i++)
            for (int c = 0; c < 8; c++) a[c] = a[c] * 1.0000001 + 1e-9;
        for (int c = 0; c < 8; c++) s += a[c];
    } else {
        for (int r = 0; r < 1500; r++) {
            double d = 0;
            for (int i = 0; i < N; i++) d += j->w[j->idx[i]] * 1.0001;
            for (int i = 0; i < N; i += 4) j->w[j->idx[i]] += 1e-9 * d;
            s += d;
        }
    }
    j->secs = now() - t;
    j->sink = s;
    return NULL;
}
static job make(void) {
    job j;
    j.w = malloc(N * sizeof(double));
    j.idx = malloc(N * sizeof(unsigned));
    for (int i = 0; i < N; i++) { j.w[i] = 1.0 / (i + 1); j.idx[i] = (unsigned)((i * 2654435761u) % N); }
    return j;
}
int main(int argc, char **argv) {
    alu = argc > 1 && strcmp(argv[1], "alu") == 0;
    job a = make(), b = make();
    pthread_t ta, tb;
    pthread_barrier_init(&bar, NULL, 1);
    work(&a);
    double one = a.secs;
    work(&a);
    if (a.secs < one) one = a.secs;
    pthread_barrier_init(&bar, NULL, 2);
    pthread_create(&ta, NULL, work, &a);
    pthread_create(&tb, NULL, work, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("%.3f\n", 2 * one / (a.secs > b.secs ? a.secs : b.secs));
    return 0;
}
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args(argv)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("needs a C compiler (cc)")
    folder = Path(tempfile.mkdtemp(prefix="dpsgd-capacity-"))
    (folder / "capacity.c").write_text(CAPACITY_C)
    subprocess.run([cc, "-O2", "-pthread", str(folder / "capacity.c"), "-o", str(folder / "capacity")], check=True)
    trip = round_trip_probe()
    rows = []
    for _ in range(args.samples):
        ns = float(subprocess.run([str(trip)], capture_output=True, text=True, check=True).stdout) if trip else float("nan")
        cap = {kind: float(subprocess.run([str(folder / "capacity"), kind], capture_output=True, text=True,
                                          check=True).stdout) for kind in ("memory", "alu")}
        rows.append((ns, cap["memory"], cap["alu"]))
        print(f"round trip {ns:6.1f} ns   capacity: memory {cap['memory']:.2f}x, alu {cap['alu']:.2f}x", flush=True)
    print(f"medians: round trip {statistics.median(r[0] for r in rows):.0f} ns, memory "
          f"{statistics.median(r[1] for r in rows):.2f}x ({min(r[1] for r in rows):.2f}-{max(r[1] for r in rows):.2f}), "
          f"alu {statistics.median(r[2] for r in rows):.2f}x ({min(r[2] for r in rows):.2f}-{max(r[2] for r in rows):.2f})")


if __name__ == "__main__":
    main()
