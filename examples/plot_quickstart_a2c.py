"""
Quickstart: reinforcement learning with A2C
===========================================

:class:`dpsgd.A2C` is Stable-Baselines3's A2C, with its names and RL-Zoo's CartPole-v1 set-up
(8 environments, 5 steps, RMSprop 7e-4, separate 64-64 tanh actor and critic), trained in C:
each thread steps its own C environments (``dpsgd.envs``, step for step Gymnasium's) and
applies its updates to the shared actor-critic without locks. Here one thread learns
CartPole-v1 until the last 100 episodes average 475 (Gymnasium's threshold), a callback
records the mean return as it goes, and the learnt policy is scored on 10 fresh episodes.
See :doc:`/guide/reinforcement_learning`.
"""

import matplotlib.pyplot as plt

from dpsgd import A2C, evaluate_policy

curve = []


def record(info):
    """Called after every round of updates: keep the env steps and the mean return."""
    curve.append((info["env_steps"], info["mean_return"]))


model = A2C("MlpPolicy", "CartPole-v1", n_threads=1, seed=3)
model.learn(250_000, callback=record, stop_at_reward=475)
mean, std = evaluate_policy(model, "CartPole-v1", n_eval_episodes=10)
print(f"solved after {model.solved_at_} env steps; 10 test episodes: {mean:.0f} +- {std:.0f}")
action, _ = model.predict([0.0, 0.1, 0.02, -0.1], deterministic=True)
print("action (0: push left, 1: push right) for the state [0, 0.1, 0.02, -0.1]:", action)

# %%
# The learning curve
# ------------------

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(*zip(*curve))
ax.axhline(475, color="grey", linestyle="--", label="solved (475)")
ax.set_xlabel("env steps")
ax.set_ylabel("mean return, last 100 episodes")
ax.legend()
fig.tight_layout()
plt.show()
