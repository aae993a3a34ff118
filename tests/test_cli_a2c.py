"""``dpsgd train a2c``: the default solves CartPole-v1; logs, checkpoints, resume, mpiexec, bad options."""

import json
import subprocess
import sys

import numpy as np
from conftest import run_mpi

from dpsgd import load_model
from dpsgd.persist import read_checkpoint


def run(*args):
    return subprocess.run([sys.executable, "-m", "dpsgd", "train", "a2c", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_the_default_solves_cartpole(tmp_path):
    """With no options: RL-Zoo's CartPole-v1 set-up until the last 100 episodes average 475
    (seed 0: 153k env steps, about 7 CPU-seconds here)."""
    out = run("--quiet", "--threads", 1, "--save", tmp_path / "model.npz")
    assert out.returncode == 0, out.stderr
    result = out.stdout.strip().splitlines()[-2]
    assert "reached 475 after" in result, out.stdout
    steps = int(result.split("env steps ")[1].split(",")[0])
    assert steps < 500_000
    model = load_model(tmp_path / "model.npz")
    assert model.num_timesteps == steps and model.env == "CartPole-v1"


def test_log_checkpoint_and_resume(tmp_path):
    log, ckpt = tmp_path / "log.jsonl", tmp_path / "ckpt.npz"
    out = run("--quiet", "--threads", 1, "--timesteps", 24_000, "--stop-at-reward", "none", "--log-interval", 8_000,
              "--log-json", log, "--checkpoint", ckpt)
    assert out.returncode == 0, out.stderr
    assert "24000 env steps, the whole budget" in out.stdout.splitlines()[0]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["env_steps"] // 8_000 for line in lines] == [1, 2, 3]
    assert all(np.isfinite(line["mean_return"]) and line["time"] > 0 for line in lines)
    arrays, meta = read_checkpoint(ckpt, "a2c")
    assert meta["num_timesteps"] == 24_000 and meta["env"] == "CartPole-v1"
    out = run("--quiet", "--threads", 1, "--timesteps", 32_000, "--stop-at-reward", "none", "--resume", ckpt,
              "--save", tmp_path / "model.npz")
    assert out.returncode == 0, out.stderr
    assert "resuming from" in out.stdout and "env steps 32000" in out.stdout
    model = load_model(tmp_path / "model.npz")
    assert model.num_timesteps == 32_000 and not np.array_equal(model.params_, arrays["params_"])
    out = run("--quiet", "--timesteps", 32_000, "--resume", ckpt, "--env", "Acrobot-v1")
    assert out.returncode == 2 and "the checkpoint trained CartPole-v1" in out.stderr


def test_pendulum_with_a_linear_schedule_and_per_thread_statistics(tmp_path):
    """Continuous actions from the command line: RL-Zoo's "lin_<lr>" schedule, per-thread
    optimizer statistics, no reward threshold (Pendulum-v1 has none): the whole budget runs."""
    out = run("--env", "Pendulum-v1", "--timesteps", 20_000, "--n-steps", 8, "--gamma", 0.9, "--learning-rate",
              "lin_7e-4", "--optimizer-stats", "per-thread", "--normalize", "--threads", 2, "--quiet",
              "--save", tmp_path / "pendulum.npz")
    assert out.returncode == 0, out.stderr
    model = load_model(tmp_path / "pendulum.npz")
    assert model.layout_.continuous and model.learning_rate == "lin_7e-4" and not model.shared_optimizer_stats
    assert model.num_timesteps >= 20_000
    assert run("--learning-rate", "lin_0").returncode == 2


def test_bad_options_are_refused_before_training():
    for args, message in [(("--env", "Pong-v5"), "invalid choice"), (("--max-updates", 10), "--timesteps"),
                          (("--timesteps", 0), "positive integer"), (("--stop-at-reward", "high"), "'none'"),
                          (("--exchange", "allreduce", "--step-policy", "budget"), "does not scale its changes")]:
        out = run(*args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)


def test_two_ranks_under_mpiexec():
    out = run_mpi("dpsgd", 2, "train", "a2c", "--quiet", "--threads", 1, "--timesteps", 40_000,
                  "--stop-at-reward", "none", timeout=300)
    assert out.returncode == 0, out.stderr
    result = out.stdout.strip().splitlines()[-1]
    assert f"x {out.ranks} ranks" in result and "delay mean" in result
    assert "env steps 40" in result  # every rank's steps: the budget, and at most a round more per rank
