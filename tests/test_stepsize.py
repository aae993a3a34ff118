"""Step-size schedules and the contracts of the delay-adaptive policies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpsgd import stepsize


@st.composite
def delay_sequences(draw):
    """Delays as real asynchronous runs produce them: each at most one more than the last."""
    n = draw(st.integers(1, 300))
    delays, last = [], 0
    for _ in range(n):
        last = draw(st.integers(0, last + 1))
        delays.append(last)
    return delays


def window_sums(gammas, delays):
    return [sum(gammas[k - d:k + 1]) for k, d in enumerate(delays)]


@settings(max_examples=200, deadline=None)
@given(delay_sequences(), st.floats(0.01, 10.0), st.floats(0.05, 0.95),
       st.sampled_from(["budget", "fixed_or_skip"]))
def test_adaptive_policies_keep_every_window_within_gamma_prime(delays, gamma_prime, alpha, name):
    policy = stepsize.make_policy(name, gamma_prime=gamma_prime, alpha=alpha)
    gammas = [policy.step(k, d) for k, d in enumerate(delays)]
    assert min(gammas) >= 0.0
    assert max(window_sums(gammas, delays)) <= gamma_prime * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(delay_sequences(), st.integers(0, 50))
def test_fixed_for_delay_meets_the_bound_while_delays_stay_below_tau_max(delays, tau_max):
    policy = stepsize.FixedForDelay(1.0, tau_max)
    gammas = [policy.step(k, d) for k, d in enumerate(delays)]
    for k, d in enumerate(delays):
        if d <= tau_max:
            assert window_sums(gammas, delays)[k] <= 1.0 + 1e-12


def test_adaptive_steps_are_larger_when_delays_are_small():
    """Wu et al.'s point: real delays are far below the worst case, so adaptive steps are larger."""
    delays = np.minimum(np.arange(1000) % 8, np.arange(1000))  # typical 0..7, worst case 40
    fixed = stepsize.FixedForDelay(1.0, tau_max=40)
    budget = stepsize.Budget(1.0, alpha=0.5)
    total_fixed = sum(fixed.step(k, int(d)) for k, d in enumerate(delays))
    total_budget = sum(budget.step(k, int(d)) for k, d in enumerate(delays))
    assert total_budget > 3 * total_fixed


def test_zero_delay_budget_step_is_alpha_gamma_prime():
    policy = stepsize.Budget(2.0, alpha=0.25)
    assert policy.step(0, 0) == 0.5
    assert policy.step(1, 1) == pytest.approx(0.25 * (2.0 - 0.5))
    skip = stepsize.FixedOrSkip(1.0, alpha=0.6)
    assert skip.step(0, 0) == 0.6 and skip.step(1, 1) == 0.0  # 0.6 > (1 - 0.6) * 1: skip


