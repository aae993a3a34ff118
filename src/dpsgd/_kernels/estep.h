/* One pass of the LDA E-step over a document's words (svi.pyx), with an AVX2+FMA copy.
 *
 *   newg[k] = sum_i n_i / (etheta . e_i + eps) e_i[k],   e_i = eb + row_i K
 *
 * the multiply-adds of every E-step iteration: a dot product and an axpy of length K per
 * word. The loops are compiled twice, for the baseline (2 doubles
 * a vector) and for x86-64-v3 (4 doubles, fused multiply-adds), and each call runs the one
 * this CPU supports (exp_psi.h's test, as in mlp.h). The vector width changes the order of
 * the dot product's additions: results differ between CPUs by rounding only. */
#ifndef DPSGD_ESTEP_H
#define DPSGD_ESTEP_H

#include <stdint.h>

#include "exp_psi.h"
#include "simd.h"

/* rows: the document's word ids; col maps a word id to its row of eb (NULL: the identity).
 * Four words at a time: their four dot products share the loads of etheta and run as four
 * independent chains, and one pass adds their four scaled rows to newg (one load and store
 * of newg per four rows); the last n % 4 words one at a time, by simd.h's loops. */
DP_EP_INLINE void dp_estep_pass_body(const double *etheta, const double *eb, const int32_t *rows,
                                     const int32_t *col, const double *counts, int64_t n, int K,
                                     double eps, double *newg) {
#define DP_ROW(j) (eb + (int64_t)(col != 0 ? col[rows[j]] : rows[j]) * K)
    int64_t i = 0;
    for (int k = 0; k < K; k++) newg[k] = 0.0;
    for (; i + 4 <= n; i += 4) {
        const double *e0 = DP_ROW(i), *e1 = DP_ROW(i + 1), *e2 = DP_ROW(i + 2), *e3 = DP_ROW(i + 3);
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int k = 0; k < K; k++) {
            double t = etheta[k];
            s0 += t * e0[k];
            s1 += t * e1[k];
            s2 += t * e2[k];
            s3 += t * e3[k];
        }
        double c0 = counts[i] / (s0 + eps), c1 = counts[i + 1] / (s1 + eps), c2 = counts[i + 2] / (s2 + eps),
               c3 = counts[i + 3] / (s3 + eps);
#pragma omp simd
        for (int k = 0; k < K; k++) newg[k] += (c0 * e0[k] + c1 * e1[k]) + (c2 * e2[k] + c3 * e3[k]);
    }
    for (; i < n; i++) {
        const double *e = DP_ROW(i);
        dp_axpy(newg, counts[i] / (dp_dot(etheta, e, K) + eps), e, K);
    }
#undef DP_ROW
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
