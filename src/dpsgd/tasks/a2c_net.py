"""The actor-critic network of A2C as one flat float64 vector: layout, initialisation, NumPy reference.

Stable-Baselines3's ``ActorCriticPolicy`` with ``net_arch=dict(pi=[h1, h2], vf=[h1, h2])`` and
tanh (RL-Zoo's default is 64, 64): an actor ``obs -> h1 -> h2 -> n_actions`` and a critic
``obs -> h1 -> h2 -> 1``, separate networks. For discrete actions the actor's outputs are a
categorical policy's logits; for continuous ones (``continuous=True``) the mean of a diagonal
Gaussian whose log standard deviations are the parameters ``log_std`` (SB3's
``DiagGaussianDistribution``). The layout is the kernel's (``dpsgd._kernels.a2c``): the actor,
then the critic, each layer as torch's ``nn.Linear`` keeps it, weight ``(out, in)`` row-major,
then bias; then ``log_std`` for continuous actions.

The NumPy forward and loss here are the reference the kernel tests compare with; the
training path runs the kernels.
"""

from __future__ import annotations

import numpy as np

LAYER_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")


def orthogonal(rows: int, cols: int, gain: float, rng: np.random.Generator) -> np.ndarray:
    """A (rows, cols) matrix initialised as torch's ``nn.init.orthogonal_``.

    A standard normal matrix, transposed when it is wide, QR-factorised, Q's columns given
    the signs of R's diagonal, transposed back, times ``gain``: orthonormal rows when
    ``rows <= cols``, orthonormal columns otherwise.

    Parameters
    ----------
    rows, cols : int
        Shape of the weight (torch's ``(out_features, in_features)``).
    gain : float
        Scale of the result.
    rng : numpy.random.Generator
        Source of the normal draws.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (rows, cols).
    """
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q


