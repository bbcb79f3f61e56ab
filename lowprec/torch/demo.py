"""The main demo: train a small MLP and a small CNN on scikit-learn's digits under three recipes.

* ``float32`` -- plain torch;
* ``ibm-fp8-2018`` -- FP8 (1,5,2) operands and exact products in all three GEMMs of every layer,
  every addition rounded to (1,6,9) with chunk-64 accumulation, first and last layer with (1,6,9)
  operands, and SGD with stochastic-rounding (1,6,9) weights and momentum, FP8 gradients and a
  loss scale of 1000 (``specs/fp8-training.md``);
* ``acc8`` -- the same with an 8-bit (1,5,2) accumulator, to show what breaks.

``python -m lowprec demo`` prints a table (test accuracy, time, step time against float32) and
writes a PNG of the learning curves.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import EmulationConfig
from .convert import emulate_
from .optim import LowPrecisionOptimizer

__all__ = ["RECIPES", "RunResult", "load_digits_split", "make_model", "train", "main"]

RECIPES = ("float32", "ibm-fp8-2018", "acc8")
MODELS = ("mlp", "cnn")


@dataclass
class RunResult:
    model: str
    recipe: str
    seed: int
    test_acc: list[float] = field(default_factory=list)  # after each epoch, in [0, 1]
    train_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0

    @property
    def final(self) -> float:
        return self.test_acc[-1]


def load_digits_split(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Digits (8x8 images, values /16) split 75/25, stratified; float32 tensors."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=seed)
    t = [torch.tensor(a, dtype=torch.float32) for a in (Xtr, Xte)]
    return t[0], torch.tensor(ytr), t[1], torch.tensor(yte)


def make_model(kind: str) -> nn.Module:
    """``mlp``: 64-128-128-10; ``cnn``: two 3x3 conv layers (16, 32 channels) with pooling, then 10."""
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(128, 10),
        )
    raise ValueError(f"model must be one of {MODELS}, got {kind!r}")


def recipe_config(recipe: str, model: nn.Module, mode: str = "exact") -> dict[str, Any] | None:
    """Per-layer configs of a recipe: FP8 operands inside, (1,6,9) operands for the first and last layer."""
    if recipe == "float32":
        return None
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    base = EmulationConfig.from_profile("ibm-fp8-2018").with_mode(mode)
    if recipe == "acc8":
        base = base.with_model(acc="e5m2").replace(name="acc8")
    gemm_layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    edge = base.with_model(a_format="e6m9", b_format="e6m9")
    return {"_default": base, gemm_layers[0]: edge, gemm_layers[-1]: edge}


def make_optimizer(recipe: str, model: nn.Module, lr: float, seed: int) -> Any:
    sgd = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if recipe == "float32":
        return sgd
    return LowPrecisionOptimizer(
        sgd, weight="e6m9", state="e6m9", grad="e5m2", rounding="stochastic", loss_scale=1000, seed=seed
    )


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def train(
    kind: str,
    recipe: str,
    seed: int = 0,
    epochs: int = 12,
    batch: int = 32,
    lr: float = 0.05,
    mode: str = "exact",
    data: tuple[torch.Tensor, ...] | None = None,
    progress: Any = None,
) -> RunResult:
    """Train one model under one recipe; test accuracy after every epoch."""
    Xtr, ytr, Xte, yte = data if data is not None else load_digits_split()
    torch.manual_seed(seed)
    model = make_model(kind)
    cfg = recipe_config(recipe, model, mode)
    if cfg is not None:
        emulate_(model, cfg)
    opt = make_optimizer(recipe, model, lr, seed)
    scaled = isinstance(opt, LowPrecisionOptimizer)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    res = RunResult(kind, recipe, seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        total = 0.0
        for i in range(0, len(Xtr), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(Xtr[idx]), ytr[idx])
            (opt.scale_loss(loss) if scaled else loss).backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            res.steps += 1
        model.eval()
        res.train_loss.append(total / len(Xtr))
        res.test_acc.append(_accuracy(model, Xte, yte))
        if progress is not None:
            progress.update(1)
    res.seconds = time.perf_counter() - t0
    return res


def plot(results: Sequence[RunResult], path: str) -> None:
    """Test accuracy against epoch, one panel per model, one line per recipe (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({r.model for r in results}, key=MODELS.index)
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 3.8), squeeze=False)
    colors = {"float32": "tab:blue", "ibm-fp8-2018": "tab:green", "acc8": "tab:red"}
    for ax, kind in zip(axes[0], kinds, strict=True):
        for r in results:
            if r.model == kind:
                ep = np.arange(1, len(r.test_acc) + 1)
                label = r.recipe if r.seed == min(s.seed for s in results) else None
                ax.plot(ep, 100 * np.array(r.test_acc), color=colors[r.recipe], alpha=0.85, label=label)
        ax.set_title(f"digits, {kind.upper()}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(results: Sequence[RunResult]) -> str:
    """Mean over seeds: final test accuracy, training time, step time relative to float32."""
    rows = [("model", "recipe", "test acc (%)", "seeds", "train time (s)", "step time vs float32")]
    for kind in MODELS:
        base = [r for r in results if r.model == kind and r.recipe == "float32"]
        t32 = sum(r.seconds / r.steps for r in base) / len(base) if base else None
        for recipe in RECIPES:
            rs = [r for r in results if r.model == kind and r.recipe == recipe]
            if not rs:
                continue
            acc = 100 * np.mean([r.final for r in rs])
            sec = np.mean([r.seconds for r in rs])
            step = np.mean([r.seconds / r.steps for r in rs])
            ratio = f"{step / t32:.1f}x" if t32 else "-"
            rows.append((kind, recipe, f"{acc:.1f}", str(len(rs)), f"{sec:.1f}", ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lowprec demo", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    p.add_argument("--seeds", type=int, default=1, help="seeds per run (default 1)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--mode", default="exact", choices=("exact", "chunk", "operands"), help="GEMM emulation mode")
    p.add_argument("--out", default="lowprec-demo.png", help="PNG of the learning curves")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1:
        p.error("--seeds and --epochs must be >= 1")
    from tqdm import tqdm

    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_digits_split()
    runs = [(k, r, s) for k in args.models for r in args.recipes for s in range(args.seeds)]
    results = []
    with tqdm(total=len(runs) * args.epochs, unit="epoch", desc="training") as bar:
        for kind, recipe, seed in runs:
            bar.set_postfix_str(f"{kind} {recipe} seed {seed}")
            results.append(train(kind, recipe, seed, args.epochs, mode=args.mode, data=data, progress=bar))
    print()
    print(table(results))
    plot(results, args.out)
    print(f"\nlearning curves: {args.out}")
    return 0
