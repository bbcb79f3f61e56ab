# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# distutils: language = c++
"""Thin bindings of the C++ kernels: contiguous 1-D buffers in, GIL released. Arguments are checked
by the Python layer (lowprec/_quantize.py); only buffer types and sizes are checked here."""

from libc.stdint cimport int32_t, int64_t, uint64_t


cdef extern from "lowprec/api.hpp" namespace "lowprec":
    cdef struct QuantParams:
        int32_t exp_bits
        int32_t man_bits
        int32_t emin
        int32_t subnormals
        int32_t specials
        int32_t saturate
        int32_t mode
        int32_t sr_bits
        uint64_t key
        double max_value

    cdef struct AccumParams:
        QuantParams acc
        QuantParams prod
        int32_t has_prod
        int32_t order
        int64_t chunk

    cdef struct AccumSteps:
        uint64_t c0, cs, t0, ts, p0, ps

    cdef struct BfmaParams:
        QuantParams out
        QuantParams late
        int32_t block, sub_block, late_c, neab, emin_a, emin_b, c_emin, min_exp_limit
        int32_t out_subnormals, out_emin, out_emax
        const int32_t* perm

    int c_accum_matmul_f32 "lowprec::accum_matmul_f32"(
        const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
        int64_t, const AccumParams&, uint64_t, int, int) nogil
    int c_accum_matmul_f64 "lowprec::accum_matmul_f64"(
        const double*, const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t,
        int64_t, int64_t, const AccumParams&, uint64_t, int, int) nogil
    int c_accum_rows_f32 "lowprec::accum_rows_f32"(
        const float*, const float*, const float*, float*, int64_t, int64_t, const AccumSteps&,
        const AccumParams&, int, int) nogil
    int c_accum_rows_f64 "lowprec::accum_rows_f64"(
        const double*, const double*, const double*, double*, int64_t, int64_t, const AccumSteps&,
        const AccumParams&, int, int) nogil
    int c_bfma_matmul "lowprec::bfma_matmul"(
        const float*, const float*, const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t,
        int64_t, int64_t, const BfmaParams&, int, int) nogil
    int c_quantize_f32 "lowprec::quantize_f32"(const float*, float*, int64_t, const QuantParams&, int) nogil
    int c_quantize_f64 "lowprec::quantize_f64"(const double*, double*, int64_t, const QuantParams&, int) nogil
    int c_encode_f32 "lowprec::encode_f32"(const float*, void*, int, int64_t, const QuantParams&, int) nogil
    int c_encode_f64 "lowprec::encode_f64"(const double*, void*, int, int64_t, const QuantParams&, int) nogil
    void c_copy_bytes "lowprec::copy_bytes"(const void*, void*, int64_t, int) nogil
    const char* c_isa_name "lowprec::isa_name"()
    const char* c_isa_available "lowprec::isa_available"()
    int c_set_isa "lowprec::set_isa"(const char*)
    int c_openmp_enabled "lowprec::openmp_enabled"()
    int c_default_threads "lowprec::default_threads"()
    uint64_t c_make_key "lowprec::make_key"(uint64_t, uint64_t)


cdef QuantParams _params(tuple p):
    cdef QuantParams q
    (q.exp_bits, q.man_bits, q.emin, q.subnormals, q.specials, q.saturate, q.mode, q.sr_bits, q.key,
     q.max_value) = p
    return q


cdef AccumParams _acc_params(tuple acc, tuple prod, int has_prod, int order, int64_t chunk):
    cdef AccumParams a
    a.acc = _params(acc)
    a.prod = _params(prod)
    a.has_prod = has_prod
    a.order = order
    a.chunk = chunk
    return a


ctypedef fused real:
    float
    double


def quantize(const real[::1] x, real[::1] out, tuple params, int n_threads):
    """Round x into out (same dtype, float32 or float64)."""
    if x.shape[0] != out.shape[0]:
        raise ValueError("x and out sizes differ")
    cdef QuantParams q = _params(params)
    cdef int64_t n = x.shape[0]
    if n == 0:
        return
    with nogil:
        if real is float:
            c_quantize_f32(&x[0], &out[0], n, q, n_threads)
        else:
            c_quantize_f64(&x[0], &out[0], n, q, n_threads)


def encode(x, out, tuple params, int n_threads):
    """x: contiguous float32/float64 1-D array; out: contiguous uint8/16/32 1-D array."""
    cdef const float[::1] xf
    cdef const double[::1] xd
    cdef unsigned char[::1] ob = out.view("uint8")
    cdef int width = out.dtype.itemsize
    cdef int64_t n = x.shape[0]
    cdef QuantParams q = _params(params)
    cdef int rc = 0
    if out.shape[0] != n:
        raise ValueError("x and out sizes differ")
    if width not in (1, 2, 4):
        raise ValueError("codes must be 8, 16 or 32 bits wide")
    if n == 0:
        return
    if x.dtype.itemsize == 4:
        xf = x
        with nogil:
            rc = c_encode_f32(&xf[0], <void*>&ob[0], width, n, q, n_threads)
    else:
        xd = x
        with nogil:
            rc = c_encode_f64(&xd[0], <void*>&ob[0], width, n, q, n_threads)
    if rc != 0:
        raise ValueError("unsupported code width")


