"""Cases shared by the pytest-benchmark suite and ``report.py``.

Every case is a zero-argument callable bound to arrays allocated once, so the suite and the report
time exactly the same work. Peers (ml_dtypes, torch, qtorch) are imported lazily; a peer that cannot
be imported or fails on its first call is reported as unavailable, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Callable

import numpy as np

import lowprec as lp
from lowprec import _core

FORMATS = ("e4m3fn", "e5m2", "fp16", "bf16", "e6m9", "e2m1fn")
F64_FORMATS = ("e4m3fn", "bf16", "fp16")

#: rounding label -> (rounding, sr_bits)
MODES = {"nearest": ("nearest", None), "sr": ("stochastic", None), "sr8": ("stochastic", 8)}
#: targets as a fraction of memcpy throughput, per (input dtype, mode label)
TARGETS = {
    ("float32", "nearest"): 0.7,
    ("float32", "sr"): 0.5,
    ("float32", "sr8"): 0.5,
    ("float64", "nearest"): 0.5,
    ("float64", "sr"): 0.5,  # the float64 target, which names no rounding mode
}
PEER_TARGETS = {"qtorch": 10.0, "ml_dtypes": 5.0}

#: qtorch float_quantize(exp, man) of each format (qtorch has no fn/fnuz variants: same widths)
QTORCH_BITS = {"e4m3fn": (4, 3), "e5m2": (5, 2), "fp16": (5, 10), "bf16": (8, 7), "e6m9": (6, 9), "e2m1fn": (2, 1)}
ML_DTYPES_NAMES = {
    "e4m3fn": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "fp16": None,  # numpy's own float16
    "bf16": "bfloat16",
    "e2m1fn": "float4_e2m1fn",
}
TORCH_NAMES = {"e4m3fn": "float8_e4m3fn", "e5m2": "float8_e5m2", "fp16": "float16", "bf16": "bfloat16"}

SEED = 12345


def make_input(n: int, dtype) -> np.ndarray:
    """Normal values spread over 2^-6..2^6 (realistic activations, some overflow of narrow formats)."""
    rng = np.random.default_rng(20240601)
    x = rng.standard_normal(n) * np.exp2(rng.integers(-6, 7, n))
    return x.astype(dtype)


@dataclasses.dataclass
class Arrays:
    n_log2: int
    threads: int
    x32: np.ndarray
    y32: np.ndarray
    x64: np.ndarray
    y64: np.ndarray

    @classmethod
    def make(cls, n_log2: int, threads: int) -> Arrays:
        n = 1 << n_log2
        x32 = make_input(n, np.float32)
        x64 = make_input(n, np.float64)
        y32 = np.zeros_like(x32)  # touched: no page faults inside the timings
        y64 = np.zeros_like(x64)
        return cls(n_log2, threads, x32, y32, x64, y64)

    def pair(self, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.x32, self.y32) if dtype == "float32" else (self.x64, self.y64)


# --- memcpy references ----------------------------------------------------------------------------
def memcpy_numpy(a: Arrays, dtype: str) -> Callable[[], object]:
    x, y = a.pair(dtype)
    return lambda: np.copyto(y, x)


def memcpy_lowprec(a: Arrays, dtype: str) -> Callable[[], object]:
    x, y = a.pair(dtype)
    xb, yb, nt = x.view(np.uint8), y.view(np.uint8), a.threads
    return lambda: _core.copy(xb, yb, nt)


MEMCPY = {"np.copyto (1 thread)": memcpy_numpy, "_core.copy": memcpy_lowprec}


# --- lowprec --------------------------------------------------------------------------------------
def lowprec_case(a: Arrays, dtype: str, fmt: str, mode: str, *, out: bool = True) -> Callable[[], object]:
    """``out=True``: into a preallocated array (the kernel, compared with memcpy); ``out=False``:
    the allocating call ``lp.quantize(x, fmt)`` (compared with peers, which allocate too)."""
    x, y = a.pair(dtype)
    rounding, sr_bits = MODES[mode]
    kw = dict(sr_bits=sr_bits, n_threads=a.threads)
    if rounding == "stochastic":
        kw["seed"] = SEED
    if out:
        kw["out"] = y
    return lambda: lp.quantize(x, fmt, rounding, **kw)


# --- peers ----------------------------------------------------------------------------------------
class PeerUnavailable(Exception):
    pass


_torch_threads_set = False


def _torch(threads: int):
    global _torch_threads_set
    try:
        import torch
    except Exception as exc:  # pragma: no cover
        raise PeerUnavailable(f"torch import failed: {exc}") from exc
    if not _torch_threads_set:
        torch.set_num_threads(threads)
        _torch_threads_set = True
    return torch


def peer_case(peer: str, a: Arrays, dtype: str, fmt: str, mode: str) -> Callable[[], object]:
    """The peer's own round trip for the same arrays; raises PeerUnavailable when it has none."""
    x, _ = a.pair(dtype)
    xdt = x.dtype
    if peer == "ml_dtypes":
        if mode != "nearest":
            raise PeerUnavailable("ml_dtypes has no stochastic rounding")
        if fmt not in ML_DTYPES_NAMES:
            raise PeerUnavailable(f"ml_dtypes has no {fmt}")
        try:
            import ml_dtypes
        except Exception as exc:
            raise PeerUnavailable(f"ml_dtypes import failed: {exc}") from exc
        name = ML_DTYPES_NAMES[fmt]
        dt = np.float16 if name is None else getattr(ml_dtypes, name)
        return lambda: x.astype(dt).astype(xdt)
    if peer == "torch":
        if mode != "nearest":
            raise PeerUnavailable("torch casts have no stochastic rounding")
        if fmt not in TORCH_NAMES:
            raise PeerUnavailable(f"torch has no {fmt} cast")
        torch = _torch(a.threads)
        tdt = getattr(torch, TORCH_NAMES[fmt])
        back = torch.float32 if dtype == "float32" else torch.float64
        t = torch.from_numpy(x)
        return lambda: t.to(tdt).to(back)
    if peer == "qtorch":
        if dtype != "float32":
            raise PeerUnavailable("qtorch float_quantize takes float32 only")
        if mode == "sr8":
            raise PeerUnavailable("qtorch has no r-bit stochastic rounding")
        torch = _torch(a.threads)
        try:
            from qtorch.quant import float_quantize
        except Exception as exc:
            raise PeerUnavailable(f"qtorch import failed: {exc}") from exc
        e, m = QTORCH_BITS[fmt]
        rounding = "nearest" if mode == "nearest" else "stochastic"
        t = torch.from_numpy(x)
        return lambda: float_quantize(t, e, m, rounding=rounding)
    raise ValueError(peer)


PEERS = ("ml_dtypes", "torch", "qtorch")


# --- machine description ----------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    out = {"numpy": np.__version__, "lowprec": lp.__version__}
    for mod in ("ml_dtypes", "torch", "qtorch"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "installed (no __version__)")
        except Exception as exc:
            out[mod] = f"unavailable ({type(exc).__name__})"
    if out.get("qtorch", "").startswith("installed"):
        try:
            from importlib.metadata import version

            out["qtorch"] = version("qtorch")
        except Exception:
            pass
    return out


def machine() -> dict[str, object]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        affinity = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "logical cpus": os.cpu_count(),
        "usable cpus (affinity)": affinity,
        "memory": mem,
        "platform": platform.platform(),
    }


def emit_report(out: list[str], problems: list[str], markdown: str | None, generator: str) -> None:
    """Print the report lines (and any problems), and write them to `markdown` when given."""
    import sys

    if problems:
        out += ["", "Problems:"] + [f"- {p}" for p in problems]
    text = "\n".join(out) + "\n"
    print(text)
    if markdown:
        with open(markdown, "w") as f:
            f.write(f"<!-- generated by {generator} -->\n\n" + text)
        print(f"wrote {markdown}", file=sys.stderr)
