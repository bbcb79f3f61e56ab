"""Ratios of lowprec's rounding kernels against memcpy and peers, all measured in one run.

    python bench/report.py [--n-log2 24] [--threads 2] [--reps 11] [--quick] [--markdown PATH]

Method (DESIGN.md section 5): these machines are shared and noisy, so every number is a ratio
against a reference timed in the same process on the same arrays.

* memcpy reference: numpy's single-threaded ``np.copyto`` and lowprec's ``_core.copy`` (same
  threading as the kernels); the faster of the two is the physical limit.
* ``ratio vs memcpy`` = memcpy time / lowprec time (``out=`` preallocated, same bytes in and out),
  i.e. lowprec throughput as a fraction of memcpy throughput.
* ``vs <peer>`` = peer time / lowprec time of the allocating call ``lp.quantize(x, fmt)`` (the
  peers allocate their results too), i.e. lowprec's speedup.

memcpy and lowprec cases are timed in interleaved rounds (a noisy moment hits all of them alike);
peers are timed afterwards, one block per peer case, so that torch's OpenMP worker threads (a
second OpenMP runtime) do not spin against lowprec's. Each time is the median of the repetitions
after a warm-up call. No assertion is made: targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _bench_common import (  # noqa: E402
    F64_FORMATS,
    FORMATS,
    MEMCPY,
    PEER_TARGETS,
    PEERS,
    TARGETS,
    Arrays,
    PeerUnavailable,
    emit_report,
    lowprec_case,
    machine,
    peer_case,
    versions,
)

import lowprec as lp  # noqa: E402

MODE_LABEL = {"nearest": "nearest", "sr": "stochastic (exact)", "sr8": "stochastic sr_bits=8"}


def _time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(cases: dict[str, Callable[[], object]], reps: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each case; cases run round-robin, ``reps`` rounds after the warm-up."""
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(reps):
            for k, fn in cases.items():
                samples[k].append(_time_once(fn))
    finally:
        if gc_was:
            gc.enable()
    return {k: statistics.median(v) for k, v in samples.items()}


