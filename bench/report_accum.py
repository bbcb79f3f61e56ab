"""Ratios of lowprec's emulated accumulation (matmul, sum) against float32 BLAS and memcpy, one run.

    python bench/report_accum.py [--size 512] [--sum-n-log2 24] [--threads 2] [--reps 11] [--quick]
                                 [--no-peers] [--markdown PATH]

Method (DESIGN.md section 5): these machines are shared and noisy, so every number is a ratio
against a reference timed in the same process, on the same arrays, in interleaved rounds.

* Emulated GEMMs (``lp.matmul``, M = N = K = ``--size``, float32 inputs) against numpy's float32
  ``A @ B`` (OpenBLAS, pinned to ``--threads``): ratio = numpy time / lowprec time, i.e. lowprec's
  MAC rate as a fraction of BLAS's.
* ``lp.sum`` over 2^``--sum-n-log2`` float32 terms against memcpy of the same input array: the
  faster of numpy's single-threaded ``np.copyto`` and lowprec's ``_core.copy`` (``--threads``);
  ratio = memcpy time / lowprec time. (The copy reads the bytes and writes them again; the sum
  only reads them.)
* Peers: qtorch has no emulated accumulation; its row is ``qtorch.quant.float_quantize`` of both
  operands followed by float32 ``torch.matmul`` -- operand quantization only, not an equivalent
  emulation. MPTorch (CPU GEMM emulation) is not installable here; its ~34 M MAC/s is quoted as a
  reference, not measured.

Every time is the median of the repetitions after a warm-up call; fast calls (the references) are
repeated within a sample so that one sample lasts at least ~20 ms. References and lowprec cases
run in interleaved rounds, each sample after an idle pause (``--settle``) so that the previous
case's spinning worker threads (OpenBLAS, OpenMP) do not take a core from the next one; the qtorch
peer runs afterwards in blocks (torch's own OpenMP threads must not spin against lowprec's). The
report gives the CPU share other processes used meanwhile: on a 2-core machine shared with a
compiler, a lowprec call with 2 threads waits whole scheduler ticks and the numbers mean little.
No assertion is made: targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime
import gc
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _bench_common import PeerUnavailable, emit_report, machine, versions  # noqa: E402

import lowprec as lp  # noqa: E402
from lowprec import _core  # noqa: E402

#: MPTorch's CPU GEMM-emulation throughput as commonly quoted for MPTorch (not measured: not installable here)
MPTORCH_MACS = 34e6
SEED = 0
MIN_SAMPLE_S = 0.02  # a sample of a fast call repeats it until it lasts about this long
#: idle pause before every sample of the interleaved rounds: the previous case's worker threads
#: (OpenBLAS's spin-wait lasts ~0.1 s after a call; OpenMP's is shorter) go to sleep first, so that
#: they do not steal one of the few cores from the next case
SETTLE_S = 0.15
#: CPU share of other processes above which the report flags the run as disturbed
BUSY_SHARE = 0.1


# --- cases ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Case:
    key: str
    label: str
    kind: str  # "matmul" or "sum"
    kwargs: dict
    target: float | None = None  # fraction of the reference rate; None: context only
    #: qtorch float_quantize (exp, man, rounding) of the operands, then fp32 torch.matmul; None: no row
    qtorch: tuple[int, int, str] | None = None


_IBM = dict(a_format="e5m2", b_format="e5m2", acc="e6m9")


def _prof(name: str) -> dict:
    return dict(profile=name)


CASES: tuple[Case, ...] = (
    Case(
        "mm-chunk64",
        "matmul e5m2 x e5m2, acc e6m9, chunk 64, nearest",
        "matmul",
        dict(_IBM, chunk=64, rounding="nearest"),
        0.1,
        (5, 2, "nearest"),
    ),
    Case(
        "mm-chunk64-sr",
        "matmul e5m2 x e5m2, acc e6m9, chunk 64, stochastic (seed 0)",
        "matmul",
        dict(_IBM, chunk=64, rounding="stochastic", seed=SEED),
        0.05,
        (5, 2, "stochastic"),
    ),
    Case("mm-h100-fp8", "matmul profile nvidia-h100-fp8", "matmul", _prof("nvidia-h100-fp8"), 0.1, (4, 3, "nearest")),
    Case("sum-chunk64", "sum acc e6m9, chunk 64, nearest", "sum", dict(acc="e6m9", chunk=64), 0.3),
    # context, no target
    Case("mm-seq", "matmul e5m2 x e5m2, acc e6m9, sequential (no chunk)", "matmul", _IBM, None, (5, 2, "nearest")),
    Case(
        "mm-pairwise",
        "matmul e5m2 x e5m2, acc e6m9, pairwise",
        "matmul",
        dict(_IBM, order="pairwise"),
        None,
        (5, 2, "nearest"),
    ),
    Case(
        "mm-a100-fp16", "matmul profile nvidia-a100-fp16", "matmul", _prof("nvidia-a100-fp16"), None, (5, 10, "nearest")
    ),
    Case("mm-ibm", "matmul profile ibm-fp8-2018", "matmul", _prof("ibm-fp8-2018"), None, (5, 2, "nearest")),
    Case(
        "sum-chunk64-sr",
        "sum acc e6m9, chunk 64, stochastic (seed 0)",
        "sum",
        dict(acc="e6m9", chunk=64, rounding="stochastic", seed=SEED),
    ),
)
CASE = {c.key: c for c in CASES}
QTORCH_LABEL = "qtorch (operand quantization only, fp32 GEMM)"


@dataclasses.dataclass
class AccumArrays:
    size: int
    sum_n_log2: int
    threads: int
    A: np.ndarray
    B: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def make(cls, size: int, sum_n_log2: int, threads: int) -> AccumArrays:
        rng = np.random.default_rng(20240601)
        A = rng.standard_normal((size, size), dtype=np.float32)
        B = rng.standard_normal((size, size), dtype=np.float32)
        x = rng.standard_normal(1 << sum_n_log2, dtype=np.float32)
        y = np.zeros_like(x)  # touched: no page faults inside the timings
        return cls(size, sum_n_log2, threads, A, B, x, y)

    @property
    def macs(self) -> int:
        return self.size**3

    @property
    def n_sum(self) -> int:
        return self.x.size


def lowprec_case(a: AccumArrays, case: Case) -> Callable[[], object]:
    kw = dict(case.kwargs, n_threads=a.threads)
    if case.kind == "matmul":
        A, B = a.A, a.B
        return lambda: lp.matmul(A, B, **kw)
    x = a.x
    return lambda: lp.sum(x, **kw)


def numpy_matmul(a: AccumArrays) -> Callable[[], object]:
    A, B = a.A, a.B
    return lambda: A @ B


def memcpy_numpy(a: AccumArrays) -> Callable[[], object]:
    x, y = a.x, a.y
    return lambda: np.copyto(y, x)


def memcpy_lowprec(a: AccumArrays) -> Callable[[], object]:
    xb, yb, nt = a.x.view(np.uint8), a.y.view(np.uint8), a.threads
    return lambda: _core.copy(xb, yb, nt)


def numpy_sum(a: AccumArrays) -> Callable[[], object]:
    x = a.x
    return lambda: x.sum()


MEMCPY = {"np.copyto (1 thread)": memcpy_numpy, "_core.copy": memcpy_lowprec}


_torch_threads_set = False


def qtorch_case(a: AccumArrays, spec: tuple[int, int, str]) -> Callable[[], object]:
    """float_quantize both operands, then float32 torch.matmul (no emulated accumulation)."""
    global _torch_threads_set
    try:
        import torch
        from qtorch.quant import float_quantize
    except Exception as exc:
        raise PeerUnavailable(f"qtorch import failed: {type(exc).__name__}: {exc}") from exc
    if not _torch_threads_set:
        torch.set_num_threads(a.threads)
        _torch_threads_set = True
    e, m, rnd = spec
    At, Bt = torch.from_numpy(a.A), torch.from_numpy(a.B)
    return lambda: torch.matmul(float_quantize(At, e, m, rounding=rnd), float_quantize(Bt, e, m, rounding=rnd))


def qtorch_label(spec: tuple[int, int, str]) -> str:
    e, m, rnd = spec
    return f"qtorch float_quantize(exp={e}, man={m}, {rnd}) x2 + fp32 torch.matmul"


# --- BLAS threads ----------------------------------------------------------------------------------------
def _openblas_libs() -> list[ctypes.CDLL]:
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if "openblas" in os.path.basename(p).lower():
                    paths.add(p)
    except OSError:
        pass
    libs = []
    for p in sorted(paths):
        try:
            libs.append(ctypes.CDLL(p))
        except OSError:
            pass
    return libs


_SET = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
_GET = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")


def blas_threads(n: int | None = None) -> str:
    """Set (when n is given) and report numpy's OpenBLAS thread count; 'unknown' for other BLAS."""
    np.ones((2, 2), np.float32) @ np.ones((2, 2), np.float32)  # make sure the BLAS is loaded
    for lib in _openblas_libs():
        if n is not None:
            for nm in _SET:
                fn = getattr(lib, nm, None)
                if fn is not None:
                    fn.argtypes = [ctypes.c_int]
                    fn(int(n))
                    break
        for nm in _GET:
            fn = getattr(lib, nm, None)
            if fn is not None:
                return str(fn())
    return "unknown"


