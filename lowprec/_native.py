"""Access to the compiled core, and the configuration report."""

from __future__ import annotations

import os
import platform
import sys

try:  # the compiled module; the NumPy reference serves when it is missing
    from . import _core as core
except ImportError as exc:  # pragma: no cover - exercised only by broken installs
    core = None
    _import_error: str | None = str(exc)
else:
    _import_error = None

__all__ = ["core", "show_config", "config", "default_threads", "set_isa"]


def default_threads() -> int:
    """Threads used when ``n_threads`` is not given: all cores, or ``OMP_NUM_THREADS``."""
    if core is not None:
        return core.default_threads()
    return 1


def set_isa(name: str) -> None:
    """Select the kernel instruction set: "avx512", "avx2", "baseline" or "best" (testing aid)."""
    if core is None:
        raise RuntimeError(f"the compiled core is not available: {_import_error}")
    core.set_isa(name)


def config() -> dict[str, object]:
    """Build and run-time configuration as a dict."""
    import numpy as np

    info: dict[str, object] = {
        "lowprec": _version(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
        "native": core is not None,
    }
    if core is None:
        info["native_error"] = _import_error
        return info
    info.update(
        isa=core.isa(),
        isa_available=core.isa_available(),
        openmp=core.openmp_enabled(),
        threads=core.default_threads(),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
    )
    return info


def show_config() -> None:
    """Print the configuration: native module, kernel instruction set, OpenMP and threads."""
    for k, v in config().items():
        if isinstance(v, list):
            v = ", ".join(map(str, v))
        print(f"{k:>16}: {v}")


def _version() -> str:
    from . import __version__

    return __version__
