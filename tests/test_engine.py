"""The engine itself: toy problems with known optima, in one process and under mpiexec with
both exchanges; row and sparse pushes; budgets; the delay definition; a failing rank."""

import json

import numpy as np
import pytest

from dpsgd import engine
from dpsgd.comm import Topology
from dpsgd.comm.codecs import Dense
from dpsgd.comm.local import LocalExchange
from dpsgd.engine import Problem, Round

from conftest import run_mpi
from engine_toys import LeastSquares, RowTargets, least_squares

ONE = Topology()


@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_least_squares_reaches_the_solution_in_one_process(in_place, sparse):
    A, b, w = least_squares()
    result = engine.run(LeastSquares(A, b, sparse=sparse), ONE, in_place=in_place)
    np.testing.assert_allclose(result.model["coef_"], w, atol=1e-6)
    assert result.updates == 20 * 400 and result.version == 20 * 40 == result.rounds


def test_in_place_and_copied_rounds_give_the_same_model():
    """One process: lending the parameters and pulling copies are the same arithmetic."""
    A, b, _ = least_squares(d=5)
    lent = engine.run(LeastSquares(A, b, passes=2), ONE, in_place=True).model["coef_"]
    copied = engine.run(LeastSquares(A, b, passes=2), ONE, in_place=False).model["coef_"]
    np.testing.assert_allclose(lent, copied, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("in_place", [True, False])
def test_row_pushes_reach_the_targets(in_place):
    C = np.random.default_rng(1).normal(size=(12, 3))
    result = engine.run(RowTargets(C, rounds=300), ONE, in_place=in_place)
    np.testing.assert_allclose(result.model["W"], C, atol=1e-6)


def test_budget_of_updates_stops_the_rounds():
    A, b, _ = least_squares()
    result = engine.run(LeastSquares(A, b, steps=10), ONE, max_updates=95)
    assert result.updates == 100 and result.rounds == 10  # checked before each round of 10


def test_budget_of_seconds_stops_the_rounds():
    A, b, _ = least_squares()
    result = engine.run(LeastSquares(A, b, passes=10**6), ONE, max_seconds=0.2)
    assert 0 < result.rounds < 10**6 * 40


def test_callback_sees_every_round_and_the_model_at_the_end_of_a_pass():
    A, b, w = least_squares()
    seen = []
    engine.run(LeastSquares(A, b, passes=3), ONE, callback=seen.append)
    assert [i["round"] for i in seen] == list(range(1, 121))
    ends = [i for i in seen if i["end_of_pass"]]
    assert [i["pass"] for i in ends] == [1, 2, 3] and [i["updates"] for i in ends] == [400, 800, 1200]
    assert "model" not in seen[0] and np.all(ends[-1]["model"]()["coef_"] == ends[-1]["model"]()["coef_"])
    assert ends[-1]["delay_mean"] == 0.0 and ends[-1]["pushes"] == 120


class _Interleaved(Problem):
    """A worker whose round r sees r pushes by 'others' between its pull and its push."""

    size = 3

    def __init__(self, exchange):
        self.exchange = exchange

    def initial(self):
        return np.zeros(3)

    def plan(self, exchange):
        return 5

    def local_steps(self, work, r, version, ticket):
        for _ in range(r):  # another worker's pushes land while this one computes
            self.exchange.push(None if self.exchange.in_place else Dense(np.ones(3)))
        work += 1.0
        return Round()

    def model(self, params, version):
        return {"w": params.copy()}


def test_delay_is_the_pushes_by_others_between_pull_and_push():
    ex = LocalExchange(3, in_place=False)
    result = engine.run(_Interleaved(ex), ONE, exchange=ex)
    assert result.stats.delays == [0, 1, 2, 3, 4]
    assert result.version == 5 + 10 and np.all(result.model["w"] == 15.0)


def test_policy_scales_by_the_measured_delay():
    from dpsgd.stepsize import make_policy

    ex = LocalExchange(3, in_place=False)
    policy = make_policy("fixed_or_skip", gamma_prime=1.0, alpha=0.9)
    result = engine.run(_Interleaved(ex), ONE, exchange=ex, policy=policy)
    # the others' pushes are not scaled (10 ones); ours are, and shrink as the delay grows
    ours = result.model["w"][0] - 10.0
    assert result.stats.delays == [0, 1, 2, 3, 4] and 0.0 <= ours < 5.0


def test_convergence_stop_ends_one_process():
    class Converges(LeastSquares):
        def local_steps(self, w, r, version, ticket):
            result = super().local_steps(w, r, version, ticket)
            result.stop = r == 6
            return result

    A, b, _ = least_squares()
    assert engine.run(Converges(A, b), ONE).rounds == 7


@pytest.mark.parametrize("exchange", ["server", "allreduce"])
@pytest.mark.parametrize("kind", ["dense", "sparse", "rows"])
def test_toys_under_mpiexec(exchange, kind):
    result = run_mpi("engine_toys.py", 3, exchange, kind, timeout=120)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["error"] < 1e-5, out
    assert out["same_model"] and out["ranks"] == result.ranks
    assert out["updates"] == out["expected_updates"]
    if exchange == "allreduce":
        assert out["delay_max"] == 0 and out["versions_agree"]


@pytest.mark.parametrize("exchange", ["server", "allreduce"])
@pytest.mark.parametrize("limit", ["updates", "seconds"])
def test_budget_stops_every_rank(exchange, limit):
    result = run_mpi("engine_toys.py", 3, exchange, "budget-" + limit, timeout=120)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["stopped_early"], out
    if limit == "seconds":  # 1 s, checked before every round of 10 updates
        assert out["seconds"] < 20, out
    if limit == "updates":
        # checked before each round of 10 updates: at most one round per rank beyond the budget
        assert 500 <= out["updates"] <= 500 + 10 * result.ranks, out
    if exchange == "allreduce":
        assert out["versions_agree"], out


@pytest.mark.parametrize("exchange", ["server", "allreduce"])
def test_failing_rank_ends_every_rank(exchange):
    result = run_mpi("engine_toys.py", 3, exchange, "fail", timeout=60)
    assert result.returncode != 0
    assert "rank 1 failed in round 3" in result.stderr


@pytest.mark.parametrize("name", ["budget", "fixed_or_skip"])
def test_policies_see_the_oldest_read_in_flight(name):
    """Worker threads on one copying exchange, one 8x slower than the others: its pushes land
    after many fast ones (its own delay jumps), and every push's tau, the age of the oldest
    read in flight, still grows by at most one, bounds every delay, and comes with the exact
    sum of the steps inside its window; so the window rule holds on every push."""
    import threading

    from engine_toys import Paced, Recording, audit_oldest_read

    from dpsgd.stepsize import delay_policy

    ex = LocalExchange(2, in_place=False)
    workers = [(Paced(12, 0.016), Recording(delay_policy(name, delay="oldest_read")))] + \
              [(Paced(60, 0.002), Recording(delay_policy(name, delay="oldest_read"))) for _ in range(3)]
    results = [None] * len(workers)

    def work(i):
        problem, policy = workers[i]
        results[i] = engine.run(problem, ONE, exchange=ex, policy=policy)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [r for _, policy in workers for r in policy.records]
    delays = [d for result in results for d in result.stats.delays]
    found = audit_oldest_read(records, delays)
    assert found["pushes_numbered_once"] and found["tau_bounds_the_delay"] and found["tau_grows_by_at_most_one"]
    assert max(map(abs, found["window_excess"])) < 1e-12  # one process: exactly the steps since that read
    assert found["largest_window_sum"] <= 1.0 + 1e-12, found
    assert found["delay_jumps"] > 1 and found["tau_above_delay"] > 0, found  # the case it is for
    assert [r.stats.taus for r in results] == [[r[1] for r in p.records] for _, p in workers]
    np.testing.assert_allclose(ex.pull()[0], found["scale_sum"], rtol=1e-12)  # every scaled push landed


@pytest.mark.parametrize("name", ["budget", "fixed_or_skip"])
def test_policies_see_the_oldest_read_across_ranks(name):
    """As above over the one-sided window of real ranks: the read cells, the mutex and the
    order of the clock and the step sum keep the contract when the workers are processes."""
    result = run_mpi("oldest_read.py", 3, name, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["pushes_numbered_once"] and found["tau_bounds_the_delay"] and found["tau_grows_by_at_most_one"]
    assert found["taus_are_the_policys"] and found["final_is_the_scale_sum"] < 1e-9, found
    assert found["bytes_right"]
    # at least the steps since the oldest read (part of one more where a push was adding its step
    # while the read was published)
    assert found["window_excess"][0] >= -1e-12, found
    assert found["largest_window_sum"] <= 1.0 + 1e-12, found
    if result.ranks > 2:  # a slow rank among fast ones: the case the oldest read is for
        assert found["delay_jumps"] > 1 and found["tau_above_delay"] > 0, found
