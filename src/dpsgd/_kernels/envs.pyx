"""Classic-control environments in C, batched: CartPole-v1, Acrobot-v1 and Pendulum-v1.

Each environment is three ``nogil`` functions over a float64 state (``*_dynamics``:
one step of the physics, reward and termination; ``*_reset``: a fresh state from
the env's own RNG; ``*_observe``: the float32 observation), written in the very
operation order of Gymnasium 1.x (``gymnasium/envs/classic_control/cartpole.py``,
``acrobot.py`` and ``pendulum.py``), so that a step gives the same float64 state bit for bit.
CartPole and Acrobot take a discrete action (``dynamics_fn``), Pendulum a float64 vector
(``cdynamics_fn``); ``EnvSpec`` has one of the two pointers, the other NULL.

Why the order matters. Gymnasium computes in Python floats and NumPy float64
scalars, without fused multiply-adds; C does the same when every operation is
written in the same order and the compiler may not contract ``a * b + c`` into
an FMA (setup.py and CMakeLists.txt build this module with ``-ffp-contract=off``).
``x**2`` of a NumPy float64 scalar calls libm's ``pow``, which is not always the
correctly rounded ``x * x`` (83 in 100,000 random values differed, glibc,
2026-12): Acrobot's squares go through ``pow`` called by a volatile pointer,
so that the compiler cannot rewrite ``pow(x, 2.0)`` into ``x * x``; so do Pendulum's
(all NumPy float64 scalars when its action is float64, see ``pendulum_dynamics``). ``np.cos``
and ``np.sin`` of a float64 scalar agreed with libm's on 200,000 values
(NumPy 2.4, x86-64 v3); tests/test_envs.py checks both.

One ``def`` entry, ``step``, runs the vector env's step over all envs with the
auto-reset rule of Gymnasium's vector envs; ``reset`` and ``observe`` serve
``reset()`` and ``set_state()``; ``seed`` seeds the per-env RNGs (dpsgd's
xoshiro256**, stream = env index).
"""
from libc.math cimport copysign, cos, fmod, sin, M_PI
from libc.stdint cimport int64_t, uint8_t, uint64_t

from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_uniform

cdef extern from *:
    """
    #include <math.h>
    /* libm's pow through a pointer the compiler cannot see through: GCC turns a direct
       pow(x, 2.0) into x * x, which NumPy's float64 ** 2 is not (it calls pow). */
    static double (*volatile dp_libm_pow)(double, double) = pow;
    static inline double dp_pow(double x, double y) { return dp_libm_pow(x, y); }
    """
    double dp_pow(double x, double y) noexcept nogil

# dynamics_fn, cdynamics_fn, reset_fn, observe_fn, EnvSpec and EnvId are declared in envs.pxd.

# Autoreset modes (gymnasium.vector.AutoresetMode): NEXT_STEP resets a finished env on the
# following step() call, which returns the reset observation with reward 0 and both flags
# False, ignoring that env's action; SAME_STEP resets it at once and returns the final
# observation separately.
cpdef enum Autoreset:
    NEXT_STEP = 0
    SAME_STEP = 1

# actions of the step entry: int64 (n_envs, 1) for the discrete envs, float64 (n_envs, action_dim)
# for the continuous ones
ctypedef fused action_t:
    int64_t
    double


# ---------------------------------------------------------------- CartPole-v1 (cartpole.py)

cdef double CP_GRAVITY = 9.8
cdef double CP_MASSCART = 1.0
cdef double CP_MASSPOLE = 0.1
cdef double CP_TOTAL_MASS = CP_MASSPOLE + CP_MASSCART
cdef double CP_LENGTH = 0.5  # half the pole's length
cdef double CP_POLEMASS_LENGTH = CP_MASSPOLE * CP_LENGTH
cdef double CP_FORCE_MAG = 10.0
cdef double CP_TAU = 0.02
cdef double CP_THETA_THRESHOLD = 12 * 2 * M_PI / 360
cdef double CP_X_THRESHOLD = 2.4


