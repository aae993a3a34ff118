"""The SVI kernels (dpsgd._kernels.svi) against NumPy and SciPy."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special as ss

from dpsgd._kernels import svi
from dpsgd.evaluation import infer_doc_topics
from svi_reference import e_step, online_lda


@pytest.fixture(params=["dispatch", "baseline"])
def simd_copy(request):
    """Each test taking this runs twice: with the loops the CPU's dispatch picks (AVX2+FMA
    where it has them), and with the baseline copies forced."""
    svi.use_baseline(request.param == "baseline")
    yield request.param
    svi.use_baseline(False)


def test_digamma_matches_scipy():
    x = np.concatenate([np.logspace(-6, 8, 100_000), np.linspace(1.2, 1.7, 20_001)])  # and around the root
    ours, ref = svi.py_digamma(x), ss.digamma(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)
    assert np.isnan(svi.py_digamma(np.array([0.0, -1.0]))).all()


# exp_psi.h's bound: relative error of exp(psi(x) - c) below 2e-15 (1 + |t|), t = psi(x) - c - log y
# (y = x + 10 below 10, else x), wherever the result is a normal number (measured: 1.1e-15 (1 + |t|))
@pytest.mark.parametrize("c", [0.0, -3.0, 2.5, 18.0])
def test_exp_psi_matches_mpmath_within_its_bound(c, simd_copy):
    mpmath = pytest.importorskip("mpmath")
    x = np.concatenate([np.logspace(-6, 8, 400), np.random.default_rng(0).uniform(0, 20, 300),
                        np.linspace(9.99, 10.01, 21), [1e-300, 1e300]])
    ours = svi.py_exp_psi(x, c)
    with mpmath.workdps(40):
        for xi, o in zip(x, ours):
            t = mpmath.digamma(mpmath.mpf(xi)) - c
            ref = mpmath.exp(t)
            if ref < np.finfo(float).tiny:
                assert o < 1e-300
                continue
            bound = 2e-15 * (1 + abs(float(t - mpmath.log(xi + 10 if xi < 10 else xi))))
            assert abs(float((o - ref) / ref)) < bound, (xi, c, o, ref)


def test_exp_psi_matches_scipy(simd_copy):
    """The E-step's exp(E[log theta]) and exp(E[log beta]): relative error below 1e-12 for x
    from 1e-6 to 1e8 (SciPy's digamma itself is off by up to 3e-13 in exp where psi is near -700)."""
    rng = np.random.default_rng(1)
    x = np.concatenate([np.logspace(-6, 8, 100_000), np.linspace(9.5, 10.5, 2001), rng.uniform(0, 30, 10_000)])
    for c in [0.0, -5.0, 3.0, 17.0]:
        ref = np.exp(ss.digamma(x) - c)
        np.testing.assert_allclose(svi.py_exp_psi(x, c), ref, rtol=1e-12, atol=1e-300)
    sub = rng.uniform(-2, 18, x.size)  # a vector of offsets, as for E[log beta]
    np.testing.assert_allclose(svi.py_exp_psi(x, sub), np.exp(ss.digamma(x) - sub), rtol=1e-12, atol=1e-300)
    # whole-vector lengths that leave remainders for the vector loops' tails
    for n in range(1, 12):
        np.testing.assert_allclose(svi.py_exp_psi(x[:n] * 3, 1.0), np.exp(ss.digamma(x[:n] * 3) - 1.0), rtol=1e-12)
    edge = svi.py_exp_psi(np.array([0.0, -1.0, np.nan, np.inf, 1e-6, 1e-300]), 0.0)
    assert np.isnan(edge[:3]).all() and edge[3] == np.inf and (edge[4:] == 0).all()


# The E-step runs in single precision (estep.h) and these references in double: a float's
# rounding (6e-8) in each iteration's pass, exp(E[log theta]) and exp(E[log beta]) (within
# 3e-6 (1 + |log v|), below), carried through the iterations and the steps. Measured on these
# corpora: at most 3.8e-7 (lambda after 3 steps; 5.6e-7 gamma), 2.6e-6 (one step's term),
# 3.4e-7 (gamma with fixed topics), 1.2e-6 (their sufficient statistics).
RTOL = 2e-5


def test_estep_etheta_matches_scipy_within_its_bound(simd_copy):
    """exp(E[log theta]) in single precision (estep.h): within 3e-6 (1 + |log v|) of SciPy's
    exp(psi(g) - psi(sum g)) in double, for gamma over 1e-3..1e6 (sums below 1 to 1e7); values
    below the floor 2^-63 are 0 and nothing between is; x <= 0 or NaN gives NaN; sums beyond the
    float path's range (psi beyond +-80) take the double path."""
    rng = np.random.default_rng(0)
    floor = 2.0**-63
    for scale in [1e-3, 1e-2, 0.1, 1, 10, 1e3, 1e6]:
        for K in (5, 13, 50):
            g = rng.gamma(0.5, scale, (500, K)) + 1e-3
            ref = np.exp(ss.digamma(g) - ss.digamma(g.sum(axis=1, keepdims=True)))
            got = svi.py_estep_etheta(g).astype(np.float64)
            assert got.shape == g.shape
            assert (got[ref < floor * 0.999] == 0).all() and (got[ref > floor * 1.001] > 0).all()
            v = ref > floor * 1.001
            if v.any():
                np.testing.assert_array_less(np.abs(got[v] / ref[v] - 1), 3e-6 * (1 + np.abs(np.log(ref[v]))))
    edge = svi.py_estep_etheta(np.array([[0.0, 1.0], [np.nan, 1.0], [1e-300, 1e-300], [1e40, 1.0]]))
    assert np.isnan(edge[0, 0]) and edge[0, 1] == pytest.approx(1.0) and np.isnan(edge[1]).all()
    assert (edge[2] == 0).all() and edge[3].tolist() == [1.0, 0.0]  # the double path


def test_estep_beta_matches_scipy_within_its_bound(simd_copy):
    """A word's row of exp(E[log beta]) in single precision (estep.h): exp(psi(x) - c) scaled
    by a power of 2 with its largest value in [1, 2), eps = EPS times that scale (so that the
    E-step's n e / (etheta . e + eps) is scikit-learn's); each value within 3e-6 (1 + |log v|)
    of SciPy's in double, v = exp(psi(x) - c) (measured: 3.6e-7), for lambda over 1e-2..1e5
    and psi sums from -4.6 to 20, rare words' rows (every value far below a float's range)
    included; values below the floor 2^-63 of the largest are 0. Out of the float path's range
    (x beyond [1e-30, 1e30] or NaN, psi beyond +-80): the double path, scaled to a largest 1."""
    rng = np.random.default_rng(3)
    floor = 2.0**-63
    for K in (3, 8, 13, 50):
        for scale in (1e-3, 0.3, 30, 1e5):
            x = rng.gamma(0.3, scale, (300, K)) + 1e-2
            x[:5] = rng.uniform(1e-2, 2e-2, (5, K))  # never seen by a topic: exp(psi) near exp(-100)
            x[5] = 1e-3  # exp(-1000): far below EPS / FLT_MAX, so eps = inf and the word adds nothing
            psi = ss.digamma(rng.gamma(5, 20, K) * rng.choice([1e-2, 1.0, 1e8]))
            got, eps = svi.py_estep_beta(x, psi)
            assert got.shape == x.shape and got.dtype == np.float32
            logv = ss.digamma(x) - psi
            assert eps[5] == np.inf and np.isfinite(eps[np.arange(300) != 5]).all()
            got, eps, logv = np.delete(got, 5, 0).astype(np.float64), np.delete(eps, 5), np.delete(logv, 5, 0)
            scale = eps.astype(np.float64) / np.finfo(np.float64).eps  # got = v * scale, a power of 2
            assert np.all(np.log2(scale) % 1 == 0)
            top = got.max(axis=1)
            assert (top >= 1).all() and (top < 2).all()
            rel = logv + np.log(scale)[:, None]  # log of the stored value expected
            seen = rel > np.log(floor) + 1e-3
            assert (got[rel < np.log(floor) - 1e-3] == 0).all()
            err = np.abs(got[seen] / np.exp(rel[seen]) - 1)
            np.testing.assert_array_less(err, 3e-6 * (1 + np.abs(logv[seen])))
    edge_x = np.array([[1e-31, 1.0, 2.0], [np.nan, 1.0, 2.0], [1e31, 1.0, 2.0], [0.5, 1.0, 2.0]])
    got, eps = svi.py_estep_beta(edge_x, np.array([1.0, 2.0, 3.0]))
    ref = np.exp(ss.digamma(edge_x[[0, 2, 3]]) - [1.0, 2.0, 3.0])
    ref /= ref.max(axis=1, keepdims=True)
    ref[ref < floor] = 0
    np.testing.assert_allclose(got[[0, 2]], ref[:2], rtol=1e-6)  # the double path
    assert np.isnan(got[1, 0])  # the double path keeps a NaN (the document then fails)
    np.testing.assert_allclose(got[3] / got[3].max(), ref[2], rtol=3e-6)
    got, eps = svi.py_estep_beta(edge_x[3:], np.array([1.0, 2.0, 90.0]))  # psi beyond the float path's
    top = np.exp(ss.digamma(edge_x[3]) - [1.0, 2.0, 90.0]).max()
    assert got.max() == 1.0 and eps[0] == np.float32(np.finfo(np.float64).eps / top)


def small_corpus(D=30, V=40, seed=1, density=0.2):
    rng = np.random.default_rng(seed)
    X = sp.random(D, V, density=density, format="csr", random_state=seed)
    X.data = np.ceil(rng.random(X.nnz) * 5)
    X = X.tocsr()
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int64)
    return X


