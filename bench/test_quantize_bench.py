"""Benchmarks of ``lp.quantize`` against memcpy and peers (ml_dtypes, torch casts, qtorch).

Groups (one pytest-benchmark table each, all on the same arrays):

* ``float32 nearest``    -- memcpy, lowprec round-to-nearest, ml_dtypes / torch / qtorch casts;
* ``float32 stochastic`` -- memcpy, lowprec exact SR and sr_bits=8, qtorch stochastic;
* ``float64 nearest``    -- memcpy of float64, lowprec from float64, ml_dtypes / torch casts;
* ``float64 stochastic`` -- memcpy of float64, lowprec exact SR from float64.

lowprec rows named ``lowprec-...`` write into a preallocated ``out=`` (the kernel; compare with
memcpy), rows named ``lowprec_alloc-...`` are the allocating call (compare with the peers, which
allocate their results too).
"""

from __future__ import annotations

import pytest
from _bench_common import (
    F64_FORMATS,
    FORMATS,
    MEMCPY,
    PeerUnavailable,
    lowprec_case,
    peer_case,
)

ROUNDS_FAST = 10  # memcpy and lowprec
ROUNDS_PEER = 5  # ml_dtypes, torch, qtorch nearest
ROUNDS_SLOW = 3  # qtorch stochastic (~0.7 s a call at 2^24)

GROUPS = {
    "float32 nearest": ("float32", ("nearest",)),
    "float32 stochastic": ("float32", ("sr", "sr8")),
    "float64 nearest": ("float64", ("nearest",)),
    "float64 stochastic": ("float64", ("sr",)),
}


def _nbytes(arrays, dtype):
    x, _ = arrays.pair(dtype)
    return 2 * x.nbytes  # read + written


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("method", list(MEMCPY))
def test_memcpy(run, arrays, group, method):
    dtype = GROUPS[group][0]
    run(MEMCPY[method](arrays, dtype), group, ROUNDS_FAST, bytes_moved=_nbytes(arrays, dtype))


_LOWPREC = [
    (g, fmt, mode)
    for g, (dt, modes) in GROUPS.items()
    for mode in modes
    for fmt in (FORMATS if dt == "float32" else F64_FORMATS)
]


@pytest.mark.parametrize("group,fmt,mode", _LOWPREC, ids=[f"{GROUPS[g][0]}-{m}-{f}" for g, f, m in _LOWPREC])
def test_lowprec(run, arrays, group, fmt, mode):
    dtype = GROUPS[group][0]
    run(lowprec_case(arrays, dtype, fmt, mode), group, ROUNDS_FAST, bytes_moved=_nbytes(arrays, dtype))


@pytest.mark.parametrize("group,fmt,mode", _LOWPREC, ids=[f"{GROUPS[g][0]}-{m}-{f}" for g, f, m in _LOWPREC])
def test_lowprec_alloc(run, arrays, group, fmt, mode):
    dtype = GROUPS[group][0]
    run(lowprec_case(arrays, dtype, fmt, mode, out=False), group, ROUNDS_FAST)


_PEERS = [
    (p, g, fmt, mode)
    for p in ("ml_dtypes", "torch", "qtorch")
    for g, (dt, modes) in GROUPS.items()
    for mode in modes
    if mode != "sr8"
    for fmt in (FORMATS if dt == "float32" else F64_FORMATS)
]


@pytest.mark.parametrize("peer,group,fmt,mode", _PEERS, ids=[f"{p}-{GROUPS[g][0]}-{m}-{f}" for p, g, f, m in _PEERS])
def test_peer(run, arrays, peer, group, fmt, mode):
    dtype = GROUPS[group][0]
    try:
        fn = peer_case(peer, arrays, dtype, fmt, mode)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))
    rounds = ROUNDS_SLOW if (peer == "qtorch" and mode != "nearest") else ROUNDS_PEER
    run(fn, group, rounds)
