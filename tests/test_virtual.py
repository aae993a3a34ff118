"""The simulator (dpsgd.comm.virtual): virtual ranks on simulated clocks, running the real
exchanges and estimators in one process."""

import numpy as np
import pytest

from dpsgd.comm import Topology, open_exchange
from dpsgd.comm.codecs import Dense, Rows
from dpsgd.comm.virtual import simulate
from dpsgd.engine import Problem, Round, run

pytestmark = pytest.mark.timeout(120)


# ------------------------------------------------------------------ the clocks and the turn
def test_results_in_rank_order_and_a_collective_ends_at_its_last_arrival():
    def fn(comm):
        comm.sleep(0.01 * comm.rank)  # rank r arrives at 10 r ms
        before = comm.now()
        total = comm.allreduce(comm.rank + 1)
        return total, before, comm.now()

    sim = simulate(fn, 4)
    assert [r[0] for r in sim.results] == [10] * 4
    for rank, (_, before, after) in enumerate(sim.results):
        assert 0.01 * rank <= before < 0.01 * rank + 0.005
        assert 0.03 <= after < 0.035  # every rank leaves when rank 3 arrives
    assert len(sim.seconds) == 4 and min(sim.seconds) >= 0.03


def test_shared_state_changes_in_the_order_of_the_clocks():
    """Rank r pushes at (3 - r) ms: the pushes land in the order of the virtual clocks, not in
    the order the threads were started or the ranks numbered."""

    def fn(comm):
        topology = Topology(comm)
        with open_exchange("server", topology, 4) as ex:
            comm.sleep(1e-3 * (3 - comm.rank))
            version = ex.push(Dense(np.full(4, comm.rank + 1.0)))
            final, clock = ex.final()
        return version, final.tolist(), clock

    sim = simulate(fn, 4)
    assert [v for v, _, _ in sim.results] == [3, 2, 1, 0]
    assert all(final == [10.0] * 4 and clock == 4 for _, final, clock in sim.results)


def test_a_window_mutex_makes_the_next_holder_wait_in_virtual_time():
    def fn(comm):
        from dpsgd.comm.window import open_window

        window = open_window(comm, 2, mutexes=2)
        if comm.rank == 0:
            window.lock(1)
            comm.sleep(0.02)  # holds it 20 ms
            held_until = comm.now()
            window.unlock(1)
            return held_until
        comm.sleep(0.001)
        window.lock(1)
        got = comm.now()
        window.unlock(1)
        return got

    released, taken = simulate(fn, 2).results
    assert 0.02 <= released < 0.025 and released <= taken < released + 0.005


def test_collectives_move_what_mpi_would():
    def fn(comm):
        r, n = comm.rank, comm.size
        got = {"allgather": comm.allgather(r), "alltoall": comm.alltoall([10 * r + q for q in range(n)]),
               "gather": comm.gather(r, root=1), "bcast": comm.bcast(r + 100, root=2),
               "max": comm.allreduce(r, op=Topology(comm).mpi().MAX)}
        send, recv = np.full(3, r, dtype=float), np.empty(3)
        comm.Allreduce(send, recv)
        got["Allreduce"] = recv.tolist()
        gathered = np.empty((n, 2), dtype=np.uint16)
        comm.Allgather(np.full(2, r, dtype=np.uint16), gathered)
        got["Allgather"] = gathered[:, 0].tolist()
        request = comm.Iallreduce(np.ones(2), out := np.empty(2))
        request.Wait()
        got["Iallreduce"] = out.tolist()
        graph = comm.Create_dist_graph_adjacent([(r - 1) % n], [(r + 1) % n])
        received = np.empty((1, 2))
        graph.Neighbor_allgather(np.full(2, float(r)), received)
        got["Neighbor_allgather"] = received[0, 0]
        return got

    results = simulate(fn, 3).results
    for r, got in enumerate(results):
        assert got["allgather"] == [0, 1, 2] and got["alltoall"] == [r, 10 + r, 20 + r]
        assert got["gather"] == ([0, 1, 2] if r == 1 else None) and got["bcast"] == 102 and got["max"] == 2
        assert got["Allreduce"] == [3.0] * 3 and got["Allgather"] == [0, 1, 2] and got["Iallreduce"] == [3.0, 3.0]
        assert got["Neighbor_allgather"] == (r - 1) % 3


# ------------------------------------------------------------------ failures
def test_a_failing_rank_ends_every_rank_and_its_error_is_raised():
    def fn(comm):
        if comm.rank == 2:
            raise ValueError("bad data on rank 2")
        comm.Barrier()  # the others wait here for ever in a real job, until MPI_Abort

    with pytest.raises(RuntimeError, match="virtual rank 2 failed: bad data on rank 2") as info:
        simulate(fn, 4)
    assert isinstance(info.value.__cause__, ValueError)