def run_kernel(X, lam0, batches, mode, n_threads, *, alpha=0.1, eta=0.05, tau0=10.0, kappa=0.7, seed=5, max_iter=200,
               keep_rows=-1, entry_bits=31):
    K = lam0.shape[0]
    lam = np.ascontiguousarray(lam0.T)
    lam_sum = lam.sum(axis=0)
    rho = (tau0 + 1 + np.arange(len(batches))) ** -kappa
    scale = np.concatenate(([1.0], np.cumprod(1 - rho)))
    sizes = np.array([len(b) for b in batches])
    gamma = np.zeros((X.shape[0], K))
    done, iters, status = svi.svi_run(
        X.data, X.indices, X.indptr, np.concatenate(batches).astype(np.int64),
        np.concatenate(([0], np.cumsum(sizes))).astype(np.int64), lam, lam_sum, gamma, scale, rho,
        X.shape[0] / sizes, svi.Scratch(), mode=int(mode), alpha=alpha, eta=eta, max_iter=max_iter, tol=1e-3, seed=seed,
        n_threads=n_threads, keep_rows=keep_rows, entry_bits=entry_bits)
    assert status == 0 and done == len(batches) and iters > 0
    np.testing.assert_allclose(lam_sum, lam.sum(axis=0), rtol=1e-12)
    return lam.T, gamma


