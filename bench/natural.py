"""Natural compression: nanoseconds per value of the kernel's encode and decode, against NumPy.

    python bench/natural.py              # 1e5 and 1e6 doubles, 1 and 2 threads, 7 repeats
    python bench/natural.py --repeats 15

Each figure is the median over repeats of one call on normal(0, 1) doubles, divided by the
number of values. "numpy" is the same rounding written with NumPy array operations (the bit
form of the kernel: random 52-bit integers against the mantissa field), one thread.
"""

import argparse
import statistics
import time

import numpy as np

from dpsgd._kernels import natural

MANTISSA = np.uint64((1 << 52) - 1)


def numpy_encode(x, g):
    """The kernel's rounding in NumPy: one uint16 code per value (natural.pyx's format)."""
    bits = x.view(np.uint64)
    up = g.integers(0, 1 << 52, x.size, dtype=np.uint64) < (bits & MANTISSA)
    code = ((bits >> np.uint64(48)) & np.uint64(0xFFF0)).astype(np.uint16) + (up.astype(np.uint16) << 4)
    code -= ((code & 0x7FF0) == 0x7FF0).astype(np.uint16) << 4  # the top binade saturates
    return code


def numpy_decode(code):
    return (code.astype(np.uint64) << np.uint64(48)).view(np.float64)


def median_ns(fn, n, repeats):
    fn()  # warm: page faults, thread start
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / n * 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    g = np.random.default_rng(0)
    print(f"{'n':>9} {'threads':>7} {'encode':>8} {'decode':>8} {'enc+dec':>8} {'decode_add':>10}  ns/value")
    for n in (100_000, 1_000_000):
        x = g.normal(size=n)
        codes = natural.encode(x, 1)
        out = np.zeros(n)
        assert np.array_equal(numpy_decode(numpy_encode(x, g)) != 0, x != 0)
        for threads in (1, 2):
            enc = median_ns(lambda: natural.encode(x, 1, threads), n, args.repeats)
            dec = median_ns(lambda: natural.decode(codes, threads), n, args.repeats)
            both = median_ns(lambda: natural.decode(natural.encode(x, 1, threads), threads), n, args.repeats)
            add = median_ns(lambda: natural.decode_add(codes, out, threads), n, args.repeats)
            print(f"{n:>9} {threads:>7} {enc:>8.2f} {dec:>8.2f} {both:>8.2f} {add:>10.2f}")
        enc = median_ns(lambda: numpy_encode(x, g), n, args.repeats)
        ncodes = numpy_encode(x, g)
        dec = median_ns(lambda: numpy_decode(ncodes), n, args.repeats)
        both = median_ns(lambda: numpy_decode(numpy_encode(x, g)), n, args.repeats)
        print(f"{n:>9} {'numpy':>7} {enc:>8.2f} {dec:>8.2f} {both:>8.2f} {'':>10}")


if __name__ == "__main__":
    main()
