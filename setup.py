"""Build of lowprec's compiled core: one Cython module over header-first C++17 kernels.

Flags follow DESIGN.md section 3 (see BASE_FLAGS): no value-changing floating-point options and no
host-specific tuning; the AVX2/AVX-512 kernels are selected at run time. OpenMP is probed and
optional; set LOWPREC_NO_OPENMP=1 to build without it.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

BASE_FLAGS = ["-O3", "-std=c++17", "-fvisibility=hidden", "-ffp-contract=off", "-fno-trapping-math"]


def _openmp_flags() -> list[str]:
    """-fopenmp if the compiler accepts it (probed by compiling and linking a tiny program)."""
    if os.environ.get("LOWPREC_NO_OPENMP") or sys.platform == "win32":
        return []
    cxx = os.environ.get("CXX", "c++")
    src = "#include <omp.h>\nint main(){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "probe.cpp")
        with open(path, "w") as f:
            f.write(src)
        try:
            r = subprocess.run([cxx, "-fopenmp", path, "-o", os.path.join(d, "probe")], capture_output=True)
        except OSError:
            return []
    return ["-fopenmp"] if r.returncode == 0 else []


omp = _openmp_flags()
ext = Extension(
    "lowprec._core",
    sources=[
        "lowprec/_core.pyx",
        "csrc/dispatch.cpp",
        "csrc/accumulate.cpp",
        "csrc/spectral.cpp",
        "csrc/isa_baseline.cpp",
        "csrc/isa_avx2.cpp",
        "csrc/isa_avx512.cpp",
    ],
    include_dirs=["csrc/include", "csrc", np.get_include()],
    language="c++",
    extra_compile_args=BASE_FLAGS + omp,
    extra_link_args=omp,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"), ("LOWPREC_OPENMP", "1" if omp else "0")],
)

setup(
    ext_modules=cythonize([ext], compiler_directives={"language_level": "3"}),
    packages=["lowprec", "lowprec.torch", "lowprec.spectral", "lowprec.emulators"],
    package_dir={"lowprec.emulators": "emulators"},
    package_data={"lowprec.emulators": ["*.toml", "README.md"]},
)
