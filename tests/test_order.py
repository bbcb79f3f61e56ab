"""FPRev order probes (lowprec.order): reveal_order and SumTree, against summation functions whose
order is known by construction and against the closed-form l(i, j) of specs/accelerator-models.md §6."""

from __future__ import annotations

import inspect
import math
import sys

import numpy as np
import pytest

from lowprec.order import SumTree, reveal_order


# --- summation functions with a known order (plain NumPy scalar arithmetic) --------------------------
def seq_sum(x: np.ndarray) -> np.floating:
    acc = x[0]
    for v in x[1:]:
        acc = acc + v  # float32 + float32 stays float32 (float64 for float64 probes)
    return acc


def chunked_sum(x: np.ndarray, chunk: int) -> np.floating:
    sums = [seq_sum(x[s : s + chunk]) for s in range(0, len(x), chunk)]
    return seq_sum(np.array(sums, dtype=x.dtype))


def pairwise_sum(x: np.ndarray) -> np.floating:
    level = list(x)
    while len(level) > 1:
        up = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        level = up
    return level[0]


def fused_add(terms: list) -> np.float32:
    """One multi-term adder in the style of a tensor-core block FMA (spec §2): zero terms dropped,
    every term aligned to the largest exponent and truncated to 27 bits below it, the truncated
    terms summed exactly, one final rounding to float32."""
    vals = [float(t) for t in terms if t != 0]
    if not vals:
        return np.float32(0)
    top = max(math.frexp(v)[1] for v in vals)
    q = 2.0 ** (top - 27)
    return np.float32(math.fsum(math.trunc(v / q) * q for v in vals))


def fused_block_sum(x: np.ndarray, block: int) -> np.float32:
    """d <- BFMA(block of x, d) from d = 0; the zero initial addend is invisible to the probe."""
    acc = np.float32(0)
    for s in range(0, len(x), block):
        acc = fused_add([acc, *x[s : s + block]])
    return acc


def tree_sum(tree: SumTree, x: np.ndarray) -> np.float32:
    """Evaluate ``tree`` on ``x``: binary nodes are float32 additions, wider nodes fused adders."""
    if tree.is_leaf:
        return x[tree.index]
    vals = [tree_sum(c, x) for c in tree.children]
    return vals[0] + vals[1] if len(vals) == 2 else fused_add(vals)


def random_tree(rng: np.random.Generator, n: int, fused: bool) -> SumTree:
    trees = [SumTree.leaf(int(k)) for k in rng.permutation(n)]
    while len(trees) > 1:
        k = min(len(trees), int(rng.choice([2, 2, 3, 4, 5]))) if fused else 2
        pick = sorted(rng.choice(len(trees), size=k, replace=False).tolist(), reverse=True)
        kids = [trees.pop(p) for p in pick]
        trees.insert(int(rng.integers(0, len(trees) + 1)), SumTree.node(*kids))
    return trees[0]


def is_binary(tree: SumTree) -> bool:
    stack = [tree]
    while stack:
        t = stack.pop()
        if not t.is_leaf and len(t.children) != 2:
            return False
        stack.extend(t.children)
    return True


# --- reveal_order recovers known orders ------------------------------------------------------------
@pytest.mark.parametrize("method", ["fprev", "basic"])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 32])
def test_sequential_revealed(n, method):
    assert reveal_order(seq_sum, n, method=method) == SumTree.sequential(n)


@pytest.mark.parametrize("method", ["fprev", "basic"])
def test_sequential_float64(method):
    assert reveal_order(seq_sum, 11, dtype=np.float64, method=method) == SumTree.sequential(11)
    assert reveal_order(seq_sum, 11, dtype="float64", big=2.0**600) == SumTree.sequential(11)


@pytest.mark.parametrize("method", ["fprev", "basic"])
@pytest.mark.parametrize("n, chunk", [(8, 4), (12, 4), (10, 4), (7, 3), (9, 1), (5, 8), (16, 2)])
def test_chunked_revealed(n, chunk, method):
    got = reveal_order(lambda x: chunked_sum(x, chunk), n, method=method)
    assert got == SumTree.chunked(n, chunk)
    if chunk not in (1, n) and chunk < n:
        assert got != SumTree.sequential(n)


@pytest.mark.parametrize("method", ["fprev", "basic"])
@pytest.mark.parametrize("n", [2, 3, 5, 6, 8, 13, 16, 32])
def test_pairwise_revealed(n, method):
    assert reveal_order(pairwise_sum, n, method=method) == SumTree.pairwise(n)


