# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# distutils: language = c++
"""Thin bindings of the C++ kernels: contiguous 1-D buffers in, GIL released. Arguments are checked
by the Python layer (lowprec/_quantize.py); only buffer types and sizes are checked here."""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libcpp.vector cimport vector


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
        int32_t finite_ab, lean

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


def quantize_many(list xs, list outs, list sizes, list seeds, bint is_double, tuple params, int n_threads):
    """quantize on raw buffer addresses (contiguous, n elements each, float64 if is_double else float32),
    buffer i with the random key of seeds[i] (unused by deterministic modes); one call, the GIL released
    once. For callers that hold validated buffers (lowprec.torch's CPU tensors): no checks here."""
    cdef QuantParams q = _params(params)
    cdef Py_ssize_t k, m = len(xs)
    cdef vector[size_t] px, po
    cdef vector[int64_t] ns
    cdef vector[uint64_t] keys
    if len(outs) != m or len(sizes) != m or len(seeds) != m:
        raise ValueError("xs, outs, sizes and seeds must have the same length")
    for k in range(m):
        px.push_back(xs[k])
        po.push_back(outs[k])
        ns.push_back(sizes[k])
        keys.push_back(c_make_key(seeds[k], 0))
    with nogil:
        for k in range(m):
            if ns[k] <= 0:
                continue
            q.key = keys[k]
            if is_double:
                c_quantize_f64(<const double*>px[k], <double*>po[k], ns[k], q, n_threads)
            else:
                c_quantize_f32(<const float*>px[k], <float*>po[k], ns[k], q, n_threads)


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
    min_exp_limit, out_subnormals, out_emin, out_emax, lean)."""
    cdef BfmaParams p
    p.out = _params(out_params)
    p.late = _params(late_params)
    (p.block, p.sub_block, p.late_c, p.neab, p.emin_a, p.emin_b, p.c_emin, p.min_exp_limit, p.out_subnormals,
     p.out_emin, p.out_emax, p.lean) = ints
    p.finite_ab = 0
    if perm.shape[0] != p.block:
        raise ValueError("perm must have block entries")
    p.perm = &perm[0]
    if batch * M * N == 0:
        return
    with nogil:
        c_bfma_matmul(&A[0] if K > 0 else NULL, &B[0] if K > 0 else NULL, &C[0], &out[0], batch, M, N, K, sA, sB,
                      sC, p, mode, n_threads)


cdef extern from "lowprec/spectral.hpp" namespace "lowprec":
    cdef struct EntryMap:
        int32_t mode
        double sqrt_p
        const double* edges
        int32_t n_edges
        const signed char* values
        double t0
        uint64_t key
        double keep
        int64_t n

cdef extern from "lowprec/api.hpp" namespace "lowprec":
    int c_spectral_csr_count "lowprec::spectral_csr_count"(
        const double*, int64_t, int64_t, int64_t, int64_t, const EntryMap&, int64_t*, int) nogil
    int c_spectral_csr_fill_i8 "lowprec::spectral_csr_fill_i8"(
        const double*, int64_t, int64_t, int64_t, int64_t, const EntryMap&, const int64_t*, int32_t*, signed char*,
        int) nogil
    int c_spectral_csr_fill_f64 "lowprec::spectral_csr_fill_f64"(
        const double*, int64_t, int64_t, int64_t, int64_t, const EntryMap&, const int64_t*, int32_t*, double*,
        int) nogil
    int c_spectral_pack "lowprec::spectral_pack"(
        const double*, int64_t, int64_t, const EntryMap&, int, unsigned char*, int64_t, int) nogil
    int c_spectral_csr_matvec_i8 "lowprec::spectral_csr_matvec_i8"(
        int64_t, const int64_t*, const int32_t*, const signed char*, double, const double*, double*, double*,
        int64_t, int) nogil
    int c_spectral_csr_matvec_f64 "lowprec::spectral_csr_matvec_f64"(
        int64_t, const int64_t*, const int32_t*, const double*, double, const double*, double*, double*, int64_t,
        int) nogil
    int c_spectral_packed_matvec "lowprec::spectral_packed_matvec"(
        int64_t, const unsigned char*, int64_t, int, const double*, double, const double*, double*, double*,
        int) nogil


cdef EntryMap _entry_map(tuple m, const double[::1] edges, const signed char[::1] values):
    """m = (mode, sqrt_p, t0, key, keep, n); edges/values used by the code map (may be empty)."""
    cdef EntryMap e
    e.mode, e.sqrt_p, e.t0, e.key, e.keep, e.n = m
    e.n_edges = edges.shape[0]
    e.edges = &edges[0] if edges.shape[0] else NULL
    e.values = &values[0] if values.shape[0] else NULL
    if e.mode == 0 and values.shape[0] != edges.shape[0] + 1:
        raise ValueError("values must hold one entry per code")
    return e


def spectral_csr_count(const double[:, ::1] G, int64_t r0, int64_t c0, tuple m, const double[::1] edges,
                       const signed char[::1] values, int64_t[::1] counts, int n_threads):
    """Stored upper-triangle entries per row of the Gram block G (rows r0.., columns c0..)."""
    cdef EntryMap e = _entry_map(m, edges, values)
    if counts.shape[0] != G.shape[0]:
        raise ValueError("counts must hold one entry per row")
    if G.shape[0] == 0 or G.shape[1] == 0:
        counts[:] = 0
        return
    with nogil:
        c_spectral_csr_count(&G[0, 0], G.shape[0], G.shape[1], r0, c0, e, &counts[0], n_threads)


def spectral_csr_fill(const double[:, ::1] G, int64_t r0, int64_t c0, tuple m, const double[::1] edges,
                      const signed char[::1] values, const int64_t[::1] starts, int32_t[::1] idx, val,
                      int n_threads):
    """Column indices and values (int8 or float64 array) of the stored entries, row r at starts[r]."""
    cdef EntryMap e = _entry_map(m, edges, values)
    cdef signed char[::1] v8
    cdef double[::1] vd
    if starts.shape[0] != G.shape[0]:
        raise ValueError("starts must hold one entry per row")
    if G.shape[0] == 0 or G.shape[1] == 0 or idx.shape[0] == 0:
        return
    if val.dtype.itemsize == 1:
        v8 = val
        with nogil:
            c_spectral_csr_fill_i8(&G[0, 0], G.shape[0], G.shape[1], r0, c0, e, &starts[0], &idx[0], &v8[0],
                                   n_threads)
    else:
        vd = val
        with nogil:
            c_spectral_csr_fill_f64(&G[0, 0], G.shape[0], G.shape[1], r0, c0, e, &starts[0], &idx[0], &vd[0],
                                    n_threads)


def spectral_pack(const double[:, ::1] G, tuple m, const double[::1] edges, const signed char[::1] values,
                  int bits, unsigned char[:, ::1] out, int n_threads):
    """Packed codes of full rows: G is rows x n, out is rows x row_bytes."""
    cdef EntryMap e = _entry_map(m, edges, values)
    cdef int rc = 0
    if out.shape[0] != G.shape[0] or out.shape[1] * (8 // bits) < G.shape[1]:
        raise ValueError("out is too small")
    if G.shape[0] == 0:
        return
    with nogil:
        rc = c_spectral_pack(&G[0, 0], G.shape[0], G.shape[1], e, bits, &out[0, 0], out.shape[1], n_threads)
    if rc != 0:
        raise ValueError("bits must be 1, 2, 4 or 8")


def spectral_csr_matvec(const int64_t[::1] indptr, const int32_t[::1] idx, val, double scale,
                        const double[::1] x, double[::1] y, double[::1] work, int64_t slices, int n_threads):
    """y = scale * (U + U^T) x for the strict upper triangle U (CSR, int8 or float64 values)."""
    cdef int64_t n = x.shape[0]
    cdef const signed char[::1] v8
    cdef const double[::1] vd
    cdef const signed char* p8 = NULL
    cdef const double* pd = NULL
    if indptr.shape[0] != n + 1 or y.shape[0] != n or work.shape[0] < n * slices or slices < 1:
        raise ValueError("inconsistent sizes")
    if n == 0:
        return
    if val.dtype.itemsize == 1:
        v8 = val
        if v8.shape[0]:
            p8 = &v8[0]
    else:
        vd = val
        if vd.shape[0]:
            pd = &vd[0]
    cdef const int32_t* pi = NULL
    if idx.shape[0]:
        pi = &idx[0]
    cdef bint small = val.dtype.itemsize == 1
    with nogil:
        if small:
            c_spectral_csr_matvec_i8(n, &indptr[0], pi, p8, scale, &x[0], &y[0], &work[0], slices, n_threads)
        else:
            c_spectral_csr_matvec_f64(n, &indptr[0], pi, pd, scale, &x[0], &y[0], &work[0], slices, n_threads)


def spectral_packed_matvec(const unsigned char[:, ::1] codes, int bits, const double[::1] levels, double scale,
                           const double[::1] x, double[::1] y, double[::1] tables, int n_threads):
    """y = scale * (L - diag L) x for the packed code matrix (levels[code] per entry)."""
    cdef int64_t n = x.shape[0]
    cdef int rc = 0
    if bits not in (1, 2, 4, 8) or levels.shape[0] != (1 << bits):
        raise ValueError("bits must be 1, 2, 4 or 8 with 2**bits levels")
    if codes.shape[0] != n or codes.shape[1] * (8 // bits) < n or y.shape[0] != n:
        raise ValueError("inconsistent sizes")
    if tables.shape[0] < ((n + 8 // bits - 1) // (8 // bits)) * 256:
        raise ValueError("tables is too small")
    if n == 0:
        return
    with nogil:
        rc = c_spectral_packed_matvec(n, &codes[0, 0], codes.shape[1], bits, &levels[0], scale, &x[0], &y[0],
                                      &tables[0], n_threads)
