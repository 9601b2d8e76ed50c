"""benchmarks/: timing statistics, ratios, skipped peers, the Markdown table, and every
benchmark run once end to end through `python -m benchmarks` at its smoke size with only the
jaxsched peer (CI runs no peers; this test is CI's benchmark run)."""

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import (
    batch_throughput,
    common,
    conv_lowering,
    lenet_epoch,
    loop_design,
    lr_grid,
    lr_grid_notebook,
    rerun_compile,
)
from jaxsched import host_memory, sweep

ROOT = Path(__file__).resolve().parents[1]


def test_repeat_excludes_warmup_and_summarizes():
    calls = []
    stats = common.repeat(lambda: calls.append(1), repetitions=3, warmup=2, number=4)
    assert len(calls) == 2 + 3 * 4
    assert len(stats.values) == 3 and all(v >= 0 for v in stats.values)
    s = common.Stats((3.0, 1.0, 2.0, 10.0))
    assert (s.median, s.min, s.max) == (2.5, 1.0, 10.0)
    assert s.spread == pytest.approx((10.0 - 1.0) / 2.5)
    warm = []
    common.repeat(lambda: None, 1, warmup=1, warmup_fn=lambda: warm.append(1))
    assert warm == [1]
    with pytest.raises(ValueError, match="repetitions"):
        common.repeat(lambda: None, 0)


def test_ratio_is_peer_median_over_baseline_median():
    rows = [
        common.row("b", "case", "jaxsched", "v", "epoch", [1.0, 2.0, 3.0], baseline=True),
        common.row("b", "case", "keras", "v", "epoch", [5.0, 4.0, 4.5]),
        common.row("b", "case", "torch", "v", "epoch", [1.0, 1.0, 1.0], items=100),
        common.row("b", "case", "keras", "v", "compile", [7.0]),  # no baseline: no ratio
        common.row("b", "case", "keras", "v", "memory", [4.0], "MiB", baseline=True),
        common.row("b", "other", "keras", "v", "epoch", [9.0]),  # another case: no ratio
    ]
    rows = common.add_ratios(rows)
    assert [r["ratio"] for r in rows] == [1.0, 2.25, 0.5, None, None, None]
    assert rows[2]["throughput"] == 100.0


