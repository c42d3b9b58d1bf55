"""Property-based tests (hypothesis) of the record writer and reader, the report, and the option parsers."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgebench.cli.options import CommaList, FiniteFloat, NonEmptyPath, Threads, parse_batches
from edgebench.portable import strict_json
from edgebench.results.schema import problem
from edgebench.results.store import append_records, read_records
from edgebench.results.zoo_table import zoo_rows, zoo_table

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

odd_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308])
odd_text = st.text(st.characters(codec=None), max_size=30)  # any code point: newlines, NUL, lone surrogates
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**128, 2**128) | odd_floats | odd_text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
                           max_leaves=12)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
latency_records = st.fixed_dictionaries(
    {"kind": st.just("latency"), "status": st.just("ok"), "timestamp": st.text(max_size=25),
     "model": st.fixed_dictionaries({"name": odd_text, "family": st.sampled_from(["mobile-cnn", "imported", "?"])}),
     "runtime": st.fixed_dictionaries({"name": st.sampled_from(["ort", "openvino", "unheard-of"]),
                                       "device": st.none() | st.sampled_from(["cpu", "CPU", "cuda"])}),
     "precision": st.sampled_from(["fp32", "fp16", "int8", "bf16"]), "batch": st.integers(1, 4),
     "threads": st.none() | st.integers(1, 8),
     "latency_ms": st.fixed_dictionaries({"p50": finite, "p90": finite, "p99": finite}),
     "stability": st.fixed_dictionaries({"verdict": st.sampled_from(["stable", "unstable", "oversubscribed"])}),
     "memory_mb": st.none() | st.fixed_dictionaries({"peak": st.none() | finite})},
    optional={"extra_field": json_values, "onnx_bytes": st.integers(0, 10**12)})


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return isinstance(value, list) and any(_non_finite(v) for v in value)


def _finite_copy(value):
    """What strict JSON makes of ``value``: non-finite floats become null, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_copy(v) for v in value]
    return value


@SETTINGS
@given(st.lists(st.dictionaries(odd_text.filter(lambda k: k != "non_finite"), json_values, max_size=6), min_size=1,
                max_size=4))
def test_writer_round_trips_any_record_as_strict_json(records):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        append_records(records, path)
        data = path.read_bytes()
    lines = data.split(b"\n")[:-1]
    assert data.endswith(b"\n") and len(lines) == len(records)  # escaped: no raw newline inside a record
    for line, record in zip(lines, records):
        back = strict_json.loads(line)
        flagged = back.pop("non_finite", None)
        assert back == _finite_copy(record)
        assert (flagged is not None) == _non_finite(record)


@SETTINGS
@given(st.lists(latency_records, min_size=1, max_size=5))
def test_reader_returns_every_valid_record_and_the_report_shows_them(records):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        append_records(records, path)
        read = read_records(path)
        written = [strict_json.loads(line) for line in path.read_bytes().split(b"\n")[:-1]]
    assert read.skipped_count == 0 and read.records == written and len(written) == len(records)
    for batch in {r["batch"] for r in records}:
        rows, columns = zoo_rows(read.records, batch)
        zoo_table(rows, columns, "t")
        assert {row["model"] for row in rows} == {r["model"]["name"] for r in records if r["batch"] == batch}


@SETTINGS
@given(st.binary(max_size=300), st.lists(latency_records, min_size=1, max_size=2))
def test_any_prior_bytes_are_kept_and_never_merged_with_new_records(prior, records):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        path.write_bytes(prior)
        append_records(records, path)
        data = path.read_bytes()
        read = read_records(path)
        quarantined = Path(f"{path}.damaged").read_bytes() if Path(f"{path}.damaged").exists() else b""
    new = b"".join(strict_json.dumps(r, sort_keys=True).encode() + b"\n" for r in records)
    complete = prior[:prior.rfind(b"\n") + 1]
    tail = prior[len(complete):]
    try:
        whole = isinstance(strict_json.loads(tail.decode()), dict)
    except ValueError:
        whole = False
    if not tail:
        assert data == prior + new and not quarantined
    elif whole:  # a record that lacked only its newline gets it
        assert data == prior + b"\n" + new and not quarantined
    else:  # a fragment is moved out, never glued to the next record
        assert data == complete + new and quarantined == tail + b"\n"
    assert read.records[-len(records):] == [strict_json.loads(line) for line in new.split(b"\n")[:-1]]
    assert len(read.records) + read.skipped_count == read.lines


@SETTINGS
@given(st.binary(max_size=500))
def test_reader_never_raises_and_counts_every_line(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        path.write_bytes(data)
        read = read_records(path)
    assert len(read.records) + read.skipped_count == read.lines
    assert all(problem(r) is None for r in read.records)
    assert (read.warning(path) is None) == (read.skipped_count == 0)


def _convert(param_type: click.ParamType, value: str):
    return param_type.convert(value, None, None)


@SETTINGS
@given(st.one_of(st.floats().map(repr), st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-0"]),
                 st.text(max_size=8)))
def test_finite_float_accepts_only_finite_numbers_in_range(text):
    try:
        value = _convert(FiniteFloat(0, 100), text)
    except click.BadParameter:
        return
    assert math.isfinite(value) and 0 <= value <= 100


@SETTINGS
@given(st.text(alphabet=" ,0123456789-x", max_size=20))
def test_parse_batches_gives_distinct_sizes_in_range_or_refuses(text):
    try:
        batches = parse_batches(None, None, text)
    except click.BadParameter:
        return
    assert batches and len(set(batches)) == len(batches) and all(1 <= b <= 4096 for b in batches)


@SETTINGS
@given(st.text(alphabet=" ,ab", max_size=12))
def test_comma_list_is_never_empty(text):
    try:
        items = _convert(CommaList(), text)
    except click.BadParameter:
        assert not text.replace(",", "").strip()
        return
    assert items and all(i and i == i.strip() and "," not in i for i in items)


@SETTINGS
@given(st.integers(-5, 10_000))
def test_threads_are_refused_above_four_times_the_cores(threads):
    cores = os.cpu_count() or 1
    try:
        value = _convert(Threads(), str(threads))
    except click.BadParameter:
        assert threads < 1 or threads > 4 * cores
        return
    assert 1 <= value <= 4 * cores


@pytest.mark.parametrize("text", ["", " ", "\t"])
def test_an_empty_path_is_refused(text):
    with pytest.raises(click.BadParameter, match="is empty"):
        _convert(NonEmptyPath(), text)
