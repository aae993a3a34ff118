"""Natural compression: the kernel (dpsgd._kernels.natural) against a NumPy reference of the
rounding, its statistics (unbiased, variance <= x^2 / 8), its edges (zeros, subnormals,
powers of two, the top binade, NaN and inf), and the Natural codec."""

import numpy as np
import pytest

from dpsgd._kernels import natural, rng
from dpsgd.comm.codecs import Dense, Natural, Rows, Sparse

TINY = 2.0**-1022  # smallest normal double
BIG = 2.0**1023  # largest power of two
MAX = np.finfo(np.float64).max


def reference(x, r):
    """The documented rounding of x for 52-bit random numbers r, with np.frexp.

    |x| in [down, up) goes up when r < (|x| - down) / down * 2**52 (exact in float64:
    scaling by a power of two); subnormals round between 0 and TINY; 2**1024 saturates to
    2**1023. Signs are kept, -0.0 included.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    _, e = np.frexp(a)  # a = mant * 2**e, mant in [0.5, 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        down = np.ldexp(1.0, e - 1)
        frac = a / down - 1.0
        up = 2.0 * down
        frac = np.where(a < TINY, a / TINY, frac)
    sub = a < TINY
    down, up = np.where(sub, 0.0, down), np.where(sub, TINY, up)
    out = np.where(np.asarray(r, dtype=np.float64) < frac * 2.0**52, up, down)
    out = np.where(np.isinf(out), down, out)
    return np.copysign(out, x)


def brackets(x):
    """(down, up): the two values x may round to, by sign."""
    a = np.abs(x)
    _, e = np.frexp(a)
    down = np.where(a < TINY, 0.0, np.ldexp(1.0, e - 1))
    up = np.where(a < TINY, TINY, np.where(down == BIG, BIG, 2.0 * np.minimum(down, BIG / 2)))
    return np.copysign(down, x), np.copysign(up, x)


def random_doubles(n, seed):
    """Finite doubles of every binade, subnormals and zeros included, both signs."""
    g = np.random.default_rng(seed)
    sign = g.integers(0, 2, n, dtype=np.uint64) << np.uint64(63)
    exponent = g.integers(0, 0x7FF, n, dtype=np.uint64) << np.uint64(52)  # 0x7FF excluded
    mantissa = g.integers(0, 1 << 52, n, dtype=np.uint64)
    mantissa[::17] = 0  # powers of two and zeros
    return (sign | exponent | mantissa).view(np.float64)


def same_bits(a, b):
    return np.array_equal(np.asarray(a).view(np.uint64), np.asarray(b).view(np.uint64))


def kernel_bits(n, seed):
    """The 52-bit numbers encode draws for n values: chunk c's are the top 52 bits of the
    stream (seed, c) (rng.uniform gives the top 53 of the same draws)."""
    parts = []
    for c, start in enumerate(range(0, n, natural.CHUNK)):
        u = rng.uniform(min(natural.CHUNK, n - start), seed, c)
        parts.append((u * 2.0**53).astype(np.uint64) >> np.uint64(1))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


# ---------------------------------------------------------------- exact rounding


def test_rounding_matches_numpy_reference():
    x = random_doubles(20_000, 0)
    mantissa = x.view(np.uint64) & np.uint64((1 << 52) - 1)
    r = np.random.default_rng(1).integers(0, 1 << 52, x.size, dtype=np.uint64)
    # the boundary r == m (stays down) and its neighbours, and the extremes of r
    r[::7] = mantissa[::7]
    r[1::7] = np.maximum(mantissa[1::7], np.uint64(1)) - np.uint64(1)
    r[2::7] = np.minimum(mantissa[2::7] + np.uint64(1), np.uint64((1 << 52) - 1))
    r[3::7] = 0
    r[4::7] = (1 << 52) - 1
    got = natural.decode(natural.py_encode_bits(x, r))
    assert same_bits(got, reference(x, r))


def test_encode_draws_the_documented_streams():
    n = 2 * natural.CHUNK + 123
    x = random_doubles(n, 2)
    for seed in (0, 12345, 2**64 - 1):
        assert np.array_equal(natural.encode(x, seed), natural.py_encode_bits(x, kernel_bits(n, seed)))


@pytest.mark.parametrize("n_threads", [2, 3, 4])
def test_codes_do_not_depend_on_threads(n_threads):
    n = 3 * natural.CHUNK + 17
    x = random_doubles(n, 3)
    codes = natural.encode(x, 7)
    assert np.array_equal(natural.encode(x, 7, n_threads=n_threads), codes)
    values = natural.decode(codes)
    assert same_bits(natural.decode(codes, n_threads=n_threads), values)
    start = np.random.default_rng(4).normal(size=n)
    assert same_bits(natural.decode_add(codes, start.copy(), n_threads=n_threads), start + values)


def test_seeds_differ():
    x = np.full(1000, 1.5)
    assert not np.array_equal(natural.encode(x, 0), natural.encode(x, 1))


# ---------------------------------------------------------------- statistics


def grid(n_binades=8):
    """|x| = u * 2**k for u on a grid in [1.05, 1.95] plus the worst case u = 4/3, over
    binades k from 2**-500 to 2**500, signs alternating."""
    u = np.concatenate([np.linspace(1.05, 1.95, 10), [4 / 3]])
    k = np.linspace(-500, 500, n_binades).astype(int)  # squares stay finite
    x = (u[None, :] * np.ldexp(1.0, k)[:, None]).ravel()
    x[1::2] *= -1
    return x


def test_unbiased_with_the_exact_variance():
    """20,000 draws of each value (tiled in one call: the draws come from different
    positions of the chunks' streams). Mean within 5 standard errors, each; sum of squared
    z-scores within chi-square(n) bounds; empirical variance of the u = 4/3 values at
    x^2 / 8 (the bound, attained) and every variance below it."""
    x = grid()
    k = 20_000
    c = natural.decode(natural.encode(np.tile(x, k), 2024)).reshape(k, x.size)
    down, up = brackets(x)
    var = (np.abs(x) - np.abs(down)) * (np.abs(up) - np.abs(x))
    assert np.all(var <= x**2 / 8 * (1 + 1e-12))
    assert np.all((c == down) | (c == up))
    z = (c.mean(axis=0) - x) / np.sqrt(var / k)
    assert np.all(np.abs(z) < 5), np.abs(z).max()
    n = x.size
    assert np.sum(z**2) < n + 6 * np.sqrt(2 * n)
    empirical = c.var(axis=0)
    assert np.all(empirical <= x**2 / 8 * 1.05)
    worst = np.isclose(np.abs(x) / np.abs(down), 4 / 3)
    np.testing.assert_allclose(empirical[worst], x[worst] ** 2 / 8, rtol=0.05)


def test_unbiased_over_seeds_and_the_norm_bound():
    """E||C(x) - x||^2 <= ||x||^2 / 8 over 2,000 seeds, for a random vector (below the bound)
    and one of u = 4/3 values (at the bound); the mean vector is x."""
    g = np.random.default_rng(5)
    generic = g.normal(size=200) * np.exp(g.normal(scale=3, size=200))
    worst = np.ldexp(4 / 3, g.integers(-30, 30, 200)) * g.choice([-1.0, 1.0], 200)
    k = 2000
    for x in (generic, worst):
        c = np.array([natural.decode(natural.encode(x, seed)) for seed in range(k)])
        err = np.sum((c - x) ** 2, axis=1)
        down, up = brackets(x)
        expected = np.sum((np.abs(x) - np.abs(down)) * (np.abs(up) - np.abs(x)))
        bound = np.sum(x**2) / 8
        assert expected <= bound * (1 + 1e-12)
        assert abs(err.mean() - expected) < 5 * err.std() / np.sqrt(k)
        assert err.mean() < bound * 1.05
        # the mean over seeds: each coordinate within 5 standard errors
        sd = np.sqrt((np.abs(x) - np.abs(down)) * (np.abs(up) - np.abs(x)) / k)
        assert np.all(np.abs(c.mean(axis=0) - x) <= 5 * sd + 1e-300)
    np.testing.assert_allclose(err.mean(), np.sum(worst**2) / 8, rtol=0.05)


# ---------------------------------------------------------------- edges


def test_powers_of_two_are_exact():
    x = np.ldexp(1.0, np.arange(-1022, 1024))
    x = np.concatenate([x, -x])
    for seed in range(5):
        assert same_bits(natural.decode(natural.encode(x, seed, n_threads=2)), x)


def test_zeros_and_signs_are_kept():
    x = np.array([0.0, -0.0] * 5000)
    assert same_bits(natural.decode(natural.encode(x, 3)), x)
    y = random_doubles(50_000, 6)
    d = natural.decode(natural.encode(y, 8))
    assert np.array_equal(np.signbit(d), np.signbit(y))


def test_results_are_signed_powers_of_two_bracketing_x():
    x = random_doubles(50_000, 9)
    d = natural.decode(natural.encode(x, 10))
    down, up = brackets(x)
    assert np.all((d == down) | (d == up))
    nonzero = d != 0
    assert np.all(np.frexp(d[nonzero])[0] == np.copysign(0.5, d[nonzero]))  # mantissa 1.0
    assert np.all(np.isfinite(d))
    assert np.all(d[np.abs(x) >= TINY] != 0)  # a normal never rounds to zero


def test_subnormals_round_to_zero_or_the_smallest_normal():
    """Unbiased between 0 and 2**-1022: p(up) = |x| / 2**-1022."""
    x = np.array([2.0**-1023, -3 * 2.0**-1024, 2.0**-1030])
    k = 20_000
    c = natural.decode(natural.encode(np.tile(x, k), 11)).reshape(k, x.size)
    assert np.all((c == 0) | (np.abs(c) == TINY))
    assert np.array_equal(np.signbit(c), np.broadcast_to(np.signbit(x), c.shape))
    p = np.abs(x) / TINY
    up = (c != 0).mean(axis=0)
    assert np.all(np.abs(up - p) < 5 * np.sqrt(p * (1 - p) / k))
    # the smallest subnormal goes up with probability 2**-52: never, here
    tiny = natural.decode(natural.encode(np.full(10_000, -5e-324), 12))
    assert same_bits(tiny, np.full(10_000, -0.0))


def test_top_binade_saturates_instead_of_overflowing():
    x = np.array([MAX, -MAX, 1.5 * BIG, -(1 + 2.0**-52) * BIG, BIG, -BIG] * 2000)
    d = natural.decode(natural.encode(x, 13, n_threads=2))
    assert np.array_equal(d, np.copysign(BIG, x))
    assert not np.any((natural.encode(x, 13) & 0x7FF0) == 0x7FF0)  # no inf code
    # the binade below still rounds up into the top one
    y = np.full(10_000, 1.5 * 2.0**1022)
    assert set(natural.decode(natural.encode(y, 14))) == {2.0**1022, BIG}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, natural.CHUNK + 5, -1])
def test_nan_and_inf_are_rejected_before_any_work(bad, where):
    x = np.ones(2 * natural.CHUNK + 3)
    x[where] = bad
    i = where % x.size
    out = np.full(x.size, 0xABCD, dtype=np.uint16)
    with pytest.raises(ValueError, match=rf"values\[{i}\] is (nan|inf|-inf)"):
        natural.encode_into(x, 0, out, n_threads=2)
    assert np.all(out == 0xABCD)
    with pytest.raises(ValueError, match="finite"):
        natural.encode(x, 0)
    with pytest.raises(ValueError, match="finite"):
        natural.py_encode_bits(x, np.zeros(x.size, np.uint64))
    with pytest.raises(ValueError, match="finite"):
        Natural.encode(Dense(x), 0)


def test_input_conversion_and_checks():
    x = np.array([1.5, -3.0, 0.25, 7.0])
    codes = natural.encode(x, 1)
    assert np.array_equal(natural.encode(list(x), 1), codes)
    assert np.array_equal(natural.encode(x.astype(np.float32), 1), codes)
    assert np.array_equal(natural.encode(np.array([3, -5, 0, 8]), 1),
                          natural.encode(np.array([3.0, -5.0, 0.0, 8.0]), 1))
    strided = np.zeros(8)
    strided[::2] = x
    assert np.array_equal(natural.encode(strided[::2], 1), codes)
    assert np.array_equal(natural.encode(np.frombuffer(x.tobytes()), 1), codes)  # read-only
    with pytest.raises(ValueError, match="1-d"):
        natural.encode(np.ones((2, 2)), 0)
    with pytest.raises(TypeError, match="real"):
        natural.encode(np.ones(3, dtype=complex), 0)
    with pytest.raises(TypeError, match="real"):
        natural.encode(["a", "b"], 0)
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match="seed"):
            natural.encode(x, seed)
    with pytest.raises(TypeError, match="seed"):
        natural.encode(x, 1.0)
    with pytest.raises(ValueError, match="n_threads"):
        natural.encode(x, 0, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        natural.encode(x, 0, n_threads=True)
    for out in (np.empty(3, np.uint16), np.empty(4, np.int16), np.empty(8, np.uint16)[::2]):
        with pytest.raises(ValueError, match="out"):
            natural.encode_into(x, 0, out)
    with pytest.raises(ValueError, match="random_bits"):
        natural.py_encode_bits(x, np.full(4, 1 << 52, np.uint64))


def test_malformed_codes_are_rejected():
    good = natural.encode(np.array([1.5, -2.5, 0.0]), 0)
    for bad in (0x3FF1, 0x7FF0, 0xFFF0, 0x000F):
        codes = good.copy()
        codes[1] = bad
        with pytest.raises(ValueError, match=r"packed\[1\]"):
            natural.decode(codes)
        out = np.arange(3.0)
        with pytest.raises(ValueError, match=r"packed\[1\]"):
            natural.decode_add(codes, out)
        assert np.array_equal(out, np.arange(3.0))
    with pytest.raises(TypeError, match="uint16"):
        natural.decode(good.astype(np.int32))
    with pytest.raises(ValueError, match="1-d"):
        natural.decode(good.reshape(1, 3))
    for out in (np.zeros(2), np.zeros(3, np.float32), np.zeros(6)[::2]):
        with pytest.raises(ValueError, match="out"):
            natural.decode_add(good, out)


# ---------------------------------------------------------------- the packed format


def test_packed_format_round_trip():
    x = random_doubles(10_000, 15)
    codes = natural.encode(x, 16)
    d = natural.decode(codes)
    assert codes.dtype == np.uint16 and codes.nbytes == 2 * x.size
    # a code is the top 16 bits of the rounded double; the low 4 (mantissa) are zero
    assert np.array_equal(codes, (d.view(np.uint64) >> np.uint64(48)).astype(np.uint16))
    assert not np.any(codes & 0xF)
    # through bytes, as a transport moves it
    assert same_bits(natural.decode(np.frombuffer(codes.tobytes(), np.uint16)), d)
    # rounded values are fixed points, whatever the seed
    assert np.array_equal(natural.encode(d, 99), codes)
    out = np.full(x.size, 0.5)
    assert same_bits(natural.decode_add(codes, out), 0.5 + d)


def test_empty_input():
    codes = natural.encode(np.zeros(0), 0, n_threads=2)
    assert codes.dtype == np.uint16 and codes.shape == (0,)
    assert natural.decode(codes).shape == (0,)
    assert natural.decode_add(codes, np.zeros(0)).shape == (0,)
    assert natural.encode_into([], 0, np.zeros(0, np.uint16)).shape == (0,)


# ---------------------------------------------------------------- the codec


def test_byte_counts_of_the_codecs():
    assert Dense(np.zeros(10)).nbytes == 80
    assert Rows(np.array([0, 3], np.int32), np.zeros((2, 4))).nbytes == 2 * 8 + 8 * 8
    assert Sparse(np.array([1, 5, 7]), np.zeros(3)).nbytes == 3 * 8 + 3 * 8
    assert Natural.encode(Dense(np.ones(10)), 0).nbytes == 20
    assert Natural.encode(Rows(np.array([0, 3]), np.ones((2, 4))), 0).nbytes == 2 * 8 + 8 * 2
    assert Natural.encode(Sparse(np.array([1, 5, 7]), np.ones(3)), 0).nbytes == 3 * 8 + 3 * 2


def test_natural_codec_wraps_every_kind():
    g = np.random.default_rng(17)
    size, row_size = 12, 3
    rows = np.array([0, 2, 3])
    indices = np.array([1, 4, 11])
    for change in (Dense(g.normal(size=size)), Rows(rows, g.normal(size=(3, row_size))),
                   Sparse(indices, g.normal(size=3))):
        nat = Natural.encode(change, 21, n_threads=2)
        rounded = natural.decode(natural.encode(np.ravel(change.values), 21))
        decoded = nat.decoded()
        assert type(decoded) is type(change) and decoded.values.shape == np.shape(change.values)
        assert np.array_equal(decoded.values.ravel(), rounded)
        expected = change.with_values(rounded.reshape(np.shape(change.values))).dense(size, row_size)
        assert np.array_equal(nat.dense(size, row_size), expected)
        base = g.normal(size=size)
        out = base.copy()
        nat.add_to(out, row_size)
        assert np.array_equal(out, base + expected)
        out = base.copy()
        change.add_to(out, row_size)
        np.testing.assert_array_equal(out, base + change.dense(size, row_size))