def test_schedules():
    assert stepsize.Constant(0.3).step(100) == 0.3
    assert stepsize.InvScaling(1.0, 0.5).step(3) == pytest.approx(0.5)
    assert stepsize.RobbinsMonro(10.0, 0.7).step(5) == pytest.approx(15 ** -0.7)
    decay = stepsize.EpochDecay(1.0, 0.5, updates_per_epoch=10)
    assert [decay.step(k) for k in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert stepsize.eta("optimal", 1, eta0=0, alpha=0.1, power_t=0, t0=10) == pytest.approx(1.0)


@pytest.mark.parametrize("name,params", [("budget", dict(gamma_prime=1.0, alpha=1.5)),
                                         ("robbins_monro", dict(kappa=0.3)),
                                         ("fixed_for_delay", dict(gamma_prime=1.0, tau_max=-1)),
                                         ("nope", {})])
def test_bad_policies(name, params):
    with pytest.raises(ValueError):
        stepsize.make_policy(name, **params)
    with pytest.raises(ValueError, match="delay"):
        stepsize.Constant(1.0).step(0, -1)


def test_policies_use_the_steps_of_every_worker_when_given():
    budget = stepsize.make_policy("budget", gamma_prime=2.0, alpha=0.5)
    assert budget.delay_scale(0, 3, window_scales=0.6) == pytest.approx(0.5 * (2.0 - 1.2) / 2.0)
    skip = stepsize.make_policy("fixed_or_skip", gamma_prime=1.0, alpha=0.5)
    assert skip.delay_scale(0, 2, window_scales=0.7) == 0.0 and skip.delay_scale(1, 2, window_scales=0.5) == 0.5
    assert stepsize.make_policy("fixed_for_delay", gamma_prime=1.0, tau_max=3).delay_scale(0, 9, window_scales=5.0) == 0.25


def test_engine_feeds_other_workers_pushes_to_the_policy():
    """Another worker pushes (multiplier 0.3) while this one computes: the budget policy
    must see that step in its window, which its own record of steps does not hold."""
    from dpsgd import engine
    from dpsgd.comm import Topology
    from dpsgd.comm.codecs import Dense
    from dpsgd.comm.local import LocalExchange

    exchange = LocalExchange(2, in_place=False)

    class OneRound(engine.Problem):
        size = 2

        def initial(self):
            return np.zeros(2)

        def plan(self, ex):
            return 1

        def local_steps(self, work, r, version, ticket):
            exchange.push(Dense(np.zeros(2)), step=0.3)  # "the other worker"
            work += 1.0
            return engine.Round()

        def model(self, params, version):
            return {"w": params.copy()}

    policy = stepsize.make_policy("budget", gamma_prime=1.0, alpha=0.5)
    result = engine.run(OneRound(), Topology(), exchange=exchange, policy=policy)
    assert result.stats.delays == [1] and result.version == 2
    np.testing.assert_allclose(result.model["w"], 0.5 * (1.0 - 0.3))  # alpha (gamma' - 0.3) / gamma'


def test_delay_policy_names_mean_what_the_cli_and_the_estimators_share():
    assert stepsize.delay_policy("none") is None
    budget = stepsize.delay_policy("budget", alpha=0.5)
    assert isinstance(budget, stepsize.Budget) and budget.alpha == 0.5 and budget.gamma_prime == 1.0
    fixed = stepsize.delay_policy("fixed_for_delay", tau_max=3)
    assert fixed.delay_scale(0, 9, window_scales=5.0) == 0.25  # gamma' / (tau_max + 1)
    with pytest.raises(ValueError, match="unknown delay policy"):
        stepsize.delay_policy("constant")


# ---------------------------------------------------------------- the oldest outstanding read (issue 11)

def simulated_async_log(n_updates=3000, n_workers=8, seed=0):
    """An asynchronous run as Wu et al.'s logs show them: 8 workers, one of them 20x slower,
    compute times jittered; each worker reads, computes, has its update applied, reads again.
    Returns the per-update delays and the live tracker's oldest-outstanding ages."""
    rng = np.random.default_rng(seed)
    speed = np.ones(n_workers)
    speed[0] = 20.0  # the straggler whose late writes make the delays jump
    tracker = stepsize.OutstandingReads()
    finish = {}
    for w in range(n_workers):
        tracker.read(w)
        finish[w] = speed[w] * rng.uniform(0.5, 1.5)
    delays, oldest = [], []
    while len(delays) < n_updates:
        w = min(finish, key=finish.get)
        d, tau = tracker.apply(w)
        delays.append(d)
        oldest.append(tau)
        tracker.read(w)
        finish[w] += speed[w] * rng.uniform(0.5, 1.5)
    return delays, oldest


def test_oldest_outstanding_read_bounds_jumping_delays_and_grows_by_one_at_most():
    delays, oldest = simulated_async_log()
    jumps = np.diff(delays)
    assert jumps.max() >= 10  # the straggler's writes: the shape of the authors' Async-BCD logs
    assert all(t >= d for t, d in zip(oldest, delays))
    assert np.diff(oldest).max() <= 1
    # the replay of a log equals the live measure, but near the log's end, where it cannot see
    # the reads whose updates land after the log (the straggler's: ~150 updates a computation)
    replay = stepsize.oldest_outstanding(delays)
    assert replay[:2500] == oldest[:2500] and all(r <= t for r, t in zip(replay, oldest))
    assert stepsize.oldest_outstanding([0, 0, 0, 3, 0, 1, 0]) == [0, 1, 2, 3, 0, 1, 0]
    with pytest.raises(ValueError, match="delays"):
        stepsize.oldest_outstanding([0, 2])
    with pytest.raises(ValueError, match="did not read"):
        stepsize.OutstandingReads().apply("w")


@pytest.mark.parametrize("name", ["budget", "fixed_or_skip", "fixed_for_delay"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policies_fed_the_oldest_read_keep_every_real_window_within_gamma_prime(name, seed):
    """The audit of every update: the steps inside each update's own delay window sum to at most
    gamma' when the policy sees the oldest outstanding read; fed the jumping per-update delays
    instead, budget breaks the rule (so the audit can fail)."""
    delays, oldest = simulated_async_log(seed=seed)
    params = dict(gamma_prime=1.0, tau_max=max(oldest)) if name == "fixed_for_delay" else \
        dict(gamma_prime=1.0, alpha=0.5)
    policy = stepsize.make_policy(name, **params)
    gammas = [policy.step(k, tau) for k, tau in enumerate(oldest)]
    assert max(window_sums(gammas, delays)) <= 1.0 + 1e-9
    naive = stepsize.make_policy("budget", gamma_prime=1.0, alpha=0.5)
    naive_gammas = [naive.step(k, d) for k, d in enumerate(delays)]
    assert max(window_sums(naive_gammas, delays)) > 1.0 + 1e-9


@st.composite
def jumping_delay_logs(draw):
    """Any per-update delays an asynchronous run can log: delays[k] in [0, k], jumps allowed."""
    n = draw(st.integers(1, 200))
    return [draw(st.integers(0, k)) for k in range(n)]


@settings(max_examples=200, deadline=None)
@given(jumping_delay_logs(), st.sampled_from(["budget", "fixed_or_skip"]))
def test_the_window_rule_holds_for_any_delay_log_through_the_oldest_read(delays, name):
    oldest = stepsize.oldest_outstanding(delays)
    assert all(t >= d for t, d in zip(oldest, delays)) and all(b - a <= 1 for a, b in zip(oldest, oldest[1:]))
    policy = stepsize.make_policy(name, gamma_prime=2.0, alpha=0.5)
    gammas = [policy.step(k, tau) for k, tau in enumerate(oldest)]
    assert max(window_sums(gammas, delays)) <= 2.0 * (1 + 1e-9)


def test_delay_policy_names_the_delay_the_engine_gives():
    from dpsgd.stepsize import delay_policy

    assert delay_policy("budget").delay == "push" and delay_policy("budget", delay="oldest_read").delay == "oldest_read"
    assert delay_policy("fixed_for_delay", tau_max=3, delay="oldest_read").delay == "oldest_read"
    with pytest.raises(ValueError, match="delay must be one of"):
        delay_policy("budget", delay="newest")
