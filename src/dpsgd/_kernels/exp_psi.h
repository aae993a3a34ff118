/* exp(psi(x) - c) for a run of values, branch-free: the E-step's exp(E[log theta]) and
 * exp(E[log beta]) (svi.pyx), vectorised.
 *
 * The scalar way, exp(digamma(x) - c), costs per value a data-dependent recurrence loop,
 * a log and an exp (libm calls GCC cannot vectorise). Here:
 *
 *   psi(x) = psi(x + 10) - sum_{i<10} 1 / (x + i)        for x < 10 (y = x + 10),
 *   psi(y) = log y - 1/(2y) - sum_{j=1..7} B_2j / (2j y^2j) + err,  |err| < 5e-17 for y >= 10,
 *
 * so exp(psi(x) - c) = y * exp(t) with t = -1/(2y) - S(1/y^2) - num/den - c: the log cancels
 * against the exp, and the ten fractions are one, num/den (den = prod (x + i)). For x >= 10
 * the recurrence is skipped by selects (y = x; its fraction, computed on a stand-in value,
 * is dropped), so nothing overflows for huge x. exp(t): t = n ln2 + r, |r| <= ln2/2, a
 * degree-13 Taylor polynomial of e^r (truncation < 5e-18 relative) scaled by
 * 2^n in two factors (2^n1 through p's exponent bits, then 2^n2), so results down to the
 * subnormal range round correctly and t is only clamped to [-1000, 709] (exp(-1000) is 0).
 *
 * Error (relative, of the result): a few units of rounding in t, the polynomial and the
 * scaling, plus the rounding of t's terms, eps |t| at most. Bound: 2e-15 (1 + |t|),
 * t = psi(x) - c - log y, wherever the result is a normal number (measured against mpmath at
 * 40 digits for x from 1e-6 to 1e8 and |c| up to 18: at most 1.1e-15 (1 + |t|));
 * tests/test_svi_kernels.py checks that bound against mpmath and rtol 1e-12 against SciPy
 * (whose own digamma, near x = 1.4e-3 where psi is -700, is off by 3e-13 once exponentiated).
 * x <= 0 or NaN gives NaN,
 * x = +inf gives +inf.
 *
 * On x86-64 each loop exists for AVX2 with FMA and for the baseline; each call runs the one
 * this CPU supports (as in mlp.h). Results are deterministic for a given machine; on another
 * CPU they may differ by rounding (a fused multiply-add rounds once). */
