/* Dense inner loops of the E-step, vectorised.
 *
 * GCC does not vectorise a floating-point sum without -ffast-math, because that
 * reorders additions. "omp simd reduction" allows exactly that reordering, for
 * this loop only (built with -fopenmp-simd, which needs no OpenMP runtime, so
 * the serial build vectorises too). The result is deterministic for a given
 * build; it differs from a sequential sum by rounding only. */
#ifndef DPSGD_SIMD_H
#define DPSGD_SIMD_H

static inline double dp_dot(const double *a, const double *b, int n) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

static inline void dp_axpy(double *y, double c, const double *x, int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) y[k] += c * x[k];
}
#endif