cdef void cartpole_dynamics(double *s, int64_t action, double *reward, bint *terminated) noexcept nogil:
    """One Euler step; reward 1.0 on every step, the terminal one included."""
    cdef double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3]
    cdef double force = CP_FORCE_MAG if action == 1 else -CP_FORCE_MAG
    cdef double costheta = cos(theta)
    cdef double sintheta = sin(theta)
    # np.square(v) is v * v
    cdef double temp = (force + CP_POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / CP_TOTAL_MASS
    cdef double thetaacc = (CP_GRAVITY * sintheta - costheta * temp) / (
        CP_LENGTH * (4.0 / 3.0 - CP_MASSPOLE * (costheta * costheta) / CP_TOTAL_MASS))
    cdef double xacc = temp - CP_POLEMASS_LENGTH * thetaacc * costheta / CP_TOTAL_MASS
    x = x + CP_TAU * x_dot
    x_dot = x_dot + CP_TAU * xacc
    theta = theta + CP_TAU * theta_dot
    theta_dot = theta_dot + CP_TAU * thetaacc
    s[0] = x
    s[1] = x_dot
    s[2] = theta
    s[3] = theta_dot
    terminated[0] = (x < -CP_X_THRESHOLD or x > CP_X_THRESHOLD
                     or theta < -CP_THETA_THRESHOLD or theta > CP_THETA_THRESHOLD)
    reward[0] = 1.0


cdef void cartpole_reset(rng_t *r, double *s) noexcept nogil:
    """U(-0.05, 0.05) per coordinate, as np_random.uniform draws it (low + (high - low) * u)."""
    cdef int j
    for j in range(4):
        s[j] = -0.05 + (0.05 - -0.05) * rng_uniform(r)


cdef void cartpole_observe(const double *s, float *obs) noexcept nogil:
    cdef int j
    for j in range(4):
        obs[j] = <float>s[j]


# ---------------------------------------------------------------- Acrobot-v1 (acrobot.py)

cdef double AC_DT = 0.2
cdef double AC_MAX_VEL_1 = 4 * M_PI
cdef double AC_MAX_VEL_2 = 9 * M_PI


cdef void acrobot_dsdt(const double *s_augmented, double *out) noexcept nogil:
    """AcrobotEnv._dsdt, "book" dynamics; s_augmented = (theta1, theta2, dtheta1, dtheta2, torque)."""
    cdef double m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5, I1 = 1.0, I2 = 1.0, g = 9.8
    cdef double a = s_augmented[4]
    cdef double theta1 = s_augmented[0], theta2 = s_augmented[1]
    cdef double dtheta1 = s_augmented[2], dtheta2 = s_augmented[3]
    cdef double d1, d2, phi1, phi2, ddtheta1, ddtheta2
    d1 = m1 * dp_pow(lc1, 2) + m2 * (dp_pow(l1, 2) + dp_pow(lc2, 2) + 2 * l1 * lc2 * cos(theta2)) + I1 + I2
    d2 = m2 * (dp_pow(lc2, 2) + l1 * lc2 * cos(theta2)) + I2
    phi2 = m2 * lc2 * g * cos(theta1 + theta2 - M_PI / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dp_pow(dtheta2, 2) * sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * cos(theta1 - M_PI / 2)
        + phi2
    )
    ddtheta2 = (
        a + d2 / d1 * phi1 - m2 * l1 * lc2 * dp_pow(dtheta1, 2) * sin(theta2) - phi2
    ) / (m2 * dp_pow(lc2, 2) + I2 - dp_pow(d2, 2) / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    out[0] = dtheta1
    out[1] = dtheta2
    out[2] = ddtheta1
    out[3] = ddtheta2
    out[4] = 0.0


cdef inline double acrobot_wrap(double x, double m, double M) noexcept nogil:
    cdef double diff = M - m
    while x > M:
        x = x - diff
    while x < m:
        x = x + diff
    return x


cdef inline double acrobot_bound(double x, double m, double M) noexcept nogil:
    """min(max(x, m), M) with Python's rules (the first argument wins ties)."""
    if m > x:
        x = m
    if M < x:
        x = M
    return x


cdef void acrobot_dynamics(double *s, int64_t action, double *reward, bint *terminated) noexcept nogil:
    """rk4(_dsdt, s + [torque], [0, dt]), then wrap, bound, terminal test and reward."""
    cdef double y0[5]
    cdef double y[5]
    cdef double k1[5]
    cdef double k2[5]
    cdef double k3[5]
    cdef double k4[5]
    cdef double dt = AC_DT - 0  # t[1] - t[0]
    cdef double dt2 = dt / 2.0
    cdef int j
    for j in range(4):
        y0[j] = s[j]
    y0[4] = <double>(action - 1)  # AVAIL_TORQUE = [-1.0, 0.0, +1]
    acrobot_dsdt(y0, k1)
    for j in range(5):
        y[j] = y0[j] + dt2 * k1[j]
    acrobot_dsdt(y, k2)
    for j in range(5):
        y[j] = y0[j] + dt2 * k2[j]
    acrobot_dsdt(y, k3)
    for j in range(5):
        y[j] = y0[j] + dt * k3[j]
    acrobot_dsdt(y, k4)
    for j in range(4):
        s[j] = y0[j] + dt / 6.0 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j])
    s[0] = acrobot_wrap(s[0], -M_PI, M_PI)
    s[1] = acrobot_wrap(s[1], -M_PI, M_PI)
    s[2] = acrobot_bound(s[2], -AC_MAX_VEL_1, AC_MAX_VEL_1)
    s[3] = acrobot_bound(s[3], -AC_MAX_VEL_2, AC_MAX_VEL_2)
    terminated[0] = -cos(s[0]) - cos(s[1] + s[0]) > 1.0
    reward[0] = 0.0 if terminated[0] else -1.0


