"""DPSVI estimator: topic recovery, re-seeding, loaders, bad input (scikit-learn parity: test_lda_sklearn.py)."""

import gzip
import time

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import shared_path
from dpsgd import LatentDirichletAllocation, load_model, save_model
from dpsgd._threads import available_threads
from dpsgd.data import load_uci_bow, make_lda_corpus, read_uci_bow_header
from dpsgd.evaluation import match_topics, split_tokens


@pytest.mark.parametrize("parallel", ["batch", "hogwild"])
@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_topic_recovery(parallel, n_threads):
    """Plain online VB on this corpus is bimodal: with Hogwild! threads seed 0 recovered the
    topics (0.9997) in 10 of 10 runs (8 with a busy core), but seeds 1 and 2 merge two topics
    (0.885-0.887, every run), and a Hogwild! interleaving is another draw of the same kind.
    Hogwild! therefore runs with re-seeding, which undoes a merge: 0.9997 in 12 of 12 runs
    of seeds 0-2 on 2 and 4 threads; a merged topic that stays, or topics that Hogwild!
    loses, give under 0.95. Batch mode (no Hogwild!) stays plain."""
    X, topics, _ = make_lda_corpus(5_000, 500, 10, 100, random_state=1)
    lda = LatentDirichletAllocation(10, max_iter=10, n_threads=n_threads, parallel=parallel, random_state=0,
                                    reseed_topics=parallel == "hogwild").fit(X)
    assert lda.n_threads_ == min(n_threads, available_threads())
    cosine, _ = match_topics(topics, lda.components_)
    assert cosine >= 0.95


def test_reseeding_undoes_a_merged_topic():
    """Data and seed where plain online VB merges two topics and lets one die (measured):
    the re-seeding step, off by default as in scikit-learn, must recover all ten."""
    X, topics, _ = make_lda_corpus(5_000, 500, 10, 100, random_state=1)
    plain = LatentDirichletAllocation(10, max_iter=10, n_threads=1, random_state=1).fit(X)
    assert plain.n_reseeded_ == 0
    fixed = LatentDirichletAllocation(10, max_iter=10, n_threads=1, random_state=1, reseed_topics=True).fit(X)
    assert match_topics(topics, plain.components_)[0] < 0.95
    assert fixed.n_reseeded_ >= 1
    assert match_topics(topics, fixed.components_)[0] >= 0.99


def dense_duplicates(unit, mass, weak):
    """The duplicate rule as first written, on the whole K x K cosine matrix (the reference)."""
    weak = set(np.flatnonzero(weak).tolist())
    cosine = unit @ unit.T
    for i, j in zip(*np.nonzero(np.triu(cosine, k=1) > 0.6)):
        if i not in weak and j not in weak:
            weak.add(int(i) if mass[i] < mass[j] else int(j))
    return sorted(weak)


def test_duplicate_topics_found_blockwise_as_on_the_whole_matrix():
    from dpsgd.tasks.lda_state import _mark_duplicates

    rng = np.random.default_rng(0)
    base = rng.gamma(0.3, 1.0, (40, 30))
    # copies of some topics with noise: pairs, chains and groups of duplicates
    topics = np.vstack([base, base[rng.integers(0, 40, 160)] * rng.lognormal(0, 0.5, (160, 30))])
    unit = topics / np.linalg.norm(topics, axis=1, keepdims=True)
    mass = topics.sum(axis=1)
    for weak_start in (np.zeros(200, bool), mass < np.quantile(mass, 0.1)):
        weak = weak_start.copy()
        _mark_duplicates(unit, mass, weak)
        assert np.flatnonzero(weak).tolist() == dense_duplicates(unit, mass, weak_start)
        assert 100 < weak.sum() < 200