ALL = 10**9  # keep_rows: every row of a minibatch kept


@pytest.mark.parametrize("keep_rows", [0, 7, ALL])
@pytest.mark.parametrize("mode,n_threads", [(svi.Mode.BATCH, 1), (svi.Mode.BATCH, 2), (svi.Mode.BATCH, 3),
                                            (svi.Mode.HOGWILD, 1)])
def test_svi_kernel_matches_numpy_reference(mode, n_threads, keep_rows, simd_copy):
    """Three steps, the minibatches' rows of exp(E[log beta]) kept, computed a document at a
    time, or so but for 7 cached rows. Every document converges within max_iter: one stopped by it mid-way (one here needs
    116 iterations) carries the float rounding further (6.5e-5 in lambda at max_iter = 100)."""
    X = small_corpus()
    lam0 = np.random.default_rng(2).gamma(100, 0.01, (4, X.shape[1]))
    batches = [np.arange(0, 10), np.arange(10, 20), np.arange(20, 30)]
    lam, gamma = run_kernel(X, lam0, batches, mode, n_threads, keep_rows=keep_rows)
    ref_lam, ref_gamma = online_lda(X, batches, lam0, alpha=0.1, eta=0.05, tau0=10.0, kappa=0.7, t_start=1,
                                    total=X.shape[0], max_iter=200, tol=1e-3, seed=5)
    np.testing.assert_allclose(lam, ref_lam, rtol=RTOL)
    for d, g in ref_gamma.items():
        np.testing.assert_allclose(gamma[d], g, rtol=RTOL)
    assert np.abs(ref_lam - lam0).max() > 0.1  # the steps did move lambda


