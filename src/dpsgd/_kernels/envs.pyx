"""Classic-control environments in C, batched: CartPole-v1 and Acrobot-v1.

Each environment is three ``nogil`` functions over a float64 state (``*_dynamics``:
one step of the physics, reward and termination; ``*_reset``: a fresh state from
the env's own RNG; ``*_observe``: the float32 observation), written in the very
operation order of Gymnasium 1.x (``gymnasium/envs/classic_control/cartpole.py``
and ``acrobot.py``), so that a step gives the same float64 state bit for bit.

Why the order matters. Gymnasium computes in Python floats and NumPy float64
scalars, without fused multiply-adds; C does the same when every operation is
written in the same order and the compiler may not contract ``a * b + c`` into
an FMA (setup.py and CMakeLists.txt build this module with ``-ffp-contract=off``).
``x**2`` of a NumPy float64 scalar calls libm's ``pow``, which is not always the
correctly rounded ``x * x`` (83 in 100,000 random values differed, glibc,
2026-12): Acrobot's squares go through ``pow`` called by a volatile pointer,
so that the compiler cannot rewrite ``pow(x, 2.0)`` into ``x * x``. ``np.cos``
and ``np.sin`` of a float64 scalar agreed with libm's on 200,000 values
(NumPy 2.4, x86-64 v3); tests/test_envs.py checks both.

One ``def`` entry, ``step``, runs the vector env's step over all envs with the
auto-reset rule of Gymnasium's vector envs; ``reset`` and ``observe`` serve
``reset()`` and ``set_state()``; ``seed`` seeds the per-env RNGs (dpsgd's
xoshiro256**, stream = env index).
"""
from libc.math cimport cos, sin, M_PI
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

# dynamics_fn, reset_fn, observe_fn, EnvSpec and EnvId are declared in envs.pxd.

# Autoreset modes (gymnasium.vector.AutoresetMode): NEXT_STEP resets a finished env on the
# following step() call, which returns the reset observation with reward 0 and both flags
# False, ignoring that env's action; SAME_STEP resets it at once and returns the final
# observation separately.
cpdef enum Autoreset:
    NEXT_STEP = 0
    SAME_STEP = 1

STATE_DIM = {CARTPOLE: 4, ACROBOT: 4}
OBS_DIM = {CARTPOLE: 4, ACROBOT: 6}


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


# ---------------------------------------------------------------- the batch

cdef EnvSpec spec_of(int env_id) noexcept nogil:
    cdef EnvSpec spec
    if env_id == ACROBOT:
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


def step(int env_id, double[:, ::1] state, const int64_t[::1] actions, int64_t[::1] elapsed,
         uint8_t[::1] needs_reset, uint64_t[:, ::1] rngs, int64_t max_steps, int autoreset,
         float[:, ::1] obs, double[::1] rewards, uint8_t[::1] terminated, uint8_t[::1] truncated,
         float[:, ::1] final_obs, uint8_t[::1] has_final):
    """One vector-env step of every env, with auto-reset (``Autoreset``).

    Time limit as Gymnasium's TimeLimit: ``elapsed += 1``, truncated when ``elapsed >= max_steps``
    (an env may be terminated and truncated on the same step). ``final_obs`` / ``has_final`` are
    written in SAME_STEP mode only. Actions must be in range (checked by the caller).
    """
    cdef EnvSpec spec = spec_of(env_id)
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
            spec.dynamics(&state[i, 0], actions[i], &rewards[i], &term)
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
