/* The LDA E-step's hot loops (svi.pyx) in single precision, with an AVX2+FMA copy.
 *
 *   newg[k] = sum_i c_i e_i[k],   c_i = n_i / (etheta . e_i + eps_i),   e_i = eb + row_i R
 *
 * the multiply-adds of every E-step iteration: a dot product and an axpy of length K per
 * word. They run on floats: eight lanes of AVX2 where doubles have four, and exp(E[log beta])
 * of a minibatch's words in half the memory, as gensim keeps it. A row holds R floats, K
 * rounded up to a multiple of 8 with zeros (and etheta and newg too), so the vector loops
 * have no remainder. Measured on this loop alone (200-word documents, 6,000 rows, 2-vCPU
 * EPYC), against doubles: 1.0x the time at K = 20 unpadded, 0.7x at K = 24; 0.6x at K = 50
 * and 100, 0.5x at K = 200. Doubles read from floats (a conversion a lane) were slower than
 * either.
 *
 * Range. A rare word's row of exp(E[log beta]) (exp(-K) and below) would underflow a float,
 * so each row is stored divided by its largest value, top (dp_estep_row): values in (0, 1].
 * The E-step is scikit-learn's, n_i e_i / (etheta . e_i + EPS) with EPS machine epsilon,
 * which for the scaled row is n_i e'_i / (etheta . e'_i + EPS / top): each row keeps its
 * eps_i = EPS / top beside it (a word whose dot product is far below EPS, one no topic has
 * seen, adds nothing, as in scikit-learn). Values below DP_ESTEP_FLOOR (2^-63, relative to
 * the row's largest, or to 1 for exp(E[log theta])) are stored as 0, so that a product of two
 * is 0 or a normal float (no subnormal arithmetic, which costs x86 cores a microcode assist);
 * K of them add less than K 2^-63 to a dot product that EPS / top, at least 2.2e-16, follows.
 *
 * The loops are compiled twice, for the baseline (4 floats a vector) and for x86-64-v3
 * (8 floats, fused multiply-adds), and each call runs the one this CPU supports (exp_psi.h's
 * test, as in mlp.h). The vector width changes the order of the additions: results differ
 * between CPUs by rounding only. */
#ifndef DPSGD_ESTEP_H
#define DPSGD_ESTEP_H

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "exp_psi.h"

#define DP_ESTEP_FLOOR 0x1p-63f
#define DP_ESTEP_EPS 2.220446049250313e-16 /* scikit-learn's, added to the dot products */

/* rows: the document's word ids; col maps a word id to its row of eb (NULL: the identity).
 * Four words at a time: their four dot products share the loads of etheta and run as four
 * independent chains, and one pass adds their four scaled rows to newg (one load and store
 * of newg per four rows); the last n % 4 words one at a time. */
DP_EP_INLINE void dp_estep_pass_body(const float *etheta, const float *eb, const float *eps,
                                     const int32_t *rows, const int32_t *col, const double *counts, int64_t n,
                                     int K, float *newg) {
#define DP_AT(j) ((int64_t)(col != 0 ? col[rows[j]] : rows[j]))
#define DP_ROW(j) (eb + DP_AT(j) * K)
    int64_t i = 0;
    for (int k = 0; k < K; k++) newg[k] = 0.0f;
    for (; i + 4 <= n; i += 4) {
        const float *e0 = DP_ROW(i), *e1 = DP_ROW(i + 1), *e2 = DP_ROW(i + 2), *e3 = DP_ROW(i + 3);
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int k = 0; k < K; k++) {
            float t = etheta[k];
            s0 += t * e0[k];
            s1 += t * e1[k];
            s2 += t * e2[k];
            s3 += t * e3[k];
        }
        float c0 = (float)counts[i] / (s0 + eps[DP_AT(i)]), c1 = (float)counts[i + 1] / (s1 + eps[DP_AT(i + 1)]),
              c2 = (float)counts[i + 2] / (s2 + eps[DP_AT(i + 2)]), c3 = (float)counts[i + 3] / (s3 + eps[DP_AT(i + 3)]);
#pragma omp simd
        for (int k = 0; k < K; k++) newg[k] += (c0 * e0[k] + c1 * e1[k]) + (c2 * e2[k] + c3 * e3[k]);
    }
    for (; i < n; i++) {
        const float *e = DP_ROW(i);
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int k = 0; k < K; k++) s += etheta[k] * e[k];
        float c = (float)counts[i] / (s + eps[DP_AT(i)]);
#pragma omp simd
        for (int k = 0; k < K; k++) newg[k] += c * e[k];
    }
#undef DP_ROW
#undef DP_AT
}

#if DP_EP_HAVE_V3
DP_EP_V3 static void dp_estep_pass_v3(const float *etheta, const float *eb, const float *eps,
                                      const int32_t *rows, const int32_t *col, const double *counts, int64_t n,
                                      int K, float *newg) {
    dp_estep_pass_body(etheta, eb, eps, rows, col, counts, n, K, newg);
}
#endif

static void dp_estep_pass(const float *etheta, const float *eb, const float *eps, const int32_t *rows,
                          const int32_t *col, const double *counts, int64_t n, int K, float *newg) {
#if DP_EP_HAVE_V3
    if (dp_ep_cpu_v3()) {
        dp_estep_pass_v3(etheta, eb, eps, rows, col, counts, n, K, newg);
        return;
    }
#endif
    dp_estep_pass_body(etheta, eb, eps, rows, col, counts, n, K, newg);
}

/* the dot product of a word's row with etheta, once a document has converged */
static inline float dp_estep_dot(const float *etheta, const float *e, int K) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < K; k++) s += etheta[k] * e[k];
    return s;
}

/* out = x / top as floats, top = max(x), values below the floor 0 (a row of exp(E[log beta]),
 * x >= 0), then zeros up to R; returns the row's eps, EPS / top (+inf where top is 0 or
 * EPS / top beyond floats: the word then adds nothing, as its dot product would be far below
 * EPS). NaN stays NaN. */
static inline float dp_estep_row(const double *x, float *out, int K, int R) {
    double top = 0.0;
    for (int k = 0; k < K; k++) top = x[k] > top ? x[k] : top;
    double inv = top > 0.0 ? 1.0 / top : 0.0;
    for (int k = 0; k < K; k++) {
        float v = (float)(x[k] * inv);
        out[k] = v < DP_ESTEP_FLOOR ? 0.0f : v;
    }
    for (int k = K; k < R; k++) out[k] = 0.0f;
    double eps = top > 0.0 ? DP_ESTEP_EPS / top : INFINITY;
    return eps < FLT_MAX ? (float)eps : INFINITY;
}

/* out = x as floats, values below the floor 0 (exp(E[log theta]), at most 1), then zeros up to R */
static inline void dp_estep_theta(const double *x, float *out, int K, int R) {
    for (int k = 0; k < K; k++) {
        float v = (float)x[k];
        out[k] = v < DP_ESTEP_FLOOR ? 0.0f : v;
    }
    for (int k = K; k < R; k++) out[k] = 0.0f;
}

#endif
