/* The dense algebra of the actor-critic kernels (a2c.pyx): a small matrix product and tanh.
 *
 * A 64-64 MLP's forward and backward over a rollout of tens of samples is a few
 * small matrix products. Done one sample at a time they run at the latency of a
 * chain of adds and reload the 32 KB gradient of each 64x64 layer for every sample;
 * as register-blocked products (4 rows x 8 columns of C held in registers while K
 * runs) they run at the multiply-add throughput. libm's tanh is a scalar call per
 * value; dp_tanh is branch-free arithmetic the compiler vectorises.
 *
 * On x86-64 each routine exists for AVX2 with FMA and for the baseline, and each call
 * runs the one this CPU supports (__builtin_cpu_supports: a load and a test): a portable build that uses the wide units where
 * they exist. Results are deterministic for a given machine; on another CPU they may
 * differ by rounding (a fused multiply-add rounds once). */
#ifndef DPSGD_MLP_H
#define DPSGD_MLP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* x86-64 with GCC or clang: a second copy of each routine for x86-64-v3 (AVX2, FMA), chosen
 * at run time by what the CPU supports. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define DP_HAVE_V3 1
#define DP_V3 __attribute__((target("avx2,fma")))
static inline int dp_cpu_v3(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
#define DP_HAVE_V3 0
#endif

/* Vectors of 2 and 4 doubles (GCC's vector extension). aligned(8): loads and stores need not
 * be aligned; may_alias: they may view any double array. Macros, not functions: a function
 * passing vectors would have a different ABI in each copy. */
typedef double dp_v2 __attribute__((vector_size(16), aligned(8), may_alias));
typedef double dp_v4 __attribute__((vector_size(32), aligned(8), may_alias));

/* dp_gemm_acc: C (M x N) += A (M x K) B (K x N). A's element (i, k) is a[i * ars + k * acs],
 * so A may be a transposed view; B and C are row-major with leading dimensions ldb and ldc.
 * Every C element adds its K products in ascending k, whichever block computes it.
 *
 * A block of 4 rows x 2 vectors of C stays in 8 vector registers while k runs: per k, two
 * loads of B, four broadcasts of A and eight multiply-adds. Written with vector types
 * because GCC, left to vectorise the plain loops, spills such blocks; mlp_gemm.inc holds
 * the body, built once per vector width. */
#define DP_GEMM_NAME dp_gemm_base
#define DP_VEC dp_v2
#define DP_W 2
#define DP_GEMM_ATTR
#include "mlp_gemm.inc"
#if DP_HAVE_V3
#define DP_GEMM_NAME dp_gemm_v3
#define DP_VEC dp_v4
#define DP_W 4
#define DP_GEMM_ATTR DP_V3
#include "mlp_gemm.inc"
#endif

static void dp_gemm_acc(int M, int N, int K, const double *a, ptrdiff_t ars, ptrdiff_t acs,
                        const double *b, ptrdiff_t ldb, double *c, ptrdiff_t ldc) {
#if DP_HAVE_V3
    if (dp_cpu_v3()) {
        dp_gemm_v3(M, N, K, a, ars, acs, b, ldb, c, ldc);
        return;
    }
#endif
    dp_gemm_base(M, N, K, a, ars, acs, b, ldb, c, ldc);
}

/* x = tanh(x) for n values, within 2 units in the last place of 1 (absolute), and to full
 * relative precision below 2^-20.
 * tanh|x| = 1 - 2 / (e^{2|x|} + 1); e^y by y = n ln2 + r, |r| <= ln2 / 2, a degree-13
 * Taylor polynomial of e^r (truncation < 2e-16 relative; Estrin's scheme) scaled by 2^n
 * through the exponent bits. 2|x| is capped at 40, where tanh is 1 in double precision; NaN stays NaN. */
static inline __attribute__((always_inline)) void dp_tanh_body(double *x, ptrdiff_t n) {
    const double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10, shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    ptrdiff_t t;
    for (t = 0; t < n; t++) { /* vectorised by GCC (built with -fno-trapping-math) */
        double v = x[t];
        double y = 2.0 * __builtin_fabs(v);
        y = y < 40.0 ? y : 40.0; /* minpd: NaN gives 40, restored below */
        double kd = y * log2e + shifter; /* round(y / ln2) in the low mantissa bits */
        double nd = kd - shifter;
        double r = (y - nd * ln2_hi) - nd * ln2_lo;
        /* e^r by Estrin's scheme: the same degree-13 Taylor polynomial as pairs (c_2i + c_2i+1 r)
         * combined by r^2, r^4, r^8, so the chain of dependent multiply-adds is 4 deep, not 13 */
        double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        double q0 = 1.0 + r, q1 = 0.5 + r * (1.0 / 6.0), q2 = 1.0 / 24.0 + r * (1.0 / 120.0),
               q3 = 1.0 / 720.0 + r * (1.0 / 5040.0), q4 = 1.0 / 40320.0 + r * (1.0 / 362880.0),
               q5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0), q6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
        double p = (q0 + r2 * q1) + r4 * (q2 + r2 * q3) + r8 * ((q4 + r2 * q5) + r4 * q6);
        int64_t kb, pb;
        memcpy(&kb, &kd, 8);
        memcpy(&pb, &p, 8);
        pb += (int64_t)((uint64_t)kb << 52); /* p * 2^n: n < 64 fits the low bits of kd */
        double e;
        memcpy(&e, &pb, 8);
        double th = 1.0 - 2.0 / (e + 1.0);
        /* below 2^-20, x - x^3/3 (relative error < 2^-80): 1 - 2/(e+1) would lose all the
         * relative precision of tiny values (tanh(1e-300) would be 0) */
        th = y < 1.9073486328125e-06 ? 0.5 * y - (0.5 * y) * (0.5 * y) * (0.5 * y) * (1.0 / 3.0) : th;
        th = __builtin_copysign(th, v); /* tanh(-0.0) = -0.0 */
        x[t] = v == v ? th : v;         /* NaN stays NaN */
    }
}

#if DP_HAVE_V3
DP_V3 static void dp_tanh_v3(double *x, ptrdiff_t n) { dp_tanh_body(x, n); }
#endif

static void dp_tanh(double *x, ptrdiff_t n) {
#if DP_HAVE_V3
    if (dp_cpu_v3()) {
        dp_tanh_v3(x, n);
        return;
    }
#endif
    dp_tanh_body(x, n);
}

#endif
