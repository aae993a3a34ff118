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

/* rows: the document's word ids; col maps a word id to its row of eb (NULL: the identity);
 * rows NULL: row i of eb is the document's non-zero i.
 * Four words at a time: their four dot products share the loads of etheta and run as four
 * independent chains, and one pass adds their four scaled rows to newg (one load and store
 * of newg per four rows); the last n % 4 words one at a time. */
DP_EP_INLINE void dp_estep_pass_body(const float *etheta, const float *eb, const float *eps,
                                     const int32_t *rows, const int32_t *col, const double *counts, int64_t n,
                                     int K, float *newg) {
#define DP_AT(j) ((int64_t)(rows == 0 ? (j) : col != 0 ? col[rows[j]] : rows[j]))
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

/* the common part of dp_estep_theta_one and dp_estep_beta_one: psi(x) = log y + t0, and
 * exp(t0 - cr) = p 2^n, p in [0.7, 1.5]; returns p, with y and n (for x < 6 the recurrence,
 * else y = x) */
DP_EP_INLINE float dp_estep_psi_exp(float x, float cr, float *y_out, int32_t *n_out) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    int small = x < 6.0f;
    float xs = small ? x : 1.0f; /* the recurrence on a harmless stand-in for x >= 6 */
    float num = 1.0f, den = xs, xi;
    xi = xs + 1.0f; num = num * xi + den; den *= xi;
    xi = xs + 2.0f; num = num * xi + den; den *= xi;
    xi = xs + 3.0f; num = num * xi + den; den *= xi;
    xi = xs + 4.0f; num = num * xi + den; den *= xi;
    xi = xs + 5.0f; num = num * xi + den; den *= xi;
    float frac = small ? num / den : 0.0f;
    float y = small ? xs + 6.0f : x;
    float iy = 1.0f / y, f = iy * iy;
    float sr = f * (1.0f / 12 - f * (1.0f / 120 - f * (1.0f / 252)));
    float t = ((-0.5f * iy - sr) - frac) - cr;
    t = t < -1000.0f ? -1000.0f : t; /* NaN stays NaN; the powers of 2 are held by the callers */
    t = t > 88.0f ? 88.0f : t;
    float kf = t * 1.44269504088896341f + shifter; /* round(t / ln2) in the low mantissa bits */
    float nf = kf - shifter;
    float r = (t - nf * 0.693359375f) - nf * -2.12194440e-4f;
    float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                 1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r + r) + 1.0f;
    int32_t kb;
    memcpy(&kb, &kf, 4);
    *y_out = y;
    *n_out = kb - 0x4B400000;
    return p;
}

/* exp(E[log theta]) of a document in single precision: out[k] = exp(psi(g[k]) - c) as a float,
 * below the floor 0, then zeros up to R (what dp_exp_psi then dp_estep_theta give, eight lanes
 * of AVX2 where those take four, and one pass). As exp_psi.h, but in floats and for the
 * E-step's range:
 *
 *   psi(x) = psi(x + 6) - sum_{i<6} 1 / (x + i)          for x < 6 (y = x + 6, else y = x),
 *   psi(y) = log y - 1/(2y) - 1/(12 y^2) + 1/(120 y^4) - 1/(252 y^6)   (next term < 3e-9 at y = 6),
 *
 * so exp(psi(x) - c) = y exp(t), t = -1/(2y) - S - num/den - c. c is split by the caller as
 * m ln2 + cr (|cr| <= ln2 / 2, in double): t carries only cr, and 2^-m joins exp's own power
 * of 2, so the rounding of t does not grow with c (a document's length). exp(t): t = n ln2 + r,
 * Cephes' expf polynomial (error about 1 float ulp), times 2^(n - m) with n - m held to
 * [-125, 127]: a value that small (y 2^-125, below 2^-63 for any y below 2^62) is below the
 * floor anyway, and nothing is subnormal.
 *
 * Error of the result v, relative: a few float roundings of t's terms (frac is as large as
 * 1/x) and of the polynomial; measured against SciPy for gamma drawn over 1e-3..1e6 (rows of
 * 5 to 50, their sums from below 1 to 1e7): at most 1.2e-6 (1 + |log v|), 1.8e-6 with the
 * baseline's loop; tests/test_svi_kernels.py holds it to 3e-6 (1 + |log v|). dp_exp_psi then
 * dp_estep_theta, the double path, are within a float's rounding, 6e-8; either way the
 * E-step's pass then sums K products in floats. x <= 0 or NaN gives NaN. */