def test_ranks_waiting_for_each_other_are_reported_not_hung():
    def fn(comm):
        if comm.rank == 0:
            comm.Barrier()  # rank 1 never comes

    with pytest.raises(RuntimeError, match="deadlocked: rank 0 in barrier"):
        simulate(fn, 2)


def test_collectives_called_out_of_order_fail():
    def fn(comm):
        return comm.allreduce(1) if comm.rank == 0 else comm.allgather(1)

    with pytest.raises(RuntimeError, match="same collectives in the same order"):
        simulate(fn, 2)


@pytest.mark.parametrize("ranks", [0, -1, 1.5, True, "2"])
def test_ranks_must_be_a_positive_int(ranks):
    with pytest.raises(ValueError, match="ranks must be an int >= 1"):
        simulate(lambda comm: None, ranks)


# ------------------------------------------------------------------ the real exchanges on virtual ranks
def _integer_rounds(comm, kind, rounds, compression=None, graph="exponential"):
    """Every rank pushes integer-valued changes (dense and by rows); returns (final, what this
    rank pushed, clock, updates)."""
    n, row = 24, 4
    rng = np.random.default_rng(comm.rank)
    start = np.arange(n, dtype=float)
    pushed = np.zeros(n)
    topology = Topology(comm)
    with open_exchange(kind, topology, n, initial=start, row_size=row, in_place=False, compression=compression,
                       graph=graph) as ex:
        for r in range(rounds):
            if r % 2:
                rows = np.sort(rng.choice(n // row, 2, replace=False))
                values = rng.integers(-4, 5, (2, row)).astype(float)
                ex.push(Rows(rows, values), step=1.0)
                pushed.reshape(-1, row)[rows] += values
            else:
                delta = rng.integers(-5, 6, n).astype(float)
                ex.push(Dense(delta), step=1.0)
                pushed += delta
        final, clock = ex.final()
        return final.copy(), pushed, clock, ex.updates(), comm.allreduce(pushed)


@pytest.mark.parametrize("ranks", [2, 3, 8])
@pytest.mark.parametrize("kind,compression", [("server", None), ("allreduce", None), ("gossip", None),
                                              ("async_gossip", None), ("gossip", "natural")])
def test_no_update_is_lost_on_virtual_ranks(kind, compression, ranks):
    """The server adds every change; the averaging exchanges move the average of the ranks by
    every change over the ranks (allreduce's mean change a round, gossip's and async gossip's
    doubly stochastic averaging; natural compression's codes keep the sum exactly)."""
    rounds = 12
    results = simulate(_integer_rounds, ranks, kind, rounds, compression).results
    start = np.arange(24, dtype=float)
    total = results[0][4]
    expected = start + (total if kind == "server" else total / ranks)
    for final, _, clock, updates, _ in results:
        np.testing.assert_allclose(final, expected, atol=1e-9)
        assert updates == rounds * ranks
        assert clock == (rounds * ranks if kind in ("server", "async_gossip") else rounds)


def test_async_gossip_pairs_are_averaged_whole_on_virtual_ranks():
    """Every pairwise average read what the last writer of each of its rows left: no torn pair."""

    def fn(comm):
        from dpsgd.comm.async_gossip import AsyncGossipExchange

        ex = AsyncGossipExchange(Topology(comm), 6, initial=np.zeros(6), record=True)
        rng = np.random.default_rng(comm.rank)
        for _ in range(20):
            comm.sleep(rng.uniform(0, 1e-3))
            ex.push(Dense(rng.integers(-3, 4, 6).astype(float)))
        comm.Barrier()
        return ex.averages

    history = sorted(a for averages in simulate(fn, 4).results for a in averages)
    assert len(history) == 4 * 20 and [a[0] for a in history] == list(range(80))  # every push, by version
    last = {}
    for _version, pair, read, written in history:
        for row, values in zip(pair, read):
            if row in last:
                np.testing.assert_array_equal(values, last[row])
        for row, values, change in zip(pair, read, written):
            last[row] = values + change


# ------------------------------------------------------------------ the network model in virtual time
def test_the_network_model_moves_the_virtual_clocks(monkeypatch):
    """2 ms a message and a pause of 5 ms before every push: 10 server rounds take at least
    10 x (2 + 2 + 5) ms of virtual time, and hardly more; no thread sleeps in real time."""
    import time

    def no_sleep(seconds):
        raise AssertionError(f"a virtual rank slept {seconds} s in real time")

    monkeypatch.setattr(time, "sleep", no_sleep)

    def fn(comm):
        topology = Topology(comm)
        network = "latency=0.002,pause_probability=1,pause_seconds=0.005"
        with open_exchange("server", topology, 8, in_place=False, network=network) as ex:
            tic = comm.now()
            for _ in range(10):
                ex.pull()
                ex.push(Dense(np.ones(8)))
            took = comm.now() - tic
            ex.final()
            return took, ex.network_seconds

    sim = simulate(fn, 2)
    for took, added in sim.results:
        assert added == pytest.approx(10 * 0.009)
        assert 0.09 <= took < 0.09 + 0.02


def test_a_synchronous_round_waits_for_its_straggler():
    """With allreduce every round ends at the slowest rank's arrival: rank 1 pausing 10 ms a
    round delays rank 0 as much."""

    def fn(comm):
        topology = Topology(comm)
        network = {"pause_probability": 1.0, "pause_seconds": 0.01} if comm.rank == 1 else None
        with open_exchange("allreduce", topology, 8, in_place=False) as ex:
            for _ in range(5):
                ex.pull()
                if network:
                    comm.sleep(0.01)
                ex.push(Dense(np.ones(8)))
            return comm.now()

    fast, slow = simulate(fn, 2).results
    assert fast >= 0.05 and abs(fast - slow) < 0.005


def test_virtual_ranks_compute_on_one_thread():
    def fn(comm):
        topology = Topology(comm)
        return topology.virtual, topology.threads(None), topology.one_machine()

    assert simulate(fn, 3).results == [(True, 1, True)] * 3
    assert not Topology().virtual


# ------------------------------------------------------------------ ranks that share the steps
class Tickets(Problem):
    """A problem whose rounds use the engine's tickets (as LDA's step sizes do): rank r plans
    ``own[r]`` rounds of ``cost[r]`` virtual seconds each and records the tickets it ran."""

    size, uses_ticket = 2, True

    def __init__(self, comm, own, cost, share):
        self.comm, self.own, self.cost, self.share, self.ran = comm, own, cost, share, []

    def initial(self):
        return np.zeros(self.size)

    def plan(self, exchange):
        self.global_steps = sum(self.own) if self.share else None
        return self.own[self.comm.rank]

    def local_steps(self, work, r, version, ticket):
        self.comm.sleep(self.cost[self.comm.rank])
        self.ran.append(ticket)
        work += 1.0
        return Round()

    def model(self, params, version):
        return {"w": params.copy()}


@pytest.mark.parametrize("exchange", ["server", "async_gossip", "allreduce"])
@pytest.mark.parametrize("share", [True, False])
def test_asynchronous_ranks_share_the_global_steps(exchange, share):
    """Rank 1 takes 1.2x rank 0's time a round, rank 2 1.4x, rank 3 4x (a straggler). Sharing
    the steps (``Problem.global_steps``), the asynchronous ranks run every ticket below it
    once between them, each between 3/4 and 5/4 of its own rounds (``shared_rounds``): the
    faster more than planned, the straggler its fewest, going on past the shared tickets with
    those that follow; the three others end within a round of each other. Without it, or
    synchronous, each runs its own."""
    from dpsgd.engine import shared_rounds

    own, cost = [40, 40, 40, 40], [1e-3, 1.2e-3, 1.4e-3, 4e-3]

    def fn(comm):
        problem = Tickets(comm, own, cost, share)
        run(problem, Topology(comm), exchange=exchange)
        return problem.ran, comm.now()

    sim = simulate(fn, 4)
    ran = [r for r, _ in sim.results]
    if share and exchange != "allreduce":
        least, most = shared_rounds(40)
        tickets = sorted(t for r in ran for t in r)
        assert tickets == list(range(len(tickets))) and len(tickets) > sum(own)
        assert len(ran[3]) == least and ran[3][-1] >= sum(own)  # its last ones past them
        assert own[0] < len(ran[0]) <= most and all(least <= len(r) <= most for r in ran)
        ends = [end for _, end in sim.results[:3]]
        assert max(ends) - min(ends) < 2 * cost[2] + 1e-3
    else:
        assert [len(r) for r in ran] == own


# ------------------------------------------------------------------ estimators on virtual ranks
# The synchronous exchanges run the same rounds every run, so one seed tells. The asynchronous
# ones (server, async_gossip) do not: a virtual rank's clock is its thread's CPU time, so the
# order of pushes, and the result, move with the machine's load. Seed 0 alone on the server gave
# 1.000-1.011x one process's loss here (11 runs, 8 with two busy loops beside them), and 1.023x
# once in CI: the tail test_comm's comment describes. The median of seeds 0-2 against one
# process's mean over the same seeds was 1.002-1.003x (server) and 1.000-1.001x (async_gossip)
# in 4 runs with a busy loop beside them, so its bound of 2% holds unless two seeds are in the tail.
@pytest.mark.parametrize("exchange,compression", [("server", None), ("allreduce", None), ("gossip", None),
                                                  ("async_gossip", None), ("gossip", "natural")])
def test_estimators_train_on_virtual_ranks_to_one_process_quality(a9a, exchange, compression):
    """a9a, 4 virtual ranks x 1 thread, 10 epochs, rounds of 1,024 samples (as
    ``test_comm.test_distributed_linear_reaches_single_process_loss`` on real ranks): test
    log-loss within 2% of one process's (the median of 3 seeds for the asynchronous exchanges)."""
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier

    X, y, X_test, y_test = a9a
    params = {"loss": "log_loss", "alpha": 1e-3, "max_iter": 10, "tol": None, "n_threads": 1}
    seeds = range(3) if exchange in ("server", "async_gossip") else range(1)
    single = np.mean([log_loss(y_test, SGDClassifier(**params, random_state=seed).fit(X, y).predict_proba(X_test))
                      for seed in seeds])

    def fn(comm, seed):
        r, n = comm.rank, comm.size
        clf = SGDClassifier(**params, random_state=seed, comm=comm, exchange=exchange, compression=compression,
                            sync_every=1024)
        clf.fit(X[r::n], y[r::n])
        return log_loss(y_test, clf.predict_proba(X_test)), clf.round_stats_

    losses, stats = [], []
    for seed in seeds:
        sim = simulate(fn, 4, seed)
        losses.append(max(loss for loss, _ in sim.results))
        stats.append(sim.results[0][1])
    assert np.median(losses) <= 1.02 * single, (losses, single)
    assert all(s["pushes"] > 0 and s["bytes_sent"] > 0 and 0.0 < s["comm_share"] < 1.0 for s in stats)


def test_lda_trains_on_virtual_ranks():
    """LDA (DPSVI) over the server on 3 virtual ranks: held-out perplexity close to one process's."""
    from dpsgd import LatentDirichletAllocation
    from dpsgd.data import make_lda_corpus

    corpus, _, _ = make_lda_corpus(1200, 200, 5, 60, random_state=0)
    X, X_test = corpus[:1000], corpus[1000:]
    params = {"n_components": 5, "learning_method": "online", "batch_size": 64, "max_iter": 3, "random_state": 0,
                  "n_threads": 1}
    single = LatentDirichletAllocation(**params).fit(X).perplexity(X_test)

    def fn(comm):
        r, n = comm.rank, comm.size
        lda = LatentDirichletAllocation(**params, comm=comm).fit(X[r::n])
        return lda.perplexity(X_test)

    found = simulate(fn, 3).results
    assert max(found) <= 1.05 * single, (found, single)


def test_lda_over_compressed_gossip_stays_finite_on_ap():
    """LDA on AP over gossip with natural compression, 4 virtual ranks: the compressed public
    copies once left scaled topic entries below 0 and the E-step failed with a non-finite
    value (3 and 4 ranks, real and simulated). Reads are now held at the exact arithmetic's
    bound (the kernel's svi_step); the held-out log-likelihood is within 2% of one process's."""
    from conftest import shared_path

    from dpsgd import LatentDirichletAllocation
    from dpsgd.data import load_uci_bow

    X, _ = load_uci_bow(shared_path("ap_associated_press", "docword.ap.txt"))
    order = np.random.default_rng(0).permutation(X.shape[0])
    X_train, X_test = X[order[224:]], X[order[:224]]
    params = dict(n_components=20, max_iter=2, random_state=0, n_threads=1)
    single = LatentDirichletAllocation(**params).fit(X_train).heldout_log_likelihood(X_test)

    def fn(comm):
        r, n = comm.rank, comm.size
        lda = LatentDirichletAllocation(**params, comm=comm, exchange="gossip", compression="natural")
        return lda.fit(X_train[r::n]).heldout_log_likelihood(X_test)

    found = simulate(fn, 4).results
    assert np.all(np.isfinite(found)) and min(found) >= 1.02 * single, (found, single)


def test_scaled_topics_read_negative_entries_at_their_bound():
    from dpsgd.tasks.lda_state import ScaledTopics, step_sizes

    V, K, eta = 3, 2, 0.1
    state = ScaledTopics(V, K, eta, step_sizes(np.arange(5), 10.0, 0.7))
    scaled = np.array([[1.0, -2.0], [0.5, 0.0], [-1e9, 3.0]])
    A = state.scale_at(3)
    topics = state.topics(np.concatenate([scaled.ravel(), [0.4, -5.0]]), 3)
    np.testing.assert_allclose(topics, (np.maximum(scaled, 0) * A + eta * (1 - A)).T)
    assert np.all(topics >= eta * (1 - A))
