/* One pass of the LDA E-step over a document's words (svi.pyx), with an AVX2+FMA copy.
 *
 *   newg[k] = sum_i n_i / (etheta . e_i + eps) e_i[k],   e_i = eb + row_i K
 *
 * the multiply-adds of every E-step iteration: a dot product and an axpy of length K per
 * word. The loops are simd.h's; here they are compiled twice, for the baseline (2 doubles
 * a vector) and for x86-64-v3 (4 doubles, fused multiply-adds), and each call runs the one
 * this CPU supports (exp_psi.h's test, as in mlp.h). The vector width changes the order of
 * the dot product's additions: results differ between CPUs by rounding only. */
#ifndef DPSGD_ESTEP_H
#define DPSGD_ESTEP_H

#include <stdint.h>

#include "exp_psi.h"
#include "simd.h"

/* rows: the document's word ids; col maps a word id to its row of eb (NULL: the identity) */
DP_EP_INLINE void dp_estep_pass_body(const double *etheta, const double *eb, const int32_t *rows,
                                     const int32_t *col, const double *counts, int64_t n, int K,
                                     double eps, double *newg) {
    for (int k = 0; k < K; k++) newg[k] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double *e = eb + (int64_t)(col != 0 ? col[rows[i]] : rows[i]) * K;
        dp_axpy(newg, counts[i] / (dp_dot(etheta, e, K) + eps), e, K);
    }
}

#if DP_EP_HAVE_V3
DP_EP_V3 static void dp_estep_pass_v3(const double *etheta, const double *eb, const int32_t *rows,
                                      const int32_t *col, const double *counts, int64_t n, int K,
                                      double eps, double *newg) {
    dp_estep_pass_body(etheta, eb, rows, col, counts, n, K, eps, newg);
}
#endif

static void dp_estep_pass(const double *etheta, const double *eb, const int32_t *rows, const int32_t *col,
                          const double *counts, int64_t n, int K, double eps, double *newg) {
#if DP_EP_HAVE_V3
    if (dp_ep_cpu_v3()) {
        dp_estep_pass_v3(etheta, eb, rows, col, counts, n, K, eps, newg);
        return;
    }
#endif
    dp_estep_pass_body(etheta, eb, rows, col, counts, n, K, eps, newg);
}

#endif