#ifndef DPSGD_EXP_PSI_H
#define DPSGD_EXP_PSI_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* set (tests only: svi.use_baseline) to run the baseline copies on any CPU */
static int dp_ep_force_base = 0;

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define DP_EP_HAVE_V3 1
#define DP_EP_V3 __attribute__((target("avx2,fma")))
static inline int dp_ep_cpu_v3(void) {
    return !dp_ep_force_base && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define DP_EP_HAVE_V3 0
static inline int dp_ep_cpu_v3(void) { return 0; }
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DP_EP_INLINE static inline __attribute__((always_inline))
#else
#define DP_EP_INLINE static inline
#endif

/* exp(psi(x) - c) for one value; written for if-conversion (selects, no branches, no calls) */
DP_EP_INLINE double dp_exp_psi_one(double x, double c) {
    const double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10, shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    int small = x < 10.0;
    double xs = small ? x : 1.0; /* the recurrence runs on a harmless stand-in for x >= 10 */
    /* sum_{i<10} 1/(xs + i) = num / den, accumulated as one fraction */
    double num = 1.0, den = xs, xi;
    xi = xs + 1.0; num = num * xi + den; den *= xi;
    xi = xs + 2.0; num = num * xi + den; den *= xi;
    xi = xs + 3.0; num = num * xi + den; den *= xi;
    xi = xs + 4.0; num = num * xi + den; den *= xi;
    xi = xs + 5.0; num = num * xi + den; den *= xi;
    xi = xs + 6.0; num = num * xi + den; den *= xi;
    xi = xs + 7.0; num = num * xi + den; den *= xi;
    xi = xs + 8.0; num = num * xi + den; den *= xi;
    xi = xs + 9.0; num = num * xi + den; den *= xi;
    double frac = num / den;
    double y = small ? xs + 10.0 : x;
    frac = small ? frac : 0.0;
    double iy = 1.0 / y, f = iy * iy;
    double s = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (
        1.0 / 132 - f * (691.0 / 32760 - f * (1.0 / 12)))))));
    double t = ((-0.5 * iy - s) - frac) - c;
    t = t < -1000.0 ? -1000.0 : t; /* NaN stays NaN: these compare false */
    t = t > 709.0 ? 709.0 : t;
    double kd = t * log2e + shifter; /* round(t / ln2) in the low mantissa bits */
    double nd = kd - shifter;
    double r = (t - nd * ln2_hi) - nd * ln2_lo;
    /* e^r: the degree-13 Taylor polynomial as its even and odd halves in r^2 (two chains
     * of 6 multiply-adds that run side by side) */
    double r2 = r * r;
    double ev = 1.0 + r2 * (1.0 / 2 + r2 * (1.0 / 24 + r2 * (1.0 / 720 + r2 * (1.0 / 40320 + r2 * (
        1.0 / 3628800 + r2 * (1.0 / 479001600))))));
    double od = 1.0 + r2 * (1.0 / 6 + r2 * (1.0 / 120 + r2 * (1.0 / 5040 + r2 * (1.0 / 362880 + r2 * (
        1.0 / 39916800 + r2 * (1.0 / 6227020800.0))))));
    double p = ev + r * od;
    /* 2^n = 2^n1 2^n2 with n1 = round(n / 2): each factor a normal number for n in [-1443, 1023] */
    double k1d = nd * 0.5 + shifter;
    double n1d = k1d - shifter;
    double k2d = (nd - n1d) + shifter;
    int64_t k1b, k2b, pb, sb;
    memcpy(&k1b, &k1d, 8);
    memcpy(&k2b, &k2d, 8);
    memcpy(&pb, &p, 8);
    pb += (int64_t)((uint64_t)k1b << 52);              /* p * 2^n1 (p in [0.7, 1.5]) */
    sb = (int64_t)((uint64_t)(k2b + 1023) << 52);      /* 2^n2 */
    double pe, s2;
    memcpy(&pe, &pb, 8);
    memcpy(&s2, &sb, 8);
    double v = (y * pe) * s2;
    return x > 0.0 ? v : NAN;
}

/* out[k] = exp(psi(x[k]) - c) (sub == NULL) or exp(psi(x[k]) - sub[k]) for k < n; out may be x */
DP_EP_INLINE void dp_exp_psi_body(const double *x, const double *sub, double c, double *out, int n) {
    if (sub == 0) {
#pragma omp simd
        for (int k = 0; k < n; k++) out[k] = dp_exp_psi_one(x[k], c);
    } else {
#pragma omp simd
        for (int k = 0; k < n; k++) out[k] = dp_exp_psi_one(x[k], sub[k]);
    }
}

#if DP_EP_HAVE_V3
DP_EP_V3 static void dp_exp_psi_v3(const double *x, const double *sub, double c, double *out, int n) {
    dp_exp_psi_body(x, sub, c, out, n);
}
#endif

static void dp_exp_psi_base(const double *x, const double *sub, double c, double *out, int n) {
    dp_exp_psi_body(x, sub, c, out, n);
}

static inline void dp_exp_psi(const double *x, const double *sub, double c, double *out, int n) {
#if DP_EP_HAVE_V3
    if (dp_ep_cpu_v3()) {
        dp_exp_psi_v3(x, sub, c, out, n);
        return;
    }
#endif
    dp_exp_psi_base(x, sub, c, out, n);
}

#endif
