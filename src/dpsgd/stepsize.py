"""Step-size schedules.

The schedules of the linear models, with scikit-learn's definitions (t is the
global step, starting at 1):

- ``constant``:   eta_t = eta0
- ``optimal``:    eta_t = 1 / (alpha * (t0 + t - 1)), with t0 chosen so that
  eta_1 equals Bottou's heuristic initial step (see :func:`optimal_init`)
- ``invscaling``: eta_t = eta0 / t ** power_t

The kernels evaluate them in C (``dpsgd._kernels.sgd``); :func:`eta` is the
same formula in Python, used for validation and tests.
"""

import math

LEARNING_RATES = ("constant", "optimal", "invscaling")


def optimal_init(alpha, dloss):
    """Offset t0 of the ``optimal`` schedule.

    Parameters
    ----------
    alpha : float
        Regularisation strength (> 0).
    dloss : callable
        ``dloss(y, p)``, the loss derivative in the prediction p.

    Returns
    -------
    float
        t0 such that eta_1 = typw / max(1, dloss(1, -typw)) with typw = alpha ** -0.25,
        exactly as scikit-learn computes it.
    """
    typw = math.sqrt(1.0 / math.sqrt(alpha))
    initial_eta0 = typw / max(1.0, dloss(1.0, -typw))
    return 1.0 / (initial_eta0 * alpha)


def eta(schedule, t, *, eta0, alpha, power_t, t0):
    """Step size of global step ``t`` (1-based) under ``schedule``."""
    if schedule == "optimal":
        return 1.0 / (alpha * (t0 + t - 1.0))
    if schedule == "invscaling":
        return eta0 / t**power_t
    if schedule == "constant":
        return eta0
    raise ValueError(f"unknown learning rate schedule {schedule!r}; choose from {LEARNING_RATES}")
