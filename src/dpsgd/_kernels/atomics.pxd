# Relaxed atomics on shared buffers (see atomics.h for why).
cdef extern from "atomics.h" nogil:
    double dp_load(const double *p)
    void dp_store(double *p, double v)
    float dp_loadf(const float *p)
    void dp_storef(float *p, float v)
    void dp_add(double *p, double v)
    int dp_load_int(const int *p)
    void dp_store_int(int *p, int v)
    long long dp_load_i64(const long long *p)
    long long dp_fetch_add_i64(long long *p, long long v)
    long long dp_exchange_i64(long long *p, long long v)
    void dp_store_i64(long long *p, long long v)
    void dp_cpu_relax()

cdef extern from "omp_shim.h" nogil:
    int DPSGD_HAVE_OPENMP
    int omp_get_thread_num()
    int omp_get_max_threads()
