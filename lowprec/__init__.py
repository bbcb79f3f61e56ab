"""lowprec: bit-exact low-precision arithmetic and hardware emulation.

>>> import numpy as np, lowprec as lp
>>> lp.quantize(np.float32(1.0625), "e4m3fn")   # a tie: ties go to the even significand
np.float32(1.0)
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._accumulate import dot, matmul, sum
from ._native import config, set_isa, show_config
from ._quantize import decode, encode, quantize
from .accum import AccumModel, BlockFMA, Order, Promotion
from .formats import FixedFormat, FloatFormat, ScaleFormat, Specials, catalogue, format
from .mx import MXArray, MXFormat, mx_decode, mx_encode, mx_format, mx_quantize
from .order import SumTree, reveal_order
from .profiles import Profile, available_profiles, load_profile, profile_path
from .rounding import Rounding

__all__ = [
    "__version__",
    "FloatFormat",
    "FixedFormat",
    "ScaleFormat",
    "Specials",
    "Rounding",
    "format",
    "catalogue",
    "quantize",
    "encode",
    "decode",
    "MXFormat",
    "MXArray",
    "mx_format",
    "mx_quantize",
    "mx_encode",
    "mx_decode",
    "sum",
    "dot",
    "matmul",
    "AccumModel",
    "BlockFMA",
    "Promotion",
    "Order",
    "Profile",
    "load_profile",
    "available_profiles",
    "profile_path",
    "reveal_order",
    "SumTree",
    "show_config",
    "config",
    "set_isa",
]
