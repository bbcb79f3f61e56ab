"""The command line: python -m lowprec formats | quantize | config."""

from __future__ import annotations

import subprocess
import sys

import lowprec as lp


def run(*args):
    return subprocess.run([sys.executable, "-m", "lowprec", *args], capture_output=True, text=True)


def test_formats_table_lists_the_catalogue():
    r = run("formats")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    for name in lp.catalogue():
        assert any(line.split()[0] == name for line in lines[2:]), name
    row = next(line for line in lines if line.startswith("e4m3fn "))
    assert row.split()[1:8] == ["float", "8", "4", "3", "7", "fn", "448"]


def test_quantize_shows_value_code_and_error():
    r = run("quantize", "464", "--format", "e4m3fn")
    assert r.returncode == 0
    out = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert out["value"] == "448.0"
    assert out["code"] == "0x7e  0b01111110"
    assert out["error"].startswith("-16")
    r = run("quantize", "0x1.8p-10", "-f", "e4m3fn", "-r", "up")
    assert "value      0.001953125" in r.stdout  # 1.5 * 2^-10 up to the subnormal 2^-9
    r = run("quantize", "3", "-f", "e8m0fnu", "-r", "nearest_away")
    assert "value      4.0" in r.stdout


def test_bad_arguments_exit_2_with_one_line():
    for args in (
        ["quantize", "abc", "-f", "e4m3fn"],
        ["quantize", "1", "-f", "nope"],
        ["quantize", "1"],
        ["quantize", "1", "-f", "e4m3fn", "-r", "sideways"],
        ["frobnicate"],
        [],
    ):
        r = run(*args)
        assert r.returncode == 2, args
        assert len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr, (args, r.stderr)


def test_config():
    r = run("config")
    assert r.returncode == 0 and "native: True" in r.stdout and "isa:" in r.stdout


def test_profiles_list_and_show():
    r = run("profiles")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == len(lp.available_profiles())
    assert any(line.startswith("ibm-fp8-2018 ") and "chunk-64" in line for line in lines)
    r = run("profiles", "nvidia-h100-fp8")
    assert r.returncode == 0
    assert 'name = "nvidia-h100-fp8"' in r.stdout and "extra_align_bits = -10" in r.stdout
    r = run("profiles", "nvidia-z9-fp8")
    assert r.returncode == 2 and "unknown profile 'nvidia-z9-fp8'" in r.stderr