def test_reseeding_many_topics_stays_in_bounded_memory():
    """K = 20,000 topics on 3 words: the K x K cosine matrix alone would be 3.2 GB
    (K = 100,000: 75 GiB); found block by block the duplicates need tens of MB."""
    import tracemalloc

    from dpsgd.tasks.lda_state import reseed_dead_topics

    K, V = 20_000, 3
    topics = np.random.default_rng(1).gamma(1.0, 1.0, (K, V)) + 0.01
    tracemalloc.start()
    reseeded = reseed_dead_topics(topics, 0.01, np.random.default_rng(0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert K // 2 < reseeded < K  # on 3 words nearly every topic duplicates another
    assert np.all(np.isfinite(topics)) and topics.min() >= 0.01


def ap_split():
    X, vocabulary = load_uci_bow(shared_path("ap_associated_press", "docword.ap.txt"),
                                 shared_path("ap_associated_press", "vocab.ap.txt"))
    order = np.random.default_rng(0).permutation(X.shape[0])
    return X[order[225:]], X[order[:225]], vocabulary


def test_ap_hogwild_threads_match_one_thread():
    X_train, X_test, _ = ap_split()
    kw = dict(n_components=20, max_iter=5, random_state=0)
    one = LatentDirichletAllocation(**kw, n_threads=1).fit(X_train).heldout_log_likelihood(X_test)
    many = LatentDirichletAllocation(**kw, n_threads=2, parallel="hogwild").fit(X_train).heldout_log_likelihood(X_test)
    assert many >= one * 1.01


def test_exp_dirichlet_expectation_does_not_depend_on_memory_order():
    """A fitted model's topics are Fortran-ordered (a view of the kernel's buffer), a loaded
    one's C-ordered: exp_dirichlet_component_ must be the same for both, bit for bit (NumPy
    sums a row in another order for each layout), and match SciPy's formula."""
    from scipy.special import psi

    from dpsgd.evaluation import exp_dirichlet_expectation
    topics = np.random.default_rng(0).gamma(0.3, 2.0, (7, 5003))
    c_order, f_order = exp_dirichlet_expectation(topics), exp_dirichlet_expectation(np.asfortranarray(topics))
    np.testing.assert_array_equal(c_order, f_order)
    np.testing.assert_allclose(c_order, np.exp(psi(topics) - psi(topics.sum(axis=1, keepdims=True))), rtol=1e-12)


def test_estimator_api(tmp_path):
    X, topics, _ = make_lda_corpus(600, 80, 4, 50, random_state=3)
    lda = LatentDirichletAllocation(4, max_iter=5, random_state=0).fit(X)
    theta = lda.transform(X)
    np.testing.assert_allclose(theta.sum(axis=1), 1.0)
    assert lda.fit_transform(X).shape == (600, 4)
    assert np.all(np.isfinite(lda.exp_dirichlet_component_)) and lda.n_batch_iter_ > 1
    ppl = lda.perplexity(X)
    assert 1.0 < ppl < 80  # better than a uniform guess over the 80 words
    assert lda.score(X) == pytest.approx(-np.log(ppl) * X.sum(), rel=1e-9)
    assert lda.get_feature_names_out().tolist() == [f"latentdirichletallocation{i}" for i in range(4)]
    words = lda.show_topics([f"w{i}" for i in range(80)], n_words=3)
    assert len(words) == 4 and all(len(w) == 3 for w in words)
    assert [[w[1:] for w in row] for row in words] == lda.show_topics(n_words=3)  # word ids without one
    save_model(lda, tmp_path / "lda.npz")
    loaded = load_model(tmp_path / "lda.npz")
    np.testing.assert_array_equal(loaded.components_, lda.components_)
    np.testing.assert_allclose(loaded.transform(X[:5]), lda.transform(X[:5]))


def test_show_topics_uses_the_models_vocabulary():
    X, _, _ = make_lda_corpus(300, 40, 3, 30, random_state=3)
    lda = LatentDirichletAllocation(3, max_iter=2, n_threads=1, random_state=0).fit(X)
    top = np.argsort(-lda.components_, axis=1)[:, :4]
    assert lda.show_topics(n_words=4) == [[str(w) for w in row] for row in top]
    lda.vocabulary_ = [f"word{i}" for i in range(40)]
    assert lda.show_topics(n_words=4) == [[f"word{w}" for w in row] for row in top]
    assert lda.show_topics([f"v{i}" for i in range(40)], n_words=4) == [[f"v{w}" for w in row] for row in top]
    lda.vocabulary_ = ["too", "short"]
    with pytest.raises(ValueError, match="the model's vocabulary_ has 2 words, the model 40"):
        lda.show_topics()
    with pytest.raises(ValueError, match="n_words must be >= 1"):
        lda.show_topics(n_words=0)


def test_warm_start_continues_the_step_schedule():
    """Two fits of 3 passes with warm_start end where one fit of 6 passes does (same steps,
    same order of step sizes; the document order differs, so compare quality)."""
    X, topics, _ = make_lda_corpus(2_000, 200, 5, 60, random_state=7)
    kw = dict(n_components=5, n_threads=1, reseed_topics=False)
    whole = LatentDirichletAllocation(**kw, max_iter=6, random_state=0).fit(X)
    half = LatentDirichletAllocation(**kw, max_iter=3, random_state=0, warm_start=True).fit(X)
    steps = half.n_batch_iter_
    half.fit(X)
    assert half.n_batch_iter_ == whole.n_batch_iter_ == 2 * steps - 1
    assert match_topics(topics, half.components_)[0] == pytest.approx(match_topics(topics, whole.components_)[0],
                                                                       abs=0.01)
    with pytest.raises(ValueError, match="100 features"):
        half.fit(X[:, :100])
    with pytest.raises(ValueError, match="warm_start"):
        half.set_params(n_components=6).fit(X)


def test_budget_and_callback_at_pass_ends():
    X, _, _ = make_lda_corpus(2_000, 200, 5, 60, random_state=7)
    seen = []
    lda = LatentDirichletAllocation(5, max_iter=50, batch_size=50, max_updates=100, n_threads=1,
                                    random_state=0).fit(X, callback=seen.append)
    # 40 steps a pass: the budget ends the third pass after one chunk of 8 minibatches at most
    assert 100 <= lda.n_batch_iter_ - 1 <= 108 and lda.n_iter_ == 3
    ends = [info for info in seen if info["end_of_pass"]]
    assert [info["pass"] for info in ends] == [1, 2] and ends[1]["updates"] == 80
    assert ends[0]["model"]()["components_"].shape == (5, 200)
    tic = time.perf_counter()
    LatentDirichletAllocation(5, max_iter=10_000, max_seconds=0.5, n_threads=1, random_state=0).fit(X)
    assert time.perf_counter() - tic < 5.0


def test_callback_and_round_stats_in_one_process():
    """One callback shape: the engine's info after every round (a chunk of minibatches, or a
    full-batch step), the pass ends with the global model; round_stats_ in one process too."""
    X, _, _ = make_lda_corpus(1_000, 100, 4, 40, random_state=3)
    seen = []
    lda = LatentDirichletAllocation(4, max_iter=3, batch_size=50, n_threads=1, random_state=0).fit(
        X, callback=seen.append)
    ends = [info for info in seen if info["end_of_pass"]]
    assert len(seen) == 9  # 20 minibatches a pass: chunks of 8, 8 and 4
    assert [info["pass"] for info in ends] == [1, 2, 3] and ends[-1]["updates"] == lda.n_batch_iter_ - 1 == 60
    assert sum(info["samples"] for info in seen) == 3 * 1_000 and all("model" not in i for i in seen[:2])
    np.testing.assert_array_equal(ends[-1]["model"]()["components_"], lda.components_)
    assert [info["seconds"] for info in seen] == sorted(info["seconds"] for info in seen)
    assert lda.round_stats_["pushes"] == 9 and lda.round_stats_["delay_max"] == 0
    steps = []
    LatentDirichletAllocation(4, learning_method="batch", max_iter=2, n_threads=1, random_state=0).fit(
        X, callback=steps.append)
    assert [(i["pass"], i["end_of_pass"], i["samples"], i["updates"]) for i in steps] == [(1, True, 1_000, 1),
                                                                                     (2, True, 1_000, 2)]


@pytest.mark.parametrize("whole", [False, True])
def test_distributed_rounds_in_one_process(monkeypatch, whole):
    """The ranks' rounds (scaled rows pulled and pushed by a ticket's step, the re-seeding
    correction pushed with a step) run in one process through a copying in-process
    exchange: on the corpus where re-seeding is needed, they recover the topics as the
    in-place rounds do (test_reseeding_undoes_a_merged_topic). ``whole``: the exchange
    moves every round's rows as the whole matrix (the server on one machine), which the
    rounds then pull and push whole."""
    from dpsgd import engine
    from dpsgd.comm.local import LocalExchange

    run = engine.run
    monkeypatch.setattr(engine, "run", lambda *args, **kw: run(*args, **kw, in_place=False))
    monkeypatch.setattr(LocalExchange, "rows_move_whole", lambda self, n_rows: whole, raising=False)
    pushed = []
    push = LocalExchange.push
    monkeypatch.setattr(LocalExchange, "push", lambda self, change, **kw: pushed.append(type(change).__name__)
                        or push(self, change, **kw))
    X, topics, _ = make_lda_corpus(5_000, 500, 10, 100, random_state=1)
    lda = LatentDirichletAllocation(10, max_iter=10, n_threads=1, random_state=1, reseed_topics=True).fit(X)
    assert lda.n_reseeded_ >= 1 and lda.n_batch_iter_ - 1 == 10 * 40 and lda.n_iter_ == 10
    assert match_topics(topics, lda.components_)[0] >= 0.99
    if whole:
        assert pushed == ["Dense"] * 400
    else:  # the rows, but in a round that re-seeded (the first 5 passes' ends): the whole matrix
        assert len(pushed) == 400 and 1 <= pushed.count("Dense") <= 5


def test_scaled_topics_agree_with_the_true_form():
    """ScaledTopics: steps pushed as their own terms rho S / A_{j+1} (what the kernel's
    svi_step pushes) and a correction give the true lambda that the same arithmetic on the
    true form gives."""
    from dpsgd.tasks.lda_state import ScaledTopics, step_sizes, word_major

    rng = np.random.default_rng(0)
    K, V, eta = 3, 7, 0.1
    state = ScaledTopics(V, K, eta, step_sizes(5 + np.arange(11), 10.0, 0.7))
    true = rng.gamma(2.0, 1.0, (K, V)) + eta
    flat = word_major(true)  # version 0: A_0 = 1, both forms agree
    rows = np.array([1, 4, V])
    for j in range(10):  # step j: lambda <- (1 - rho) lambda + rho (eta + S) on the rows, decay elsewhere
        S = rng.gamma(1.0, 1.0, (2, K))
        rho = state.rho[j]
        term = rho * S / state.scale_at(j + 1)
        flat.reshape(V + 1, K)[rows] += np.vstack([term, term.sum(axis=0)])
        true = (1 - rho) * true + rho * eta
        true[:, rows[:-1]] += rho * S.T
        np.testing.assert_allclose(state.topics(flat, j + 1), true, rtol=1e-12)
        np.testing.assert_allclose(flat[-K:] * state.scale_at(j + 1) + V * eta * (1 - state.scale_at(j + 1)),
                                   true.sum(axis=1), rtol=1e-12)  # the sums row, as the kernel reads it
    # a correction as re-seeding makes one: the topics it writes are >= eta, the floor of every entry
    change = np.maximum(true + rng.normal(size=(K, V)), eta) - true
    flat += state.correction(change, 10)
    np.testing.assert_allclose(state.topics(flat, 10), true + change, rtol=1e-12)
    with pytest.raises(ValueError, match="shrink lambda's scale"):
        ScaledTopics(V, K, eta, step_sizes(np.arange(10**6), 10.0, 0.51))


def test_allreduce_refuses_reseeding():
    X, _, _ = make_lda_corpus(50, 20, 2, 10, random_state=0)
    # the check comes before any use of comm (a stand-in that is no communicator)
    with pytest.raises(ValueError, match="reseed_topics cannot be used with exchange='allreduce'"):
        LatentDirichletAllocation(2, reseed_topics=True, exchange="allreduce", comm=object()).fit(X)
    # without comm there is no exchange to average over: one process re-seeds as ever
    LatentDirichletAllocation(2, max_iter=2, reseed_topics=True, exchange="allreduce", n_threads=1).fit(X)


@pytest.fixture(scope="module")
def lda_single_plain():
    """One process on lda_distributed.py's corpus, without re-seeding (allreduce refuses it)."""
    X, _, _ = make_lda_corpus(4_400, 300, 8, 80, random_state=2)
    lda = LatentDirichletAllocation(8, max_iter=5, batch_size=64, n_threads=1, random_state=0).fit(X[:4_000])
    return lda.heldout_log_likelihood(X[4_000:])


@pytest.mark.parametrize("ranks", [2, 3])
def test_distributed_lda_with_allreduce(lda_single_plain, ranks):
    """Synchronous averaging: every round the ranks average their minibatch steps (one
    global step on the union), so every rank ends with the same topics after the same
    rounds, with no delay, and reaches the held-out likelihood of one process."""
    import json

    from conftest import run_mpi

    out = run_mpi("lda_distributed.py", ranks, 1, "auto", "allreduce", timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    ranks = out.ranks
    assert result["same_topics"] and result["round_stats"]["delay_max"] == 0
    assert result["n_iter"] == [5] * ranks and result["pass_ends"] == [[1, 2, 3, 4, 5]] * ranks
    # one global step a round: the rounds of the rank with the most minibatches
    rounds = max(-(-len(range(r, 4_000, ranks)) // 64) for r in range(ranks)) * 5
    assert result["n_batch_iter"] == rounds + 1
    assert result["heldout"] >= lda_single_plain * 1.02  # negative: within 2%


def test_a_fit_holds_the_topics_once():
    """In one process the fit runs on the buffer of its topics: components_ is a view of it
    (drawn there as scikit-learn draws its start), so a fit's traced peak is the topics
    once plus the minibatches' scratch (three copies before), warm fits and partial_fit
    update it in place, and a callback's model is a snapshot that later rounds leave alone."""
    import tracemalloc

    from sklearn.utils import check_random_state

    X, _, _ = make_lda_corpus(400, 40_000, 10, 20, random_state=2)  # 3.2 MB of topics, minibatches of ~2,300 words
    model_bytes = 10 * 40_000 * 8
    lda = LatentDirichletAllocation(10, max_iter=2, n_threads=1, random_state=0)
    tracemalloc.start()
    lda.fit(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.3 * model_bytes, f"peak {peak / model_bytes:.2f} x the topics"
    buffer = lda.components_
    assert buffer.flags.f_contiguous and buffer.base.size == (40_000 + 1) * 10
    lda.set_params(warm_start=True).fit(X[:100])
    lda.partial_fit(X[100:200])
    assert np.shares_memory(lda.components_, buffer) and not hasattr(LatentDirichletAllocation(), "exp_dirichlet_component_")
    np.testing.assert_allclose(lda.exp_dirichlet_component_.sum(axis=1), 1.0, rtol=0.1)  # exp(E[log beta]): ~a distribution
    fresh = LatentDirichletAllocation(3, random_state=5)
    fresh._init_topics(7)
    np.testing.assert_array_equal(fresh.components_, check_random_state(5).gamma(100.0, 0.01, (3, 7)))
    seen = []
    lda.fit(X, callback=lambda info: info["end_of_pass"] and seen.append(info["model"]()["components_"]))
    assert len(seen) == 2 and not np.shares_memory(seen[0], lda.components_)
    assert not np.array_equal(seen[0], lda.components_)  # pass 1's topics, not the live ones
    np.testing.assert_array_equal(seen[1], lda.components_)


def test_an_interrupted_fit_keeps_its_steps():
    """Ctrl-C during a fit in one process (here raised by the callback at the end of pass 1):
    the topics are those the rounds wrote and n_batch_iter_ counts their steps, whether the
    fit ran on its own buffer or on a copy of a loaded model's topics, so warm_start goes on
    with the schedule."""
    X, _, _ = make_lda_corpus(1_000, 100, 4, 40, random_state=3)  # 20 minibatches of 50 a pass

    def stop(info):
        if info["end_of_pass"]:
            raise KeyboardInterrupt

    for loaded in (False, True):
        lda = LatentDirichletAllocation(4, max_iter=5, batch_size=50, n_threads=1, random_state=0)
        if loaded:
            lda.components_, lda.n_batch_iter_ = np.random.default_rng(0).gamma(100, 0.01, (4, 100)), 1
            lda.set_params(warm_start=True)
        start = lda.components_.copy() if loaded else None
        with pytest.raises(KeyboardInterrupt):
            lda.fit(X, callback=stop)
        assert lda.n_batch_iter_ == 21
        if loaded:
            assert not np.allclose(lda.components_, start)
        one_pass = LatentDirichletAllocation(4, max_iter=1, batch_size=50, n_threads=1, random_state=0)
        if loaded:
            one_pass.components_, one_pass.n_batch_iter_ = start, 1
            one_pass.set_params(warm_start=True)
        np.testing.assert_allclose(lda.components_, one_pass.fit(X).components_, rtol=1e-12)
        lda.set_params(warm_start=True, max_iter=1).fit(X)
        assert lda.n_batch_iter_ == 41


def test_partial_fit_learns_online():
    X, topics, _ = make_lda_corpus(3_000, 200, 5, 80, random_state=4)
    lda = LatentDirichletAllocation(5, total_samples=3_000, batch_size=100, random_state=0)
    for _ in range(3):
        for start in range(0, 3_000, 500):
            lda.partial_fit(X[start:start + 500])
    assert match_topics(topics, lda.components_)[0] > 0.9


def test_empty_documents_are_allowed():
    X, _, _ = make_lda_corpus(200, 50, 3, 30, random_state=5)
    X = sp.vstack([X, sp.csr_matrix((5, 50))]).tocsr()
    lda = LatentDirichletAllocation(3, max_iter=2, random_state=0).fit(X)
    theta = lda.transform(X)
    np.testing.assert_allclose(theta[-5:], 1 / 3)  # the prior, uniform


def test_evaluation_does_not_modify_the_input():
    X, _, _ = make_lda_corpus(100, 30, 3, 20, random_state=6)
    before = X.copy()
    lda = LatentDirichletAllocation(3, max_iter=2, random_state=0).fit(X)
    lda.heldout_log_likelihood(X)
    split_tokens(X)
    assert (X != before).nnz == 0 and np.array_equal(X.indptr, before.indptr)


@pytest.mark.parametrize("params,match", [
    (dict(n_components=0), "n_components must be >= 1"),
    (dict(doc_topic_prior=np.nan), "doc_topic_prior must be finite"),
    (dict(topic_word_prior=-1.0), "topic_word_prior must be > 0"),
    (dict(learning_decay=0.3), "learning_decay"),
    (dict(parallel="mpi"), "parallel"),
    (dict(n_threads=0), "n_threads=0"),
    (dict(max_seconds=-1.0), "max_seconds"),
    (dict(max_updates=0), "max_updates"),
    (dict(exchange="carrier_pigeon"), "exchange must be one of"),
])
def test_bad_parameters(params, match):
    X, _, _ = make_lda_corpus(50, 20, 2, 10, random_state=0)
    with pytest.raises((ValueError, TypeError), match=match):
        LatentDirichletAllocation(**params).fit(X)


def test_bad_corpora():
    with pytest.raises(ValueError, match="every document is empty"):
        LatentDirichletAllocation(2).fit(sp.csr_matrix((5, 10)))
    X = sp.csr_matrix(np.array([[1.0, -2.0], [0.0, 3.0]]))
    with pytest.raises(ValueError, match="Negative values"):
        LatentDirichletAllocation(2).fit(X)
    lda = LatentDirichletAllocation(2, max_iter=1).fit(sp.csr_matrix(np.ones((4, 3))))
    with pytest.raises(ValueError, match="features"):
        lda.transform(sp.csr_matrix(np.ones((2, 5))))  # word ids beyond the vocabulary
    with pytest.raises(ValueError, match="NaN"):
        LatentDirichletAllocation(2).fit(np.array([[1.0, np.nan]]))


def test_load_uci_bow_ap():
    X, vocabulary = load_uci_bow(shared_path("ap_associated_press", "docword.ap.txt"),
                                 shared_path("ap_associated_press", "vocab.ap.txt"))
    assert X.shape == (2246, 10473) and X.nnz == 302_031 and X.sum() == 435_838
    assert len(vocabulary) == 10_473 and X.has_canonical_format


def test_load_uci_bow_document_ranges_match_the_whole_file():
    path = shared_path("ap_associated_press", "docword.ap.txt")
    X, _ = load_uci_bow(path)
    assert read_uci_bow_header(path) == (2246, 10473, 302_031)
    bounds = np.linspace(0, X.shape[0], 5).round().astype(int)  # 4 ranks' shares
    parts = [load_uci_bow(path, docs=(a, b))[0] for a, b in zip(bounds[:-1], bounds[1:])]
    assert [p.shape[0] for p in parts] == np.diff(bounds).tolist()
    assert (sp.vstack(parts).tocsr() != X).nnz == 0
    for a, b in [(0, 0), (0, 1), (2245, 2246), (1000, 1001), (0, 2246)]:
        assert (load_uci_bow(path, docs=(a, b))[0] != X[a:b]).nnz == 0


def test_load_uci_bow_ranges_gzip_gaps_and_errors(tmp_path):
    text = "6\n3\n5\n1 1 2\n1 3 1\n4 2 5\n5 1 1\n6 3 2\n"  # documents 2 and 3 are empty
    for name in ("docword.x.txt", "docword.x.txt.gz"):
        path = write_docword(tmp_path / name, text)
        assert read_uci_bow_header(path) == (6, 3, 5)
        whole, _ = load_uci_bow(path)
        for a in range(7):
            for b in range(a, 7):
                assert (load_uci_bow(path, docs=(a, b))[0] != whole[a:b]).nnz == 0, (name, a, b)
    with pytest.raises(ValueError, match="not a range"):
        load_uci_bow(path, docs=(3, 9))
    # a .gz range is read block by block: blocks smaller than a line must give the same rows
    from dpsgd.data.uci_bow import _gz_range

    for block in (1, 5, 7, 64):
        for a, b in [(0, 6), (0, 1), (1, 4), (3, 5), (5, 6), (2, 3)]:
            _, _, _, first, last, body, line = _gz_range(str(path), (a, b), block=block)
            expected_lines = [ln for ln in text.splitlines()[3:] if a < int(ln.split()[0]) <= b]
            assert body.decode().splitlines() == expected_lines, (block, a, b)
            if expected_lines:
                assert text.splitlines()[line - 1] == expected_lines[0]
    path = write_docword(tmp_path / "docword.unsorted.txt", "3\n3\n3\n1 1 2\n3 3 1\n2 2 5\n")
    with pytest.raises(ValueError, match="not sorted by docID"):
        load_uci_bow(path, docs=(1, 3))
    for name in ("docword.bad.txt", "docword.bad.txt.gz"):
        path = write_docword(tmp_path / name, "3\n3\n3\n1 1 2\n2 3 1\n3 7 5\n")
        with pytest.raises(ValueError, match="line 6: wordID 7"):  # the file's line number, not the range's
            load_uci_bow(path, docs=(2, 3))


def write_docword(path, text):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("body,match", [
    ("3\n5\n3\n1 1 2\n2 9 1\n3 2 1\n", "line 5: wordID 9 is outside 1..5"),
    ("3\n5\n3\n1 1 2\n4 2 1\n3 2 1\n", "line 5: docID 4 is outside 1..3"),
    ("3\n5\n3\n1 1 2\n2 2 -1\n3 2 1\n", "line 5: count -1 must be a positive integer"),
    ("3\n5\n3\n1 1 2\n2 2 1.5\n3 2 1\n", "line 5: count '1.5' is not an integer"),
    ("3\n5\n3\n1 1 2\n2 2\n3 2 1\n", "line 5: expected 'docID wordID count'"),
    ("3\n5\n4\n1 1 2\n2 2 1\n3 2 1\n", "header says NNZ=4 but the body has 3 entries"),
    ("3\nfive\n3\n", "line 2: header line must be a non-negative integer"),
    ("3\n5\n", "ends inside its 3-line header"),
    ("3\n5\n2\n1 1 2\n1 1 3\n", r"line 5: \(docID 1, wordID 1\) appears twice"),
])
def test_load_uci_bow_errors_name_the_line(tmp_path, body, match):
    path = write_docword(tmp_path / "docword.bad.txt", body)
    with pytest.raises(ValueError, match=match):
        load_uci_bow(path)


def test_load_uci_bow_gzip_empty_docs_and_vocab(tmp_path):
    path = write_docword(tmp_path / "docword.x.txt.gz", "4\n3\n3\n1 1 2\n1 3 1\n4 2 5\n")
    vocab = tmp_path / "vocab.x.txt"
    vocab.write_text("alpha\nbeta\ngamma\n")
    X, words = load_uci_bow(path, vocab)
    assert X.toarray().tolist() == [[2, 0, 1], [0, 0, 0], [0, 0, 0], [0, 5, 0]]
    assert words == ["alpha", "beta", "gamma"]
    vocab.write_text("alpha\nbeta\n")
    with pytest.raises(ValueError, match="2 words, but the docword header says W=3"):
        load_uci_bow(path, vocab)
    with pytest.raises(FileNotFoundError):
        load_uci_bow(tmp_path / "absent.txt")


def test_make_lda_corpus():
    X, topics, theta = make_lda_corpus(300, 40, 5, 60, random_state=0)
    assert X.shape == (300, 40) and topics.shape == (5, 40) and theta.shape == (300, 5)
    np.testing.assert_allclose(topics.sum(axis=1), 1.0)
    assert abs(X.sum() / 300 - 60) < 3
    assert np.all(X.data == np.round(X.data)) and X.data.min() > 0


def test_scikit_learn_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(LatentDirichletAllocation(n_threads=1, random_state=0))


def test_distributed_lda_with_gossip():
    """D-PSGD on 4 ranks (with 2 or 3 the exponential graph is complete: gossip is allreduce):
    each rank's topics take its steps and are averaged with 2 neighbours' a round, and the
    ranks' average reaches the held-out likelihood of synchronous averaging over as many ranks
    (measured: -4.0065 and -4.0067 nats a word; AD-PSGD -4.0060. One process, and the server
    over 4 ranks, -3.886: each rank's step is a global step there, while averaging divides
    it among the copies)."""
    import json

    from conftest import run_mpi

    found = {}
    for exchange in ("gossip", "allreduce", "async_gossip"):
        out = run_mpi("lda_distributed.py", 4, 1, "auto", exchange, timeout=300)
        assert out.returncode == 0, out.stderr
        found[exchange] = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["gossip"]["same_topics"] and found["gossip"]["round_stats"]["delay_max"] == 0
    assert found["gossip"]["n_batch_iter"] == found["allreduce"]["n_batch_iter"]
    assert found["gossip"]["heldout"] >= found["allreduce"]["heldout"] * 1.005  # negative: within 0.5%
    assert found["async_gossip"]["same_topics"]
    assert found["async_gossip"]["heldout"] >= found["allreduce"]["heldout"] * 1.005