# --- timing ------------------------------------------------------------------------------------------
def _sample(fn: Callable[[], object], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def time_interleaved(
    cases: dict[str, Callable[[], object]], reps: int, settle: float = SETTLE_S, progress: bool = True
) -> dict[str, list[float]]:
    """Seconds per call of each case, one sample per round; round-robin rounds, fast calls repeated
    within a sample, an idle pause of ``settle`` seconds before each sample."""
    number: dict[str, int] = {}
    for k, fn in cases.items():
        fn()  # warm-up
        t = _sample(fn, 1)
        number[k] = max(1, math.ceil(MIN_SAMPLE_S / max(t, 1e-7)))
    samples: dict[str, list[float]] = {k: [] for k in cases}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(reps):
            if progress:
                print(f"  round {r + 1}/{reps}", file=sys.stderr, flush=True)
            for k, fn in cases.items():
                if settle > 0:
                    time.sleep(settle)
                samples[k].append(_sample(fn, number[k]))
    finally:
        if gc_was:
            gc.enable()
    return samples


def time_block(fn: Callable[[], object], reps: int) -> float:
    fn()
    t = _sample(fn, 1)
    number = max(1, math.ceil(MIN_SAMPLE_S / max(t, 1e-7)))
    gc_was = gc.isenabled()
    gc.disable()
    try:
        ts = [_sample(fn, number) for _ in range(reps)]
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(ts)


# --- noise indicator -------------------------------------------------------------------------------------
def _busy_jiffies() -> int | None:
    """Non-idle CPU time of the whole machine (all processes), in clock ticks; None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v[:8]) - idle


class OtherLoad:
    """CPU share used by *other* processes while timing (machine busy time minus this process's)."""

    def __init__(self) -> None:
        self.j0, self.p0, self.t0 = _busy_jiffies(), os.times(), time.perf_counter()

    def share(self) -> float | None:
        j1, p1, t1 = _busy_jiffies(), os.times(), time.perf_counter()
        if self.j0 is None or j1 is None:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        own = (p1.user - self.p0.user) + (p1.system - self.p0.system)
        other = (j1 - self.j0) / hz - own
        return max(0.0, other) / ((t1 - self.t0) * (os.cpu_count() or 1))


# --- report ------------------------------------------------------------------------------------------
def _isa_lines() -> list[str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        lp.show_config()
    keep = ("isa", "isa_available", "openmp", "threads", "omp_num_threads")
    out = []
    for line in buf.getvalue().splitlines():
        k, _, v = line.partition(":")
        if k.strip() in keep:
            out.append(f"{k.strip()}: {v.strip()}")
    return out


def load_lines(other_share: float | None) -> list[str]:
    """The report line on other processes' CPU share, flagged when it disturbs the timings."""
    if other_share is None:
        return []
    warn = (
        " -- **busy machine: timings disturbed** (with threads equal to the core count, an OpenMP parallel "
        "region waits a scheduler tick, ~4 ms, whenever another process holds a core)"
        if other_share > BUSY_SHARE
        else ""
    )
    return [f"- other processes used {100 * other_share:.0f}% of the CPUs during the interleaved rounds{warn}"]


def machine_lines() -> list[str]:
    """Markdown header of a report: date, machine, lowprec configuration, versions."""
    out = [f"### Machine ({datetime.datetime.now().astimezone().isoformat(timespec='minutes')})", ""]
    out += [f"- {k}: {v}" for k, v in machine().items()]
    out.append("- lowprec.show_config(): " + ", ".join(_isa_lines()))
    out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    return out


def _fmt_rate(v: float) -> str:
    return f"{v / 1e9:.2f} G" if v >= 1e9 else f"{v / 1e6:.1f} M"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=None, help="M = N = K of the matmuls (default 512; 128 with --quick)")
    ap.add_argument("--sum-n-log2", type=int, default=None, help="log2 of the sum length (default 24; 20 with --quick)")
    ap.add_argument("--threads", type=int, default=2, help="threads: lowprec, OpenBLAS, torch (default 2)")
    ap.add_argument("--reps", type=int, default=None, help="interleaved rounds (default 11; 5 with --quick)")
    ap.add_argument("--peer-reps", type=int, default=None, help="qtorch repetitions (default 5; 3 with --quick)")
    ap.add_argument("--settle", type=float, default=SETTLE_S, help=f"idle s before a sample (default {SETTLE_S})")
    ap.add_argument("--quick", action="store_true", help="smoke run: M=N=K=128, 2^20 sum terms, fewer rounds")
    ap.add_argument("--no-peers", action="store_true", help="skip qtorch")
    ap.add_argument("--markdown", metavar="PATH", help="also write the machine block and tables to PATH")
    args = ap.parse_args(argv)
    size = args.size if args.size is not None else (128 if args.quick else 512)
    sum_log2 = args.sum_n_log2 if args.sum_n_log2 is not None else (20 if args.quick else 24)
    reps = args.reps or (5 if args.quick else 11)
    peer_reps = args.peer_reps or (3 if args.quick else 5)
    threads = args.threads
    if threads < 1 or reps < 1 or peer_reps < 1 or size < 1 or not 4 <= sum_log2 <= 30:
        ap.error("need threads >= 1, reps >= 1, size >= 1 and 4 <= sum-n-log2 <= 30")

    t_start = time.perf_counter()
    blas_nt = blas_threads(threads)
    a = AccumArrays.make(size, sum_log2, threads)

    # 1. references + lowprec, interleaved rounds
    fast: dict[str, Callable[[], object]] = {"ref|numpy matmul": numpy_matmul(a), "ref|numpy sum": numpy_sum(a)}
    for name, make in MEMCPY.items():
        fast[f"ref|{name}"] = make(a)
    for c in CASES:
        fast[c.key] = lowprec_case(a, c)
    load = OtherLoad()
    print(f"timing references and lowprec: {len(fast)} cases x {reps} rounds ...", file=sys.stderr, flush=True)
    samples = time_interleaved(fast, reps, args.settle)
    other_share = load.share()
    tf = {k: statistics.median(v) for k, v in samples.items()}

    # 2. qtorch, one block per operand quantization
    peer_t: dict[tuple[int, int, str], float | str] = {}
    problems: list[str] = []
    if not args.no_peers:
        for spec in dict.fromkeys(c.qtorch for c in CASES if c.qtorch is not None):
            print(f"timing {qtorch_label(spec)} ...", file=sys.stderr, flush=True)
            try:
                peer_t[spec] = time_block(qtorch_case(a, spec), peer_reps)
            except PeerUnavailable as exc:
                peer_t[spec] = "unavailable"
                problems.append(str(exc))
                break
            except Exception as exc:
                peer_t[spec] = "failed"
                problems.append(f"{qtorch_label(spec)}: {type(exc).__name__}: {exc}")
            gc.collect()
    elapsed = time.perf_counter() - t_start

    # 3. output
    nbytes = a.x.nbytes
    t_np = tf["ref|numpy matmul"]
    best = min(MEMCPY, key=lambda nm: tf[f"ref|{nm}"])
    t_mc = tf[f"ref|{best}"]
    torch_threads = str(sys.modules["torch"].get_num_threads()) if "torch" in sys.modules else "n/a"

    out: list[str] = machine_lines()
    out.append(
        f"- run: matmul M = N = K = {size} float32, sum over 2^{sum_log2} float32 terms; lowprec n_threads={threads}, "
        f"numpy OpenBLAS threads={blas_nt}, torch threads={torch_threads}; median of {reps} interleaved rounds "
        f"(qtorch: {peer_reps} repetitions in a block) after warm-up, {args.settle:g} s idle before each sample, "
        f"{elapsed:.0f} s in all"
    )
    busy = other_share is not None and other_share > BUSY_SHARE
    out += load_lines(other_share)
    out.append("")
    out.append("| reference | time | rate |")
    out.append("|---|---|---|")
    out.append(
        f"| numpy float32 matmul `A @ B` ({size}^3) | {t_np * 1e3:.3f} ms | {_fmt_rate(a.macs / t_np)}MAC/s "
        f"({2 * a.macs / t_np / 1e9:.1f} GFLOP/s) |"
    )
    for name in MEMCPY:
        t = tf[f"ref|{name}"]
        nt = "" if name.startswith("np.") else f" ({threads} threads)"
        mark = " **limit used**" if name == best else ""
        out.append(
            f"| memcpy {name}{nt}, {nbytes / 2**20:.0f} MiB | {t * 1e3:.3f} ms | "
            f"{2 * nbytes / t / 1e9:.1f} GB/s in+out{mark} |"
        )
    t_ns = tf["ref|numpy sum"]
    out.append(f"| numpy `x.sum()` float32 (context) | {t_ns * 1e3:.3f} ms | {_fmt_rate(a.n_sum / t_ns)}adds/s |")
    out.append("")
    out.append(
        "| case | lowprec ms (median) | min..max ms | rate | ratio vs ref | target | met? "
        f"| vs MPTorch (34 M MAC/s, quoted) | {QTORCH_LABEL} ms | qtorch time / lowprec time |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    n_met = n_targets = 0
    for c in CASES:
        t = tf[c.key]
        lo, hi = min(samples[c.key]), max(samples[c.key])
        if c.kind == "matmul":
            ratio = t_np / t
            rate = f"{_fmt_rate(a.macs / t)}MAC/s"
            ref = "numpy"
            vs_mp = f"{a.macs / t / MPTORCH_MACS:.1f}x"
        else:
            ratio = t_mc / t
            rate = f"{_fmt_rate(a.n_sum / t)}adds/s"
            ref = "memcpy"
            vs_mp = "—"
        if c.target is None:
            target = met = "—"
        else:
            n_targets += 1
            ok = ratio >= c.target
            n_met += ok
            target, met = f">= {c.target:g} x {ref}", "yes" if ok else "no"
            if busy:
                met += " (busy machine)"
        qt = peer_t.get(c.qtorch) if c.qtorch is not None else None
        if qt is None:
            q_ms = q_ratio = "—"
        elif isinstance(qt, str):
            q_ms, q_ratio = qt, "—"
        else:
            q_ms = f"{qt * 1e3:.2f} ({c.qtorch[0]},{c.qtorch[1]},{c.qtorch[2]})"
            q_ratio = f"{qt / t:.3f}"
        out.append(
            f"| {c.label} | {t * 1e3:.2f} | {lo * 1e3:.0f}..{hi * 1e3:.0f} | {rate} | {ratio:.4f} x {ref} "
            f"| {target} | {met} | {vs_mp} | {q_ms} | {q_ratio} |"
        )
    out.append("")
    out.append(f"Targets met: {n_met}/{n_targets}.")
    out.append(
        f"ratio vs ref: matmul = numpy `A @ B` time / lowprec time (fraction of float32 BLAS's MAC rate); "
        f"sum = memcpy time of the same {nbytes / 2**20:.0f} MiB ({best}, the faster copy) / lowprec time."
    )
    out.append(
        "vs MPTorch: lowprec MAC/s / 34 M MAC/s, MPTorch's commonly quoted CPU GEMM-emulation rate "
        "(MPTorch is not installable here: not measured, other machine)."
    )
    out.append(
        f"{QTORCH_LABEL}: float_quantize(A), float_quantize(B) with (exp, man, rounding) as shown, then float32 "
        "torch.matmul -- no per-addition rounding, so not an equivalent emulation; qtorch has no fn variant "
        "(e4m3 for e4m3fn) and no stochastic accumulation (stochastic operand rounding instead)."
    )
    emit_report(out, problems, args.markdown, "bench/report_accum.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