DP_EP_INLINE float dp_estep_theta_one(float x, float cr, int m) {
    float y;
    int32_t n, pb;
    float p = dp_estep_psi_exp(x, cr, &y, &n);
    int32_t e = n - m;
    e = e < -125 ? -125 : e;
    e = e > 127 ? 127 : e;
    memcpy(&pb, &p, 4);
    pb += (int32_t)((uint32_t)e << 23); /* p 2^(n - m), p in [0.7, 1.5] */
    float pe;
    memcpy(&pe, &pb, 4);
    float v = y * pe;
    v = v < DP_ESTEP_FLOOR ? 0.0f : v;
    return x > 0.0f ? v : NAN;
}

/* gamma as floats, padded with 1s to R (a whole number of vectors: no scalar remainder, which
 * cost as much as the vectors at K = 50), mapped in place, then the padding zeroed */
DP_EP_INLINE void dp_estep_etheta_body(const double *g, float cr, int m, float *out, int K, int R) {
    for (int k = 0; k < K; k++) out[k] = (float)g[k];
    for (int k = K; k < R; k++) out[k] = 1.0f;
#pragma omp simd
    for (int k = 0; k < R; k++) out[k] = dp_estep_theta_one(out[k], cr, m);
    for (int k = K; k < R; k++) out[k] = 0.0f;
}

#if DP_EP_HAVE_V3
DP_EP_V3 static void dp_estep_etheta_v3(const double *g, float cr, int m, float *out, int K, int R) {
    dp_estep_etheta_body(g, cr, m, out, K, R);
}
#endif

/* out = exp(E[log theta]) as floats from gamma ``g`` (K doubles) and c = psi(sum g), then
 * zeros up to R; where c is not finite or beyond +-80 (a sum of gamma below 1e-2 or beyond
 * 1e34) returns -1 and writes nothing: the caller takes the double path. */
static inline int dp_estep_etheta(const double *g, double c, float *out, int K, int R) {
    if (!(c > -80.0 && c < 80.0)) return -1;
    double md = nearbyint(c * 1.4426950408889634);
    float cr = (float)((c - md * 6.93147180369123816490e-01) - md * 1.90821492927058770002e-10);
    int m = (int)md;
#if DP_EP_HAVE_V3
    if (dp_ep_cpu_v3()) {
        dp_estep_etheta_v3(g, cr, m, out, K, R);
        return 0;
    }
#endif
    dp_estep_etheta_body(g, cr, m, out, K, R);
    return 0;
}

/* A word's row of exp(E[log beta]) in single precision, scaled as dp_estep_row scales it but
 * by a power of 2: out[k] = exp(psi(x[k]) - c[k]) 2^-emax, the largest in [1, 2), and the
 * row's eps = EPS 2^-emax returned (the scale cancels in the E-step, estep.h's top). Where
 * a minibatch's rows are not all kept (svi.pyx's _size_rows: on AP they would take a third of
 * the model), the E-steps compute each document's rows as it starts, so this runs up to once
 * a non-zero, where the double path, dp_exp_psi then dp_estep_row, ran once a word.
 *
 * x[k] = A max(l[k], 0) + shift (the max where ``clamp``) is read from lambda's row ``l``.
 * psi(x) is the recurrence and series of dp_estep_theta_one, so exp(psi(x) - c) = y exp(t),
 * t = -1/(2y) - S - frac - c, c[k] = m[k] ln2 + cr[k] (dp_estep_beta_split: |cr| <= ln2 / 2).
 * A rare word's values (exp(psi(eta)), exp(-100) at eta = 0.01) are beyond a float, so each
 * value is kept as f 2^E, f in [1, 2) and E an int (y's exponent, exp(t - cr)'s power of 2,
 * -m[k], and f's own), and the row is scaled by its largest E, emax. The values are within a
 * few float roundings of t of the double path's (t is as large as 1/x): tests/
 * test_svi_kernels.py holds them to 3e-6 (1 + |log v|), v = exp(psi(x) - c) (measured
 * 3.6e-7). A
 * value below 2^-126 of 2^emax is 0 (the floor zeroes it anyway). Lanes K..R have
 * m = DP_ESTEP_PAD: they come out 0. t is held to [-1000, 88]; a row whose largest value is
 * that small has eps = inf, and adds nothing.
 *
 * Returns -1 (out holds garbage) where some x[k] lies outside [1e-30, 1e30] or is NaN: the
 * caller takes the double path (y and frac are then finite floats here). */
