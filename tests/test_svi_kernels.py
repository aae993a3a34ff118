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
# rounding (6e-8) in each iteration's pass and exp(E[log theta]) (within 3e-6 (1 + |log v|),
# below), carried through the iterations and the steps. Measured on these corpora: at most
# 5.9e-6 (lambda after 3 steps), 2.7e-6 (one step's term), 3.4e-7 (gamma with fixed topics),
# 1.2e-6 (their sufficient statistics).
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


def small_corpus(D=30, V=40, seed=1, density=0.2):
    rng = np.random.default_rng(seed)
    X = sp.random(D, V, density=density, format="csr", random_state=seed)
    X.data = np.ceil(rng.random(X.nnz) * 5)
    X = X.tocsr()
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int64)
    return X


def run_kernel(X, lam0, batches, mode, n_threads, *, alpha=0.1, eta=0.05, tau0=10.0, kappa=0.7, seed=5):
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
        X.shape[0] / sizes, svi.Scratch(), mode=int(mode), alpha=alpha, eta=eta, max_iter=100, tol=1e-3, seed=seed, n_threads=n_threads)
    assert status == 0 and done == len(batches) and iters > 0
    np.testing.assert_allclose(lam_sum, lam.sum(axis=0), rtol=1e-12)
    return lam.T, gamma


@pytest.mark.parametrize("mode,n_threads", [(svi.Mode.BATCH, 1), (svi.Mode.BATCH, 2), (svi.Mode.BATCH, 3),
                                            (svi.Mode.HOGWILD, 1)])
def test_svi_kernel_matches_numpy_reference(mode, n_threads, simd_copy):
    X = small_corpus()
    lam0 = np.random.default_rng(2).gamma(100, 0.01, (4, X.shape[1]))
    batches = [np.arange(0, 10), np.arange(10, 20), np.arange(20, 30)]
    lam, gamma = run_kernel(X, lam0, batches, mode, n_threads)
    ref_lam, ref_gamma = online_lda(X, batches, lam0, alpha=0.1, eta=0.05, tau0=10.0, kappa=0.7, t_start=1,
                                    total=X.shape[0], max_iter=100, tol=1e-3, seed=5)
    np.testing.assert_allclose(lam, ref_lam, rtol=RTOL)
    for d, g in ref_gamma.items():
        np.testing.assert_allclose(gamma[d], g, rtol=RTOL)
    assert np.abs(ref_lam - lam0).max() > 0.1  # the steps did move lambda


@pytest.mark.parametrize("mode,n_threads,blocks", [
    (svi.Mode.BATCH, 1, 1), (svi.Mode.BATCH, 2, 1), (svi.Mode.BATCH, 3, 1), (svi.Mode.HOGWILD, 2, 2)])
def test_scratch_is_sized_by_the_largest_minibatch(mode, n_threads, blocks):
    """The scratch holds each thread's K-vectors and blocks (BATCH: one; HOGWILD: one a
    thread) of a minibatch: its words' rows of exp(E[log beta]) and its documents' of
    exp(E[log theta]) in floats, and its non-zeros grouped by word (two int32s each). Nothing
    of vocabulary x K doubles (no accumulators), and nothing with K per non-zero."""
    X = small_corpus(D=40, V=12, seed=7, density=0.9)  # a minibatch of 10 documents: ~9 non-zeros a word
    lam0 = np.random.default_rng(1).gamma(100, 0.01, (3, X.shape[1]))
    batches = [np.arange(i, i + 10) for i in range(0, 40, 10)]
    vocab = max(np.unique(X[b].indices).size for b in batches)
    nnz = max(X[b].nnz for b in batches)
    scratch = svi.Scratch()
    lam = np.ascontiguousarray(lam0.T)
    rho = (11 + np.arange(4)) ** -0.7
    svi.svi_run(X.data, X.indices, X.indptr, np.concatenate(batches).astype(np.int64),
                np.arange(0, 41, 10, dtype=np.int64), lam, lam.sum(axis=0), np.zeros((0, 3)),
                np.concatenate(([1.0], np.cumprod(1 - rho))), rho, np.full(4, 4.0), scratch, mode=int(mode),
                alpha=0.1, eta=0.05, max_iter=100, tol=1e-3, seed=1, n_threads=n_threads)
    head = 32  # 4 K + 8 doubles and 2 R floats (R = 8: K rounded up to a vector of 8), in whole 64-byte lines
    assert scratch.doubles.size == n_threads * head
    assert scratch.floats.dtype == np.float32
    assert scratch.floats.size == blocks * (vocab * (8 + 1) + 10 * 8)  # rows of R and their eps; 10 documents' R
    # word map, vocabulary, the rows' starts and the non-zeros' documents and offsets
    assert scratch.ints.size == blocks * (X.shape[1] + 2 * vocab + 1 + 2 * nnz)


def test_batch_threads_split_the_step_by_words():
    """BATCH's threads add the step a range of words each, every word's shares in the
    documents' order: lambda does not depend on the number of threads, however the documents'
    E-steps fell among them (ranges cut where the words' non-zeros balance: a frequent word may
    make a range alone, and a thread may get none)."""
    dense = small_corpus(D=60, V=50, seed=2, density=0.3).toarray()
    dense[:, 0] = 4.0  # a word in every document: a range of its own
    X = sp.csr_matrix(dense)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int64)
    lam0 = np.random.default_rng(2).gamma(100, 0.01, (5, X.shape[1]))
    batches = [np.arange(0, 20), np.arange(20, 40), np.arange(40, 60)]
    one = run_kernel(X, lam0, batches, svi.Mode.BATCH, 1)[0]
    for n_threads in (2, 3, 8):
        # bit for bit (accumulators summed at the end, as before, were 6.7e-16 apart here); only
        # the column sums are added in other groupings, which could move a float's rounding
        np.testing.assert_array_equal(run_kernel(X, lam0, batches, svi.Mode.BATCH, n_threads)[0], one)


