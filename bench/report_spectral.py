"""Scale of lowprec.spectral: compact kernels against the dense path and scikit-learn, one run.

    python bench/report_spectral.py [--n 20000] [--dense-n 2000 4000 8000] [--sk-n 4000] [--threads T]
                                    [--dense-budget 180] [--quick] [--json PATH] [--markdown PATH]

Data: two-class ``spectral.gaussian_mixture(n, p=1000, rho=4, seed=0)``, c = p/n. Three parts:

1. **Scale run** (n = ``--n``, default 20000): ``SpectralClustering(nonlinearity="ternary",
   sparsity=0.99, random_state=0).fit(X)`` -- kernel construction + eigensolve (ARPACK) + labels --
   timed once, with the kernel build alone (``spectral.kernel``), its Gram GEMM alone (the same
   row blocks the builder multiplies), the compaction (the rest of the build) and the eigensolve
   (``eigsh`` as the estimator calls it, with its matvec count) as a breakdown; accuracy against the
   labels, the kernel's bytes and the fit's peak memory beyond X. Targets (from the issue): fit
   time < 60 s on 2 cores; peak memory < 1/20 of the dense float64 kernel (n^2 * 8 bytes).
2. **Dense path**: ``dense_kernel`` (n x n float64) + ``numpy.linalg.eigh`` + sign of the top
   eigenvector, at each ``--dense-n`` whose run time, extrapolated from the largest n measured so
   far (kernel ~ n^2, eigh ~ n^3), stays below ``--dense-budget`` seconds; the compact path
   (ternary, 99 % sparsity) at the same n, side by side.
3. **scikit-learn** at n = ``--sk-n`` (default 4000): ``sklearn.cluster.SpectralClustering(
   n_clusters=2, random_state=0)`` with ``affinity="rbf"`` (the default, gamma = 1) and
   ``affinity="nearest_neighbors"`` (sparse, the fair comparison), next to lowprec's ternary at 99 %
   and 90 % sparsity and sign (packed, 1 bit per entry).

Method. Every case runs in a fresh process (multiprocessing, 'spawn'), so that no case inherits
another's memory: the process generates X (and touches it), warms the code path up on a tiny
problem, resets its resident-set high-water mark (``/proc/self/clear_refs``), then times the fit
with ``time.perf_counter`` (best of 2 for the small sizes, one run for the scale run and for
dense n > 4000; ``gc.collect()`` and a 0.15 s idle pause before every run, so that the previous
run's spinning OpenMP/OpenBLAS workers do not take a core from it) and takes the growth of
``getrusage(RUSAGE_SELF).ru_maxrss`` across its first run; a last run under ``tracemalloc``
(started after X exists; NumPy arrays are traced) gives the traced peak. tracemalloc does not see
memory that compiled code takes with plain malloc (LAPACK workspaces in ``numpy.linalg``, OpenBLAS
buffers), ru_maxrss sees every resident page but only in whole pages and after the warm-up's
allocations; the two together bracket the fit's footprint. accuracy = max(acc, 1 - acc) of the
labels against the true classes. Threads: lowprec's ``n_threads`` and OpenBLAS are set to
``--threads`` (default ``lowprec.config()["threads"]``); scikit-learn runs as shipped. The report
gives the CPU share other processes used while each case was timed: on a 2-core machine shared
with other work, every time is inflated and the numbers are provisional. No assertion is made:
targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import tracemalloc
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _bench_common import emit_report, machine  # noqa: E402
from report_accum import (  # noqa: E402
    BUSY_SHARE,
    SETTLE_S,
    OtherLoad,
    blas_threads,
    load_lines,
    machine_lines,
    time_block,
)
from scipy.sparse.linalg import LinearOperator  # noqa: E402

import lowprec  # noqa: E402
from lowprec import spectral  # noqa: E402

P = 1000
RHO = 4.0
SEED = 0
TIME_TARGET_S = 60.0  # fit time at the scale run, on 2 cores
PEAK_TARGET = 1 / 20  # peak memory as a fraction of the dense float64 kernel
DENSE_BUDGET_S = 180.0
SMALL_N = 4000  # dense path: best of 2 up to this n, one run above
WARMUP_N, WARMUP_P = 256, 128
BREAKDOWN_REPS = 2  # kernel build and Gram GEMM of the scale run's breakdown: best of 2
MATVEC_SAMPLES = 7  # median of samples of >= 20 ms of back-to-back matvecs
MIB = 2**20


# --- cases ------------------------------------------------------------------------------------------
CASE_LABELS = {
    "t99": "lowprec ternary 99 % (csr)",
    "t90": "lowprec ternary 90 % (csr)",
    "sign": "lowprec sign (packed, 1 bit)",
    "dense": "dense path: dense_kernel + numpy eigh + sign",
    "sk-rbf": "scikit-learn rbf (default, gamma=1)",
    "sk-nn": "scikit-learn nearest_neighbors (10-NN, sparse)",
}
LOWPREC_NL = {"t99": ("ternary", 0.99), "t90": ("ternary", 0.90), "sign": ("sign", 0.0)}


def dense_bytes(n: int) -> int:
    """Bytes of the dense float64 n x n kernel."""
    return 8 * n * n


def accuracy(labels: np.ndarray, y: np.ndarray) -> float:
    """max(acc, 1 - acc) of two-class labels against the true classes."""
    a = float(np.mean(np.asarray(labels) == y))
    return max(a, 1.0 - a)


def theory_accuracy(case: str, n: int) -> float | None:
    """Large-n accuracy predicted by spectral.theory for a lowprec case (None for the others)."""
    if case not in LOWPREC_NL and case != "dense":
        return None
    name, sparsity = LOWPREC_NL.get(case, LOWPREC_NL["t99"])
    try:
        return float(spectral.theory(name, sparsity=sparsity, c=P / n, rho=RHO).accuracy)
    except Exception:
        return None


class Case:
    """The fit of one case: ``fit(X) -> (labels, obj)``; ``info(obj)`` describes its result afterwards."""

    def __init__(self, case: str, threads: int) -> None:
        self.case, self.threads = case, threads

    def fit(self, X: np.ndarray):
        c = self.case
        if c in LOWPREC_NL:
            name, sparsity = LOWPREC_NL[c]
            m = spectral.SpectralClustering(
                nonlinearity=name, sparsity=sparsity, random_state=0, n_threads=self.threads
            ).fit(X)
            return m.labels_, m
        if c == "dense":
            from lowprec.spectral._reference import dense_kernel

            name, sparsity = LOWPREC_NL["t99"]
            nl = spectral.as_nonlinearity(name, sparsity=sparsity)
            t0 = time.perf_counter()
            K = dense_kernel(X, nl)
            t1 = time.perf_counter()
            _, v = np.linalg.eigh(K)
            t2 = time.perf_counter()
            labels = (v[:, -1] < 0).astype(np.int64)
            return labels, {"kernel_s": t1 - t0, "eigensolve_s": t2 - t1, "kernel_nbytes": K.nbytes}
        from sklearn.cluster import SpectralClustering as SkSpectralClustering

        affinity = {"sk-rbf": "rbf", "sk-nn": "nearest_neighbors"}[c]
        m = SkSpectralClustering(n_clusters=2, affinity=affinity, random_state=0).fit(X)
        return m.labels_, m

    def info(self, obj) -> dict:
        c = self.case
        if c in LOWPREC_NL:
            K = obj.kernel_
            return {"kernel_nbytes": K.nbytes, "storage": K.storage, "density": K.density}
        if c == "dense":
            return dict(obj)
        A = obj.affinity_matrix_
        if hasattr(A, "indptr"):
            nb = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
            return {"kernel_nbytes": int(nb), "storage": "sparse", "density": A.nnz / (A.shape[0] ** 2)}
        return {"kernel_nbytes": int(A.nbytes), "storage": "dense", "density": float(np.count_nonzero(A) / A.size)}


# --- memory probes ------------------------------------------------------------------------------------
def _maxrss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _vm(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the resident-set high-water mark (Linux >= 4.0), so that ru_maxrss restarts from the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --- worker (runs in a fresh spawned process) ----------------------------------------------------------
def _timed(fn, *args):
    """Seconds of one call after ``gc.collect()`` and an idle pause (the previous call's spinning OpenMP and
    OpenBLAS workers go to sleep first, so that they do not take a core from this one)."""
    gc.collect()
    time.sleep(SETTLE_S)
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


class _CountingOperator(LinearOperator):
    """Wraps a kernel and counts the matvecs eigsh asks of it."""

    def __init__(self, K) -> None:
        super().__init__(K.dtype, K.shape)
        self.K, self.calls = K, 0

    def _matvec(self, x):
        self.calls += 1
        return self.K.matvec(x)


def _breakdown(X: np.ndarray, threads: int) -> dict:
    """Kernel build and its Gram GEMM alone (best of 2, alternating), the eigensolve as the estimator runs it,
    and one matvec with ``threads`` and with 1 thread."""
    from scipy.sparse.linalg import eigsh
    from sklearn.utils import check_random_state

    name, sparsity = LOWPREC_NL["t99"]
    n = X.shape[0]
    try:
        from lowprec.spectral.kernel import _block_rows

        rows = _block_rows(n, None)
    except Exception:  # the builder's default: 32 MiB Gram blocks
        rows = max(8, min(n, (32 << 20) // (8 * n)))

    def gram_blocks():
        for r0 in range(0, n, rows):
            G = X[r0 : r0 + rows] @ X[r0:].T
            del G

    build_ts, gemm_ts = [], []
    for _ in range(BREAKDOWN_REPS):
        t, K = _timed(lambda: spectral.kernel(X, name, sparsity=sparsity, n_threads=threads))
        build_ts.append(t)
        gemm_ts.append(_timed(gram_blocks)[0])
    t_kernel, t_gemm = min(build_ts), min(gemm_ts)
    rng = check_random_state(0)  # as SpectralClustering(random_state=0).fit: one draw for the seed, then v0
    rng.randint(2**31)
    v0 = rng.uniform(-1.0, 1.0, n)
    op = _CountingOperator(K)
    t_eig, _ = _timed(lambda: eigsh(op, k=1, which="LA", v0=v0, tol=0.0))
    x = np.random.default_rng(1).standard_normal(n)
    K @ x
    time.sleep(SETTLE_S)
    t_mv = time_block(lambda: K @ x, MATVEC_SAMPLES)
    K.n_threads = 1  # the same product single-threaded: no parallel region to wait for
    time.sleep(SETTLE_S)
    t_mv1 = time_block(lambda: K @ x, MATVEC_SAMPLES)
    K.n_threads = threads
    return {
        "kernel_s": t_kernel,
        "kernel_runs_s": build_ts,
        "gram_gemm_s": t_gemm,
        "gram_gemm_runs_s": gemm_ts,
        "gram_gemm_flops": float(sum(2.0 * min(rows, n - r0) * (n - r0) * X.shape[1] for r0 in range(0, n, rows))),
        "block_rows": rows,
        "compaction_s": t_kernel - t_gemm,
        "eigsh_s": t_eig,
        "eigsh_matvecs": op.calls,
        "matvec_s": t_mv,
        "matvec_1thread_s": t_mv1,
        "kernel_nbytes": K.nbytes,
        "density": K.density,
    }


def run_case(task: dict) -> dict:
    """Measure one case in this (fresh) process: times, ru_maxrss growth, tracemalloc peak, accuracy."""
    threads, n, case = task["threads"], task["n"], task["case"]
    blas = blas_threads(threads)
    c = Case(case, threads)
    X, y = spectral.gaussian_mixture(n, P, RHO, seed=SEED)
    float(X.sum())  # X is resident before any measurement
    Xw, _ = spectral.gaussian_mixture(WARMUP_N, WARMUP_P, RHO, seed=1)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as wlist:
        warnings.simplefilter("always")
        c.fit(Xw)  # warm-up: imports, OpenBLAS buffers, first-call costs
        del Xw
        wlist.clear()
        gc.collect()
        reset = _reset_peak()
        base_maxrss, base_rss = _maxrss_bytes(), _vm("VmRSS")
        load = OtherLoad()
        t, (labels, obj) = _timed(c.fit, X)
        grow = _maxrss_bytes() - base_maxrss
        hwm = _vm("VmHWM")
        times = [t]
        acc = accuracy(labels, y)
        info = c.info(obj)
        del labels, obj
        for _ in range(task["reps"] - 1):
            gc.collect()
            t, out = _timed(c.fit, X)
            times.append(t)
            if case == "dense" and t <= min(times):
                info = c.info(out[1])
            del out
        other = load.share()
        breakdown = _breakdown(X, threads) if task.get("breakdown") else None
        gc.collect()
        tracemalloc.start()
        labels, obj = c.fit(X)
        tm_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del labels, obj
        caught = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in wlist))
    floor = base_rss is not None and base_maxrss > base_rss + MIB
    return {
        "case": case,
        "label": CASE_LABELS[case],
        "n": n,
        "p": P,
        "threads": threads,
        "openblas_threads": blas,
        "reps": task["reps"],
        "times_s": times,
        "time_s": min(times),
        "accuracy": acc,
        "theory_accuracy": theory_accuracy(case, n),
        "tracemalloc_peak_bytes": int(tm_peak),
        "maxrss_growth_bytes": int(grow),
        "maxrss_reset": reset,
        "maxrss_floor_inherited": bool(floor),
        "rss_before_bytes": base_rss,
        "vmhwm_growth_bytes": None if hwm is None or base_rss is None else int(hwm - base_rss),
        "x_bytes": int(X.nbytes),
        "dense_kernel_bytes": dense_bytes(n),
        "other_share": other,
        "warnings": caught,
        "breakdown": breakdown,
        **info,
    }


def measure(task: dict) -> dict:
    """Run ``run_case(task)`` in a fresh spawned process; a crash (e.g. out of memory) becomes an error entry."""
    label = f"{task['case']} n={task['n']}"
    print(f"  {label} ({task['reps']} timed run(s) + tracemalloc run) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
            res = ex.submit(run_case, task).result()
    except BrokenProcessPool as exc:
        res = {"case": task["case"], "n": task["n"], "error": f"worker died: {exc}"}
    except Exception as exc:
        res = {"case": task["case"], "n": task["n"], "error": f"{type(exc).__name__}: {exc}"}
    res["wall_s"] = time.perf_counter() - t0
    if "error" in res:
        print(f"    {label}: {res['error']}", file=sys.stderr, flush=True)
    else:
        print(f"    {label}: best {res['time_s']:.2f} s, acc {res['accuracy']:.4f}", file=sys.stderr, flush=True)
    return res


# --- formatting ------------------------------------------------------------------------------------------
def _mb(b: float | None) -> str:
    return "—" if b is None else f"{b / MIB:.1f}"


def _ratio(a: float | None, b: float | None, fmt: str = ".3g") -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:{fmt}}"


def _met(ok: bool, busy: bool = False) -> str:
    return ("yes" if ok else "**no**") + (" (busy machine)" if busy else "")


def _times(r: dict) -> str:
    ts = r["times_s"]
    return f"{min(ts):.2f}" + (f" ({', '.join(f'{t:.2f}' for t in ts)})" if len(ts) > 1 else "")


def _rss(r: dict) -> str:
    s = _mb(r["maxrss_growth_bytes"])
    if r.get("maxrss_floor_inherited"):
        s += " (floor: parent's peak)"
    elif not r.get("maxrss_reset"):
        s += " (peak not reset)"
    return s


def _other(r: dict) -> str:
    o = r.get("other_share")
    return "—" if o is None else f"{100 * o:.0f}%"


def _busy(r: dict) -> bool:
    o = r.get("other_share")
    return o is not None and o > BUSY_SHARE


# --- report ------------------------------------------------------------------------------------------
def part_scale(r: dict, n: int, quick: bool, cores: int, out: list[str]) -> list[dict]:
    out += ["", f"#### 1. Scale run: ternary 99 %, n = {n}, p = {P}, c = {P / n:.3g}, rho = {RHO:g}", ""]
    targets: list[dict] = []
    if "error" in r:
        out.append(f"failed: {r['error']}")
        return targets
    db = dense_bytes(n)
    busy = _busy(r)
    b = r["breakdown"] or {}
    t = r["time_s"]
    note = f" (--quick: n = {n}, not the issue's 20000)" if quick else ""
    out.append("| quantity | measured | ratio | target | met? |")
    out.append("|---|---|---|---|---|")
    ok_t = t < TIME_TARGET_S
    cores_note = "" if cores == 2 else f" (this machine: {cores} usable cores)"
    out.append(
        f"| fit: kernel + eigsh + labels (1 run) | {t:.2f} s | {t / TIME_TARGET_S:.3f} of 60 s | < 60 s on 2 cores"
        f"{cores_note}{note} | {_met(ok_t, busy)} |"
    )
    targets.append({"name": "scale fit time < 60 s", "value": t, "met": ok_t})
    if b:
        ks = b["kernel_s"]
        gf = b["gram_gemm_flops"] / b["gram_gemm_s"] / 1e9
        rest = t - ks - b["eigsh_s"]
        comp = b["compaction_s"]
        comp_note = " (< 0: the parts come from separate runs; within their run-to-run noise)" if comp < 0 else ""
        mv, mv1 = b["matvec_s"], b["matvec_1thread_s"]
        out += [
            f"| kernel build alone (`spectral.kernel`, best of {len(b['kernel_runs_s'])}) | {ks:.2f} s "
            f"| {ks / t:.2f} of fit | — | — |",
            f"| - Gram GEMM alone (upper-triangle row blocks of {b['block_rows']}, best of "
            f"{len(b['gram_gemm_runs_s'])}) | {b['gram_gemm_s']:.2f} s ({gf:.0f} GFLOP/s) "
            f"| {b['gram_gemm_s'] / ks:.2f} of build | — | — |",
            f"| - compaction (build - GEMM) | {comp:.2f} s{comp_note} | {comp / ks:.2f} of build | — | — |",
            f"| eigsh (k=1, LA, tol=0) | {b['eigsh_s']:.2f} s, {b['eigsh_matvecs']} matvecs | {b['eigsh_s'] / t:.2f} "
            f"of fit | — | — |",
            f"| - one matvec `K @ x` ({r['threads']} threads / 1 thread) | {mv * 1e3:.2f} ms / {mv1 * 1e3:.2f} ms "
            f"| matvecs x {mv * 1e3:.2f} ms = {b['eigsh_matvecs'] * mv / max(b['eigsh_s'], 1e-12):.2f} of eigsh "
            "| — | — |",
            f"| rest of the fit (checks, labels: fit - build - eigsh, from separate runs) | {rest:.2f} s "
            f"| {rest / t:.2f} of fit | — | — |",
        ]
    th = "—" if r["theory_accuracy"] is None else f"{r['theory_accuracy']:.4f}"
    out.append(f"| accuracy max(acc, 1-acc) | {r['accuracy']:.4f} | theory (large n): {th} | — | — |")
    out.append(
        f"| kernel nbytes (density {r['density']:.4f}) | {_mb(r['kernel_nbytes'])} MiB | "
        f"{r['kernel_nbytes'] / db:.5f} of n^2*8 | — | — |"
    )
    for key, label in (
        ("tracemalloc_peak_bytes", "peak memory beyond X, tracemalloc"),
        ("maxrss_growth_bytes", "peak memory beyond X, ru_maxrss growth"),
    ):
        v = r[key]
        ok = v < PEAK_TARGET * db
        extra = ""
        if key == "maxrss_growth_bytes" and (r.get("maxrss_floor_inherited") or not r.get("maxrss_reset")):
            extra = " (not reliable: see notes)"
        out.append(
            f"| {label} | {_mb(v)} MiB{extra} | {v / db:.4f} of n^2*8 | < 1/20 = 0.05 of n^2*8 "
            f"({_mb(PEAK_TARGET * db)} MiB){note} | {_met(ok)} |"
        )
        targets.append({"name": f"scale peak < n^2*8/20 ({key})", "value": v / db, "met": ok})
    out.append("")
    if b:
        gb = b["block_rows"] * n * 8
        out.append(
            f"The builder multiplies Gram row blocks of {b['block_rows']} rows (at most {_mb(gb)} MiB of float64, "
            f"{gb / db:.4f} of n^2*8); a block is the largest temporary of the fit."
        )
    out.append(
        f"Dense float64 kernel n^2*8 = {_mb(db)} MiB; X = {_mb(r['x_bytes'])} MiB (excluded from the peaks). "
        f"Other processes used {_other(r)} of the CPUs while the fit was timed; lowprec n_threads = {r['threads']}, "
        f"OpenBLAS threads = {r['openblas_threads']}."
    )
    return targets


def part_dense(rows: list[tuple[int, dict, dict | None, str | None]], out: list[str]) -> None:
    out += ["", f"#### 2. Dense path vs compact path (ternary 99 %), p = {P}, rho = {RHO:g}", ""]
    out.append(
        "| n | path | time s (best; runs) | kernel / eigensolve s | time / compact | accuracy | kernel MiB "
        "| tracemalloc peak MiB | peak / n^2*8 | peak / compact | ru_maxrss growth MiB | growth / n^2*8 "
        "| compact beats dense? | other CPU |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, d, c, skipped in rows:
        db = dense_bytes(n)
        if skipped:
            out.append(f"| {n} | dense path | skipped: {skipped} |" + " |" * 11)
        for r in (d, c):
            if r is None:
                continue
            if "error" in r:
                out.append(f"| {n} | {CASE_LABELS[r['case']]} | failed: {r['error']} |" + " |" * 11)
                continue
            comp = c if c is not None and "error" not in c else None
            is_dense = r["case"] == "dense"
            if is_dense:
                parts = f"{r['kernel_s']:.2f} / {r['eigensolve_s']:.2f}"
            else:
                parts = "—"
            beats = "—"
            if is_dense and comp is not None:
                bt = comp["time_s"] < r["time_s"]
                bm = comp["tracemalloc_peak_bytes"] < r["tracemalloc_peak_bytes"]
                beats = f"time {_met(bt)}, memory {_met(bm)}"
            out.append(
                f"| {n} | {CASE_LABELS[r['case']]} | {_times(r)} | {parts} "
                f"| {_ratio(r['time_s'], comp and comp['time_s'])} | {r['accuracy']:.4f} | {_mb(r['kernel_nbytes'])} "
                f"| {_mb(r['tracemalloc_peak_bytes'])} | {r['tracemalloc_peak_bytes'] / db:.4f} "
                f"| {_ratio(r['tracemalloc_peak_bytes'], comp and comp['tracemalloc_peak_bytes'])} | {_rss(r)} "
                f"| {r['maxrss_growth_bytes'] / db:.4f} | {beats} | {_other(r)} |"
            )
    out.append("")
    out.append(
        "time / compact = time of the row / time of the compact path at the same n (the dense row reads as the "
        "compact path's speedup); peak / compact likewise for the tracemalloc peaks. The dense path's tracemalloc "
        "peak misses eigh's LAPACK workspace (plain malloc): its ru_maxrss growth includes it."
    )


def part_sklearn(n: int, rows: list[dict], out: list[str]) -> None:
    out += ["", f"#### 3. scikit-learn side by side, n = {n}, p = {P}, rho = {RHO:g}", ""]
    ref = next((r for r in rows if r.get("case") == "t99" and "error" not in r), None)
    db = dense_bytes(n)
    out.append(
        "| method | time s (best; runs) | time / lowprec ternary-99% | accuracy | affinity/kernel MiB (density) "
        "| tracemalloc peak MiB | peak / lowprec ternary-99% | peak / n^2*8 | ru_maxrss growth MiB "
        "| growth / lowprec ternary-99% | growth / n^2*8 | other CPU |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            out.append(f"| {CASE_LABELS[r['case']]} | failed: {r['error']} |" + " |" * 10)
            continue
        out.append(
            f"| {r['label']} | {_times(r)} | {_ratio(r['time_s'], ref and ref['time_s'])} | {r['accuracy']:.4f} "
            f"| {_mb(r['kernel_nbytes'])} ({r['density']:.4f}) | {_mb(r['tracemalloc_peak_bytes'])} "
            f"| {_ratio(r['tracemalloc_peak_bytes'], ref and ref['tracemalloc_peak_bytes'])} "
            f"| {r['tracemalloc_peak_bytes'] / db:.4f} | {_rss(r)} "
            f"| {_ratio(r['maxrss_growth_bytes'], ref and ref['maxrss_growth_bytes'])} "
            f"| {r['maxrss_growth_bytes'] / db:.4f} | {_other(r)} |"
        )
    out.append("")
    out.append(
        "tracemalloc sees NumPy arrays and Python objects only; buffers that compiled code takes with plain malloc "
        "(scikit-learn's k-NN distance chunks, LAPACK workspaces) show only in the ru_maxrss growth (whole pages, "
        "after the warm-up's allocations), so read both memory columns."
    )
    out.append(f"n^2*8 = {_mb(db)} MiB. Warnings raised during the timed fits:")
    any_w = False
    for r in rows:
        for w in r.get("warnings", []):
            any_w = True
            out.append(f"- {CASE_LABELS[r['case']]}: {w}")
    if not any_w:
        out.append("- none")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None, help="n of the scale run (default 20000; 2000 with --quick)")
    ap.add_argument(
        "--dense-n",
        type=int,
        nargs="+",
        default=None,
        help="n of the dense path (default 2000 4000 8000; 500 1000 2000)",
    )
    ap.add_argument("--sk-n", type=int, default=None, help="n of the scikit-learn comparison (default 4000; 1000)")
    ap.add_argument(
        "--dense-budget",
        type=float,
        default=None,
        help=f"skip a dense n whose estimated run exceeds this many s (default {DENSE_BUDGET_S:g}; 20 with --quick)",
    )
    ap.add_argument("--threads", type=int, default=None, help="lowprec and OpenBLAS threads (default: lowprec's)")
    ap.add_argument("--quick", action="store_true", help="smoke run: small n")
    ap.add_argument("--json", metavar="PATH", help="also save all numbers to PATH as JSON")
    ap.add_argument("--markdown", metavar="PATH", help="also write the machine block and tables to PATH")
    args = ap.parse_args(argv)
    n = args.n or (2000 if args.quick else 20000)
    dense_ns = sorted(args.dense_n or ([500, 1000, 2000] if args.quick else [2000, 4000, 8000]))
    sk_n = args.sk_n or (1000 if args.quick else 4000)
    budget = args.dense_budget if args.dense_budget is not None else (20.0 if args.quick else DENSE_BUDGET_S)
    cfg_threads = int(lowprec.config()["threads"])
    threads = args.threads or cfg_threads
    if threads < 1 or min([n, sk_n, *dense_ns]) < 64:
        ap.error("need threads >= 1 and every n >= 64")
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1

    t_start = time.perf_counter()
    cache: dict[tuple[str, int], dict] = {}

    def get(case: str, nn: int, reps: int, breakdown: bool = False) -> dict:
        key = (case, nn)
        if key not in cache:
            cache[key] = measure(dict(case=case, n=nn, reps=reps, threads=threads, breakdown=breakdown))
        return cache[key]

    print(f"1. scale run, n = {n}", file=sys.stderr, flush=True)
    scale = get("t99", n, 1, breakdown=True)

    print(f"2. dense path, n in {dense_ns} (budget {budget:g} s per run)", file=sys.stderr, flush=True)
    dense_rows: list[tuple[int, dict | None, dict | None, str | None]] = []
    last: dict | None = None
    for nn in dense_ns:
        skipped = None
        if last is not None:
            f = nn / last["n"]
            est = last["kernel_s"] * f**2 + last["eigensolve_s"] * f**3
            if est > budget:
                skipped = (
                    f"estimated {est:.0f} s per run > {budget:g} s (from n = {last['n']}: kernel "
                    f"{last['kernel_s']:.2f} s x {f:g}^2 + eigh {last['eigensolve_s']:.2f} s x {f:g}^3)"
                )
        d = None if skipped else get("dense", nn, 2 if nn <= SMALL_N else 1)
        if d is not None and "error" not in d:
            last = d
        c = get("t99", nn, 2)
        dense_rows.append((nn, d, c, skipped))

    print(f"3. scikit-learn side by side, n = {sk_n}", file=sys.stderr, flush=True)
    sk_rows = [get(case, sk_n, 2) for case in ("t99", "t90", "sign", "sk-rbf", "sk-nn")]
    elapsed = time.perf_counter() - t_start

    # output (the header imports the optional peers: after the workers, so none inherits that memory)
    problems: list[str] = []
    all_res = list(cache.values())
    for r in all_res:
        if "error" in r:
            problems.append(f"{r['case']} n={r['n']}: {r['error']}")
        elif r.get("maxrss_floor_inherited"):
            problems.append(
                f"{r['case']} n={r['n']}: ru_maxrss started above the process's RSS (a peak inherited at exec); "
                "its growth understates the fit's peak"
            )
        elif not r.get("maxrss_reset"):
            problems.append(f"{r['case']} n={r['n']}: /proc/self/clear_refs unavailable; ru_maxrss growth unreliable")
    shares = [r["other_share"] for r in all_res if r.get("other_share") is not None]
    other_share = statistics.mean(shares) if shares else None
    out: list[str] = machine_lines()
    out.append(
        f"- run: gaussian_mixture(n, p={P}, rho={RHO:g}, seed={SEED}), two classes; lowprec.config()['threads'] = "
        f"{cfg_threads}, lowprec n_threads = OpenBLAS threads = {threads}, usable cores = {cores}; every case in a "
        f"fresh spawned process; best of 2 runs for n <= {SMALL_N} (compact path: every n but the scale run), one "
        f"run otherwise; {elapsed:.0f} s in all"
    )
    out += load_lines(other_share)
    if other_share is not None and other_share > BUSY_SHARE:
        out.append("- timings are provisional: other processes competed for the cores")
    targets = part_scale(scale, n, args.quick, cores, out)
    part_dense(dense_rows, out)
    part_sklearn(sk_n, sk_rows, out)
    out.append("")
    n_met = sum(t["met"] for t in targets)
    out.append(
        f"Targets met: {n_met}/{len(targets)}" + (" (--quick: not at the issue's sizes)." if args.quick else ".")
    )
    emit_report(out, problems, args.markdown, "bench/report_spectral.py")
    if args.json:
        doc = {
            "generator": "bench/report_spectral.py",
            "args": vars(args),
            "machine": machine(),
            "lowprec_config": lowprec.config(),
            "threads": threads,
            "p": P,
            "rho": RHO,
            "other_share_mean": other_share,
            "elapsed_s": elapsed,
            "scale": scale,
            "dense": [{"n": nn, "dense": d, "compact": c, "skipped": skipped} for nn, d, c, skipped in dense_rows],
            "sklearn": {"n": sk_n, "rows": sk_rows},
            "targets": targets,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=_json_default)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