def copy(const unsigned char[::1] src, unsigned char[::1] dst, int n_threads):
    """Parallel memory copy (the elementwise kernels' physical limit, for benchmarks)."""
    if src.shape[0] != dst.shape[0]:
        raise ValueError("src and dst sizes differ")
    if src.shape[0] == 0:
        return
    with nogil:
        c_copy_bytes(&src[0], &dst[0], src.shape[0], n_threads)


def isa():
    return c_isa_name().decode()


def isa_available():
    return c_isa_available().decode().split(",")


def set_isa(str name):
    if c_set_isa(name.encode()) != 0:
        raise ValueError(f"instruction set {name!r} is not available on this CPU")


def openmp_enabled():
    return bool(c_openmp_enabled())


def default_threads():
    return c_default_threads()


def make_key(uint64_t seed, uint64_t stream=0):
    return c_make_key(seed, stream)


def accum_matmul(const real[::1] A, const real[::1] B, C, real[::1] out, int64_t batch, int64_t M, int64_t N,
                 int64_t K, int64_t sA, int64_t sB, int64_t sC, tuple acc, tuple prod, int has_prod, int order,
                 int64_t chunk, uint64_t steps, int fast, int n_threads):
    """Emulated matrix product on flat contiguous buffers (shapes checked by the caller)."""
    cdef AccumParams p = _acc_params(acc, prod, has_prod, order, chunk)
    cdef const real[::1] c
    cdef const real* cp = NULL
    if C is not None:
        c = C
        cp = &c[0]
    if batch * M * N == 0:
        return
    with nogil:
        if real is float:
            c_accum_matmul_f32(&A[0] if K > 0 else NULL, &B[0] if K > 0 else NULL, cp, &out[0], batch, M, N, K,
                               sA, sB, sC, p, steps, fast, n_threads)
        else:
            c_accum_matmul_f64(&A[0] if K > 0 else NULL, &B[0] if K > 0 else NULL, cp, &out[0], batch, M, N, K,
                               sA, sB, sC, p, steps, fast, n_threads)


def accum_rows(const real[::1] X, Y, C, real[::1] out, int64_t R, int64_t K, tuple steps, tuple acc, tuple prod,
               int has_prod, int order, int64_t chunk, int fast, int n_threads):
    """Row reductions out[r] = C[r] (+) sum_k X[r, k] (* Y[r, k]) on flat contiguous buffers."""
    cdef AccumParams p = _acc_params(acc, prod, has_prod, order, chunk)
    cdef AccumSteps st
    st.c0, st.cs, st.t0, st.ts, st.p0, st.ps = steps
    cdef const real[::1] y
    cdef const real[::1] c
    cdef const real* yp = NULL
    cdef const real* cp = NULL
    if Y is not None and K > 0:
        y = Y
        yp = &y[0]
    if C is not None:
        c = C
        cp = &c[0]
    if R == 0:
        return
    with nogil:
        if real is float:
            c_accum_rows_f32(&X[0] if K > 0 else NULL, yp, cp, &out[0], R, K, st, p, fast, n_threads)
        else:
            c_accum_rows_f64(&X[0] if K > 0 else NULL, yp, cp, &out[0], R, K, st, p, fast, n_threads)


def bfma_matmul(const float[::1] A, const float[::1] B, const double[::1] C, double[::1] out, int64_t batch,
                int64_t M, int64_t N, int64_t K, int64_t sA, int64_t sB, int64_t sC, tuple out_params,
                tuple late_params, tuple ints, const int32_t[::1] perm, int mode, int n_threads):
    """Block-FMA matrix product; ints = (block, sub_block, late_c, neab, emin_a, emin_b, c_emin,
    min_exp_limit, out_subnormals, out_emin, out_emax)."""
    cdef BfmaParams p
    p.out = _params(out_params)
    p.late = _params(late_params)
    (p.block, p.sub_block, p.late_c, p.neab, p.emin_a, p.emin_b, p.c_emin, p.min_exp_limit, p.out_subnormals,
     p.out_emin, p.out_emax) = ints
    if perm.shape[0] != p.block:
        raise ValueError("perm must have block entries")
    p.perm = &perm[0]
    if batch * M * N == 0:
        return
    with nogil:
        c_bfma_matmul(&A[0] if K > 0 else NULL, &B[0] if K > 0 else NULL, &C[0], &out[0], batch, M, N, K, sA, sB,
                      sC, p, mode, n_threads)
