# The actor-critic kernels' nogil interface, for kernels that train with them (e.g. hsa2c.pyx).
# a2c.pyx defines these and documents them (layout, scratch, shared-buffer rules).
from libc.stdint cimport int64_t, uint8_t

ctypedef struct A2cNet:
    bint continuous     # a diagonal Gaussian policy (n_actions = the action's dimension)
    int obs_dim
    int h1
    int h2
    int n_actions
    # offsets into the flat parameter vector
    Py_ssize_t a_w1, a_b1, a_w2, a_b2, a_w3, a_b3
    Py_ssize_t c_w1, c_b1, c_w2, c_b2, c_w3, c_b3
    Py_ssize_t a_logstd  # continuous: the log standard deviations (n_actions), after the critic
    Py_ssize_t n_params
    Py_ssize_t fwd_row  # doubles of one sample's activations (a2c_forward_batch's acts)

cdef void a2c_net_init(A2cNet *net, int obs_dim, int h1, int h2, int n_actions, bint continuous) noexcept nogil
cdef void a2c_forward(const A2cNet *net, const double *params, const double *obs, Py_ssize_t n,
                      double *logits, double *log_probs, double *entropy, double *values,
                      double *scratch) noexcept nogil
cdef Py_ssize_t a2c_batch_scratch(const A2cNet *net, Py_ssize_t m) noexcept nogil
cdef void a2c_forward_batch(const A2cNet *net, const double *p, const double *obs, Py_ssize_t m, double *acts,
                            double *logits, double *entropy, double *values, double *scratch) noexcept nogil
cdef void a2c_loss_grad_from(const A2cNet *net, const double *params, const double *obs, const int64_t *actions,
                             const double *cactions, const double *advantages, const double *returns, Py_ssize_t n, double ent_coef,
                             double vf_coef, bint normalize_advantage, const double *acts, const double *entropy,
                             const double *values, double *grad, double *stats, double *scratch) noexcept nogil
cdef void a2c_loss_grad(const A2cNet *net, const double *params, const double *obs, const int64_t *actions,
                        const double *cactions, const double *advantages, const double *returns, Py_ssize_t n, double ent_coef,
                        double vf_coef, bint normalize_advantage, double *grad, double *stats,
                        double *scratch) noexcept nogil
cdef Py_ssize_t a2c_forward_scratch(const A2cNet *net, Py_ssize_t n) noexcept nogil
cdef Py_ssize_t a2c_grad_scratch(const A2cNet *net, Py_ssize_t n) noexcept nogil
cdef Py_ssize_t a2c_loss_scratch(const A2cNet *net, Py_ssize_t n) noexcept nogil
cdef double a2c_clip_grad_norm(double *grad, Py_ssize_t n, double max_norm) noexcept nogil
cdef void a2c_snapshot(const double *shared, double *local, Py_ssize_t n) noexcept nogil
cdef void a2c_rmsprop_step(double *params, double *square_avg, const double *grad, Py_ssize_t n,
                           double lr, double alpha, double eps, bint shared) noexcept nogil
cdef void a2c_adam_step(double *params, double *exp_avg, double *exp_avg_sq, const double *grad, Py_ssize_t n,
                        double lr, double beta1, double beta2, double eps, long long step,
                        bint shared) noexcept nogil
cdef void a2c_gae(const double *rewards, const double *values, const uint8_t *episode_starts,
                  const double *last_values, const uint8_t *dones, Py_ssize_t n_steps, Py_ssize_t n_envs,
                  double gamma, double gae_lambda, double *advantages, double *returns) noexcept nogil
cdef double a2c_train_step(const A2cNet *net, double *shared_params, double *square_avg, const double *obs,
                           const int64_t *actions, const double *advantages, const double *returns,
                           Py_ssize_t n, double ent_coef, double vf_coef, bint normalize_advantage,
                           double max_grad_norm, double lr, double alpha, double eps, double *local_params,
                           double *grad, double *stats, double *scratch) noexcept nogil
