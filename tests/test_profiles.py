"""Accelerator profile files: every shipped profile loads, the schema is strict, a copied and
edited profile loads by path, output modes and operand choices are enforced."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import lowprec as lp
from lowprec.accum import AccumModel, BlockFMA
from lowprec.profiles import ProfileError

GPUS_FORMATS = {
    "v100": ["fp16"],
    "a100": ["fp16", "bf16", "tf32"],
    "a2": ["fp16", "bf16", "tf32"],
    "ada": ["fp16", "bf16", "tf32", "fp8"],
    "h100": ["fp16", "bf16", "tf32", "fp8", "fp8-mma", "fp8-promote128"],
    "h200": ["fp16", "bf16", "tf32", "fp8", "fp8-mma"],
    "b200": ["fp16", "bf16", "tf32", "fp8"],
}


def test_catalogue_of_profiles():
    names = set(lp.available_profiles())
    expected = {f"nvidia-{g}-{f}" for g, fs in GPUS_FORMATS.items() for f in fs}
    expected |= {
        "ibm-fp8-2018",
        "tpu-like-bf16",
        "ocp-mxfp8-e4m3",
        "ocp-mxfp8-e5m2",
        "ocp-mxfp6-e2m3",
        "ocp-mxfp6-e3m2",
        "ocp-mxfp4",
        "ocp-mxint8",
    }
    assert expected <= names


@pytest.mark.parametrize("name", lp.available_profiles())
def test_every_profile_loads_and_describes_itself(name):
    p = lp.load_profile(name)
    assert p.name == name and p.summary and p.description and p.sources
    for out in p.outputs:
        m = p.model(out_format=out)
        assert isinstance(m, (AccumModel, BlockFMA))
    if name.startswith("nvidia-"):
        assert p.outputs[0] == "fp32"  # fp32 output is the default mode
        assert p.model().out_format == lp.format("fp32")
        # bf16/tf32 have no fp16 accumulator on NVIDIA hardware; promotion accumulates in fp32
        fp16_capable = name.split("-")[2] in ("fp16", "fp8") and "promote" not in name
        assert ("fp16" in p.outputs) == fp16_capable


def test_ibm_profile_parameters():
    m = lp.load_profile("ibm-fp8-2018").model()
    assert (m.a_format, m.b_format, m.acc, m.chunk, m.rounding.value) == (
        lp.format("e5m2"),
        lp.format("e5m2"),
        lp.format("e6m9"),
        64,
        "nearest",
    )


def test_operand_choices_and_output_modes():
    p = lp.load_profile("nvidia-h100-fp8")
    assert p.model(a_format="e5m2", b_format="e4m3fn").a_format == lp.format("e5m2")
    with pytest.raises(ValueError, match="takes a_format in"):
        p.model(a_format="fp16")
    with pytest.raises(ValueError, match="no bf16 output mode"):
        p.model(out_format="bf16")
    with pytest.raises(ValueError, match="fixes a_format"):
        lp.load_profile("nvidia-a100-bf16").model(a_format="fp16")
    with pytest.raises(ValueError, match="no fp16 output mode"):
        lp.dot(np.ones(4), np.ones(4), profile="nvidia-a100-tf32", out_format="fp16")


def test_copy_edit_and_load_by_path(tmp_path):
    src = lp.profile_path("nvidia-a100-fp16")
    dst = tmp_path / "my-a100.toml"
    shutil.copy(src, dst)
    text = dst.read_text().replace("block = 8", "block = 4").replace('name = "nvidia-a100-fp16"', 'name = "my-a100"')
    dst.write_text(text)
    p = lp.load_profile(str(dst))
    assert p.name == "my-a100" and p.model().block == 4
    assert p.model() == lp.load_profile("nvidia-a100-fp16").model().replace(block=4)

    # the edit changes the summation tree: fused nodes of 4 products instead of 8
    def fn(prof):
        return lambda v: lp.dot(
            v / np.where(np.abs(v) > 1, 2.0**15, 1.0), np.where(np.abs(v) > 1, 2.0**15, 1.0), profile=prof
        )

    assert lp.reveal_order(fn(dst), 8, big=2.0**30) == lp.SumTree.blocked(8, 4)
    assert lp.reveal_order(fn("nvidia-a100-fp16"), 8, big=2.0**30) == lp.SumTree.blocked(8, 8)
    # edits on disk are seen on the next load
    dst.write_text(text.replace("block = 4", "block = 2"))
    assert lp.load_profile(str(dst)).model().block == 2


BASE = lp.profile_path("nvidia-v100-fp16").read_text()


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda t: "colour = 3\n" + t, "unknown key.*colour.*top level"),
        (lambda t: t.replace("[block_fma]", "[block_fma]\nblok = 4"), r"unknown key.*blok.*\[block_fma\]"),
        (lambda t: t.replace("[outputs.fp32]", "[outputs.fp32]\nrounding_mode = 1"), "rounding_mode"),
        (lambda t: t.replace("[operands]", "[operands]\nc_format = 'fp16'"), "c_format"),
        (lambda t: t.replace("schema = 1", "schema = 2"), "schema must be 1"),
        (lambda t: t.replace('kind = "block-fma"', 'kind = "magic"'), "kind must be"),
        (lambda t: t.replace("summary = ", "summ = "), "summ"),
        (lambda t: t.replace("block = 4", "block = 0"), "block must be >= 1"),
        (lambda t: t.replace("block = 4", "block = 'four'"), "block must be an int"),
        (lambda t: t.replace('rounding = "toward_zero"', 'rounding = "up"'), "toward_zero' or 'nearest"),
        (lambda t: t.replace('a_format = "fp16"', 'a_format = "fp32"'), "at most 11 significant bits"),
        (lambda t: t + "\n[accumulator]\nformat = 'fp32'\n", "not \\[accumulator\\]"),
        (lambda t: t.replace("[outputs.fp32]", "[outputs.fp32"), "malformed TOML"),
        (lambda t: t.split("[outputs.fp32]")[0], "at least one output mode"),
        (lambda t: t.replace('rounding = "nearest"\n', ""), r"\[outputs.fp16\] needs rounding"),
    ],
)
def test_malformed_profiles_are_rejected(tmp_path, edit, match):
    path = tmp_path / "bad.toml"
    path.write_text(edit(BASE))
    with pytest.raises(ProfileError, match=match) as info:
        lp.load_profile(str(path))
    assert "bad.toml" in str(info.value)


def test_per_add_profile_schema(tmp_path):
    t = lp.profile_path("ibm-fp8-2018").read_text()
    (tmp_path / "a.toml").write_text(t.replace("chunk = 64", "chunk = 32"))
    assert lp.load_profile(tmp_path / "a.toml").model().chunk == 32
    (tmp_path / "b.toml").write_text(t.replace("chunk = 64", "chunk = -1"))
    with pytest.raises(ProfileError, match="chunk must be >= 1"):
        lp.load_profile(tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text(t.replace("[accumulator]", "[accumulator]\nfomat = 'fp16'"))
    with pytest.raises(ProfileError, match="fomat"):
        lp.load_profile(tmp_path / "c.toml")


def test_bad_profile_arguments():
    with pytest.raises(ValueError, match="unknown profile 'nvidia-h900-fp8'; available"):
        lp.load_profile("nvidia-h900-fp8")
    with pytest.raises(ValueError, match="does not exist"):
        lp.load_profile("/nonexistent/x.toml")
    with pytest.raises(TypeError, match="profile must be"):
        lp.load_profile(3)
    with pytest.raises(TypeError, match="profile name must be a str"):
        lp.profile_path(None)


def test_mx_and_tpu_profiles_follow_their_models():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 64)).astype(np.float32)
    B = rng.standard_normal((64, 5)).astype(np.float32)
    got = lp.matmul(A, B, profile="ocp-mxfp8-e4m3")
    Aq = lp.mx_quantize(A, "mxfp8_e4m3", axis=-1)
    Bq = lp.mx_quantize(B, "mxfp8_e4m3", axis=0)
    assert np.array_equal(got, lp.matmul(Aq, Bq, acc="fp32"))
    got = lp.matmul(A, B, profile="tpu-like-bf16")
    assert np.array_equal(got, lp.matmul(lp.quantize(A, "bf16"), lp.quantize(B, "bf16"), acc="fp32"))


def test_per_add_profile_keeps_operand_formats_with_another_output():
    m = lp.load_profile("tpu-like-bf16").model(out_format="fp16")
    assert m.a_format == lp.format("bf16") and m.out_format == lp.format("fp16")
    a = np.array([1 + 2.0**-10], np.float32)
    assert lp.dot(a, np.ones(1, np.float32), profile="tpu-like-bf16", out_format="fp32")[()] == 1.0


def test_promotion_without_scaling(tmp_path):
    t = lp.profile_path("nvidia-h100-fp8-promote128").read_text().replace("scale_block = 128", "scale_block = 0")
    (tmp_path / "p.toml").write_text(t.replace("every = 128", "every = 64"))
    m = lp.load_profile(tmp_path / "p.toml").model()
    assert m.promotion.scale_block is None and m.promotion.every == 64
    A = np.ones((1, 128), np.float32)
    # two promoted slices of 64 ones: 64 + 64 exactly
    assert lp.matmul(A, A.T, profile=tmp_path / "p.toml")[0, 0] == 128.0
