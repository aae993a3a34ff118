/* OpenMP shim: the kernels call these names whether or not the build has
 * OpenMP, so one source builds both ways (cf. implicit's bpr.h). Without
 * OpenMP every parallel region runs on one thread. */
#ifndef DPSGD_OMP_SHIM_H
#define DPSGD_OMP_SHIM_H

#ifdef _OPENMP
#include <omp.h>
#define DPSGD_HAVE_OPENMP 1
#else
#define DPSGD_HAVE_OPENMP 0
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline double omp_get_wtime(void) { return 0.0; }
#endif

#endif