def test_svi_run_checks_the_documents_it_reads():
    """svi_run checks the documents of its call, before any kernel runs (a fit calls it once a
    chunk): a word id beyond lambda's rows or a broken row pointer is an error, not a read out
    of bounds; a bad word in a document the call does not read is not looked at."""
    X = small_corpus(D=6, V=10, seed=3, density=0.5)
    lam = np.random.default_rng(0).gamma(100, 0.01, (10, 3))

    def call(indices, indptr, docs):
        svi.svi_run(X.data, indices, indptr, np.asarray(docs, dtype=np.int64), np.array([0, len(docs)]),
                    lam.copy(), lam.sum(axis=0), np.zeros((0, 3)), np.array([1.0, 0.5]), np.array([0.5]),
                    np.array([6.0]), svi.Scratch(), mode=int(svi.Mode.BATCH), alpha=0.1, eta=0.05, max_iter=10,
                    tol=1e-3, seed=0, n_threads=1)

    bad = X.indices.copy()
    bad[X.indptr[2]] = 10  # document 2's first word
    with pytest.raises(ValueError, match="beyond the vocabulary"):
        call(bad, X.indptr, [0, 2])
    call(bad, X.indptr, [0, 1, 3])  # document 2 not read
    broken = X.indptr.copy()
    broken[3] = -5
    with pytest.raises(ValueError, match="inconsistent CSR"):
        call(X.indices, broken, [2])
    with pytest.raises(ValueError, match="not a document"):
        call(X.indices, X.indptr, [6])


@pytest.mark.parametrize("mode", [svi.Mode.BATCH, svi.Mode.HOGWILD])
def test_a_failed_document_adds_nothing_and_empty_vocabularies_run(mode):
    """A document whose gamma is not finite (counts near the float64 limit) is reported, and
    adds nothing to lambda: its zeroed exp(E[log theta]) must not meet n / eps = inf as 0 * inf.
    A corpus of empty documents over no words runs (the documents' rows still have room)."""
    X = small_corpus(D=12, V=10, seed=5, density=0.5)
    X.data[X.indptr[3]:X.indptr[4]] = 1e308
    lam = np.ascontiguousarray(np.random.default_rng(0).gamma(100, 0.01, (3, 10)).T)
    rho = np.array([0.5])
    done, _, status = svi.svi_run(X.data, X.indices, X.indptr, np.arange(12, dtype=np.int64), np.array([0, 12]),
                                  lam, lam.sum(axis=0), np.zeros((0, 3)), np.array([1.0, 0.5]), rho, np.array([1.0]),
                                  svi.Scratch(), mode=int(mode), alpha=0.1, eta=0.05, max_iter=10, tol=1e-3, seed=0,
                                  n_threads=2)
    assert status == -1 and done == 1 and np.isfinite(lam).all()
    empty = sp.csr_matrix((3, 0))
    scratch = svi.Scratch()
    lam0 = np.zeros((0, 3))
    out = svi.svi_run(empty.data, empty.indices.astype(np.int32), empty.indptr.astype(np.int64),
                      np.arange(3, dtype=np.int64), np.array([0, 3]), lam0, np.zeros(3), np.zeros((3, 3)),
                      np.array([1.0, 0.5]), rho, np.array([1.0]), scratch, mode=int(mode), alpha=0.1, eta=0.05,
                      max_iter=10, tol=1e-3, seed=0, n_threads=1)
    assert out == (1, 0, 0) and scratch.floats.size >= 3 * 8  # three documents' R floats


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


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_svi_step_pushes_the_reference_step_on_scaled_rows(n_threads, simd_copy):
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
                                 eta=eta, max_iter=100, tol=1e-3, seed=9, n_threads=n_threads)
    assert status == 0 and iters > 0
    _, S = e_step(X[docs], range(docs.size), true, alpha, 100, 1e-3, 9)  # docs[i]'s gamma: stream i
    expected = state.rho[j] * ratio * S[:, words].T / state.scale_at(j + 1)
    np.testing.assert_allclose(term[:-1], expected, rtol=RTOL)
    np.testing.assert_allclose(term[-1], expected.sum(axis=0), rtol=RTOL)
    # the whole matrix pulled (the server on one machine): the same term, on the words' own rows
    whole = np.zeros((V + 1, K))
    svi.svi_step(X.data, X.indices, X.indptr, docs, local, flat.reshape(V + 1, K), state.scale_at(version),
                 state.scale_at(j + 1), state.rho[j], ratio, V, whole, svi.Scratch(), alpha=alpha, eta=eta,
                 max_iter=100, tol=1e-3, seed=9, n_threads=n_threads, words=words)
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


def test_hogwild_threads_apply_every_step():
    """With several hogwild threads the reads are stale, but every minibatch's step
    lands: the total mass added equals what the steps' sufficient statistics say."""
    X = small_corpus(D=60, V=30, seed=3)
    lam0 = np.random.default_rng(4).gamma(100, 0.01, (3, X.shape[1]))
    batches = [np.arange(i, i + 5) for i in range(0, 60, 5)]
    lam, _ = run_kernel(X, lam0, batches, svi.Mode.HOGWILD, 2)
    # each step moves total mass towards eta * V + D * (tokens per doc in the batch)
    assert np.all(np.isfinite(lam)) and lam.min() > 0
    one, _ = run_kernel(X, lam0, batches, svi.Mode.HOGWILD, 1)
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
