"""Training-step time of the lowprec.torch demo models under emulated recipes, as ratios to float32, one run.

    python bench/report_torch.py [--threads 2] [--reps 15] [--quick] [--models mlp cnn]
                                 [--settle 0.15] [--markdown PATH]

Method (DESIGN.md section 5): these machines are shared and noisy, so every number is a ratio
against the float32 training step of the same model, timed in the same process, on the same
batches, in interleaved rounds.

* Models: ``lowprec.torch.demo.make_model("mlp")`` (64-128-10) and ``make_model("cnn")`` (two 3x3
  conv layers, then 10), batch 32 of scikit-learn's digits (``load_digits_split``); a fixed list of
  ``--batches`` batches (seeded permutation) is cycled through.
* A step is what ``lowprec.torch.demo.train`` does per batch: ``zero_grad``, forward, cross-entropy
  loss, backward of the scaled loss, ``optimizer.step()``. float32 is plain torch with plain SGD
  (momentum 0.9, lr 0.05): the reference. The low-precision recipes convert the model with
  ``emulate_(model, recipe_config(recipe, model, mode))`` and use ``make_optimizer``'s
  ``LowPrecisionOptimizer`` (e6m9 weights and momentum with stochastic rounding, e5m2 gradients,
  loss scale 1000).
* Cases: ``ibm-fp8-2018`` with GEMM mode ``operands`` (operands rounded, float32 GEMM; target
  <= 1.5x), ``chunk`` (chunk-boundary rounding; no target) and ``exact`` (every addition rounded;
  target <= 15x), and ``acc8`` exact (no target). Three breakdown rows, no target, separate the
  optimizer's cost from the GEMM emulation's: float32 GEMMs with the ``LowPrecisionOptimizer``,
  and ``ibm-fp8-2018`` exact and operands with plain SGD (the emulated layers' cost alone).
* Each case's model and optimizer are built once and warmed up for a few steps. A sample is a
  run of consecutive steps lasting at least ~20 ms (one step when a step is slower); cases
  alternate in interleaved rounds, each sample after an idle pause (``--settle``) so that the
  previous case's spinning OpenMP workers do not take a core from the next one. Time per case:
  the median over the rounds; ratio = case median / float32 median of the same model.
* Phase breakdown (after the rounds, one block per case): the median time of ``zero_grad``,
  forward + loss, backward and ``optimizer.step`` over single steps.

Threads: ``torch.set_num_threads(--threads)``. lowprec's kernels take their default thread count
from the OpenMP runtime (``OMP_NUM_THREADS`` or all cores); torch's wheel and lowprec both link
``libgomp.so.1``, one runtime is loaded per process, so ``torch.set_num_threads`` sets lowprec's
default too (the report checks it and sets any other OpenMP runtime it finds). Either way torch's
and lowprec's parallel regions share the same cores. The report gives the CPU share other
processes used meanwhile: on a 2-core machine shared with a test run, every parallel region waits
whole scheduler ticks and the ratios mean little. No assertion is made: targets are reported as
met or not.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _bench_common import emit_report  # noqa: E402
from report_accum import BUSY_SHARE, SETTLE_S, OtherLoad, load_lines, machine_lines, time_interleaved  # noqa: E402
from torch import nn  # noqa: E402

from lowprec._native import default_threads  # noqa: E402
from lowprec.torch import LowPrecisionOptimizer, emulate_  # noqa: E402
from lowprec.torch.demo import load_digits_split, make_model, make_optimizer, recipe_config  # noqa: E402

BATCH = 32
LR = 0.05
SEED = 0
WARMUP_STEPS = 3
N_BATCHES = 8
MODELS = ("mlp", "cnn")
PHASES = ("zero_grad", "forward+loss", "backward", "optimizer.step")


# --- cases ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StepCase:
    """One training configuration.

    Parameters
    ----------
    key : str
        Short identifier (pytest id, table key).
    label : str
        Table row label.
    recipe : str
        ``lowprec.torch.demo`` recipe of the GEMMs (``float32``, ``ibm-fp8-2018``, ``acc8``).
    mode : str
        GEMM emulation mode (``exact``, ``chunk``, ``operands``); ignored for float32.
    optimizer : str
        ``"lowprec"``: the recipe's ``LowPrecisionOptimizer``; ``"sgd"``: plain torch SGD.
    target : float, optional
        Largest acceptable step time as a multiple of the float32 step; None: no target.
    """

    key: str
    label: str
    recipe: str
    mode: str
    optimizer: str
    target: float | None = None


REFERENCE = StepCase("float32", "float32 (plain torch, SGD) -- reference", "float32", "float32", "sgd")
CASES: tuple[StepCase, ...] = (
    REFERENCE,
    StepCase("ibm-operands", "ibm-fp8-2018, mode operands (fp32 GEMM)", "ibm-fp8-2018", "operands", "lowprec", 1.5),
    StepCase("ibm-chunk", "ibm-fp8-2018, mode chunk (chunk-boundary rounding)", "ibm-fp8-2018", "chunk", "lowprec"),
    StepCase("ibm-exact", "ibm-fp8-2018, mode exact (every add rounded)", "ibm-fp8-2018", "exact", "lowprec", 15.0),
    StepCase("acc8-exact", "acc8, mode exact", "acc8", "exact", "lowprec"),
    # breakdown rows: optimizer overhead alone, GEMM emulation alone
    StepCase("fp32-lpopt", "breakdown: float32 GEMMs + LowPrecisionOptimizer", "float32", "float32", "lowprec"),
    StepCase("ibm-exact-sgd", "breakdown: ibm-fp8-2018 exact + plain SGD", "ibm-fp8-2018", "exact", "sgd"),
    StepCase("ibm-operands-sgd", "breakdown: ibm-fp8-2018 operands + plain SGD", "ibm-fp8-2018", "operands", "sgd"),
)
CASE = {c.key: c for c in CASES}


# --- data and steps -------------------------------------------------------------------------------
def fixed_batches(n_batches: int = N_BATCHES, batch: int = BATCH, seed: int = SEED) -> list[tuple[torch.Tensor, ...]]:
    """``n_batches`` (inputs, labels) batches of the digits training split, from a seeded permutation."""
    Xtr, ytr, _, _ = load_digits_split()
    perm = torch.randperm(len(Xtr), generator=torch.Generator().manual_seed(seed))
    if n_batches * batch > len(Xtr):
        raise ValueError(f"{n_batches} batches of {batch} need more than the {len(Xtr)} training samples")
    return [(Xtr[idx].contiguous(), ytr[idx].contiguous()) for idx in perm[: n_batches * batch].split(batch)]


class TrainStep:
    """One training step per call, as ``lowprec.torch.demo.train`` does it, on cycled fixed batches.

    Parameters
    ----------
    kind : str
        ``"mlp"`` or ``"cnn"``.
    case : StepCase
        Recipe, GEMM mode and optimizer.
    batches : list of (Tensor, Tensor)
        The fixed batches, used in turn.
    warmup : int
        Steps run at construction (momentum buffers, caches, first-call costs).
    """

    def __init__(self, kind: str, case: StepCase, batches: list[tuple[torch.Tensor, ...]], warmup: int = WARMUP_STEPS):
        torch.manual_seed(SEED)
        self.kind, self.case, self.batches = kind, case, batches
        self.model = make_model(kind)
        cfg = recipe_config(case.recipe, self.model, case.mode)
        if cfg is not None:
            emulate_(self.model, cfg)
        opt_recipe = case.recipe if case.optimizer == "lowprec" else "float32"
        if case.optimizer == "lowprec" and case.recipe == "float32":
            opt_recipe = "ibm-fp8-2018"  # the recipes share one optimizer
        self.opt = make_optimizer(opt_recipe, self.model, LR, SEED)
        self.scaled = isinstance(self.opt, LowPrecisionOptimizer)
        self.loss_fn = nn.CrossEntropyLoss()
        self.model.train()
        self.i = 0
        for _ in range(warmup):
            self()

    def __call__(self) -> None:
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        opt = self.opt
        opt.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        (opt.scale_loss(loss) if self.scaled else loss).backward()
        opt.step()

    def phases(self) -> tuple[float, float, float, float]:
        """One step, timed phase by phase: (zero_grad, forward+loss, backward, optimizer.step) seconds."""
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        opt = self.opt
        t0 = time.perf_counter()
        opt.zero_grad()
        t1 = time.perf_counter()
        loss = self.loss_fn(self.model(x), y)
        t2 = time.perf_counter()
        (opt.scale_loss(loss) if self.scaled else loss).backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3

    @property
    def skipped(self) -> int | None:
        """Steps the LowPrecisionOptimizer skipped (inf/NaN gradients); None for plain SGD."""
        return self.opt.skipped_steps if self.scaled else None


# --- threads ---------------------------------------------------------------------------------------
def _openmp_runtimes() -> list[str]:
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                name = os.path.basename(p).lower()
                if name.startswith(("libgomp", "libiomp", "libomp")):
                    paths.add(p)
    except OSError:
        pass
    return sorted(paths)


def set_threads(n: int) -> list[str]:
    """``torch.set_num_threads(n)``, and ``omp_set_num_threads(n)`` in every OpenMP runtime loaded.

    Returns
    -------
    list of str
        The OpenMP runtimes mapped into the process.
    """
    torch.set_num_threads(n)
    runtimes = _openmp_runtimes()
    if default_threads() != n:
        for p in runtimes:
            try:
                fn = getattr(ctypes.CDLL(p), "omp_set_num_threads", None)
            except OSError:
                continue
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn(int(n))
    return runtimes


# --- timing ------------------------------------------------------------------------------------------
def time_phases(step: TrainStep, n: int, settle: float = SETTLE_S) -> tuple[float, ...]:
    """Median seconds of each phase over ``n`` single steps (after one untimed step)."""
    time.sleep(settle)
    step()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        rows = [step.phases() for _ in range(n)]
    finally:
        if gc_was:
            gc.enable()
    return tuple(statistics.median(col) for col in zip(*rows, strict=True))


# --- report ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads, and lowprec's OpenMP default (default 2)")
    ap.add_argument("--reps", type=int, default=None, help="interleaved rounds (default 15; 5 with --quick)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="models (default: both)")
    ap.add_argument("--batches", type=int, default=N_BATCHES, help=f"fixed batches cycled (default {N_BATCHES})")
    ap.add_argument("--phase-steps", type=int, default=None, help="steps of the phase breakdown (default 30; 8)")
    ap.add_argument("--settle", type=float, default=SETTLE_S, help=f"idle s before a sample (default {SETTLE_S})")
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer rounds and breakdown steps")
    ap.add_argument("--markdown", metavar="PATH", help="also write the machine block and tables to PATH")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 15)
    phase_steps = args.phase_steps or (8 if args.quick else 30)
    threads = args.threads
    if threads < 1 or reps < 1 or phase_steps < 1 or args.batches < 1:
        ap.error("need threads >= 1, reps >= 1, phase-steps >= 1 and batches >= 1")

    t_start = time.perf_counter()
    runtimes = set_threads(threads)
    batches = fixed_batches(args.batches)
    print("building and warming up the cases ...", file=sys.stderr, flush=True)
    steps = {f"{kind}|{c.key}": TrainStep(kind, c, batches) for kind in args.models for c in CASES}

    # 1. interleaved rounds
    load = OtherLoad()
    print(f"timing: {len(steps)} cases x {reps} rounds ...", file=sys.stderr, flush=True)
    samples = time_interleaved(dict(steps), reps, args.settle)
    other_share = load.share()
    tm = {k: statistics.median(v) for k, v in samples.items()}

    # 2. phase breakdown, one block per case
    print(f"phase breakdown: {phase_steps} steps per case ...", file=sys.stderr, flush=True)
    phases = {k: time_phases(s, phase_steps, args.settle) for k, s in steps.items()}
    elapsed = time.perf_counter() - t_start

    # 3. output
    problems: list[str] = []
    lp_threads = default_threads()
    if lp_threads != threads:
        problems.append(f"lowprec's OpenMP default is {lp_threads} threads, not {threads}")
    rt = ", ".join(os.path.basename(p) for p in runtimes) or "none found"
    out: list[str] = machine_lines()
    out.append(
        f"- run: digits, batch {BATCH}, {args.batches} fixed batches cycled; torch threads={torch.get_num_threads()}, "
        f"lowprec OpenMP default threads={lp_threads}, OpenMP runtimes loaded: {rt} (torch's and lowprec's parallel "
        f"regions share the cores); median of {reps} interleaved rounds after {WARMUP_STEPS} warm-up steps, "
        f"{args.settle:g} s idle before each sample, {elapsed:.0f} s in all"
    )
    busy = other_share is not None and other_share > BUSY_SHARE
    out += load_lines(other_share)
    n_met = n_targets = 0
    for kind in args.models:
        t32 = tm[f"{kind}|{REFERENCE.key}"]
        out.append("")
        out.append(f"#### {kind.upper()} training step (batch {BATCH})")
        out.append("")
        out.append("| case | step ms (median) | min..max ms | ratio vs float32 | target | met? | skipped steps |")
        out.append("|---|---|---|---|---|---|---|")
        for c in CASES:
            k = f"{kind}|{c.key}"
            t = tm[k]
            lo, hi = min(samples[k]), max(samples[k])
            ratio = t / t32
            if c.target is None:
                target = met = "—"
            else:
                n_targets += 1
                ok = ratio <= c.target
                n_met += ok
                target, met = f"<= {c.target:g}x", "met" if ok else "not met"
                if busy:
                    met += " (busy machine)"
            sk = steps[k].skipped
            skipped = "—" if sk is None else f"{sk}/{steps[k].opt.steps + sk}"
            if sk:
                problems.append(f"{kind} {c.key}: {sk} skipped steps (inf/NaN gradients); those steps are cheaper")
            out.append(
                f"| {c.label} | {t * 1e3:.3f} | {lo * 1e3:.3f}..{hi * 1e3:.3f} | {ratio:.2f}x | {target} | {met} "
                f"| {skipped} |"
            )
    out.append("")
    out.append(f"Targets met: {n_met}/{n_targets}.")
    out.append("")
    out.append(f"#### Phase breakdown (median ms over {phase_steps} single steps, one block per case)")
    out.append("")
    out.append("| model | case | " + " | ".join(PHASES) + " | sum |")
    out.append("|---|---|" + "---|" * (len(PHASES) + 1))
    for kind in args.models:
        for c in CASES:
            ph = phases[f"{kind}|{c.key}"]
            cells = " | ".join(f"{v * 1e3:.3f}" for v in ph)
            out.append(f"| {kind} | {c.key} | {cells} | {sum(ph) * 1e3:.3f} |")
    out.append("")
    out.append(
        "ratio vs float32 = median step time of the case / median step time of the float32 step of the same "
        "model (plain torch, plain SGD), timed in the same interleaved rounds."
    )
    out.append(
        "Breakdown rows: `fp32-lpopt` keeps float32 GEMMs and adds the LowPrecisionOptimizer (its cost alone); "
        "`ibm-exact-sgd` and `ibm-operands-sgd` emulate the GEMMs with plain SGD (the emulated layers' cost alone)."
    )
    emit_report(out, problems, args.markdown, "bench/report_torch.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