def test_missing_peer_gives_a_skipped_row(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert common.unavailable("torch").endswith("(pip install -e .[bench])")
    rows = lenet_epoch.run(smoke=True, peers=["torch"], repetitions=3)
    assert len(rows) == 2 * len(lenet_epoch.SMOKE_BATCH_SIZES)  # eager and compiled, per batch
    for r in rows:
        assert (r["status"], r["peer"], r["median"]) == ("skipped", "torch", None)
        assert "torch not installed" in r["note"] and "pip install -e .[bench]" in r["note"]
    assert common.markdown_table(rows).count("skipped: torch not installed") == len(rows)


def test_failing_peer_gives_a_skipped_row_not_a_crash(monkeypatch):
    def measure():
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(common, "unavailable", lambda peer: None)  # as if installed
    (r,) = common.peer_rows("b", "torch", "torch.compile", ["torch"], measure, case="c")
    assert r["status"] == "skipped" and "RuntimeError: no C++ compiler" in r["note"]
    assert common.peer_rows("b", "keras", "fit", ["torch"], measure) == []  # not selected
    with pytest.raises(RuntimeError):  # jaxsched's own failure is not hidden
        common.peer_rows("b", "jaxsched", "fit", ["jaxsched"], measure)


def test_failed_benchmark_is_recorded_and_the_others_still_run(tmp_path):
    def broken(smoke, peers, repetitions):
        raise ValueError("bug")

    def fine(smoke, peers, repetitions):
        return [common.row("fine", "c", "jaxsched", "v", "t", [1.0, 2.0, 3.0], baseline=True)]

    doc, ok = common.run_and_write(
        {"broken": broken, "fine": fine}, smoke=True, peers=["jaxsched"], repetitions=3,
        out_dir=tmp_path,
    )  # fmt: skip
    assert not ok
    assert [(r["benchmark"], r["status"]) for r in doc["rows"]] == [
        ("broken", "failed"),
        ("fine", "ok"),
    ]
    assert "ValueError: bug" in doc["rows"][0]["note"]
    assert json.loads((tmp_path / "benchmarks.json").read_text())["rows"] == doc["rows"]


def test_lenet_rows_from_synthetic_outputs():
    outs = [
        {"epoch_s": [3.0, 1.0], "compile_s": 2.0, "params": 62614, "final_loss": 0.5,
         "images_per_epoch": 1000},
        {"epoch_s": [5.0, 2.0], "compile_s": 4.0, "params": 62614, "final_loss": 0.4,
         "images_per_epoch": 1000},
    ]  # fmt: skip
    warm, cold, compile_ = lenet_epoch.rows_for("jaxsched", "loop.fit", "batch 64", outs, "")
    assert (warm["metric"], warm["median"], warm["throughput"]) == ("epoch (warm)", 1.5, 1000 / 1.5)
    assert (cold["median"], compile_["median"], warm["extra"]["params"]) == (4.0, 3.0, 62614)
    assert warm["baseline"] and cold["throughput"] is None


@pytest.mark.slow
def test_loop_design_variants_train_the_same_model():
    images, labels, idx = loop_design._batches(loop_design.SMOKE, smoke=True)
    finals = {}
    for how in ("dispatch", "scan", "host scan"):
        run = loop_design._stepper("im2col", how, images, labels, idx)
        # the last update's loss; the state persists, so a second call continues training
        finals[how] = float(np.ravel(run()["loss"])[-1])
        finals[how + " again"] = float(np.ravel(run()["loss"])[-1])
    for how in ("scan", "host scan"):
        np.testing.assert_allclose(finals[how], finals["dispatch"], rtol=1e-5)
        np.testing.assert_allclose(finals[how + " again"], finals["dispatch again"], rtol=1e-5)
    assert finals["dispatch again"] != finals["dispatch"]


REPETITIONS = 1


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Every benchmark once, at its smoke size, with the jaxsched peer (what CI runs)."""
    out = tmp_path_factory.mktemp("bench")
    # One repetition: this run checks that every benchmark runs end to end and writes its rows
    # (the statistics over repetitions are tested above); two cost CI a quarter more.
    argv = ["--smoke", "--peers", "jaxsched", "--repetitions", str(REPETITIONS), "--out", str(out)]
    # In a subprocess, at the tests' XLA optimization level (conftest): compiling is most of a
    # smoke run, and -O0 compiles 2-3x faster (the smoke's timings are not measurements).
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv], cwd=ROOT, capture_output=True,
        text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "benchmarks.json").read_text())


@pytest.mark.slow
def test_loop_design_smoke_rows_have_one_baseline_per_case(smoke_run):
    _, doc = smoke_run
    rows = [r for r in doc["rows"] if r["benchmark"] == "loop_design"]
    cases = {r["case"] for r in rows}
    # the lowering case has three variants; the batch source is measured at three sizes
    assert len(cases) == 6 and len(rows) == 13
    for case in cases:
        group = [r for r in rows if r["case"] == case]
        assert sum(r["baseline"] for r in group) == 1
        assert all(r["ratio"] is not None and r["median"] > 0 for r in group)


def test_batch_throughput_rows_profile_every_variant(smoke_run):
    """Per batch size: the four variants, the default LeNet-5 the baseline, each with XLA's
    cost analysis and an op profile whose largest kinds are at most its total."""
    _, doc = smoke_run
    rows = [r for r in doc["rows"] if r["benchmark"] == "batch_throughput"]
    assert len(rows) == 4 * len(batch_throughput.SMOKE.batch_sizes)
    for case in {r["case"] for r in rows}:
        group = [r for r in rows if r["case"] == case]
        assert [r["variant"] for r in group] == [
            "LeNet-5",
            "LeNet-5, im2col",
            "no BatchNorm",
            f"no BatchNorm, example_block={batch_throughput.SMOKE.block}",
        ]
        assert [r["baseline"] for r in group] == [True, False, False, False]
        assert group[3]["extra"]["block"] == batch_throughput.SMOKE.block
    for r in rows:
        extra = r["extra"]
        assert r["status"] == "ok" and r["throughput"] > 0
        assert extra["flops_per_image"] > 0 and extra["bytes_accessed_per_image"] > 0
        profile = dict(extra["profile_us"])
        total = profile.pop("total")
        assert total > 0 and profile and max(profile.values()) <= total


def test_lr_grid_remembered_row_skips_the_probe(smoke_run):
    _, doc = smoke_run
    rows = {
        r["variant"]: r
        for r in doc["rows"]
        if r["benchmark"] == "lr_grid" and r["metric"] == lr_grid.TOTAL
    }
    assert rows["fit_grid auto"]["extra"]["decided"] == "measured"
    remembered = rows["fit_grid auto, remembered"]["extra"]
    assert remembered["decided"] == "remembered"
    assert set(remembered["probe_s_per_grid_step"]) == set(sweep.PROBED)  # stored timings


def test_lr_grid_notebook_keras_side_is_extrapolated_from_two_epochs_per_rate(monkeypatch):
    assert lr_grid_notebook.extrapolate([3.0, 1.0], 5) == 3.0 + 4 * 1.0
    assert lr_grid_notebook.extrapolate([3.0, 1.0], 1) == 3.0
    with pytest.raises(ValueError, match="2 measured epochs"):
        lr_grid_notebook.extrapolate([3.0], 5)
    fits = []

    def fake_fit(images, labels, batch_size, *, epochs, jit_compile, seed, learning_rate=0.01):
        fits.append((len(labels), epochs, learning_rate))
        return {"epoch_s": [2.0 + learning_rate, 0.5], "final_loss": 1.0}

    monkeypatch.setattr(common, "unavailable", lambda peer: None)  # as if Keras were installed
    monkeypatch.setattr(lr_grid_notebook.keras_tf, "fit_epochs", fake_fit)
    (row,) = lr_grid_notebook.run(smoke=True, peers=["keras"], repetitions=3)
    rates, e = lr_grid_notebook.SMOKE.grid.learning_rates, lr_grid_notebook.SMOKE.epochs
    n = lr_grid_notebook.SMOKE.grid.examples
    assert fits[1:] == [(n, 2, lr) for lr in rates]  # after one warm-up fit: 2 epochs per rate
    assert row["median"] == pytest.approx(sum(2.0 + lr + (e - 1) * 0.5 for lr in rates))
    assert row["extra"]["extrapolated"] and "EXTRAPOLATED" in row["note"]
    assert row["throughput"] == pytest.approx(len(rates) * e * n / row["median"])


def test_lr_grid_notebook_smoke_trains_every_epoch(smoke_run):
    _, doc = smoke_run
    (total,) = [
        r
        for r in doc["rows"]
        if r["benchmark"] == "lr_grid_notebook" and r["metric"] == lr_grid.TOTAL
    ]
    size = lr_grid_notebook.SMOKE
    per_epoch = size.grid.examples // size.grid.batch_size
    updates = total["extra"]["updates"]
    assert len(updates) == len(size.grid.learning_rates) and total["repetitions"] == 1
    for member_updates, diverged in zip(updates, total["extra"]["diverged"], strict=True):
        assert diverged or member_updates == size.epochs * per_epoch  # every epoch's updates
    assert total["throughput"] == pytest.approx(
        len(updates) * size.epochs * per_epoch * size.grid.batch_size / total["median"]
    )


def test_convolution_slicing_is_measured_against_the_whole_batch(smoke_run):
    _, doc = smoke_run
    conv = [r for r in doc["rows"] if r["benchmark"] == "conv_block"]
    assert {r["variant"] for r in conv} == {
        "B=4",
        "B=16, whole",
        "B=16, 4 slices of 4",
        "B=16, lax.map over 4",
    }
    assert all(r["status"] == "ok" and r["ratio"] > 0 for r in conv)
    steps = {
        r["variant"]
        for r in doc["rows"]
        if r["benchmark"] == "resnet_step" and r["metric"] == "train step"
    }
    assert steps == {"M=1", "M=2", "M=2, unsliced"}


def test_conv_lowerings_are_measured_against_im2col(smoke_run):
    _, doc = smoke_run
    rows = [r for r in doc["rows"] if r["benchmark"] == "conv_lowering"]
    (case,) = conv_lowering.SMOKE.cases
    assert [r["variant"] for r in rows] == ["im2col", "xla", "banded, tile 2", "banded, whole rows"]
    assert [r["baseline"] for r in rows] == [True, False, False, False]
    assert all(r["case"] == f"{case.name}, B=4" for r in rows)
    assert all(r["status"] == "ok" and r["median"] > 0 and r["ratio"] > 0 for r in rows)


def test_host_memory_settings_are_measured_each_in_its_own_process(smoke_run):
    _, doc = smoke_run
    rows = [r for r in doc["rows"] if r["benchmark"] == "host_memory"]
    # the smoke's one workload under both settings, "default" the baseline; each child ran the
    # setting asked for (benchmarks.host_memory._spawn checks it) or the row says why not
    assert [r["variant"] for r in rows] == ["default", "huge pages"]
    assert len({r["case"] for r in rows}) == 1 and rows[0]["baseline"]
    if (host_memory.glibc_version() or (0, 0)) >= (2, 35):
        assert all(r["status"] == "ok" and r["extra"]["faults_per_update"] >= 0 for r in rows)
    # the run records the allocator setting it ran under (it inherits this environment)
    assert doc["environment"]["host_memory"] == host_memory.status()


def test_rerun_compile_smoke_rows_first_and_second_run(smoke_run):
    _, doc = smoke_run
    rows = [r for r in doc["rows"] if r["benchmark"] == "rerun_compile"]
    got = {(r["case"], r["metric"], r["variant"]): r for r in rows}
    cases = {f"experiments.{name} --smoke" for name in rerun_compile.SMOKE_RUNNERS}
    assert set(got) == {
        (c, m, v)
        for c in cases
        for m in (rerun_compile.COMPILE, rerun_compile.WALL)
        for v in rerun_compile.RUNS
    }
    for (_, _, variant), r in got.items():
        assert r["status"] == "ok" and r["median"] > 0
        assert r["baseline"] == (variant == rerun_compile.RUNS[0])
        first = variant == rerun_compile.RUNS[0]  # the empty cache misses, the filled one hits
        assert (r["extra"]["cache_hits"] == 0) == first
        assert (r["extra"]["cache_misses"] > 0) == first


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_repetitions_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_main.parse_args(["--repetitions", bad])
    assert exit_info.value.code == 2
    assert "--repetitions: must be an integer >= 1" in capsys.readouterr().err


def test_cpu_model_and_format():
    assert common.cpu_model("/nonexistent") != ""
    assert common.format_value(0.0123, "s") == "12.3 ms"
    assert common.format_value(2.5, "s") == "2.5 s"
    assert common.format_value(3, "count") == "3"


@pytest.mark.parametrize("name", bench_main.NAMES)
def test_unselected_peers_run_nothing(name):
    run = importlib.import_module(f"benchmarks.{name}").run
    assert run(True, [], 1) == []


@pytest.mark.slow
def test_main_smoke_writes_json_and_markdown(smoke_run):
    out, doc = smoke_run
    assert (doc["status"], doc["smoke"], doc["benchmarks"]) == (
        "done",
        True,
        list(bench_main.NAMES),
    )
    env = doc["environment"]
    for key in ("jax", "flax", "optax", "cpu_model", "cpu_count", "device_kind", "threads"):
        assert env[key] not in (None, ""), key
    rows = doc["rows"]
    assert {r["benchmark"] for r in rows} == set(bench_main.NAMES)
    measured = [r for r in rows if r["status"] == "ok"]
    assert all(r["status"] in ("ok", "skipped") for r in rows)
    assert all(r["peer"] == "jaxsched" or r["status"] == "ok" for r in rows)
    for r in measured:
        assert r["min"] <= r["median"] <= r["max"] and r["spread"] >= 0
    roofline = [r for r in rows if r["benchmark"] == "roofline"]
    assert all(r["status"] == "ok" and r["repetitions"] == REPETITIONS for r in roofline)
    matmul = {r["peer"]: r for r in roofline if r["metric"] == "matmul"}
    assert matmul["numpy"]["ratio"] == pytest.approx(
        matmul["numpy"]["median"] / matmul["jaxsched"]["median"]
    )
    table = (out / "benchmarks.md").read_text()
    assert sum(line.startswith("| roofline |") for line in table.splitlines()) == len(roofline)
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_every_measurement_is_printed_as_it_is_made(capsys):
    common.row("b", "batch 64", "keras", "fit", "epoch (warm)", [2.0, 4.0, 3.0])
    assert (
        capsys.readouterr().out == "  b | batch 64 | keras fit | epoch (warm): 3 s (median of 3)\n"
    )
