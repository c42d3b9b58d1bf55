"""INT8 recipes chosen from the CPU's INT8 class: the class per flag set, the table, keys, records, warnings,
and on a CPU without VNNI the accuracy the chosen recipe holds on real weights and photos."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, edgebench

from edgebench.portable import cpu_int8
from edgebench.portable.cpu_int8 import CLASSES, classify, read_flags
from edgebench.portable.errors import UsageError
from edgebench.quantize import recipes

ROOT = Path(__file__).resolve().parent.parent

# flag sets as /proc/cpuinfo prints them (trimmed to what matters, plus some noise)
ZEN3 = ["fpu", "sse", "sse2", "ssse3", "fma", "sse4_1", "sse4_2", "avx", "f16c", "avx2", "bmi2", "sha_ni", "vaes", "vpclmulqdq"]
SAPPHIRE_RAPIDS = ZEN3 + ["avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx_vnni"]
CASCADE_LAKE = ZEN3 + ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512_vnni"]
ALDER_LAKE = ZEN3 + ["avx_vnni"]
SKYLAKE_SP = ZEN3 + ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
NEOVERSE_N2 = ["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "asimddp", "sve", "sve2", "i8mm", "bf16"]
CORTEX_A72 = ["fp", "asimd", "evtstrm", "crc32", "cpuid"]


@pytest.mark.parametrize(("flags", "machine", "name", "evidence"), [
    (SAPPHIRE_RAPIDS, "x86_64", "x86-amx", ("amx_int8", "avx512_vnni", "avx_vnni")),
    (CASCADE_LAKE, "x86_64", "x86-vnni", ("avx512_vnni",)),
    (ALDER_LAKE, "x86_64", "x86-vnni", ("avx_vnni",)),
    (SKYLAKE_SP, "x86_64", "x86-avx512", ("avx512bw", "no vnni")),
    (ZEN3, "x86_64", "x86-avx2", ("avx2", "no vnni")),
    (ZEN3, "AMD64", "x86-avx2", ("avx2", "no vnni")),  # Windows spells the machine so
    (["sse4_2", "ssse3"], "x86_64", "other", ("x86 without avx2",)),
    (NEOVERSE_N2, "aarch64", "arm64", ("dotprod", "i8mm", "sve", "sve2")),
    (CORTEX_A72, "aarch64", "arm64", ()),
    ([], "arm64", "arm64", ()),  # macOS: no /proc/cpuinfo
    (ZEN3, "riscv64", "other", ()),
])
def test_class_per_flag_set(flags, machine, name, evidence):
    found = classify(flags, machine)
    assert (found.name, found.evidence) == (name, evidence)
    assert found.saturates_u8s8 == (name in ("x86-avx2", "x86-avx512"))
    assert found.to_dict()["name"] == name and name in found.describe()


@pytest.mark.parametrize(("flags", "machine", "ort", "overflow_fix"), [
    (SAPPHIRE_RAPIDS, "x86_64", "u8s8", "first-layer"),
    (CASCADE_LAKE, "x86_64", "u8s8", "first-layer"),
    (ALDER_LAKE, "x86_64", "u8s8", "first-layer"),
    (SKYLAKE_SP, "x86_64", "u8u8", "enable"),
    (ZEN3, "x86_64", "u8u8", "enable"),
    (NEOVERSE_N2, "aarch64", "u8s8", "disable"),
])
def test_auto_recipe_per_class(flags, machine, ort, overflow_fix):
    cpu = classify(flags, machine)
    chosen = recipes.select("ort", cpu), recipes.select("openvino", cpu)
    assert [r.name for r in chosen] == [ort, overflow_fix]
    for r in chosen:
        assert r.chosen_by == "auto" and r.cpu_int8 == cpu.name and r.reason and r.measured and r.warning is None
    if cpu.saturates_u8s8:  # the saturating recipe is never the automatic one there
        assert ort not in recipes.FORCED_RISK["ort"] and overflow_fix not in recipes.FORCED_RISK["openvino"]
        assert "VPMADDUBSW" in chosen[0].reason


def test_every_class_has_a_row_citing_a_measurement():
    assert set(recipes.TABLE) == set(CLASSES)
    for name, row in recipes.TABLE.items():
        assert row.ort.name in recipes.ORT_RECIPES and row.openvino.name in recipes.OVERFLOW_FIXES, name
        assert all(c.measured and c.reason for c in (row.ort, row.openvino)), name


def test_forced_recipe_warns_only_where_it_saturates():
    zen3, spr = classify(ZEN3, "x86_64"), classify(SAPPHIRE_RAPIDS, "x86_64")
    forced = recipes.select("ort", zen3, "u8s8")
    assert forced.chosen_by == "user" and "VPMADDUBSW saturation" in forced.warning and "5.14" in forced.warning
    assert recipes.select("openvino", zen3, "first-layer").warning
    assert recipes.select("ort", spr, "u8s8").warning is None  # auto there: no warning, chosen_by auto
    assert recipes.select("ort", spr, "u8s8").chosen_by == "user"
    assert recipes.select("ort", spr, "u8u8").warning is None  # not saturating, just not the default
    with pytest.raises(UsageError, match="--int8-recipe must be auto or one of"):
        recipes.select("ort", zen3, "u4s4")
    with pytest.raises(UsageError, match="--overflow-fix"):
        recipes.select("openvino", zen3, "sometimes")


def test_read_flags_x86_arm_and_unreadable(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd49\n")
    assert read_flags(x86) == {"fpu", "avx2", "fma"}
    assert read_flags(arm) == {"fp", "asimd", "asimddp", "i8mm"}
    assert read_flags(tmp_path / "missing") == set()
    assert classify(read_flags(arm), "aarch64").evidence == ("dotprod", "i8mm")


def test_doctor_shows_the_class_and_the_recipes():
    proc = edgebench("doctor", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    cpu = cpu_int8.detect()
    assert f"CPU INT8 class: {cpu.name}" in proc.stdout
    report = json.loads(edgebench("doctor", "--json", cwd=ROOT).stdout)
    assert report["host"]["cpu_int8"]["name"] == cpu.name
    assert report["int8_recipes"]["ort"]["name"] == recipes.TABLE[cpu.name].ort.name
    assert report["int8_recipes"]["openvino"]["name"] == recipes.TABLE[cpu.name].openvino.name


# ---------------------------------------------------------------- keys, manifest, records (real quantization)

def test_content_keys_of_a_known_input_do_not_change():
    """The keys of a fixed manifest, calibration set and tool versions, as calibrate made them before its plan
    was split out: a key that changes rebuilds every user's INT8 engines, so it changes only on purpose."""
    from edgebench.backends import runtime_class
    from edgebench.quantize.int8 import content_keys, key_base
    zen3 = classify(ZEN3, "x86_64")
    chosen = {"ort": recipes.select("ort", zen3), "openvino": recipes.select("openvino", zen3, "first-layer")}
    manifest = {"files": {"fp32/model.onnx": {"sha256": "ab" * 32}}, "preprocess": {"size": 224, "mean": [0.5] * 3}}
    versions = {"onnxruntime": "1.20.1", "openvino": "2025.1.0", "nncf": "2.16.0"}
    own, own_versions = {"executorch": runtime_class("executorch")}, {"executorch": "0.7.0"}

    def keys(max_drop):
        base = key_base(manifest, "cd" * 32, "minmax", 0, 300, max_drop)
        return {m: k[:16] for m, k in content_keys(base, chosen, versions, own, own_versions, "auto").items()}
    assert keys(None) == {"ort": "ef05ee6f80119b17", "qdq": "f9e450d10baf304b", "openvino": "51024f1a0e075223",
                          "executorch": "127e908cb132f3be"}
    assert keys(1.5) == {"ort": "132840598ad2d05e", "qdq": "f9e450d10baf304b", "openvino": "cb53b94ced27b4a1",
                         "executorch": "35f10ab51deb63f5"}  # the Q/DQ model's key ignores --max-drop