class ActorCriticLayout:
    """Offsets, views, initialisation and a NumPy reference of the flat actor-critic vector.

    Parameters
    ----------
    obs_dim : int
        Length of an observation.
    n_actions : int
        Number of discrete actions (>= 2), or the dimension of a continuous action (>= 1).
    hidden : tuple of int, default=(64, 64)
        The two hidden sizes, for the actor and the critic alike.
    continuous : bool, default=False
        A Gaussian policy over float actions instead of a categorical one.

    Attributes
    ----------
    n_params : int
        Length of the flat vector.
    slots : dict
        ``"actor.w1"`` ... ``"critic.b3"`` (and ``"actor.log_std"``) to ``(offset, shape)``, in layout order.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, int] = (64, 64),
                 continuous: bool = False) -> None:
        if len(hidden) != 2:
            raise ValueError(f"hidden must be two sizes (h1, h2), got {hidden!r}")
        h1, h2 = (int(h) for h in hidden)
        if obs_dim < 1 or h1 < 1 or h2 < 1:
            raise ValueError(f"obs_dim and the hidden sizes must be >= 1, got {obs_dim}, {hidden}")
        if n_actions < (1 if continuous else 2):
            raise ValueError(f"n_actions must be >= {1 if continuous else 2}, got {n_actions}")
        self.obs_dim, self.n_actions, self.h1, self.h2 = int(obs_dim), int(n_actions), h1, h2
        self.continuous = bool(continuous)
        self.slots: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for net, n_out in (("actor", self.n_actions), ("critic", 1)):
            for name, shape in zip(LAYER_NAMES, ((h1, self.obs_dim), (h1,), (h2, h1), (h2,), (n_out, h2), (n_out,))):
                self.slots[f"{net}.{name}"] = (offset, shape)
                offset += int(np.prod(shape))
        if self.continuous:
            self.slots["actor.log_std"] = (offset, (self.n_actions,))
            offset += self.n_actions
        self.n_params = offset

    @property
    def hidden(self) -> tuple[int, int]:
        """The hidden sizes (h1, h2)."""
        return self.h1, self.h2

    def views(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """Named views (no copies) of the layers in a flat vector.

        Parameters
        ----------
        params : numpy.ndarray
            Flat float64 vector of length ``n_params``.

        Returns
        -------
        dict
            ``"actor.w1"`` ... ``"critic.b3"`` to views shaped as torch's ``nn.Linear`` parameters.
        """
        if params.ndim != 1 or params.shape[0] != self.n_params:
            raise ValueError(f"params must be a flat vector of {self.n_params} values, got shape {params.shape}")
        return {key: params[o:o + int(np.prod(shape))].reshape(shape) for key, (o, shape) in self.slots.items()}

    def init_params(self, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Initial parameters as SB3's ``ActorCriticPolicy`` (``ortho_init=True``) sets them.

        Orthogonal weights with gain sqrt(2) for the hidden layers, 0.01 for the policy head
        and 1 for the value head; zero biases; ``log_std`` 0 (SB3's ``log_std_init``).

        Parameters
        ----------
        rng : numpy.random.Generator, int or None
            Seed or generator of the draws.

        Returns
        -------
        numpy.ndarray
            Flat float64 vector of length ``n_params``.
        """
        rng = np.random.default_rng(rng)
        params = np.zeros(self.n_params)
        v = self.views(params)
        for net, head_gain in (("actor", 0.01), ("critic", 1.0)):
            for name, gain in (("w1", np.sqrt(2.0)), ("w2", np.sqrt(2.0)), ("w3", head_gain)):
                w = v[f"{net}.{name}"]
                w[...] = orthogonal(w.shape[0], w.shape[1], gain, rng)
        return params

    def forward(self, params: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """NumPy reference forward of a batch.

        Parameters
        ----------
        params : numpy.ndarray
            Flat vector of length ``n_params``.
        obs : numpy.ndarray
            Observations, shape (T, obs_dim).

        Returns
        -------
        logits, log_probs : numpy.ndarray
            Shape (T, n_actions); log_probs is the log-softmax of logits. Continuous actions:
            the Gaussian's mean and ``log_std`` (repeated on every row).
        entropy, values : numpy.ndarray
            Shape (T,).
        """
        v = self.views(params)
        obs = np.asarray(obs, dtype=np.float64)

        def mlp(net: str) -> np.ndarray:
            h = np.tanh(obs @ v[f"{net}.w1"].T + v[f"{net}.b1"])
            h = np.tanh(h @ v[f"{net}.w2"].T + v[f"{net}.b2"])
            return h @ v[f"{net}.w3"].T + v[f"{net}.b3"]

        logits = mlp("actor")
        values = mlp("critic")[:, 0]
        if self.continuous:
            log_std = np.broadcast_to(v["actor.log_std"], logits.shape).copy()
            entropy = (0.5 + 0.5 * np.log(2 * np.pi) + log_std).sum(axis=1)
            return logits, log_std, entropy, values
        m = logits.max(axis=1, keepdims=True)
        log_probs = logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))
        entropy = -(np.exp(log_probs) * log_probs).sum(axis=1)
        return logits, log_probs, entropy, values

    def loss(self, params: np.ndarray, obs: np.ndarray, actions: np.ndarray, advantages: np.ndarray,
             returns: np.ndarray, ent_coef: float = 0.0, vf_coef: float = 0.5,
             normalize_advantage: bool = False) -> tuple[float, float, float, float]:
        """NumPy reference of SB3's A2C loss on a batch (advantages and returns as constants).

        Parameters
        ----------
        params, obs : numpy.ndarray
            As for :meth:`forward`.
        actions : numpy.ndarray
            Integer actions, shape (T,); continuous actions: floats, shape (T, n_actions).
        advantages, returns : numpy.ndarray
            Shape (T,).
        ent_coef, vf_coef : float
            Weights of the entropy loss and the value loss.
        normalize_advantage : bool
            Standardise the advantages as SB3 does (std with T - 1 degrees of freedom, + 1e-8).

        Returns
        -------
        tuple of float
            ``(loss, policy_loss, value_loss, entropy_loss)``.
        """
        out, log_probs, entropy, values = self.forward(params, obs)
        adv = np.asarray(advantages, dtype=np.float64)
        if normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
        if self.continuous:  # out: the mean, log_probs: log_std; torch's Normal(mean, std).log_prob summed
            z = (np.asarray(actions, dtype=np.float64) - out) / np.exp(log_probs)
            log_prob = (-0.5 * z * z - log_probs - 0.5 * np.log(2 * np.pi)).sum(axis=1)
        else:
            log_prob = log_probs[np.arange(len(actions)), np.asarray(actions)]
        policy_loss = -(adv * log_prob).mean()
        value_loss = ((np.asarray(returns) - values) ** 2).mean()
        entropy_loss = -entropy.mean()
        loss = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
        return float(loss), float(policy_loss), float(value_loss), float(entropy_loss)
