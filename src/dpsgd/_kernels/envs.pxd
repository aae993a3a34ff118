# The C environments' nogil interface, for kernels that step them (e.g. hsa2c.pyx).
# envs.pyx defines these; a module that cimports them calls them through function pointers.
from libc.stdint cimport int64_t

from dpsgd._kernels.rng cimport rng_t

ctypedef void (*dynamics_fn)(double *s, int64_t action, double *reward, bint *terminated) noexcept nogil
# continuous actions: action_dim float64 values as the policy drew them, not yet clipped (the
# dynamics clips them to the action box, as Gymnasium's step does)
ctypedef void (*cdynamics_fn)(double *s, const double *action, double *reward, bint *terminated) noexcept nogil
ctypedef void (*reset_fn)(rng_t *r, double *s) noexcept nogil
ctypedef void (*observe_fn)(const double *s, float *obs) noexcept nogil

ctypedef struct EnvSpec:
    dynamics_fn dynamics     # discrete actions; NULL for a continuous env
    reset_fn reset
    observe_fn observe
    int state_dim
    int obs_dim
    cdynamics_fn cdynamics   # continuous actions; NULL for a discrete env
    int action_dim           # length of a continuous action; 0 for a discrete env

cpdef enum EnvId:
    CARTPOLE = 0
    ACROBOT = 1
    PENDULUM = 2

cdef void cartpole_dynamics(double *s, int64_t action, double *reward, bint *terminated) noexcept nogil
cdef void cartpole_reset(rng_t *r, double *s) noexcept nogil
cdef void cartpole_observe(const double *s, float *obs) noexcept nogil
cdef void acrobot_dynamics(double *s, int64_t action, double *reward, bint *terminated) noexcept nogil
cdef void acrobot_reset(rng_t *r, double *s) noexcept nogil
cdef void acrobot_observe(const double *s, float *obs) noexcept nogil
cdef void pendulum_dynamics(double *s, const double *action, double *reward, bint *terminated) noexcept nogil
cdef void pendulum_reset(rng_t *r, double *s) noexcept nogil
cdef void pendulum_observe(const double *s, float *obs) noexcept nogil
cdef EnvSpec spec_of(int env_id) noexcept nogil