cdef void acrobot_reset(rng_t *r, double *s) noexcept nogil:
    """U(-0.1, 0.1) per coordinate, rounded to float32 as Gymnasium's reset does (.astype(np.float32))."""
    cdef int j
    for j in range(4):
        s[j] = <double><float>(-0.1 + (0.1 - -0.1) * rng_uniform(r))


cdef void acrobot_observe(const double *s, float *obs) noexcept nogil:
    obs[0] = <float>cos(s[0])
    obs[1] = <float>sin(s[0])
    obs[2] = <float>cos(s[1])
    obs[3] = <float>sin(s[1])
    obs[4] = <float>s[2]
    obs[5] = <float>s[3]


# ---------------------------------------------------------------- Pendulum-v1 (pendulum.py)

cdef double PD_MAX_SPEED = 8
cdef double PD_MAX_TORQUE = 2.0
cdef double PD_DT = 0.05
cdef double PD_G = 10.0  # gymnasium.make("Pendulum-v1")'s default g
cdef double PD_M = 1.0
cdef double PD_L = 1.0


cdef inline double np_clip(double x, double lo, double hi) noexcept nogil:
    """np.clip of a float: max with ``lo``, then min with ``hi``; NaN stays NaN."""
    if x != x:
        return x
    x = x if x > lo else lo
    return x if x < hi else hi


cdef inline double py_mod(double a, double b) noexcept nogil:
    """``a % b`` of Python and NumPy floats (CPython's float_rem, npy_remainder): C's exact
    ``fmod`` (the sign of ``a``), moved to the sign of ``b``; a zero takes the sign of ``b``."""
    cdef double mod = fmod(a, b)
    if mod != 0:
        if (b < 0) != (mod < 0):
            mod = mod + b
    else:
        mod = copysign(0.0, b)
    return mod


cdef inline double angle_normalize(double x) noexcept nogil:
    return py_mod(x + M_PI, 2 * M_PI) - M_PI


cdef void pendulum_dynamics(double *s, const double *action, double *reward, bint *terminated) noexcept nogil:
    """PendulumEnv.step given a float64 action array: every quantity is a NumPy float64 scalar
    (th, thdot from the state array, u = np.clip(action, ...)[0]), so each ``**2`` is ``pow``;
    ``l**2`` is a Python float's, also ``pow``. (Given a float32 array, Gymnasium computes
    ``u**2``, ``0.001 * u**2`` and ``3.0 / (m * l**2) * u`` in float32 instead.) Never terminates."""
    cdef double th = s[0], thdot = s[1]
    cdef double u = np_clip(action[0], -PD_MAX_TORQUE, PD_MAX_TORQUE)
    cdef double costs = dp_pow(angle_normalize(th), 2) + 0.1 * dp_pow(thdot, 2) + 0.001 * dp_pow(u, 2)
    cdef double newthdot = thdot + (3 * PD_G / (2 * PD_L) * sin(th) + 3.0 / (PD_M * dp_pow(PD_L, 2)) * u) * PD_DT
    newthdot = np_clip(newthdot, -PD_MAX_SPEED, PD_MAX_SPEED)
    s[0] = th + newthdot * PD_DT
    s[1] = newthdot
    reward[0] = -costs
    terminated[0] = False


cdef void pendulum_reset(rng_t *r, double *s) noexcept nogil:
    """np_random.uniform(low=[-pi, -1], high=[pi, 1]): th, then thdot."""
    s[0] = -M_PI + (M_PI - -M_PI) * rng_uniform(r)
    s[1] = -1.0 + (1.0 - -1.0) * rng_uniform(r)


cdef void pendulum_observe(const double *s, float *obs) noexcept nogil:
    obs[0] = <float>cos(s[0])
    obs[1] = <float>sin(s[0])
    obs[2] = <float>s[1]


# ---------------------------------------------------------------- the batch

cdef EnvSpec spec_of(int env_id) noexcept nogil:
    """The spec of ``env_id``; CartPole's for an unknown id."""
    cdef EnvSpec spec
    spec.dynamics = NULL
    spec.cdynamics = NULL
    spec.action_dim = 0
    if env_id == PENDULUM:
        spec.cdynamics = pendulum_dynamics
        spec.action_dim = 1
        spec.reset = pendulum_reset
        spec.observe = pendulum_observe
        spec.state_dim = 2
        spec.obs_dim = 3
    elif env_id == ACROBOT:
        spec.dynamics = acrobot_dynamics
        spec.reset = acrobot_reset
        spec.observe = acrobot_observe
        spec.state_dim = 4
        spec.obs_dim = 6
    else:
        spec.dynamics = cartpole_dynamics
        spec.reset = cartpole_reset
        spec.observe = cartpole_observe
        spec.state_dim = 4
        spec.obs_dim = 4
    return spec