#define DP_ESTEP_PAD (1 << 20)

DP_EP_INLINE float dp_estep_beta_one(float x, float cr, int32_t m, int32_t *ex) {
    float y;
    int32_t n, yb, vb;
    float p = dp_estep_psi_exp(x, cr, &y, &n);
    memcpy(&yb, &y, 4);
    int32_t yexp = ((yb >> 23) & 0xff) - 127;
    yb = (yb & 0x007fffff) | 0x3f800000; /* y's mantissa, in [1, 2) */
    float ym;
    memcpy(&ym, &yb, 4);
    float v = ym * p; /* in [0.7, 2.9) */
    memcpy(&vb, &v, 4);
    *ex = yexp + n - m + (((vb >> 23) & 0xff) - 127);
    vb = (vb & 0x007fffff) | 0x3f800000;
    memcpy(&v, &vb, 4);
    return v;
}

DP_EP_INLINE float dp_estep_beta_body(const double *l, double A, double shift, int clamp, const float *cr,
                                      const int32_t *m, float *out, int32_t *ex, int K, int R) {
    int ok = 1;
    if (clamp) {
#pragma omp simd reduction(& : ok)
        for (int k = 0; k < K; k++) {
            double v = A * (l[k] > 0.0 ? l[k] : 0.0) + shift;
            ok &= (v >= 1e-30) & (v <= 1e30);
            out[k] = (float)v;
        }
    } else {
#pragma omp simd reduction(& : ok)
        for (int k = 0; k < K; k++) {
            double v = A * l[k] + shift;
            ok &= (v >= 1e-30) & (v <= 1e30);
            out[k] = (float)v;
        }
    }
    if (!ok) return -1.0f;
    for (int k = K; k < R; k++) out[k] = 1.0f;
    int32_t emax = -DP_ESTEP_PAD;
#pragma omp simd reduction(max : emax)
    for (int k = 0; k < R; k++) {
        out[k] = dp_estep_beta_one(out[k], cr[k], m[k], &ex[k]);
        emax = ex[k] > emax ? ex[k] : emax;
    }
#pragma omp simd
    for (int k = 0; k < R; k++) {
        int32_t d = ex[k] - emax;                 /* <= 0 */
        uint32_t sb = (uint32_t)(d + 127) << 23; /* 2^d, used where d >= -126 */
        float s;
        memcpy(&s, &sb, 4);
        float v = d < -126 ? 0.0f : out[k] * s;
        out[k] = v < DP_ESTEP_FLOOR ? 0.0f : v;
    }
    double eps = ldexp(DP_ESTEP_EPS, -emax);
    return eps < FLT_MAX ? (float)eps : INFINITY;
}

#if DP_EP_HAVE_V3
DP_EP_V3 static float dp_estep_beta_v3(const double *l, double A, double shift, int clamp, const float *cr,
                                       const int32_t *m, float *out, int32_t *ex, int K, int R) {
    return dp_estep_beta_body(l, A, shift, clamp, cr, m, out, ex, K, R);
}
#endif

/* the float path's split of the column sums' c[k] = psi(sum lambda_k), K of them, into
 * m[k] ln2 + cr[k], padded to R (m = DP_ESTEP_PAD); returns -1 where some c[k] is beyond
 * +-80 or not finite (the caller takes the double path) */
static inline int dp_estep_beta_split(const double *c, float *cr, int32_t *m, int K, int R) {
    for (int k = 0; k < K; k++) {
        if (!(c[k] > -80.0 && c[k] < 80.0)) return -1;
        double md = nearbyint(c[k] * 1.4426950408889634);
        cr[k] = (float)((c[k] - md * 6.93147180369123816490e-01) - md * 1.90821492927058770002e-10);
        m[k] = (int32_t)md;
    }
    for (int k = K; k < R; k++) {
        cr[k] = 0.0f;
        m[k] = DP_ESTEP_PAD;
    }
    return 0;
}

/* out, and the returned eps (-1: the double path), from lambda's row l and the split of c;
 * ``ex``: room for R int32s */
static inline float dp_estep_beta(const double *l, double A, double shift, int clamp, const float *cr,
                                  const int32_t *m, float *out, int32_t *ex, int K, int R) {
#if DP_EP_HAVE_V3
    if (dp_ep_cpu_v3()) return dp_estep_beta_v3(l, A, shift, clamp, cr, m, out, ex, K, R);
#endif
    return dp_estep_beta_body(l, A, shift, clamp, cr, m, out, ex, K, R);
}

#endif
