"""What two threads that share nothing get from this machine's cores, beside a line's round trip.

    python bench/core_capacity.py               # 8 samples
    python bench/core_capacity.py --samples 20

Each sample times a cache line's round trip between two threads (bench/thread_wait.py's
program), then two workloads in a small C program (needs ``cc``), each on one thread and then
on two threads at once, every thread with its own data:

- ``memory``: a sparse dot product and step over 32,768 doubles (256 KB, with its 128 KB of
  indices: resident in one core's L2 cache, missing L1 on nearly every access), the access
  pattern of an SGD kernel on a model of that size;
- ``alu``: eight chains of multiply-adds, no memory at all;
- ``memory-apart``: the same with the second thread's arrays 4 MB past the first's (in
  ``memory`` they come from ``malloc``, which here maps the two threads' weights next to
  each other);
- ``memory-processes``: the memory workload in two processes at once (forked, started
  together through a pipe) instead of two threads of one process.

The capacity is 2 x one thread's time / the slower of the two threads' time: 2.0 where the
two threads run as on two cores, about 1.0 where they take turns on one. On a VM whose two
vCPUs are a host core's two hyperthreads, the ALU chains still give ~2.0 and the memory
workload much less (its threads share the core's L1 cache and its misses' buffers).

On this 2-vCPU VM two threads of one process got less from the memory workload than two
processes, the more so the nearer their arrays lay, by how much depending on the host's state
(2026-12-02): 8 samples gave threads 1.07-1.46x against processes 1.51-1.92x; 10 samples a
few minutes later, medians 1.73x (1.35-1.87) adjacent, 1.84x (1.82-1.99) apart, 1.88x
(1.51-2.03) processes. A variant with 96 KB a thread in one block gave 1.03-1.23x with the
second thread's data right after the first's, 1.75-1.82x 64 KB further and 1.5-2.06x 1 MB
away (three runs). `bench/text_threads.py`'s ``1 + 1`` is two processes, so its ceiling
can be above what any two threads of one process get there.
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
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
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
static job make_at(double *w, unsigned *idx) {
    job j;
    j.w = w;
    j.idx = idx;
    for (int i = 0; i < N; i++) { j.w[i] = 1.0 / (i + 1); j.idx[i] = (unsigned)((i * 2654435761u) % N); }
    return j;
}
static job make(void) { return make_at(malloc(N * sizeof(double)), malloc(N * sizeof(unsigned))); }
#define APART (4 << 20)
/* two processes, each with its own job: warmed (its copy-on-write pages copied), then
   started together when the parent closes the pipe; their times come back through a
   shared page */
static void processes(job *a, job *b) {
    double *secs = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int go[2];
    char c;
    if (secs == MAP_FAILED || pipe(go) != 0) exit(1);
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        if (pid[k] == 0) {
            job *j = k ? b : a;
            close(go[1]);
            work(j);
            if (read(go[0], &c, 1) < 0) _exit(1);
            work(j);
            secs[k] = j->secs;
            _exit(0);
        }
    }
    close(go[0]);
    usleep(300000);  /* both warmed */
    close(go[1]);
    for (int k = 0; k < 2; k++) waitpid(pid[k], NULL, 0);
    a->secs = secs[0];
    b->secs = secs[1];
}
int main(int argc, char **argv) {
    alu = argc > 1 && strcmp(argv[1], "alu") == 0;
    job a = make(), b = make();
    if (argc > 1 && strcmp(argv[1], "memory-apart") == 0) {  /* b's arrays 4 MB past a's */
        char *block = malloc(2 * APART);
        a = make_at((double *)block, (unsigned *)(block + N * sizeof(double)));
        b = make_at((double *)(block + APART), (unsigned *)(block + APART + N * sizeof(double)));
    }
    pthread_t ta, tb;
    pthread_barrier_init(&bar, NULL, 1);
    work(&a);
    double one = a.secs;
    work(&a);
    if (a.secs < one) one = a.secs;
    if (argc > 1 && strcmp(argv[1], "memory-processes") == 0) {
        processes(&a, &b);
    } else {
        pthread_barrier_init(&bar, NULL, 2);
        pthread_create(&ta, NULL, work, &a);
        pthread_create(&tb, NULL, work, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
    }
    printf("%.3f\n", 2 * one / (a.secs > b.secs ? a.secs : b.secs));
    return 0;
}
"""

KINDS = ("memory", "memory-apart", "memory-processes", "alu")


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
                                          check=True).stdout) for kind in KINDS}
        rows.append((ns, cap))
        print(f"round trip {ns:6.1f} ns   capacity: " + ", ".join(f"{k} {cap[k]:.2f}x" for k in KINDS), flush=True)
    print(f"medians: round trip {statistics.median(r[0] for r in rows):.0f} ns, " + ", ".join(
        f"{k} {statistics.median(r[1][k] for r in rows):.2f}x ({min(r[1][k] for r in rows):.2f}-"
        f"{max(r[1][k] for r in rows):.2f})" for k in KINDS))


if __name__ == "__main__":
    main()