@pytest.mark.parametrize("n, block", [(8, 4), (10, 4), (16, 4), (3, 4), (4, 4), (32, 8), (9, 1), (17, 16)])
def test_fused_blocks_revealed(n, block):
    f = lambda x: fused_block_sum(x, block)  # noqa: E731
    want = SumTree.blocked(n, block)
    assert reveal_order(f, n) == want
    assert reveal_order(f, n, big=2.0**100) == want
    # The basic method only merges two roots at a time: same leaves, binary nodes only.
    basic = reveal_order(f, n, method="basic")
    assert sorted(basic.leaves) == list(range(n))
    assert is_binary(basic)
    assert (basic == want) == (block <= 2 or n <= 2)


@pytest.mark.parametrize("seed", range(12))
def test_random_trees_revealed(seed):
    """Any tree, binary or with fused nodes, evaluated as written, comes back unchanged."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    fused = random_tree(rng, n, fused=True)
    assert reveal_order(lambda x: tree_sum(fused, x), n) == fused
    binary = random_tree(rng, n, fused=False)
    assert reveal_order(lambda x: tree_sum(binary, x), n) == binary
    assert reveal_order(lambda x: tree_sum(binary, x), n, method="basic") == binary


def test_narrow_accumulator_gets_smaller_big():
    """A float16 accumulator turns 2^127 into inf; the automatic search steps down to a big that works."""

    def half_sum(x):
        return seq_sum(x.astype(np.float16))

    assert reveal_order(half_sum, 12) == SumTree.sequential(12)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(ValueError, match=r"probe \(0, 1\).*nan"):
        reveal_order(half_sum, 12, big=2.0**127)


def test_fprev_needs_fewer_probes_than_basic():
    calls = {"fprev": 0, "basic": 0}
    for method in calls:

        def f(x, method=method):
            calls[method] += 1
            return seq_sum(x)

        reveal_order(f, 32, method=method)
    assert calls["fprev"] == 32  # the search's three pairs, then l(0, j) for the 29 other j
    assert calls["basic"] == 32 * 31 // 2  # every pair once (the search's three are reused)
    assert calls["fprev"] < calls["basic"]


def test_fresh_input_each_probe_and_state_untouched():
    seen = []

    def f(x):
        seen.append(x)
        assert x.shape == (9,) and x.dtype == np.float32 and x.flags.writeable
        assert sorted(x.tolist()).count(1.0) == 7
        s = seq_sum(x)
        x[:] = 7  # writing into the probe array must not disturb later probes
        return s

    before = np.geterr()
    assert reveal_order(f, 9) == SumTree.sequential(9)
    assert np.geterr() == before
    assert len(seen) >= 8 and len({id(a) for a in seen}) == len(seen)  # a new array for every call
    assert all(a.base is None and (a == 7).all() for a in seen)


@pytest.mark.parametrize("n", [2, 7, 32, 100])
def test_numpy_sum_reported(n):
    """np.sum's order depends on the build and the machine: only check that it is a tree of n leaves."""
    tree = reveal_order(np.sum, n)
    assert tree.n_leaves == n and sorted(tree.leaves) == list(range(n))
    print(f"np.sum, n={n}: {tree.compact()}", file=sys.stderr)


def test_torch_sum_reported():
    import torch

    tree = reveal_order(lambda v: torch.from_numpy(v).sum(), 32)
    assert tree.n_leaves == 32 and sorted(tree.leaves) == list(range(32))
    print(f"torch.sum, n=32: {tree.compact()}", file=sys.stderr)


# --- not a summation ---------------------------------------------------------------------------------
def test_max_is_not_a_sum():
    with pytest.raises(ValueError, match="no probe magnitude works.*big="):
        reveal_order(np.max, 8)
    with pytest.raises(ValueError, match=r"probe \(0, 1\).*returned 1\.2676506002282294e\+30.*\[0, 6\]"):
        reveal_order(np.max, 8, big=2.0**100)


def test_exact_sum_is_not_a_tree():
    for method in ("fprev", "basic"):
        with pytest.raises(ValueError, match="not consistent with any summation tree"):
            reveal_order(math.fsum, 8, method=method)


def test_big_too_small():
    with pytest.raises(ValueError, match="not consistent with any summation tree"):
        reveal_order(seq_sum, 8, big=2.0)


def test_non_integral_output():
    with pytest.raises(ValueError, match=r"probe \(0, 1\).*returned 6\.5.*does not behave like a summation"):
        reveal_order(lambda x: float(seq_sum(x)) + 0.5, 8, big=2.0**100)


