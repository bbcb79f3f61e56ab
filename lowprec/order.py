"""FPRev: reveal the accumulation order of a summation function by probing it.

A floating-point sum is a tree of additions: the leaves are the summands, an inner node adds its
children (two for an ordinary addition, more for a fused multi-term adder such as one tensor-core
block FMA). The probe of Xie et al. (FPRev, USENIX ATC 2025) feeds the function ``n`` summands that
are all ``1`` except ``+M`` at position ``i`` and ``-M`` at position ``j``, with ``M`` so large that
every partial sum holding ``M`` absorbs the ones added to it. The two big values cancel in the
smallest subtree that contains both, and the ones of that subtree are lost with them; every other
one survives. So the output counts the ones outside that subtree, and

    l(i, j) = n - output = number of leaves of the smallest subtree containing i and j.

These numbers determine the tree (up to the order of the operands of each node, which an IEEE
addition cannot reveal because it is commutative). :func:`reveal_order` measures them and rebuilds
the tree as a :class:`SumTree`. See ``docs/order.md`` and ``specs/accelerator-models.md`` §6.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SumTree", "reveal_order"]

METHODS = ("fprev", "basic")
_REPR_LEAVES = 32  # trees up to this size show their compact form in repr()


def _as_index(value: object, name: str) -> int:
    """A non-negative Python int from an int-like ``value`` (bool rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _as_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True, eq=False, repr=False)