@pytest.mark.parametrize("keep_rows,entry_bits", [(0, 31), (4, 31), (ALL, 31), (4, 0)])
@pytest.mark.parametrize("mode,n_threads,blocks", [
    (svi.Mode.BATCH, 1, 1), (svi.Mode.BATCH, 2, 1), (svi.Mode.BATCH, 3, 1), (svi.Mode.HOGWILD, 2, 2)])
def test_scratch_is_sized_by_the_largest_minibatch(mode, n_threads, blocks, keep_rows, entry_bits):
    """The scratch holds each thread's K-vectors and room, and blocks (BATCH: one; HOGWILD: one
    a thread) of a minibatch: its documents' exp(E[log theta]) in floats, its non-zeros grouped
    by word (one int32 each, two where the entries are not packed), and its words' rows of
    exp(E[log beta]) where they are kept, else a thread's rows for its largest document.
    Nothing of vocabulary x K doubles (no accumulators), and nothing with K per non-zero of a
    minibatch."""
    X = small_corpus(D=40, V=12, seed=7, density=0.9)  # a minibatch of 10 documents: ~9 non-zeros a word
    lam0 = np.random.default_rng(1).gamma(100, 0.01, (3, X.shape[1]))
    batches = [np.arange(i, i + 10) for i in range(0, 40, 10)]
    vocab = max(np.unique(X[b].indices).size for b in batches)
    nnz = max(X[b].nnz for b in batches)
    doc = np.diff(X.indptr).max()
    scratch = svi.Scratch()
    lam = np.ascontiguousarray(lam0.T)
    rho = (11 + np.arange(4)) ** -0.7
    svi.svi_run(X.data, X.indices, X.indptr, np.concatenate(batches).astype(np.int64),
                np.arange(0, 41, 10, dtype=np.int64), lam, lam.sum(axis=0), np.zeros((0, 3)),
                np.concatenate(([1.0], np.cumprod(1 - rho))), rho, np.full(4, 4.0), scratch, mode=int(mode),
                alpha=0.1, eta=0.05, max_iter=100, tol=1e-3, seed=1, n_threads=n_threads, keep_rows=keep_rows,
                entry_bits=entry_bits)
    head = 32  # 5 K + 8 doubles and 2 R floats (R = 8: K rounded up to a vector of 8), in whole 64-byte lines
    assert scratch.doubles.size == n_threads * head
    assert scratch.floats.dtype == np.float32
    # a block: psi's split (R), 10 documents' R, the kept rows of R and their eps; a room
    # where not every row is kept: a document's rows and their eps, in whole 64-byte lines
    kept = min(keep_rows, vocab)
    rooms = 0 if kept == vocab else n_threads * -(-doc * 9 // 16) * 16
    assert scratch.floats.size == blocks * (8 + 10 * 8 + kept * 9) + rooms
    # word map, vocabulary, the rows' starts and the non-zeros' documents and offsets, psi's
    # split (R), and a cache's slot of each word and word of each slot; a room's R exponents,
    # in a whole line
    cache = vocab + kept if 0 < kept < vocab else 0
    entries = nnz if entry_bits else 2 * nnz
    assert scratch.ints.size == blocks * (X.shape[1] + 2 * vocab + 1 + entries + 8 + cache) + n_threads * 16


@pytest.mark.parametrize("mode,n_threads", [(svi.Mode.BATCH, 1), (svi.Mode.BATCH, 3), (svi.Mode.HOGWILD, 1)])
def test_rows_kept_or_computed_a_document_at_a_time_agree(mode, n_threads):
    """The minibatch's rows of exp(E[log beta]) kept, computed by each document for its
    non-zeros and by the step for its words, or so but for the most frequent words' (cached):
    the same rows of the same lambda, so the same lambda bit for bit. The choice follows the
    memory the kept rows would take (at most a tenth of the model and data): 3,000 words'
    rows not kept for 50 documents, kept for 2,000."""
    X = small_corpus(D=40, V=30, seed=6)
    lam0 = np.random.default_rng(7).gamma(2.0, 1.0, (5, X.shape[1]))
    batches = [np.arange(i, i + 8) for i in range(0, 40, 8)]
    kept, g1 = run_kernel(X, lam0, batches, mode, n_threads, keep_rows=ALL)
    for cached in (0, 1, 6, 12):
        each, g0 = run_kernel(X, lam0, batches, mode, n_threads, keep_rows=cached)
        assert np.array_equal(kept, each) and np.array_equal(g1, g0)

    def floats(X, K):
        scratch = svi.Scratch()
        lam = np.ones((X.shape[1], K))
        svi.svi_run(X.data, X.indices, X.indptr, np.arange(X.shape[0], dtype=np.int64),
                    np.array([0, X.shape[0]], dtype=np.int64), lam, lam.sum(axis=0), np.zeros((0, K)),
                    np.array([1.0, 0.5]), np.array([0.5]), np.array([1.0]), scratch, mode=int(svi.Mode.BATCH),
                    alpha=0.1, eta=0.05, max_iter=5, tol=1e-3, seed=1, n_threads=1)
        return scratch.floats.size

    # 50 documents of 60 words among 3,000: rows 3,000 x 9 floats, against a tenth of 3,000 x 8
    # doubles and 3,000 non-zeros of 12 bytes: not kept (a room of 60 rows)
    wide = sp.csr_matrix((np.ones(3000), np.arange(3000, dtype=np.int32), np.arange(0, 3001, 60)), shape=(50, 3000))
    wide.indptr = wide.indptr.astype(np.int64)
    assert floats(wide, 8) == 8 + 50 * 8 + -(-60 * 9 // 16) * 16
    # the same words in 2,000 documents (each word in 40): the data allows the rows
    many = sp.vstack([wide] * 40, format="csr")
    many.indices, many.indptr = many.indices.astype(np.int32), many.indptr.astype(np.int64)
    assert floats(many, 8) == 8 + 2000 * 8 + 3000 * 9


@pytest.mark.parametrize("mode,n_threads", [(svi.Mode.BATCH, 1), (svi.Mode.BATCH, 3), (svi.Mode.HOGWILD, 2)])
def test_entries_packed_or_in_pairs_agree(mode, n_threads):
    """The M-step's non-zeros grouped by word hold a document's position j and offset in one
    int32 where both fit (here 4 bits for 12 documents of a minibatch, 5 for offsets up to
    23), else two int32s: the same lambda bit for bit at every width (HOGWILD: 2 threads are
    not bit-reproducible, one is checked)."""
    X = small_corpus(D=36, V=30, seed=6, density=0.7)
    assert np.diff(X.indptr).max() in range(17, 33)  # offsets of 5 bits
    lam0 = np.random.default_rng(7).gamma(2.0, 1.0, (5, X.shape[1]))
    batches = [np.arange(i, i + 12) for i in range(0, 36, 12)]
    threads = 1 if mode == svi.Mode.HOGWILD else n_threads
    packed, gamma = run_kernel(X, lam0, batches, mode, threads)
    for bits in (9, 8, 0):  # just enough, one short, none
        each, g = run_kernel(X, lam0, batches, mode, threads, entry_bits=bits)
        assert np.array_equal(packed, each) and np.array_equal(gamma, g)
    if mode == svi.Mode.HOGWILD:
        lam, _ = run_kernel(X, lam0, batches, mode, n_threads, entry_bits=0)
        assert lam.sum() == pytest.approx(packed.sum(), rel=1e-6)
    # the scratch's entries: one int32 a non-zero with 9 bits, two with 8
    ints = []
    for bits in (9, 8):
        scratch = svi.Scratch()
        lam = np.ascontiguousarray(lam0.T)
        svi.svi_run(X.data, X.indices, X.indptr, np.arange(12, dtype=np.int64), np.array([0, 12], dtype=np.int64),
                    lam, lam.sum(axis=0), np.zeros((0, 5)), np.array([1.0, 0.5]), np.array([0.5]), np.array([3.0]),
                    scratch, mode=int(mode), alpha=0.1, eta=0.05, max_iter=5, tol=1e-3, seed=1, n_threads=n_threads,
                    entry_bits=bits)
        ints.append(scratch.ints.size)
    assert ints[1] - ints[0] == (n_threads if mode == svi.Mode.HOGWILD else 1) * X[:12].nnz
    # svi_step (a rank's step) packs them as svi_run does
    docs = np.arange(5, 17, dtype=np.int64)
    local = np.full(X.shape[1], -1, dtype=np.int32)
    words = svi.batch_words(X.indices, X.indptr, docs, local)
    pulled = np.vstack([lam0.T[words], lam0.T.sum(axis=0)])
    terms = []
    for bits in (31, 0):
        term = np.zeros_like(pulled)
        svi.svi_step(X.data, X.indices, X.indptr, docs, local, pulled, 0.9, 0.8, 0.1, 3.0, X.shape[1], term,
                     svi.Scratch(), alpha=0.1, eta=0.05, max_iter=100, tol=1e-3, seed=9, n_threads=n_threads,
                     entry_bits=bits)
        terms.append(term)
    assert np.array_equal(terms[0], terms[1]) and terms[0].any()
    with pytest.raises(ValueError, match="entry_bits"):
        run_kernel(X, lam0, batches, mode, threads, entry_bits=32)


def test_scratch_is_reused_across_calls_of_any_size():
    """One Scratch serves calls of other vocabularies and modes (the word maps are reset by
    the kernel): each result equals the one with a fresh Scratch."""
    big, small = small_corpus(D=30, V=40, seed=1), small_corpus(D=20, V=9, seed=2)
    scratch = svi.Scratch()
    for X, mode in [(big, svi.Mode.HOGWILD), (small, svi.Mode.BATCH), (big, svi.Mode.BATCH), (small, svi.Mode.HOGWILD)]:
        lam0 = np.random.default_rng(3).gamma(100, 0.01, (4, X.shape[1]))
        outs = []
        for s in (scratch, svi.Scratch()):
            lam = np.ascontiguousarray(lam0.T)
            rho = (11 + np.arange(2)) ** -0.7
            half = X.shape[0] // 2
            svi.svi_run(X.data, X.indices, X.indptr, np.arange(X.shape[0], dtype=np.int64),
                        np.array([0, half, X.shape[0]], dtype=np.int64), lam, lam.sum(axis=0), np.zeros((0, 4)),
                        np.concatenate(([1.0], np.cumprod(1 - rho))), rho, np.full(2, 2.0), s, mode=int(mode),
                        alpha=0.1, eta=0.05, max_iter=100, tol=1e-3, seed=1, n_threads=1)
            outs.append(lam)
        np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12)


@pytest.mark.parametrize("keep_rows", [0, 5, ALL])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_svi_step_pushes_the_reference_step_on_scaled_rows(n_threads, keep_rows, simd_copy):
    """svi_step (a rank's global step): from the scaled rows pulled at a version, the term it
    adds is rho D/|B| S / A_{j+1} on the minibatch's words (S: the reference E-step's
    statistics against the true topics) with its column sums: the term that, added to the
    scaled topics, makes the true form's step (test_scaled_topics_agree_with_the_true_form
    in test_lda.py). Negative scaled entries (compressed gossip's rounding) are
    read as 0, as ScaledTopics.topics reads them."""
    from dpsgd.tasks.lda_state import ScaledTopics, step_sizes

    X = small_corpus(D=30, V=40, seed=4)
    K, V, eta, alpha = 4, X.shape[1], 0.05, 0.1
    rng = np.random.default_rng(8)
    state = ScaledTopics(V, K, eta, step_sizes(3 + np.arange(20), 10.0, 0.7))
    version, j = 5, 7  # read at 5, step 7 (two pushes landed in between)
    scaled = rng.gamma(2.0, 1.0, (V, K))
    scaled[3, 1] = -1e-3  # as natural compression's rounding can leave it
    # the sums row as the exchange keeps it (of the entries read: the kernel takes it as pulled)
    flat = np.concatenate([scaled.ravel(), np.maximum(scaled, 0).sum(axis=0)])
    true = state.topics(flat, version)  # (K, V), negatives read at 0
    docs = np.array([2, 5, 11, 17, 23], dtype=np.int64)
    local = np.full(V, -7, dtype=np.int32)
    words = svi.batch_words(X.indices, X.indptr, docs, local)
    assert np.array_equal(words, np.unique(np.concatenate([X[d].indices for d in docs])))
    assert np.array_equal(local[words], np.arange(words.size))
    rows = np.append(words, V)
    pulled = flat.reshape(V + 1, K)[rows]
    term = np.zeros_like(pulled)
    ratio = X.shape[0] / docs.size
    iters, status = svi.svi_step(X.data, X.indices, X.indptr, docs, local, pulled, state.scale_at(version),
                                 state.scale_at(j + 1), state.rho[j], ratio, V, term, svi.Scratch(), alpha=alpha,
                                 eta=eta, max_iter=100, tol=1e-3, seed=9, n_threads=n_threads, keep_rows=keep_rows)
    assert status == 0 and iters > 0
    _, S = e_step(X[docs], range(docs.size), true, alpha, 100, 1e-3, 9)  # docs[i]'s gamma: stream i
    expected = state.rho[j] * ratio * S[:, words].T / state.scale_at(j + 1)
    np.testing.assert_allclose(term[:-1], expected, rtol=RTOL)
    np.testing.assert_allclose(term[-1], expected.sum(axis=0), rtol=RTOL)
    # the whole matrix pulled (the server on one machine): the same term, on the words' own rows
    whole = np.zeros((V + 1, K))
    svi.svi_step(X.data, X.indices, X.indptr, docs, local, flat.reshape(V + 1, K), state.scale_at(version),
                 state.scale_at(j + 1), state.rho[j], ratio, V, whole, svi.Scratch(), alpha=alpha, eta=eta,
                 max_iter=100, tol=1e-3, seed=9, n_threads=n_threads, words=words, keep_rows=keep_rows)
    np.testing.assert_allclose(whole[rows], term, rtol=1e-10)
    assert not whole[np.setdiff1d(np.arange(V), words)].any()
    with pytest.raises(ValueError, match="every row"):
        svi.svi_step(X.data, X.indices, X.indptr, docs, local, pulled, 1.0, 1.0, 0.5, 1.0, V, np.zeros_like(pulled),
                     svi.Scratch(), alpha=alpha, eta=eta, max_iter=10, tol=1e-3, seed=0, n_threads=1, words=words)
    with pytest.raises(ValueError, match="no pulled row"):  # a word whose row is not where local says
        svi.svi_step(X.data, X.indices, X.indptr, docs, local, flat.reshape(V + 1, K), 1.0, 1.0, 0.5, 1.0, V,
                     np.zeros((V + 1, K)), svi.Scratch(), alpha=alpha, eta=eta, max_iter=10, tol=1e-3, seed=0,
                     n_threads=1, words=words[::-1].copy())
    with pytest.raises(ValueError, match="no pulled row"):
        bad = local.copy()
        bad[words[0]] = words.size  # beyond the pulled rows
        svi.svi_step(X.data, X.indices, X.indptr, docs, bad, pulled, 1.0, 1.0, 0.5, 1.0, V, np.zeros_like(pulled),
                     svi.Scratch(), alpha=alpha, eta=eta, max_iter=10, tol=1e-3, seed=0, n_threads=1)


@pytest.mark.parametrize("keep_rows", [0, 6, ALL])
def test_hogwild_threads_apply_every_step(keep_rows):
    """With several hogwild threads the reads are stale, but every minibatch's step
    lands: the total mass added equals what the steps' sufficient statistics say. (Run a few
    times: each thread's minibatch state must be its own, whatever the interleaving.)"""
    X = small_corpus(D=60, V=30, seed=3)
    lam0 = np.random.default_rng(4).gamma(100, 0.01, (3, X.shape[1]))
    batches = [np.arange(i, i + 5) for i in range(0, 60, 5)]
    one, _ = run_kernel(X, lam0, batches, svi.Mode.HOGWILD, 1, keep_rows=keep_rows)
    for _ in range(5):
        lam, _ = run_kernel(X, lam0, batches, svi.Mode.HOGWILD, 2, keep_rows=keep_rows)
        # each step moves total mass towards eta * V + D * (tokens per doc in the batch)
        assert np.all(np.isfinite(lam)) and lam.min() > 0
        # sstats of a doc sum to its token count (up to a float's rounding of each word's dot product)
        assert lam.sum() == pytest.approx(one.sum(), rel=1e-6)


@pytest.mark.parametrize("K", [4, 8, 13])  # rows of floats padded to 8, 8 and 16 lanes (estep.h)
def test_estep_inference_matches_reference(K, simd_copy):
    X = small_corpus()
    lam = np.random.default_rng(5).gamma(2.0, 1.0, (K, X.shape[1]))
    gamma = infer_doc_topics(lam, X, 0.1, seed=7)
    ref, _ = e_step(X, range(X.shape[0]), lam, 0.1, 100, 1e-3, 7)
    for d, g in ref.items():
        np.testing.assert_allclose(gamma[d], g, rtol=RTOL)


def test_estep_weighs_improbable_words_as_scikit_learn_does(simd_copy):
    """scikit-learn's E-step adds machine epsilon (EPS) to each word's dot product, so a word
    whose exp(E[log beta]) is about 1e-20 in every topic (lambda = 0.025 where the topics have
    not seen it) still moves gamma by about 1e-4 of its count. In floats such a row would be
    flushed to 0 (products below 2^-126 are), dropping the word (2.9e-4 relative change of
    gamma on this corpus). The kernel stores each row divided by its largest value, with EPS
    divided by it too, so these words weigh as in double precision, as do words seen by one
    topic (rows from about 0.05 down to 1e-20)."""
    X = small_corpus(D=20, V=30, seed=9, density=0.3)
    rng = np.random.default_rng(10)
    lam = np.full((6, X.shape[1]), 0.025)
    lam[:, :10] = rng.gamma(2.0, 5.0, (6, 10))  # words seen by every topic
    lam[rng.integers(0, 6, 10), np.arange(10, 20)] = 30.0  # words seen by one topic; words 20-29 by none
    eb = np.exp(ss.digamma(lam) - ss.digamma(lam.sum(axis=1))[:, None])
    assert eb[:, 20:].max() < 2.0**-63 and eb[:, 10:20].max(axis=0).min() > 1e-3
    assert X[:, 20:].nnz > 0 and X[:, 10:20].nnz > 0
    gamma = infer_doc_topics(lam, X, 0.1, seed=3)
    ref, _ = e_step(X, range(X.shape[0]), lam, 0.1, 100, 1e-3, 3)
    for d, g in ref.items():
        np.testing.assert_allclose(gamma[d], g, rtol=RTOL)


def test_estep_reads_zero_topic_entries_as_impossible_words(simd_copy):
    """A topic-word matrix from elsewhere (true topics, another library's) may hold exact
    zeros: exp(E[log beta]) is then exp(psi(0)) = 0, as SciPy gives it, not an error."""
    X = small_corpus()
    lam = np.random.default_rng(11).gamma(2.0, 1.0, (4, X.shape[1]))
    lam[0, :8] = 0.0
    lam[2, 5:20] = 0.0
    gamma = infer_doc_topics(lam, X, 0.1, seed=2)
    ref, _ = e_step(X, range(X.shape[0]), lam, 0.1, 100, 1e-3, 2)
    for d, g in ref.items():
        np.testing.assert_allclose(gamma[d], g, rtol=RTOL)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_estep_sufficient_statistics_match_reference(n_threads, simd_copy):
    """ESTEP with ``sstats`` gives what full-batch variational EM needs: the reference
    E-step's sufficient statistics (whatever ``sstats`` held before)."""
    X = small_corpus()
    lam = np.random.default_rng(6).gamma(2.0, 1.0, (4, X.shape[1]))
    word_major = np.ascontiguousarray(lam.T)
    sstats = np.full_like(word_major, 7.0)
    _, _, status = svi.svi_run(
        X.data, X.indices, X.indptr, np.arange(X.shape[0], dtype=np.int64), np.array([0, X.shape[0]]),
        word_major, lam.sum(axis=1), np.zeros((0, 4)), np.ones(1), np.zeros(0), np.zeros(0), svi.Scratch(),
        mode=int(svi.Mode.ESTEP), alpha=0.1, eta=0.0, max_iter=100,
        tol=1e-3, seed=7, n_threads=n_threads, sstats=sstats)
    _, ref = e_step(X, range(X.shape[0]), lam, 0.1, 100, 1e-3, 7)
    assert status == 0
    np.testing.assert_allclose(sstats.T, ref, rtol=RTOL)
    with pytest.raises(ValueError, match="sstats must be"):
        svi.svi_run(X.data, X.indices, X.indptr, np.arange(3, dtype=np.int64), np.array([0, 3]), word_major,
                    lam.sum(axis=1), np.zeros((0, 4)), np.ones(1), np.zeros(0), np.zeros(0), svi.Scratch(),
                    mode=int(svi.Mode.ESTEP), alpha=0.1, eta=0.0, max_iter=100,
                    tol=1e-3, seed=7, n_threads=1, sstats=np.zeros((2, 4)))