def test_inconsistent_outputs():
    """Outputs that are each valid but fit no tree."""

    def liar(x):  # l(0, 1) = l(6, 7) = 2 but l(0, 6) = 3: {0, 1} and {6, 7} cannot both fit in 3 leaves
        i, j = np.flatnonzero(x > 1)[0], np.flatnonzero(x < -1)[0]
        return 8 - (2 if (i, j) in ((0, 1), (6, 7)) else 3 if (i, j) == (0, 6) else 8)

    for method in ("fprev", "basic"):
        with pytest.raises(ValueError, match="not consistent"):
            reveal_order(liar, 8, method=method)


def test_result_must_be_a_scalar():
    with pytest.raises(TypeError, match="scalar"):
        reveal_order(lambda x: np.array([x.sum(), x.sum()]), 4)
    with pytest.raises(TypeError, match="scalar"):
        reveal_order(lambda x: "3", 4)
    with pytest.raises(TypeError, match="scalar"):
        reveal_order(lambda x: complex(seq_sum(x)), 4)
    assert reveal_order(lambda x: np.array(seq_sum(x)), 5) == SumTree.sequential(5)
    assert reveal_order(lambda x: int(seq_sum(x)), 5) == SumTree.sequential(5)


# --- argument checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"fn": 3}, TypeError, "fn must be callable"),
        ({"n": 1}, ValueError, "n must be >= 2"),
        ({"n": -4}, ValueError, "n must be >= 2"),
        ({"n": 4.0}, TypeError, "n must be an int"),
        ({"n": True}, TypeError, "n must be an int"),
        ({"n": 2**25}, ValueError, "n = 33554432 is too large"),
        ({"dtype": np.float16}, ValueError, "dtype must be float32 or float64"),
        ({"dtype": "int32"}, ValueError, "dtype must be float32 or float64"),
        ({"dtype": "no such type"}, ValueError, "dtype must be float32 or float64"),
        ({"method": "kruskal"}, ValueError, "method must be one of"),
        ({"method": None}, ValueError, "method must be one of"),
        ({"big": 0.0}, ValueError, "big must be a positive finite"),
        ({"big": -8.0}, ValueError, "big must be a positive finite"),
        ({"big": math.inf}, ValueError, "big must be a positive finite"),
        ({"big": math.nan}, ValueError, "big must be a positive finite"),
        ({"big": 2**2000}, ValueError, "big must be a positive finite"),
        ({"big": 1e39}, ValueError, "big = 1e\\+39 is not exactly representable in float32"),
        ({"big": 0.1}, ValueError, "big = 0.1 is not exactly representable in float32"),
        ({"big": 2**60 + 1}, ValueError, "is not exactly representable in float32"),
        ({"big": "1e30"}, TypeError, "big must be a real number"),
        ({"big": True}, TypeError, "big must be a real number"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"fn": seq_sum, "n": 8} | kwargs
    fn, n = args.pop("fn"), args.pop("n")
    with pytest.raises(exc, match=match):
        reveal_order(fn, n, **args)


def test_good_argument_forms():
    assert reveal_order(seq_sum, np.int64(6), dtype=np.dtype("float32"), big=np.float32(2.0**90)) == SumTree.sequential(
        6
    )
    assert reveal_order(seq_sum, 6, big=2**90) == SumTree.sequential(6)


# --- closed-form l(i, j) of the spec -----------------------------------------------------------------
def all_pairs(n):
    return [(i, j) for i in range(n) for j in range(n) if i != j]


@pytest.mark.parametrize("n", [2, 5, 16, 33])
def test_sequential_l(n):
    t = SumTree.sequential(n)
    for i, j in all_pairs(n):
        assert t.lca_leaves(i, j) == max(i, j) + 1
    assert t.depth == n - 1