class SumTree:
    """An immutable summation tree (one node and everything below it).

    A leaf holds the position ``index`` of one summand; an inner node holds the ``children`` it adds
    in one operation: two for an ordinary addition, more for a fused multi-term adder. Children are
    kept in a canonical order (by their smallest leaf index), so two trees compare equal exactly
    when they have the same structure, whatever order they were built or discovered in.

    Parameters
    ----------
    index : int, optional
        Summand position of a leaf (``>= 0``). Give either ``index`` or ``children``.
    children : iterable of SumTree, optional
        At least two subtrees with disjoint leaves.

    Examples
    --------
    >>> t = SumTree.from_nested(((0, 1), 2))
    >>> t.compact(), t.n_leaves, t.depth, t.lca_leaves(0, 2)
    ('(0+1)+2', 3, 2, 3)
    >>> t == SumTree(children=(SumTree(index=2), SumTree.from_nested((1, 0))))
    True
    """

    index: int | None = None
    children: tuple[SumTree, ...] = ()
    _first: int = field(init=False, repr=False, compare=False)
    _n: int = field(init=False, repr=False, compare=False)
    _depth: int = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)
    _cache: dict = field(init=False, repr=False, compare=False)

    # --- construction ------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        index, children = self.index, self.children
        if isinstance(children, SumTree) or not isinstance(children, Iterable):
            raise TypeError(f"children must be an iterable of SumTree, got {type(children).__name__}")
        children = tuple(children)
        if index is not None:
            if children:
                raise ValueError("a SumTree node has either an index (a leaf) or children, not both")
            object.__setattr__(self, "index", _as_index(index, "index"))
        else:
            if len(children) < 2:
                raise ValueError(
                    f"an inner SumTree node needs at least two children, got {len(children)}; give index= for a leaf"
                )
            seen: set[int] = set()
            for c in children:
                if not isinstance(c, SumTree):
                    raise TypeError(f"children must be SumTree objects, got {type(c).__name__}")
                for leaf in c._iter_leaves():
                    if leaf in seen:
                        raise ValueError(f"children must have disjoint leaves; index {leaf} appears twice")
                    seen.add(leaf)
        object.__setattr__(self, "children", children)
        self._finish()

    def _finish(self) -> None:
        set_ = object.__setattr__
        if self.index is not None:
            set_(self, "_first", self.index)
            set_(self, "_n", 1)
            set_(self, "_depth", 0)
            set_(self, "_hash", hash(("leaf", self.index)))
        else:
            kids = tuple(sorted(self.children, key=operator.attrgetter("_first")))
            set_(self, "children", kids)
            set_(self, "_first", kids[0]._first)
            set_(self, "_n", sum(c._n for c in kids))
            set_(self, "_depth", 1 + max(c._depth for c in kids))
            set_(self, "_hash", hash(tuple(c._hash for c in kids)))
        set_(self, "_cache", {})

    @classmethod
    def _make(cls, index: int | None = None, children: tuple[SumTree, ...] = ()) -> SumTree:
        """Trusted fast constructor (no argument checks): for trees built by this module."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "index", index)
        object.__setattr__(obj, "children", tuple(children))
        obj._finish()
        return obj

    @classmethod
    def leaf(cls, index: int) -> SumTree:
        """The leaf for summand ``index``."""
        return cls(index=index)

    @classmethod
    def node(cls, *children: SumTree) -> SumTree:
        """An inner node adding ``children`` (at least two) in one operation."""
        return cls(children=children)

    # --- properties --------------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        """True for a leaf (a single summand)."""
        return self.index is not None

    @property
    def n_leaves(self) -> int:
        """Number of summands below (and including) this node."""
        return self._n

    @property
    def depth(self) -> int:
        """Number of additions on the longest path from this node to a leaf (0 for a leaf)."""
        return self._depth

    @property
    def leaves(self) -> tuple[int, ...]:
        """Summand indices in canonical order (depth first, children by smallest leaf)."""
        got = self._cache.get("leaves")
        if got is None:
            got = self._cache["leaves"] = tuple(self._iter_leaves())
        return got

    def _iter_leaves(self):
        stack = [self]
        while stack:
            node = stack.pop()
            if node.index is not None:
                yield node.index
            else:
                stack.extend(reversed(node.children))

    # --- equality ----------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SumTree):
            return NotImplemented
        stack = [(self, other)]
        while stack:  # iterative: sequential trees are as deep as they are long
            a, b = stack.pop()
            if a is b:
                continue
            if a._hash != b._hash or a._n != b._n or a.index != b.index or len(a.children) != len(b.children):
                return False
            stack.extend(zip(a.children, b.children, strict=True))
        return True

    def __hash__(self) -> int:
        return self._hash

    # --- queries -----------------------------------------------------------------------------------
    def _parents(self) -> tuple[dict[int, SumTree], dict[int, SumTree | None]]:
        """(leaf index -> leaf node, id(node) -> parent node) for this tree, built once."""
        got = self._cache.get("parents")
        if got is None:
            leaf_of: dict[int, SumTree] = {}
            parent: dict[int, SumTree | None] = {id(self): None}
            stack = [self]
            while stack:
                node = stack.pop()
                if node.index is not None:
                    leaf_of[node.index] = node
                for c in node.children:
                    parent[id(c)] = node
                    stack.append(c)
            got = self._cache["parents"] = (leaf_of, parent)
        return got

    def lca_leaves(self, i: int, j: int) -> int:
        """Number of leaves of the smallest subtree containing leaves ``i`` and ``j``.

        This is what the FPRev probe measures, ``l(i, j)``; ``lca_leaves(i, i)`` is 1.
        """
        leaf_of, parent = self._parents()
        nodes = []
        for name, k in (("i", i), ("j", j)):
            k = _as_index(k, name)
            if k not in leaf_of:
                raise ValueError(f"{name} = {k} is not a leaf of this tree")
            nodes.append(leaf_of[k])
        ancestors = set()
        node: SumTree | None = nodes[0]
        while node is not None:
            ancestors.add(id(node))
            node = parent[id(node)]
        node = nodes[1]
        while id(node) not in ancestors:
            node = parent[id(node)]
        return node._n

    # --- conversions -------------------------------------------------------------------------------
    def to_nested(self) -> int | tuple:
        """Nested tuples of leaf indices in canonical order, e.g. ``((0, 1), 2)``; a leaf gives an int."""
        out: list[Any] = []
        stack: list[tuple[SumTree, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if node.index is not None:
                out.append(node.index)
            elif done:
                k = len(node.children)
                out[-k:] = [tuple(out[-k:])]
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(node.children))
        return out[0]

    @classmethod
    def from_nested(cls, obj: object) -> SumTree:
        """Build a tree from nested tuples or lists of leaf indices (the inverse of :meth:`to_nested`).

        A list or tuple is one node adding its items, so ``(0, 1, 2)`` is a fused three-operand
        node and ``((0, 1), 2)`` two binary additions. SumTree items are taken as they are.
        """
        out: list[SumTree] = []
        seen: set[int] = set()
        stack: list[tuple[Any, bool]] = [(obj, False)]
        while stack:
            item, done = stack.pop()
            if isinstance(item, SumTree):
                leaves = item.leaves
            elif isinstance(item, (tuple, list)):
                if done:
                    k = len(item)
                    out[-k:] = [cls._make(children=tuple(out[-k:]))]
                    continue
                if len(item) < 2:
                    raise ValueError(f"every node of nested must have at least two items, got {item!r}")
                stack.append((item, True))
                stack.extend((c, False) for c in reversed(item))
                continue
            else:
                item = cls._make(index=_as_index(item, "a leaf of nested"))
                leaves = (item.index,)
            for leaf in leaves:
                if leaf in seen:
                    raise ValueError(f"nested has leaf {leaf} more than once")
                seen.add(leaf)
            out.append(item)
        return out[0]

    def compact(self) -> str:
        """One-line form: ``((0+1)+2)+3`` for binary additions, ``0+1+2+3`` for one fused node."""
        out: list[str] = []
        stack: list[Any] = [(self, True)]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            node, top = item
            if node.index is not None:
                out.append(str(node.index))
                continue
            if not top:
                stack.append(")")
            for k in range(len(node.children) - 1, -1, -1):
                stack.append((node.children[k], False))
                if k:
                    stack.append("+")
            if not top:
                stack.append("(")
        return "".join(out)

    def render(self) -> str:
        """Multi-line ASCII drawing in the style of ``tree --charset ascii`` (also ``str(tree)``).

        An inner node shows ``+``; a fused node adding more than two operands shows
        ``+ (k operands)``.
        """
        lines: list[str] = []
        stack: list[tuple[SumTree, str, str]] = [(self, "", "")]
        while stack:
            node, head, tail = stack.pop()
            if node.index is not None:
                label = str(node.index)
            elif len(node.children) == 2:
                label = "+"
            else:
                label = f"+ ({len(node.children)} operands)"
            lines.append(head + label)
            last = len(node.children) - 1
            for k in range(last, -1, -1):
                branch, cont = ("`-- ", "    ") if k == last else ("|-- ", "|   ")
                stack.append((node.children[k], tail + branch, tail + cont))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __format__(self, spec: str) -> str:
        if spec in ("", "tree"):
            return self.render()
        if spec == "compact":
            return self.compact()
        raise ValueError(f"unknown format spec {spec!r} for SumTree; use '', 'tree' or 'compact'")

    def __repr__(self) -> str:
        if self.index is not None:
            return f"<SumTree leaf {self.index}>"
        text = f"<SumTree {self._n} leaves, depth {self._depth}"
        if self._n <= _REPR_LEAVES:
            text += ": " + self.compact()
        return text + ">"

    # --- lowprec's own accumulation orders ---------------------------------------------------------
    @classmethod
    def _fold(cls, trees: list[SumTree]) -> SumTree:
        """Left fold: ((t0 + t1) + t2) + ..."""
        acc = trees[0]
        for t in trees[1:]:
            acc = cls._make(children=(acc, t))
        return acc

    @classmethod
    def sequential(cls, n: int) -> SumTree:
        """``((x0 + x1) + x2) + ...``: l(i, j) = max(i, j) + 1."""
        n = _as_count(n, "n", 1)
        return cls._fold([cls._make(index=k) for k in range(n)])

    @classmethod
    def chunked(cls, n: int, chunk: int) -> SumTree:
        """Each run of ``chunk`` consecutive summands added sequentially, then the chunk sums added
        sequentially (``total = ((s0 + s1) + s2) + ...``; a last partial chunk is shorter).

        For ``n`` a multiple of ``chunk`` = CL: l(i, j) = (max(i, j) mod CL) + 1 within one chunk,
        else CL·(chunk of max(i, j) + 1).
        """
        n = _as_count(n, "n", 1)
        chunk = _as_count(chunk, "chunk", 1)
        sums = [cls._fold([cls._make(index=k) for k in range(s, min(s + chunk, n))]) for s in range(0, n, chunk)]
        return cls._fold(sums)

    @classmethod
    def pairwise(cls, n: int) -> SumTree:
        """Bottom-up pairwise: each level adds neighbours (0, 1), (2, 3), ...; an odd one left at the
        end of a level moves up unchanged. For ``n`` a power of 2: l(i, j) = 2^bitlength(i XOR j).
        """
        n = _as_count(n, "n", 1)
        level = [cls._make(index=k) for k in range(n)]
        while len(level) > 1:
            up = [cls._make(children=(level[k], level[k + 1])) for k in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                up.append(level[-1])
            level = up
        return level[0]

    @classmethod
    def blocked(cls, n: int, block: int) -> SumTree:
        """Block FMA with ``block`` = F terms per call: the first call adds summands 0..F-1 in one fused
        node (its zero initial addend is invisible); each later call is a fused node of the previous
        result and the next F summands (F + 1 operands; a last partial block has fewer).
        l(i, j) = min(n, F·(block of max(i, j) + 1)). ``block=1`` is :meth:`sequential`.
        """
        n = _as_count(n, "n", 1)
        block = _as_count(block, "block", 1)
        leaves = [cls._make(index=k) for k in range(n)]
        first = leaves[:block]
        acc = first[0] if len(first) == 1 else cls._make(children=tuple(first))
        for s in range(block, n, block):
            acc = cls._make(children=(acc, *leaves[s : s + block]))
        return acc


# --- probing -----------------------------------------------------------------------------------------
def _scalar(result: object) -> float:
    """float of a scalar result: NumPy scalar, Python number, 0-d or 1-element array, torch tensor."""
    try:
        arr = np.asarray(result)  # CPU torch tensors convert; CUDA / bfloat16 ones raise
    except Exception:  # fall back to the object's own __float__ below
        arr = None
    if arr is not None and arr.dtype.kind in "biuf":
        if arr.size != 1:
            raise TypeError(f"fn must return a scalar, got an array of shape {arr.shape}")
        return float(arr.reshape(()))
    if arr is not None and arr.dtype.kind != "O":
        raise TypeError(f"fn must return a real scalar, got {type(result).__name__} of dtype {arr.dtype}")
    try:
        return float(result)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"fn must return a real scalar, got {type(result).__name__}") from None


class _Prober:
    """Runs the probe, checks every output, caches l(i, j) by unordered pair."""

    def __init__(self, fn: Callable[[np.ndarray], object], n: int, dtype: np.dtype) -> None:
        self.fn, self.n, self.dtype = fn, n, dtype
        self.big = 0.0
        self.cache: dict[tuple[int, int], int] = {}

    def output(self, i: int, j: int, big: float) -> float:
        x = np.ones(self.n, dtype=self.dtype)  # a fresh array each time: fn may write into it
        x[i] = big
        x[j] = -big
        return _scalar(self.fn(x))

    def valid(self, out: float) -> bool:
        return math.isfinite(out) and out == math.floor(out) and 0 <= out <= self.n - 2

    def measure(self, i: int, j: int) -> int:
        """l(i, j) = n - output of the probe with +big at i and -big at j."""
        key = (i, j) if i < j else (j, i)
        got = self.cache.get(key)
        if got is None:
            out = self.output(key[0], key[1], self.big)
            if not self.valid(out):
                raise ValueError(
                    f"probe ({key[0]}, {key[1]}) (+big at {key[0]}, -big at {key[1]}, ones elsewhere, "
                    f"big = {self.big!r}) returned {out!r}, not an integer in [0, {self.n - 2}]: fn does not "
                    "behave like a summation under the probe (big too small to absorb the ones, or n too "
                    "large for sums of ones to be exact?)"
                )
            got = self.cache[key] = self.n - int(out)
        return got


def _inconsistent(detail: str) -> ValueError:
    return ValueError(
        f"the probe outputs are not consistent with any summation tree ({detail}): fn does not behave "
        "like a tree of additions under the probe (an exactly rounded sum such as math.fsum, or a big "
        "value too small to absorb the ones, gives this)"
    )


def _some(indices: list[int]) -> str:
    """Short text for a list of leaf indices in an error message."""
    return str(indices) if len(indices) <= 8 else f"[{', '.join(map(str, indices[:8]))}, ... ({len(indices)} leaves)]"


class _Frame:
    """One level of the FPRev recursion, run on an explicit stack (trees may be n deep)."""

    __slots__ = ("groups", "pos", "root", "size")

    def __init__(self, idx: list[int], probe: _Prober) -> None:
        i = idx[0]
        by_l: dict[int, list[int]] = {}
        for j in idx[1:]:
            by_l.setdefault(probe.measure(i, j), []).append(j)
        self.groups = sorted(by_l.items())
        self.pos = 0
        self.root = SumTree._make(index=i)
        self.size = 1  # measured size of root: the l value it was formed at

    def absorb(self, sub: SumTree, sub_size: int) -> None:
        """Join the subtree built from group ``pos`` to the current root."""
        lv, group = self.groups[self.pos]
        self.pos += 1
        if self.size != self.root.n_leaves:
            raise _inconsistent(f"leaves {_some(group)} come after a fused node that is not complete")
        if lv < self.size + len(group):
            raise _inconsistent(f"l = {lv} for leaves {_some(group)} but the subtree holds more leaves")
        if sub_size == sub.n_leaves:  # the group is one whole subtree: a new addition
            self.root = SumTree._make(children=(self.root, sub))
        elif sub_size == lv:  # the group is the other operands of a fused node
            self.root = SumTree._make(children=(*sub.children, self.root))
        else:
            raise _inconsistent(f"leaves {_some(group)} measured at l = {lv} and {sub_size}")
        self.size = lv


def _fprev(n: int, probe: _Prober) -> SumTree:
    stack = [_Frame(list(range(n)), probe)]
    result: tuple[SumTree, int] | None = None
    while True:
        frame = stack[-1]
        if result is not None:
            frame.absorb(*result)
            result = None
        if frame.pos < len(frame.groups):
            group = frame.groups[frame.pos][1]
            if len(group) == 1:
                frame.absorb(SumTree._make(index=group[0]), 1)
            else:
                stack.append(_Frame(group, probe))
            continue
        stack.pop()
        if not stack:
            if frame.size != n:
                raise _inconsistent(f"the root was measured at l = {frame.size}, not n = {n}")
            return frame.root
        result = (frame.root, frame.size)


def _basic(n: int, probe: _Prober) -> SumTree:
    pairs = sorted((probe.measure(i, j), i, j) for i in range(n) for j in range(i + 1, n))
    owner = list(range(n))  # union-find over leaves
    roots: dict[int, SumTree] = {k: SumTree._make(index=k) for k in range(n)}

    def find(k: int) -> int:
        while owner[k] != k:
            owner[k] = owner[owner[k]]
            k = owner[k]
        return k

    for lv, i, j in pairs:
        ri, rj = find(i), find(j)
        if ri == rj:
            continue
        merged = SumTree._make(children=(roots.pop(ri), roots.pop(rj)))
        if merged.n_leaves > lv:
            raise _inconsistent(f"l({i}, {j}) = {lv} but their subtrees already hold {merged.n_leaves} leaves")
        owner[rj] = ri
        roots[ri] = merged
    (tree,) = roots.values()
    return tree


def _check_big(big: object, dtype: np.dtype) -> float:
    if isinstance(big, (bool, np.bool_)) or not isinstance(big, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"big must be a real number, got {type(big).__name__}")
    try:
        value = float(big)
    except OverflowError:
        value = math.inf
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"big must be a positive finite number, got {big!r}")
    with np.errstate(over="ignore"):
        exact = float(dtype.type(value)) == value and (not isinstance(big, numbers.Integral) or int(value) == big)
    if not exact:
        raise ValueError(f"big = {big!r} is not exactly representable in {dtype.name}")
    return value


def reveal_order(
    fn: Callable[[np.ndarray], object],
    n: int,
    *,
    dtype: Any = np.float32,
    big: float | None = None,
    method: str = "fprev",
) -> SumTree:
    """Reveal the order in which ``fn`` adds its ``n`` inputs (the FPRev probe method).

    Parameters
    ----------
    fn : callable
        Takes one 1-D array of ``n`` values of ``dtype`` and returns their sum as a scalar (NumPy or
        Python scalar, 0-d array, or a torch tensor). It is called with a fresh array each time.
    n : int
        Number of summands, ``>= 2`` and small enough that sums of ones are exact (``<= 2^24`` for
        float32).
    dtype : float32 or float64
        Element type of the probe arrays.
    big : float, optional
        Probe magnitude M (positive, finite, exactly representable in ``dtype``). It must absorb
        every 1 added to it in ``fn``'s arithmetic. Default: the largest power of two ``2^e`` (``e``
        from 127 for float32, 1023 for float64, down to the smallest ``e`` with ``2^e >= 2n``) for
        which probes of the pairs
        ``(0, n-1)``, ``(0, 1)`` and ``(n-2, n-1)`` give valid outputs; narrow internal formats
        (fp16, fp8) thus get a smaller M automatically.
    method : {"fprev", "basic"}
        ``"fprev"`` (default): the recursive reconstruction, about n·depth probes, which also finds
        fused nodes with more than two operands. ``"basic"``: probes all n(n-1)/2 pairs and merges
        Kruskal-style; it only ever produces binary trees, so a fused node comes out as some binary
        tree of the same leaves.

    Returns
    -------
    SumTree
        The summation tree over leaves ``0 .. n-1``. Its ``lca_leaves(i, j)`` equals every measured
        ``l(i, j)``.

    Raises
    ------
    ValueError
        If no probe magnitude works, a probe output is not an integer in ``[0, n-2]``, or the
        outputs are not those of any summation tree (for example an exactly rounded sum).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    n = _as_count(n, "n", 2)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt.name}")
    finfo = np.finfo(dt)
    if n > 2 ** (finfo.nmant + 1):
        raise ValueError(f"n = {n} is too large: sums of ones are only exact in {dt.name} up to 2^{finfo.nmant + 1}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    probe = _Prober(fn, n, dt)
    if big is not None:
        probe.big = _check_big(big, dt)
    else:
        pairs = list(dict.fromkeys([(0, n - 1), (0, 1), (n - 2, n - 1)]))
        e_min = (2 * n - 1).bit_length()  # 2^e >= 2n: a smaller M cannot absorb n ones
        for e in range(finfo.maxexp - 1, e_min - 1, -1):
            m = 2.0**e
            outs = []
            with np.errstate(over="ignore", invalid="ignore"):  # a too-large M may overflow inside fn
                for i, j in pairs:
                    out = probe.output(i, j, m)
                    if not probe.valid(out):
                        break
                    outs.append(out)
            if len(outs) == len(pairs):
                probe.big = m
                probe.cache.update({p: n - int(o) for p, o in zip(pairs, outs, strict=True)})
                break
        if not probe.big:
            raise ValueError(
                f"no probe magnitude works: for every big = 2^e, e = {finfo.maxexp - 1} .. {e_min}, a probe of "
                f"pairs {pairs} did not return an integer in [0, {n - 2}]; fn does not behave like a "
                "summation of its inputs (pass big= explicitly if you know a magnitude that works)"
            )

    if method == "basic":  # binary by construction: a fused node cannot match its l values
        return _basic(n, probe)
    tree = _fprev(n, probe)
    for (i, j), lv in probe.cache.items():
        got = tree.lca_leaves(i, j)
        if got != lv:
            raise _inconsistent(f"l({i}, {j}) was measured as {lv} but the reconstructed tree gives {got}")
    return tree