@pytest.fixture(scope="module")
def small_data(data_dir, tmp_path_factory) -> Path:
    """24 labelled real photos."""
    folder = tmp_path_factory.mktemp("photos")
    photos = sorted(data_dir.glob("*.jpg"))[:24]
    names = {p.name for p in photos}
    lines = [line for line in (data_dir / "labels.csv").read_text().splitlines()[1:] if line.split(",")[0] in names]
    for p in photos:
        shutil.copy(p, folder / p.name)
    (folder / "labels.csv").write_text("file,class_index,wnid,name\n" + "\n".join(lines) + "\n")
    return folder


@pytest.mark.integration
def test_keys_follow_the_recipe_and_a_moved_folder_is_rebuilt(small_data, tmp_path, monkeypatch, caplog,
                                                              artifact_cache):
    """Keys cover the recipe (not the CPU); an engine built on another class that needs another recipe is
    rebuilt with a message saying why; the TensorRT Q/DQ model stays symmetric S8S8 whatever the CPU."""
    from edgebench.quantize.int8 import calibrate
    art = artifact_cache.clone(artifact_cache.export("squeezenet1_1", data=small_data), tmp_path)
    keys = {}
    for forced in ("u8s8", "u8u8", "u8s8-7bit"):
        calibrate(art, ("ort",), small_data, num=8, int8_recipe=forced)
        entry = art.engine_entry("ort", "int8")
        keys[forced] = entry["key"]
        build = entry["build"]
        assert build["recipe"]["name"] == forced and build["recipe"]["reason"]
        want = recipes.ORT_RECIPES[forced]
        assert (build["activation_type"], build["weight_type"], build["reduce_range"]) == (
            want.activation_type, want.weight_type, want.reduce_range)
        assert art.engine_entry("qdq", "int8")["build"]["activation_type"] == "QInt8"
    assert len(set(keys.values())) == 3
    fixes = {}
    for fix in ("first-layer", "enable"):
        calibrate(art, ("openvino",), small_data, num=8, overflow_fix=fix)
        fixes[fix] = art.engine_entry("openvino", "int8")
        assert fixes[fix]["build"]["overflow_fix"] == fix == fixes[fix]["build"]["recipe"]["name"]
    assert fixes["first-layer"]["key"] != fixes["enable"]["key"]

    # built on an AMX machine (auto: u8s8, first-layer), then moved to this folder's current CPU
    amx = classify(SAPPHIRE_RAPIDS, "x86_64")
    monkeypatch.setattr(cpu_int8, "detect", lambda: amx)
    calibrate(art, ("ort", "openvino"), small_data, num=8)
    built_on_amx = {r: art.engine_entry(r, "int8")["key"] for r in ("ort", "openvino", "qdq")}
    assert art.engine_entry("ort", "int8")["build"]["recipe"]["cpu_int8"] == "x86-amx"
    avx2 = classify(ZEN3, "x86_64")
    monkeypatch.setattr(cpu_int8, "detect", lambda: avx2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        calibrate(art, ("ort", "openvino"), small_data, num=8)
    moved = {r: art.engine_entry(r, "int8")["key"] for r in ("ort", "openvino", "qdq")}
    assert moved["ort"] != built_on_amx["ort"] and moved["openvino"] != built_on_amx["openvino"]
    assert moved["qdq"] == built_on_amx["qdq"]  # the GPU's model does not depend on the CPU
    said = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(said) == 2 and all("x86-amx" in m and "x86-avx2" in m and "VPMADDUBSW" in m for m in said), said
    # a CPU of another class that gets the same recipe reuses the engines, silently
    caplog.clear()
    monkeypatch.setattr(cpu_int8, "detect", lambda: classify(SKYLAKE_SP, "x86_64"))
    with caplog.at_level(logging.WARNING):
        calibrate(art, ("ort", "openvino"), small_data, num=8)
    assert {r: art.engine_entry(r, "int8")["key"] for r in ("ort", "openvino", "qdq")} == moved
    assert not caplog.records


CLASS_FLAGS = {"x86-amx": (SAPPHIRE_RAPIDS, "x86_64"), "x86-vnni": (CASCADE_LAKE, "x86_64"),
               "x86-avx512": (SKYLAKE_SP, "x86_64"), "x86-avx2": (ZEN3, "x86_64"), "arm64": (NEOVERSE_N2, "aarch64"),
               "other": (["sse4_2"], "x86_64")}


def test_every_class_of_the_table_has_a_flag_set_here():
    assert set(CLASS_FLAGS) == set(recipes.TABLE)
    assert all(classify(*flags).name == name for name, flags in CLASS_FLAGS.items())


@pytest.fixture(scope="module")
def squeezenet_fp32(small_data, tmp_path_factory):
    from edgebench.build.export import export_model
    return export_model("squeezenet1_1", ("ort",), "fp32", "random", None, tmp_path_factory.mktemp("sq"), small_data)


@pytest.mark.parametrize("cls", sorted(CLASS_FLAGS))
def test_the_recipe_says_what_was_asked_for_on_every_class(cls, squeezenet_fp32, small_data, monkeypatch, caplog):
    """On each CPU class: ``auto`` records ``chosen_by: auto``; then ``u8s8`` forced records ``chosen_by: user``,
    even where u8s8 is what ``auto`` picks and the engine is reused (every VNNI CPU); the saturation warning
    appears only where u8s8 saturates. The records read the recipe through ``Artifacts.int8_recipe``."""
    from edgebench.quantize.int8 import calibrate
    cpu = classify(*CLASS_FLAGS[cls])
    monkeypatch.setattr(cpu_int8, "detect", lambda: cpu)
    art = squeezenet_fp32
    calibrate(art, ("ort",), small_data, num=8)
    recipe = art.int8_recipe("ort")
    assert (recipe["name"], recipe["chosen_by"], recipe["cpu_int8"]) == (recipes.TABLE[cls].ort.name, "auto", cls)
    assert recipe["reason"] == recipes.TABLE[cls].ort.reason
    auto_key = art.engine_entry("ort", "int8")["key"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        calibrate(art, ("ort",), small_data, num=8, int8_recipe="u8s8")
    recipe = art.int8_recipe("ort")
    assert (recipe["name"], recipe["chosen_by"], recipe["cpu_int8"]) == ("u8s8", "user", cls)
    assert (art.engine_entry("ort", "int8")["key"] == auto_key) == (recipes.TABLE[cls].ort.name == "u8s8")
    warnings = [r.getMessage() for r in caplog.records if "VPMADDUBSW saturation" in r.getMessage()]
    assert len(warnings) == (1 if cpu.saturates_u8s8 else 0), warnings


def test_run_records_the_recipe_and_warns_on_a_forced_saturating_one(small_data, tmp_path):
    """The same through the real CLI on this machine's own CPU, whatever its class."""
    cpu = cpu_int8.detect()
    common = ("--runtime", "ort", "--model", "squeezenet1_1", "--precision", "int8", "--weights", "random",
              "--data", str(small_data), "--num", "8", "--warmup", "1", "--warmup-seconds", "0", "--iterations", "3",
              "--min-seconds", "0.1", "--retries", "0", "--out", str(tmp_path / "art"),
              "--results", str(tmp_path / "r.jsonl"), "--json")
    proc = edgebench("run", *common, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    recipe = record["int8_recipe"]
    assert recipe["name"] == recipes.TABLE[cpu.name].ort.name and recipe["chosen_by"] == "auto"
    assert recipe["reason"] == recipes.TABLE[cpu.name].ort.reason and recipe["cpu_int8"] == cpu.name
    assert record["int8_engine"]["recipe"] == recipe and record["host"]["cpu_int8"]["name"] == cpu.name
    assert "saturation" not in proc.stderr

    proc = edgebench("run", *common, "--int8-recipe", "u8s8", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["int8_recipe"]["name"] == "u8s8" and record["int8_recipe"]["chosen_by"] == "user"
    warnings = [line for line in proc.stderr.splitlines() if "VPMADDUBSW saturation" in line]
    assert len(warnings) == (1 if cpu.saturates_u8s8 else 0), proc.stderr

    proc = edgebench("run", "--runtime", "ort", "--model", "squeezenet1_1", "--int8-recipe", "u8u8",
                     "--out", str(tmp_path / "art"), cwd=ROOT)
    assert_one_line_error(proc, "--int8-recipe only applies to INT8")
    proc = edgebench("calibrate", "squeezenet1_1", "--overflow-fix", "always", "--data", str(small_data), cwd=ROOT)
    assert proc.returncode == 2 and "'always' is not one of" in proc.stderr


@pytest.mark.integration
@pytest.mark.skipif(not cpu_int8.detect().saturates_u8s8,
                    reason=f"the saturation needs an x86 CPU without VNNI; this one is {cpu_int8.detect().describe()}")
def test_auto_recipe_holds_lite0_on_a_cpu_without_vnni(weights_dir, data_dir, tmp_path):
    """On a CPU where U8S8 saturates, tf_efficientnet_lite0's ORT INT8 with ``auto`` agrees with FP32
    on more than 95% of 100 shared photos (U8S8 there: 0.874 on 700)."""
    from edgebench.bench.accuracy import evaluate_model
    from edgebench.build.export import export_model
    from edgebench.quantize.int8 import calibrate
    art = export_model("tf_efficientnet_lite0", ("ort",), "fp32", "auto", str(weights_dir), tmp_path, data_dir)
    calibrate(art, ("ort",), data_dir, num=100)
    assert art.engine_entry("ort", "int8")["build"]["recipe"]["name"] == recipes.TABLE[cpu_int8.detect().name].ort.name
    summary = evaluate_model(art, "ort", "int8", data_dir, threads=2, limit=100)
    pair = summary["comparisons"]["ort/int8 vs ort/fp32"]
    assert summary["images"] == 100 and pair["top1_agreement"] > 0.95, pair