@pytest.mark.parametrize("n, cl", [(8, 4), (16, 4), (12, 3), (8, 8), (8, 1), (6, 2)])
def test_chunked_l(n, cl):
    t = SumTree.chunked(n, cl)
    for i, j in all_pairs(n):
        if i // cl == j // cl:
            want = max(i, j) % cl + 1
        else:
            want = cl * (max(i, j) // cl + 1)
        assert t.lca_leaves(i, j) == want, (i, j)


@pytest.mark.parametrize("n", [2, 4, 8, 32, 64])
def test_pairwise_l(n):
    t = SumTree.pairwise(n)
    for i, j in all_pairs(n):
        assert t.lca_leaves(i, j) == 2 ** (i ^ j).bit_length()
    assert t.depth == n.bit_length() - 1


@pytest.mark.parametrize("n, f", [(8, 4), (32, 8), (12, 4), (10, 4), (3, 4), (7, 1), (48, 16)])
def test_blocked_l(n, f):
    t = SumTree.blocked(n, f)
    for i, j in all_pairs(n):
        assert t.lca_leaves(i, j) == min(n, f * (max(i, j) // f + 1)), (i, j)
    nodes, stack = [], [t]
    while stack:
        node = stack.pop()
        if not node.is_leaf:
            nodes.append(len(node.children))
            stack.extend(node.children)
    n_blocks = -(-n // f)
    if f > 1:
        assert len(nodes) == n_blocks
        assert max(nodes) == (f + 1 if n > f else n)


# --- SumTree -----------------------------------------------------------------------------------------
def test_constructors_shapes():
    assert SumTree.sequential(4).to_nested() == (((0, 1), 2), 3)
    assert SumTree.chunked(5, 2).to_nested() == (((0, 1), (2, 3)), 4)
    assert SumTree.chunked(7, 3).to_nested() == ((((0, 1), 2), ((3, 4), 5)), 6)
    assert SumTree.pairwise(5).to_nested() == (((0, 1), (2, 3)), 4)
    assert SumTree.pairwise(6).to_nested() == (((0, 1), (2, 3)), (4, 5))
    assert SumTree.blocked(6, 4).to_nested() == ((0, 1, 2, 3), 4, 5)
    assert SumTree.blocked(9, 4).to_nested() == (((0, 1, 2, 3), 4, 5, 6, 7), 8)
    assert SumTree.blocked(3, 4).to_nested() == (0, 1, 2)
    for n in (1, 2, 7):
        assert SumTree.blocked(n, 1) == SumTree.chunked(n, 1) == SumTree.chunked(n, n) == SumTree.sequential(n)
    assert SumTree.sequential(1) == SumTree.leaf(0) and SumTree.pairwise(1).to_nested() == 0
    with pytest.raises(ValueError, match="n must be >= 1"):
        SumTree.sequential(0)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        SumTree.chunked(4, 0)
    with pytest.raises(TypeError, match="block must be an int"):
        SumTree.blocked(4, 2.0)


def test_properties():
    t = SumTree.from_nested(((3, 1), (0, 2, 4)))
    assert t.leaves == (0, 2, 4, 1, 3)
    assert t.n_leaves == 5 and t.depth == 2 and not t.is_leaf and t.index is None
    assert [c.to_nested() for c in t.children] == [(0, 2, 4), (1, 3)]
    leaf = t.children[1].children[0]
    assert leaf.is_leaf and leaf.index == 1 and leaf.children == () and leaf.leaves == (1,)
    assert leaf.n_leaves == 1 and leaf.depth == 0
    assert t.lca_leaves(0, 4) == 3 and t.lca_leaves(1, 3) == 2 and t.lca_leaves(4, 3) == 5
    assert t.lca_leaves(2, 2) == 1
    with pytest.raises(ValueError, match="j = 9 is not a leaf"):
        t.lca_leaves(0, 9)
    with pytest.raises(TypeError, match="i must be an int"):
        t.lca_leaves(0.0, 1)


def test_equality_is_structural():
    a = SumTree.node(SumTree.leaf(2), SumTree.node(SumTree.leaf(1), SumTree.leaf(0)))
    b = SumTree.from_nested(((0, 1), 2))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.to_nested() == ((0, 1), 2)
    assert b != SumTree.from_nested((0, (1, 2)))
    assert b != SumTree.from_nested((0, 1, 2))
    assert SumTree.from_nested((0, 1, 2)) == SumTree.from_nested((2, 0, 1))
    assert SumTree.leaf(3) == SumTree(index=3) != SumTree.leaf(4)
    assert b != ((0, 1), 2)
    with pytest.raises(AttributeError):
        b.index = 4  # frozen


@pytest.mark.parametrize(
    "nested",
    [0, (0, 1), ((0, 1), 2), (5, (3, 7)), ((0, 1, 2, 3), 4, 5, 6, 7), [[1, 0], [3, 2, 4]], ((0, (1, 2)), (3, 4))],
)
def test_nested_round_trip(nested):
    t = SumTree.from_nested(nested)
    assert SumTree.from_nested(t.to_nested()) == t
    assert SumTree.from_nested(t.to_nested()).to_nested() == t.to_nested()

    def flatten(obj):
        return [obj] if isinstance(obj, int) else [k for o in obj for k in flatten(o)]

    assert sorted(t.leaves) == sorted(flatten(nested))


def test_from_nested_keeps_sumtree_items():
    part = SumTree.blocked(4, 4)
    assert SumTree.from_nested((part, 4)) == SumTree.blocked(5, 4)


@pytest.mark.parametrize(
    "nested, exc, match",
    [
        ((0, 0), ValueError, "leaf 0 more than once"),
        (((0, 1), (1, 2)), ValueError, "leaf 1 more than once"),
        ((0,), ValueError, "at least two items"),
        ((0, ()), ValueError, "at least two items"),
        ((0, -1), ValueError, "must be >= 0"),
        ((0, True), TypeError, "must be an int"),
        ((0, "1"), TypeError, "must be an int"),
        ((0, 1.0), TypeError, "must be an int"),
    ],
)
def test_from_nested_rejects(nested, exc, match):
    with pytest.raises(exc, match=match):
        SumTree.from_nested(nested)


def test_constructor_rejects():
    a, b = SumTree.leaf(0), SumTree.leaf(1)
    with pytest.raises(ValueError, match="at least two children"):
        SumTree()
    with pytest.raises(ValueError, match="at least two children"):
        SumTree(children=(a,))
    with pytest.raises(ValueError, match="not both"):
        SumTree(index=2, children=(a, b))
    with pytest.raises(TypeError, match="SumTree objects"):
        SumTree(children=(a, 1))
    with pytest.raises(TypeError, match="iterable of SumTree"):
        SumTree(children=a)
    with pytest.raises(ValueError, match="index 1 appears twice"):
        SumTree.node(SumTree.node(a, b), b)
    with pytest.raises(ValueError, match="index must be >= 0"):
        SumTree(index=-1)
    with pytest.raises(TypeError, match="index must be an int"):
        SumTree(index=True)
    assert SumTree(index=np.int32(4)).index == 4 and type(SumTree(index=np.int32(4)).index) is int
    assert SumTree(children=[a, b]).children == (a, b)


def test_rendering():
    t = SumTree.blocked(10, 4)
    text = str(t)
    assert text == format(t) == format(t, "tree") == t.render()
    lines = text.splitlines()
    assert lines[0] == "+ (3 operands)"
    assert len(lines) == 10 + 3  # one line per node
    for k in range(10):
        assert sum(line.rstrip().endswith(f"- {k}") for line in lines) == 1
    assert all(ord(ch) < 128 for ch in text)
    assert format(t, "compact") == t.compact() == "((0+1+2+3)+4+5+6+7)+8+9"
    assert SumTree.sequential(4).compact() == "((0+1)+2)+3"
    assert SumTree.pairwise(4).compact() == "(0+1)+(2+3)"
    assert str(SumTree.leaf(7)) == "7" and SumTree.leaf(7).compact() == "7"
    assert str(SumTree.sequential(3)) == "+\n|-- +\n|   |-- 0\n|   `-- 1\n`-- 2"
    assert repr(SumTree.sequential(3)) == "<SumTree 3 leaves, depth 2: (0+1)+2>"
    assert repr(SumTree.leaf(5)) == "<SumTree leaf 5>"
    assert repr(SumTree.sequential(100)) == "<SumTree 100 leaves, depth 99>"
    with pytest.raises(ValueError, match="format spec"):
        format(t, "json")


def test_deep_trees_do_not_recurse():
    """A sequential tree is as deep as it is long: every operation must work without recursion."""
    n = 3 * sys.getrecursionlimit()
    a, b = SumTree.sequential(n), SumTree.chunked(n, n)
    assert a == b and hash(a) == hash(b) and a.depth == n - 1
    assert a != SumTree.chunked(n, n // 2) and a != SumTree.chunked(n, n - 2)
    assert SumTree.from_nested(a.to_nested()) == a
    assert a.compact().count("+") == n - 1
    assert len(str(a).splitlines()) == 2 * n - 1
    assert a.leaves == tuple(range(n)) and a.lca_leaves(5, 17) == 18


def test_reverse_sequential_deep_recursion():
    """((x[n-1] + x[n-2]) + ...) + x[0]: the FPRev recursion is n - 1 levels deep here. It runs on its
    own stack, so it works even with a Python recursion limit far below n."""
    n = 80

    def rev_sum(x):
        return seq_sum(x[::-1].copy())

    want = SumTree.leaf(n - 1)
    for k in range(n - 2, -1, -1):
        want = SumTree.node(want, SumTree.leaf(k))
    assert want != SumTree.sequential(n)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 50)
    try:
        got = reveal_order(rev_sum, n)
    finally:
        sys.setrecursionlimit(limit)
    assert got == want