def time_block(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        ts = [_time_once(fn) for _ in range(reps)]
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(ts)


def rows():
    """(dtype, mode, fmt) of every lowprec case, in table order."""
    for mode in ("nearest", "sr", "sr8"):
        for fmt in FORMATS:
            yield "float32", mode, fmt
    for mode in ("nearest", "sr"):
        for fmt in F64_FORMATS:
            yield "float64", mode, fmt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-log2", type=int, default=None, help="log2 of the element count (default 24; 20 with --quick)")
    ap.add_argument("--threads", type=int, default=2, help="threads for lowprec and torch (default 2)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions of memcpy/lowprec (default 11; 5 with --quick)")
    ap.add_argument("--peer-reps", type=int, default=None, help="repetitions of each peer (default 5; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2^20 elements, fewer repetitions")
    ap.add_argument("--no-peers", action="store_true", help="skip ml_dtypes, torch and qtorch")
    ap.add_argument("--markdown", metavar="PATH", help="also write the machine block and tables to PATH")
    args = ap.parse_args(argv)
    n_log2 = args.n_log2 if args.n_log2 is not None else (20 if args.quick else 24)
    reps = args.reps or (5 if args.quick else 11)
    peer_reps = args.peer_reps or (3 if args.quick else 5)
    threads = args.threads
    if threads < 1 or reps < 1 or peer_reps < 1 or not 4 <= n_log2 <= 30:
        ap.error("need threads >= 1, reps >= 1 and 4 <= n-log2 <= 30")

    t_start = time.perf_counter()
    a = Arrays.make(n_log2, threads)

    # 1. memcpy + lowprec (out= and allocating), interleaved rounds
    fast: dict[str, Callable[[], object]] = {}
    for dtype in ("float32", "float64"):
        for name, make in MEMCPY.items():
            fast[f"memcpy|{dtype}|{name}"] = make(a, dtype)
    for dtype, mode, fmt in rows():
        fast[f"lp|{dtype}|{mode}|{fmt}"] = lowprec_case(a, dtype, fmt, mode)
        fast[f"lpalloc|{dtype}|{mode}|{fmt}"] = lowprec_case(a, dtype, fmt, mode, out=False)
    print(f"timing memcpy and lowprec: {len(fast)} cases x {reps} rounds ...", file=sys.stderr, flush=True)
    tf = time_interleaved(fast, reps)

    # 2. peers, one block each
    peer_t: dict[tuple[str, str, str, str], float | str] = {}
    problems: list[str] = []
    if not args.no_peers:
        for peer in PEERS:
            for dtype, mode, fmt in rows():
                key = (peer, dtype, mode, fmt)
                try:
                    fn = peer_case(peer, a, dtype, fmt, mode)
                except PeerUnavailable:
                    continue  # no such operation in that peer: "—"
                except Exception as exc:  # a real failure: report it
                    peer_t[key] = "failed"
                    problems.append(f"{peer} {dtype} {mode} {fmt}: {type(exc).__name__}: {exc}")
                    continue
                r = max(2, peer_reps // 2) if (peer == "qtorch" and mode != "nearest") else peer_reps
                print(f"timing {peer} {dtype} {mode} {fmt} ...", file=sys.stderr, flush=True)
                try:
                    peer_t[key] = time_block(fn, r)
                except Exception as exc:
                    peer_t[key] = "failed"
                    problems.append(f"{peer} {dtype} {mode} {fmt}: {type(exc).__name__}: {exc}")
                gc.collect()
    elapsed = time.perf_counter() - t_start

    # 3. output
    n = 1 << n_log2
    mc: dict[str, tuple[str, float]] = {}
    memcpy_lines = [
        f"| memcpy | bytes moved (in+out) | np.copyto (1 thread) | _core.copy ({threads} threads) | limit used |",
        "|---|---|---|---|---|",
    ]
    for dtype in ("float32", "float64"):
        nbytes = 2 * n * np.dtype(dtype).itemsize
        cells = []
        for name in MEMCPY:
            t = tf[f"memcpy|{dtype}|{name}"]
            cells.append(f"{t * 1e3:.3f} ms ({nbytes / t / 1e9:.1f} GB/s)")
        best = min(MEMCPY, key=lambda nm: tf[f"memcpy|{dtype}|{nm}"])
        mc[dtype] = (best, tf[f"memcpy|{dtype}|{best}"])
        memcpy_lines.append(f"| {dtype} | {nbytes / 2**20:.0f} MiB | {cells[0]} | {cells[1]} | {best} |")

    cfg = lp.config()
    mach = machine()
    vers = versions()
    torch_threads = "n/a"
    if "torch" in sys.modules:
        torch_threads = str(sys.modules["torch"].get_num_threads())

    out: list[str] = []
    out.append(f"### Machine ({datetime.datetime.now().astimezone().isoformat(timespec='minutes')})")
    out.append("")
    for k, v in mach.items():
        out.append(f"- {k}: {v}")
    out.append(
        "- lowprec.config(): "
        + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in cfg.items())
    )
    out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    out.append(
        f"- run: n = 2^{n_log2} elements, lowprec n_threads={threads}, torch threads={torch_threads} "
        f"(ml_dtypes and qtorch single-threaded as shipped), median of {reps} (lowprec/memcpy) / "
        f"{peer_reps} (peers) repetitions after warm-up, {elapsed:.0f} s in all"
    )
    out.append("")
    out.extend(memcpy_lines)
    out.append("")
    out.append("| case | lowprec ms | ratio vs memcpy | target | met? | vs ml_dtypes | vs torch | vs qtorch |")
    out.append("|---|---|---|---|---|---|---|---|")
    n_met = n_rows = 0
    peer_stats = {p: [0, 0] for p in PEER_TARGETS}  # met, compared
    for dtype, mode, fmt in rows():
        t = tf[f"lp|{dtype}|{mode}|{fmt}"]
        t_alloc = tf[f"lpalloc|{dtype}|{mode}|{fmt}"]
        ratio = mc[dtype][1] / t
        target = TARGETS[(dtype, mode)]
        met = ratio >= target
        n_rows += 1
        n_met += met
        cells = []
        for peer in PEERS:
            v = peer_t.get((peer, dtype, mode, fmt))
            if v is None:
                cells.append("—")
            elif isinstance(v, str):
                cells.append(v)
            else:
                sp = v / t_alloc
                cells.append(f"{sp:.1f}x")
                if peer in PEER_TARGETS:
                    peer_stats[peer][1] += 1
                    peer_stats[peer][0] += sp >= PEER_TARGETS[peer]
        case = f"{'f32' if dtype == 'float32' else 'f64'} {MODE_LABEL[mode]} {fmt}"
        out.append(
            f"| {case} | {t * 1e3:.2f} | {ratio:.2f} | >= {target} | {'yes' if met else 'no'} | "
            + " | ".join(cells)
            + " |"
        )
    out.append("")
    out.append(f"memcpy targets met: {n_met}/{n_rows} (limit: the faster memcpy of the same dtype, see above).")
    for p, (m, c) in peer_stats.items():
        out.append(f"vs {p} >= {PEER_TARGETS[p]:g}x: met in {m}/{c} compared cases.")
    out.append(
        "Peer speedups compare the allocating call lp.quantize(x, fmt) with the peer's round trip; "
        "'—' = the peer has no such operation."
    )
    emit_report(out, problems, args.markdown, "bench/report.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
