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