_IDS = (CARTPOLE, ACROBOT, PENDULUM)
STATE_DIM = {e: spec_of(e).state_dim for e in _IDS}
OBS_DIM = {e: spec_of(e).obs_dim for e in _IDS}
ACTION_DIM = {e: spec_of(e).action_dim for e in _IDS}  # 0: discrete actions


cdef inline rng_t *rng_of(uint64_t[:, ::1] rngs, Py_ssize_t i) noexcept nogil:
    return <rng_t *>&rngs[i, 0]


def seed(uint64_t[:, ::1] rngs, uint64_t seed_value):
    """Seed env i's RNG (a row of 4 uint64) with stream i of ``seed_value``."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(rngs.shape[0]):
            rng_seed(rng_of(rngs, i), seed_value, <uint64_t>i)


def reset(int env_id, double[:, ::1] state, int64_t[::1] elapsed, uint8_t[::1] needs_reset,
          uint64_t[:, ::1] rngs, float[:, ::1] obs, const uint8_t[::1] mask):
    """Reset the envs where ``mask`` is 1: new state, elapsed steps 0, observation."""
    cdef EnvSpec spec = spec_of(env_id)
    cdef Py_ssize_t i
    with nogil:
        for i in range(state.shape[0]):
            if mask[i]:
                spec.reset(rng_of(rngs, i), &state[i, 0])
                elapsed[i] = 0
                needs_reset[i] = 0
                spec.observe(&state[i, 0], &obs[i, 0])


def observe(int env_id, const double[:, ::1] state, float[:, ::1] obs):
    """The observations of ``state`` (after set_state)."""
    cdef EnvSpec spec = spec_of(env_id)
    cdef Py_ssize_t i
    with nogil:
        for i in range(state.shape[0]):
            spec.observe(&state[i, 0], &obs[i, 0])


def step(int env_id, double[:, ::1] state, const action_t[:, ::1] actions, int64_t[::1] elapsed,
         uint8_t[::1] needs_reset, uint64_t[:, ::1] rngs, int64_t max_steps, int autoreset,
         float[:, ::1] obs, double[::1] rewards, uint8_t[::1] terminated, uint8_t[::1] truncated,
         float[:, ::1] final_obs, uint8_t[::1] has_final):
    """One vector-env step of every env, with auto-reset (``Autoreset``).

    Time limit as Gymnasium's TimeLimit: ``elapsed += 1``, truncated when ``elapsed >= max_steps``
    (an env may be terminated and truncated on the same step). ``final_obs`` / ``has_final`` are
    written in SAME_STEP mode only. ``actions``: int64 (n_envs, 1) for a discrete env, in range;
    float64 (n_envs, action_dim) for a continuous one, finite (the caller checks both).
    """
    cdef EnvSpec spec = spec_of(env_id)
    cdef bint float_actions = False
    if action_t is double:
        float_actions = True
    if float_actions != (spec.cdynamics != NULL) or actions.shape[0] != state.shape[0] \
            or actions.shape[1] != max(spec.action_dim, 1):
        raise TypeError(f"env {env_id} takes {'float64' if spec.cdynamics != NULL else 'int64'} actions of "
                        f"shape ({state.shape[0]}, {max(spec.action_dim, 1)})")
    cdef Py_ssize_t i
    cdef int j
    cdef bint term, done
    with nogil:
        for i in range(state.shape[0]):
            if autoreset == NEXT_STEP and needs_reset[i]:
                spec.reset(rng_of(rngs, i), &state[i, 0])
                elapsed[i] = 0
                needs_reset[i] = 0
                spec.observe(&state[i, 0], &obs[i, 0])
                rewards[i] = 0.0
                terminated[i] = 0
                truncated[i] = 0
                continue
            if action_t is double:
                spec.cdynamics(&state[i, 0], &actions[i, 0], &rewards[i], &term)
            else:
                spec.dynamics(&state[i, 0], actions[i, 0], &rewards[i], &term)
            elapsed[i] += 1
            terminated[i] = term
            truncated[i] = elapsed[i] >= max_steps
            spec.observe(&state[i, 0], &obs[i, 0])
            done = terminated[i] != 0 or truncated[i] != 0
            if autoreset == SAME_STEP:
                has_final[i] = done
                if done:
                    for j in range(spec.obs_dim):
                        final_obs[i, j] = obs[i, j]
                    spec.reset(rng_of(rngs, i), &state[i, 0])
                    elapsed[i] = 0
                    spec.observe(&state[i, 0], &obs[i, 0])
            else:
                needs_reset[i] = done
