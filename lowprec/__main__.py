"""Command line: ``python -m lowprec formats | quantize VALUE --format F [--rounding R] | profiles [NAME] |
config | demo [OPTIONS]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from ._native import show_config
from ._quantize import encode, quantize
from .formats import FixedFormat, FloatFormat, ScaleFormat, catalogue, format
from .rounding import Rounding


def _g(v: float) -> str:
    return f"{v:.6g}"


def formats_table() -> str:
    """The catalogue as a text table."""
    rows = [("name", "kind", "bits", "e", "m", "bias", "specials", "max", "min normal", "min subnormal", "eps")]
    for name, f in catalogue().items():
        if isinstance(f, FloatFormat):
            rows.append(
                (
                    name,
                    "float",
                    str(f.bits),
                    str(f.exp_bits),
                    str(f.man_bits),
                    str(f.bias),
                    f.specials.value,
                    _g(f.max),
                    _g(f.min_normal),
                    _g(f.min_subnormal),
                    _g(f.eps),
                )
            )
        elif isinstance(f, ScaleFormat):
            rows.append(
                (
                    name,
                    "scale",
                    str(f.bits),
                    str(f.exp_bits),
                    "0",
                    str(f.bias),
                    "nan only",
                    _g(f.max),
                    _g(f.min_normal),
                    "-",
                    "-",
                )
            )
        else:
            kind = ("int" if f.signed else "uint") if f.frac_bits == 0 else "fixed"
            rows.append((name, kind, str(f.bits), "-", "-", "-", "-", _g(f.max), "-", _g(f.min_subnormal), _g(f.eps)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def quantize_report(value: float, fmt_name: str, rounding: str, saturate: bool, seed: int | None) -> str:
    """The rounded value, its code in hex and binary, and the error."""
    fmt = format(fmt_name)
    x = np.array([value], dtype=np.float64)
    q = float(quantize(x, fmt, rounding, saturate=saturate, seed=seed)[0])
    lines = [
        f"input      {value!r}",
        f"format     {fmt}",
        f"rounding   {Rounding(rounding).value}",
        f"value      {q!r}",
    ]
    if not (isinstance(fmt, FloatFormat) and not fmt.has_nan and np.isnan(value)) and not (
        isinstance(fmt, FixedFormat) and (np.isnan(value) or fmt.overflow == "none")
    ):
        code = int(encode(x, fmt, rounding, saturate=saturate, seed=seed)[0])
        nbits = fmt.bits
        lines.append(f"code       0x{code:0{(nbits + 3) // 4}x}  0b{code:0{nbits}b}")
        if isinstance(fmt, FloatFormat):
            b = f"{code:0{nbits}b}"
            lines.append(
                f"fields     sign {b[0]} | exponent {b[1 : 1 + fmt.exp_bits]} | fraction {b[1 + fmt.exp_bits :] or '-'}"
            )
    if np.isfinite(q) and np.isfinite(value):
        err = q - value
        rel = abs(err) / abs(value) if value != 0 else 0.0
        lines.append(f"error      {err:+.6g} (relative {rel:.3g})")
    return "\n".join(lines)


def profiles_report(name: str | None) -> str:
    """One line per shipped profile, or the file of one profile (with its path)."""
    from .profiles import available_profiles, load_profile, profile_path

    if name is None:
        names = available_profiles()
        w = max(len(n) for n in names)
        return "\n".join(f"{n.ljust(w)}  {load_profile(n).summary}" for n in names)
    path = profile_path(name)
    return f"# {path}\n{path.read_text()}".rstrip()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m lowprec", description="Low-precision number formats and rounding.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("formats", help="print the format catalogue")
    q = sub.add_parser("quantize", help="round one value and show its code")
    q.add_argument("value", help="a real number (nan, inf and hex floats such as 0x1.8p-3 accepted)")
    q.add_argument("--format", "-f", required=True, dest="fmt", help="format name, e.g. e4m3fn, bf16, e6m9")
    q.add_argument("--rounding", "-r", default="nearest", choices=[r.value for r in Rounding])
    q.add_argument("--saturate", action="store_true", help="clamp overflow to +-max")
    q.add_argument("--seed", type=int, default=None, help="seed for stochastic modes")
    pr = sub.add_parser("profiles", help="list the accelerator profiles, or print one (its TOML file)")
    pr.add_argument("name", nargs="?", default=None, help="a profile name, e.g. nvidia-h100-fp8")
    sub.add_parser("config", help="show the build and run-time configuration")
    d = sub.add_parser(
        "demo", add_help=False, help="train an MLP and a CNN on digits in float32 and emulated FP8 (needs torch)"
    )
    d.add_argument("args", nargs=argparse.REMAINDER, help="options of the demo (see: demo --help)")
    return p


def _parse_value(text: str) -> float:
    try:
        return float.fromhex(text) if text.lower().lstrip("+-").startswith("0x") else float(text)
    except ValueError:
        raise ValueError(f"VALUE must be a real number, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # its own options (torch is imported only here)
        from .torch.demo import main as demo_main

        return demo_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "formats":
            print(formats_table())
        elif args.command == "quantize":
            if args.seed is not None and args.seed < 0:
                raise ValueError("--seed must be >= 0")
            print(quantize_report(_parse_value(args.value), args.fmt, args.rounding, args.saturate, args.seed))
        elif args.command == "profiles":
            print(profiles_report(args.name))
        else:
            show_config()
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"python -m lowprec: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
