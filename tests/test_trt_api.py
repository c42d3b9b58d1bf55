"""Every TensorRT name the code uses, on the path for a release, exists in that release's Python bindings.

No GPU and no TensorRT: the names come from the pybind11 source of TensorRT 8.5.2 (JetPack 5), 10.3.0
(JetPack 6) and 11.1 (desktop) in ../shared/reference/tensorrt, parsed by tests/trt_bindings.py; the
uses come from edgebench.portable.tensorrt.api (the table the TensorRT modules branch on) and from the
modules' own source (ast), so a name the table does not carry fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import trt_bindings
from conftest import ROOT, SHARED

from edgebench.portable.errors import UsageError
from edgebench.portable.tensorrt import api
from edgebench.portable.tensorrt import rules as tc

REFERENCE = SHARED / "reference" / "tensorrt"
RELEASES = {"8.5.2": "8.5.2", "10.3.0": "10.3.0", "11.1": "11.1.0"}  # reference folder -> version string
MODULES = [ROOT / "edgebench" / "portable" / "tensorrt" / "engine.py", ROOT / "edgebench" / "backends" / "tensorrt" / "runtime.py",
           ROOT / "edgebench" / "deploy" / "runner.py"]
# enclosing `if` tests, functions or classes that also guard a path (its own name must be in an `if` test)
GUARD_WORDS = {"legacy_calibrator": ("entropy_calibrator",)}


@pytest.fixture(scope="module")
def bindings() -> dict[str, trt_bindings.Bindings]:
    if not REFERENCE.is_dir():
        pytest.skip(f"no TensorRT bindings source at {REFERENCE} (../shared/reference/tensorrt is absent)")
    return {folder: trt_bindings.parse(REFERENCE / folder) for folder in RELEASES}


def test_parser_reads_what_each_release_binds(bindings):
    """The parser against facts read in the headers: what 11.x removed, what 10.9 added, inheritance."""
    b85, b103, b111 = bindings["8.5.2"], bindings["10.3.0"], bindings["11.1"]
    assert all(b.has("Logger.WARNING") and b.has("BuilderFlag.TF32") for b in bindings.values())
    assert b85.has("BuilderFlag.FP16") and b103.has("BuilderFlag.INT8") and not b111.has("BuilderFlag.FP16")
    assert b103.has("IInt8EntropyCalibrator2.get_batch") and not b111.has("IInt8EntropyCalibrator2")
    assert not b85.has("HardwareCompatibilityLevel") and b103.has("HardwareCompatibilityLevel.AMPERE_PLUS")
    assert not b103.has("HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY")
    assert b111.has("HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY")
    assert b103.has("ICudaEngine.device_memory_size_v2") and not b111.has("ICudaEngine.device_memory_size")
    assert b85.has("NetworkDefinitionCreationFlag.EXPLICIT_BATCH")
    assert not b111.has("NetworkDefinitionCreationFlag.EXPLICIT_BATCH")


def test_every_name_exists_where_its_path_runs(bindings):
    missing = [f"{name} (path {feature}, taken on {api.since(feature)}+{_until(feature)}) is not bound in "
               f"TensorRT {folder}"
               for folder, b in bindings.items() for feature, f in api.FEATURES.items()
               if api.uses(feature, RELEASES[folder])
               for name, source in f.names.items() if source in api.REFERENCE_SOURCES and not b.has(name)]
    assert not missing, "\n".join(missing)


def test_names_outside_the_reference_are_really_outside(bindings):
    """Names declared as bound elsewhere (pyGraph, pyOnnx, the package) must not hide a checkable one."""
    outside = {n for f in api.FEATURES.values() for n, src in f.names.items() if src not in api.REFERENCE_SOURCES}
    assert outside
    assert not [n for n in outside for b in bindings.values() if b.has(n)]


def _until(feature: str) -> str:
    until = api.FEATURES[feature].until
    return f", not {until[0]}.{until[1]}+" if until else ""


# ---------------------------------------------------------------- the modules' own uses (ast)

def _uses(path: Path):
    """(trt chains, api string arguments, attribute uses on TensorRT objects) in one module, with guards.

    A TensorRT object is a value made by a ``trt.`` call or by a method of another TensorRT object;
    a name (or ``self.`` attribute) bound to one anywhere in the module counts as one everywhere in it.
    """
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    objects: set[str] = set()

    def is_trt(expr) -> bool:
        if isinstance(expr, ast.Call):
            return is_trt(expr.func)
        if isinstance(expr, ast.Attribute):
            return ast.unparse(expr) in objects or is_trt(expr.value)
        return isinstance(expr, ast.Name) and (expr.id == "trt" or expr.id in objects)

    assignments = [(t, node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets]
    while True:
        new = {ast.unparse(t) for t, value in assignments if is_trt(value) and isinstance(t, (ast.Name, ast.Attribute))}
        if new <= objects:
            break
        objects |= new
    objects.discard("self.trt")

    def guards(node) -> tuple[str, str]:
        """(the tests of the enclosing ifs, the names of the enclosing functions and classes)."""
        tests, names = [], []
        while node in parents:
            parent = parents[node]
            if isinstance(parent, ast.If) and node is not parent.test:
                tests.append(ast.unparse(parent.test))
            elif isinstance(parent, (ast.FunctionDef, ast.ClassDef)):
                names.append(parent.name)
            node = parent
        return " | ".join(tests), " | ".join(names)

    chains, strings, attributes = [], [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and ast.unparse(node.func.value) in ("api", "tc.api") and node.func.attr in ("uses", "resolve"):
            arg = node.args[0] if node.func.attr == "uses" else node.args[1]
            if isinstance(arg, ast.Constant):
                strings.append((node.func.attr, arg.value))
        if not isinstance(node, ast.Attribute) or isinstance(parents.get(node), ast.Attribute):
            continue
        parts, value = [node.attr], node.value
        while isinstance(value, ast.Attribute) and ast.unparse(value) != "self.trt":
            parts.insert(0, value.attr)
            value = value.value
        if ast.unparse(value) in ("trt", "self.trt"):
            chains.append((".".join(p for p in parts if p != "__init__"), guards(node)))
        elif is_trt(node.value):
            attributes.append((node.attr, guards(node), f"{path.name}:{node.lineno}"))
    return chains, strings, attributes


def _guarded(feature: str, guards: tuple[str, str]) -> bool:
    """A path every release takes needs no guard; another must sit in an ``if`` naming it (or in a
    function or class named by GUARD_WORDS)."""
    f = api.FEATURES[feature]
    if f.since <= api.OLDEST and f.until is None:
        return True
    tests, names = guards
    return feature in tests or any(word in tests or word in names for word in GUARD_WORDS.get(feature, ()))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_modules_use_only_listed_names_under_their_guards(module):
    chains, strings, attributes = _uses(module)
    problems = []
    for chain, guards in chains:
        try:
            feature = api.feature_of(chain)
        except LookupError as exc:
            problems.append(str(exc))
            continue
        if not _guarded(feature, guards):
            problems.append(f"trt.{chain} (path {feature}) is used outside an `if` on {feature}")
    for kind, value in strings:
        if kind == "uses" and value not in api.FEATURES:
            problems.append(f"api.uses({value!r}): no such path")
        elif kind == "resolve":
            try:
                api.feature_of(value)
            except LookupError as exc:
                problems.append(str(exc))
    listed: dict[str, list[str]] = {}
    for feature, f in api.FEATURES.items():
        for name in f.names:
            if "." in name:
                listed.setdefault(name.rsplit(".", 1)[1], []).append(feature)
    for attr, guards, where in attributes:
        if attr not in listed:
            problems.append(f"{where}: .{attr} on a TensorRT object is not in the names table")
        elif not any(_guarded(feature, guards) for feature in listed[attr]):
            problems.append(f"{where}: .{attr} (path {'/'.join(listed[attr])}) is used outside an `if` on it")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- build configuration per release

@pytest.mark.parametrize("folder", RELEASES)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_config_names_exist_in_that_release(bindings, folder, precision):
    version = RELEASES[folder]
    cfg = tc.derive_build_config(precision, version, qdq_available=True, fp16_onnx_available=True)
    names = [f"BuilderFlag.{flag}" for flag in cfg.builder_flags + cfg.cleared_flags]
    names += ["NetworkDefinitionCreationFlag.EXPLICIT_BATCH"] if cfg.explicit_batch_flag else []
    for name in names:
        assert api.uses(api.feature_of(name), version), (name, version)
        assert bindings[folder].has(name), f"{name} is not bound in TensorRT {folder}"


@pytest.mark.parametrize("level", list(api.HARDWARE_LEVELS))
@pytest.mark.parametrize("folder", RELEASES)
def test_hardware_levels_are_offered_only_where_bound(bindings, folder, level):
    feature, name, _cc, _arch = api.HARDWARE_LEVELS[level]
    version = RELEASES[folder]
    try:
        cfg = tc.derive_build_config("fp32", version, hardware_compatibility=level)
    except UsageError as exc:
        assert f"needs TensorRT >= {api.since(feature)}" in str(exc)
        return
    assert cfg.hardware_compatibility == level
    assert bindings[folder].has(name) and bindings[folder].has("IBuilderConfig.hardware_compatibility_level")


def test_legacy_calibrator_names_exist_where_it_is_offered(bindings):
    for folder, version in RELEASES.items():
        try:
            cfg = tc.derive_build_config("int8", version, legacy_calibrator=True)
        except UsageError:
            assert not api.uses("legacy_calibrator", version)
            continue
        assert cfg.legacy_calibrator
        assert all(bindings[folder].has(n) for n in api.FEATURES["legacy_calibrator"].names), folder
