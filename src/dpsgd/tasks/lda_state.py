"""LDA's topics as a state of their own: the step sizes, the lazily scaled form the ranks
share (:class:`ScaledTopics`), and the re-seeding of dead topics.

The arithmetic lives here, apart from how the topics move (:mod:`dpsgd.tasks.lda_problem`
and the exchanges), as gensim keeps its ``LdaState`` apart from its dispatcher and workers.

The exchanged parameters are lambda word-major, (V, K) rows then one row of its K column
sums: a minibatch reads and writes only its words' rows and the sums.
"""

import numpy as np

# exp(-600) ~ 1e-261: a scale below that loses the steps' terms to underflow
_LOG_SCALE_FLOOR = -600.0


def step_sizes(steps, learning_offset, learning_decay):
    """rho_t = (tau0 + t) ** -kappa of the global steps ``steps`` (scikit-learn's schedule)."""
    return (learning_offset + steps) ** -learning_decay


def word_major(topics):
    """Flat parameters from (K, V) topics: lambda word-major, then its column sums.

    Topics that are a view of such parameters (``topics_view``: a fitted ``components_``)
    give those parameters themselves, their sums recomputed: a fit then updates them in
    place, as scikit-learn's updates its ``components_``, and holds the topics once."""
    K, V = topics.shape
    flat = topics.base
    if not (type(flat) is np.ndarray and flat.shape == ((V + 1) * K,) and flat.dtype == np.float64
            and flat.flags.writeable and topics.strides == (8, 8 * K) and topics.ctypes.data == flat.ctypes.data):
        flat = np.empty((V + 1) * K)
        topics_view(flat, K)[...] = topics
    lam = flat[:-K].reshape(V, K)
    lam.sum(axis=0, out=flat[-K:])
    return flat


def topics_view(flat, K):
    """The (K, V) topics of flat word-major parameters: a view (Fortran-ordered), not a copy."""
    return flat[:-K].reshape(-1, K).T


class ScaledTopics:
    """Lambda in the scaled form that the ranks add their steps to, in any order.

    A global step t replaces lambda by (1 - rho_t) lambda + rho_t (eta + D/|B| S_t): every
    entry decays. Written lambda = A_t Lam + eta (1 - A_t), with A_t the product of
    (1 - rho_s) over the first t steps (known in advance), a step only adds its own term
    rho_t D/|B| S_t / A_{t+1} to the rows of its minibatch's words: the steps commute, so
    asynchronous pushes make the same sum whatever order they land in, and a round moves
    O(words of the minibatch x K) numbers, not O(V K). A_0 = 1: at the start both forms agree.

    Parameters
    ----------
    V, K : int
        Words and topics.
    eta : float
        The topic-word prior.
    rho : ndarray
        Step sizes of the global steps 0, 1, ..., T (T + 1 of them: ``step_sizes``), T the
        most steps the run can take; versions beyond T read A_T.

    Raises
    ------
    ValueError
        When A_T underflows (too many steps for the schedule).
    """

    def __init__(self, V, K, eta, rho):
        self.V, self.K, self.eta, self.rho = V, K, eta, rho
        log_scale = np.concatenate(([0.0], np.cumsum(np.log1p(-rho[:-1]))))
        if log_scale[-1] < _LOG_SCALE_FLOOR:
            raise ValueError(f"{rho.size - 1} global steps shrink lambda's scale below 1e-260; "
                             "use fewer passes or larger minibatches")
        self.scale = np.exp(log_scale)

    def scale_at(self, version):
        """A_version: the scale of the parameters read at ``version`` (A_T beyond T)."""
        return self.scale[min(version, self.scale.size - 1)]

    def topics(self, flat, version):
        """The true (K, V) topics (a new contiguous array) of the scaled parameters ``flat``
        read at ``version``."""
        A = self.scale_at(version)
        # Every step adds a term >= 0 to the scaled rows, which start from the initial lambda
        # > 0, and re-seeding's corrections write lambda >= eta: so they are >= 0, and lambda
        # >= eta (1 - A) > 0. Compressed gossip (natural compression's rounding of the public
        # copies: dpsgd.comm.gossip) can leave a scaled entry below 0 on a rank, which made
        # the E-step's digamma non-finite (AP, 3-4 ranks): reads put it back at 0, here and
        # in the kernel's step (svi_step).
        scaled = np.maximum(flat[:-self.K].reshape(-1, self.K), 0.0)
        return np.ascontiguousarray((scaled * A + self.eta * (1.0 - A)).T)

    def correction(self, change, version):
        """Flat scaled parameters that add ``change`` ((K, V), true form) to the topics as read
        at ``version``: a correction, not a step (it decays with the topics from then on)."""
        delta = change.T / self.scale_at(version)
        return np.concatenate([delta, delta.sum(axis=0, keepdims=True)]).ravel()


def reseed_dead_topics(topics, eta, rng):
    """Split the heaviest topics into the dead or duplicate ones, in place.

    Dead: less than 10% of the median topic's mass; duplicate: cosine > 0.6 with a heavier
    topic. A merge of two true topics has about twice a topic's mass and leaves, K being
    fixed, a topic with nothing to explain: it dies, or it copies another. Halving the
    heaviest topic with independent log-normal noise (sigma 1) gives the E-step two
    different starts to pull apart.

    Parameters
    ----------
    topics : ndarray (K, V)
        True lambda, changed in place.
    eta : float
        The topic-word prior (the floor of every entry).
    rng : numpy.random.RandomState

    Returns
    -------
    int
        The number of topics re-seeded.
    """
    excess = topics - eta
    mass = excess.sum(axis=1)
    weak = mass < 0.1 * np.median(mass)
    unit = excess / np.maximum(np.linalg.norm(excess, axis=1, keepdims=True), 1e-300)
    _mark_duplicates(unit, mass, weak)
    by_mass = np.argsort(-mass)
    donors = by_mass[~weak[by_mass]]
    if donors.size == 0:  # every topic ties with another (identical topics): none to split
        return 0
    for n, k in enumerate(np.flatnonzero(weak)):
        j = donors[n % donors.size]
        half = 0.5 * (topics[j] - eta)
        topics[k] = eta + half * rng.lognormal(0.0, 1.0, half.size)
        topics[j] = eta + half * rng.lognormal(0.0, 1.0, half.size)
    return int(weak.sum())


def _mark_duplicates(unit, mass, weak):
    """Mark in ``weak`` the lighter topic of each pair with cosine > 0.6 (rows of ``unit``,
    unit-norm) of which neither is weak yet, taking the pairs (i < j) by i, then j.

    A block of rows is compared at a time with the later topics not weak yet (a topic once
    weak stays so), so the memory is about 32 MB of cosines whatever K, never the K x K
    matrix (K = 100,000 would need 75 GiB), and topics found duplicate cost no more."""
    K = unit.shape[0]
    start = 0
    while start < K:
        later = np.flatnonzero(~weak[start + 1:]) + start + 1
        stop = min(K, start + max(1, 2**22 // max(later.size, 1)))
        rows = np.arange(start, stop)
        rows = rows[~weak[rows]]
        cosine = unit[rows] @ unit[later].T
        for r, i in enumerate(rows):
            if weak[i]:
                continue
            partners = later[cosine[r] > 0.6]
            partners = partners[(partners > i) & ~weak[partners]]
            heavier = np.flatnonzero(mass[partners] > mass[i])
            # the pairs before the first heavier partner lose their partner; that one, i
            cut = heavier[0] if heavier.size else partners.size
            weak[partners[:cut]] = True
            weak[i] = heavier.size > 0
        start = stop
