"""`--protocol course`: the course notebooks' exact protocols as named configs of the runners,
their library options (the relative-drop bound rule, validation on the test split, momentum,
RMSprop under CLR, the 546,542-parameter LeNet-5), and each one end to end at smoke size on
tiny real Fashion-MNIST."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import (
    batch_size_sweep,
    bn_dropout,
    clr_fashion_mnist,
    cnn_arithmetic,
    common,
    cyclic_batch_size,
    perceptron,
)
from experiments.configs import batch_size as batch_configs
from experiments.configs import bn_dropout as bn_configs
from experiments.configs import clr_fashion_mnist as clr_configs
from experiments.configs import cnn_arithmetic as arithmetic_configs
from experiments.configs import perceptron as perceptron_configs
from jaxsched import arithmetic, linear, range_test, validation
from jaxsched.models import count_params

RUNNERS = {
    "batch_size_sweep": (batch_size_sweep, batch_configs.SWEEP_PROTOCOLS),
    "cyclic_batch_size": (cyclic_batch_size, batch_configs.CYCLIC_PROTOCOLS),
    "clr_fashion_mnist": (clr_fashion_mnist, clr_configs.PROTOCOLS),
    "bn_dropout": (bn_dropout, bn_configs.PROTOCOLS),
    "cnn_arithmetic": (cnn_arithmetic, arithmetic_configs.PROTOCOLS),
    "perceptron": (perceptron, perceptron_configs.PROTOCOLS),
}
CASES = [
    (name, protocol, smoke)
    for name, (_, protocols) in RUNNERS.items()
    for protocol in protocols
    for smoke in (False, True)
]


def _capture(monkeypatch, module):
    """Replaces the runner's `run` with one that records the config it is given."""
    seen = []

    def fake_run(config, workdir, **_):
        seen.append(config)
        return {"summary": {}, "runs": []}

    monkeypatch.setattr(module, "run", fake_run)
    monkeypatch.setattr(module, "report", lambda doc, workdir: None)
    return seen


@pytest.mark.parametrize(("name", "protocol", "smoke"), CASES)
def test_protocol_flag_selects_the_named_config(name, protocol, smoke, monkeypatch, tmp_path):
    module, protocols = RUNNERS[name]
    seen = _capture(monkeypatch, module)
    argv = ["--protocol", protocol, "--out", str(tmp_path), "--no-compile-cache"]
    assert module.main(argv + (["--smoke"] if smoke else [])) == 0
    assert seen == [protocols[protocol][1 if smoke else 0]]


def test_flags_replace_fields_of_the_protocol_and_the_default_is_jaxsched(monkeypatch, tmp_path):
    seen = _capture(monkeypatch, cyclic_batch_size)
    out = ["--out", str(tmp_path), "--no-compile-cache"]
    assert cyclic_batch_size.main(["--protocol", "course", "--epochs", "3", *out]) == 0
    assert seen[-1] == dataclasses.replace(batch_configs.CYCLIC_COURSE, epochs=3)
    assert cyclic_batch_size.main(out) == 0
    assert seen[-1] == batch_configs.CYCLIC
    assert common.DEFAULT_PROTOCOL == "jaxsched"


def test_unknown_protocol_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cyclic_batch_size.main(["--protocol", "notebook", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--protocol" in capsys.readouterr().err


def test_the_course_protocols_are_the_notebooks():
    c = batch_configs
    # The per-epoch cycle as it ran (i % 3: 16, 32, 64) and as intended (16 ... 256).
    assert c.CYCLIC_COURSE.policy_batch_sizes(60_000) == {16, 32, 64}
    assert c.CYCLIC_COURSE_INTENDED.policy_batch_sizes(60_000) == {16, 32, 64, 128, 256}
    assert (c.CYCLIC_COURSE.lr, c.CYCLIC_COURSE.epochs) == (0.01, 20)
    e = c.CYCLIC_COURSE_EFFECTIVE
    assert e.b_min // e.max_device_batch == 16 and e.max_device_batch == 256
    assert (e.lr, e.momentum, e.epochs) == (1e-4, 0.9, 20)
    assert c.SWEEP_COURSE.batch_sizes == (64, 128, 256, 512, 1024, 2048, 4096, 8192)
    assert (c.SWEEP_COURSE.lr, c.SWEEP_COURSE.bound_rule) == (0.1, "relative_drop")
    clr = clr_configs.COURSE
    assert (clr.optimizer, clr.preset, clr.policies) == ("rmsprop", "keras", ("exp_range",))
    assert (clr.lr_min, clr.lr_max, clr.max_epochs, clr.validation_examples) == (
        1e-4,
        1e-3,
        20,
        0,
    )
    for config in (c.CYCLIC_COURSE, e, clr):  # the 546,542-parameter LeNet-5
        model = common.lenet_model(config)
        variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)
        assert count_params(variables) == 546_542
    assert bn_configs.COURSE.dropout_first and "input_bn+dropout" in bn_configs.COURSE.variants
    # three stacked 5x5 convolutions see 13x13
    assert arithmetic_configs.COURSE.stack_kernel_size == 5
    assert arithmetic.equivalent_kernel(3, 5) == 13


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        ({"validation_examples": -1}, "validation_examples"),
        ({"momentum": 1.0}, "momentum"),
        ({"first_pool_stride": 3}, "first_pool_stride"),
        ({"pool_batchnorm": 1}, "pool_batchnorm"),
    ],
)
def test_bad_protocol_fields_name_themselves(replace, field):
    with pytest.raises(validation.ConfigError) as error:
        dataclasses.replace(batch_configs.CYCLIC_COURSE, **replace)
    assert field in error.value.fields


def test_bad_bound_rule_and_drop_name_themselves():
    cases = (({"bound_rule": "median"}, "bound_rule"), ({"relative_drop": 1.0}, "relative_drop"))
    for replace, field in cases:
        with pytest.raises(validation.ConfigError) as error:
            dataclasses.replace(batch_configs.SWEEP_COURSE, **replace)
        assert field in error.value.fields


def test_relative_drop_rule_in_closed_form():
    sizes = [16, 32, 64, 128, 256, 512, 1024]
    acc = [0.90, 0.92, 0.91, 0.89, 0.888, 0.86, 0.85]
    r = range_test.relative_drop_batch_bounds(sizes, acc, drop=0.035)
    assert r["threshold"] == pytest.approx(0.92 * 0.965)  # 0.8878
    assert (r["b_min"], r["b_max"], r["best_batch_size"]) == (16, 256, 32)
    assert r["bracketed"] and r["plateau"] == [16, 32, 64, 128, 256]
    # The plateau rule (absolute 0.02 around the running median) reads the same sweep otherwise.
    plateau = range_test.suggest_batch_bounds(sizes, acc, tolerance=0.02)
    assert (plateau["b_min"], plateau["b_max"]) == (16, 128)
    # Contiguous around the best: a size past a fall does not count, nor a diverged one.
    r = range_test.relative_drop_batch_bounds([16, 32, 64, 128], [0.9, 0.7, 0.9, 0.9], drop=0.05)
    assert (r["b_min"], r["b_max"]) == (16, 16)
    r = range_test.relative_drop_batch_bounds([16, 32, 64], [0.9, math.nan, 0.9], drop=0.05)
    assert (r["b_min"], r["b_max"], r["diverged"]) == (16, 16, [32])
    r = range_test.relative_drop_batch_bounds([16, 32], [0.9, 0.9], drop=0.05)
    assert not r["bracketed"] and "sweep larger" in r["message"]
    for drop in (0, 1, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="drop must be in"):
            range_test.relative_drop_batch_bounds(sizes, acc, drop=drop)


def _run(module, protocol, tmp_path, *extra):
    out = tmp_path / protocol
    argv = ["--smoke", "--protocol", protocol, "--quiet", "--out", str(out), *extra]
    assert module.main(argv) == 0
    return json.loads((out / "results.json").read_text())


def _runs(doc):
    return {r.get("policy", r.get("batch_size")): r for r in doc["runs"]}


@pytest.mark.slow
def test_course_cycle_validates_on_the_test_split_and_cycles_16_32_64(tmp_path):
    doc = _run(cyclic_batch_size, "course", tmp_path, "--policies", "epoch_cycle")
    (run,) = doc["runs"]
    assert doc["summary"]["lr_bounds"] is None  # the rate is given: no LR range test ran
    steps = run["history"]["steps"]
    # epoch i at 16 * 2^(i mod 3) on all 768 training images (nothing held out)
    sizes = (16, 32, 64)
    assert steps["batch_size"] == [b for b in sizes for _ in range(768 // b)]
    assert steps["learning_rate"] == pytest.approx([0.01] * len(steps["learning_rate"]))
    # the validation metrics are the test split's
    val = run["history"]["epochs"]["val_accuracy"][-1]
    assert val == pytest.approx(run["final"]["test_accuracy"])


@pytest.mark.slow
def test_course_effective_batch_accumulates_16_micro_batches_with_momentum(tmp_path):
    doc = _run(cyclic_batch_size, "course_effective_batch", tmp_path)
    (run,) = doc["runs"]
    config = batch_configs.CYCLIC_COURSE_EFFECTIVE_SMOKE
    assert config.b_min // config.max_device_batch == 16
    assert run["final"]["updates"] == config.epochs * (768 // 256)
    assert run["final"]["batch_sizes"] == [256]
    assert doc["config"]["momentum"] == 0.9
    assert all(np.isfinite(run["history"]["steps"]["loss"]))


@pytest.mark.slow
def test_course_clr_trains_rmsprop_under_exp_range(tmp_path):
    doc = _run(clr_fashion_mnist, "course", tmp_path)
    (run,) = doc["runs"]
    rates = np.array(run["history"]["steps"]["learning_rate"])
    assert 1e-4 * (1 - 1e-6) <= rates.min() and rates.max() <= 1e-3 * (1 + 1e-6)
    assert rates.max() > 2e-4  # it cycles up from 1e-4
    assert doc["config"]["optimizer"] == "rmsprop" and run["final"]["epochs"] == 2
    assert run["history"]["status"] == "done"


@pytest.mark.slow
def test_course_sweep_reads_the_bounds_by_the_relative_drop(tmp_path):
    doc = _run(batch_size_sweep, "course", tmp_path, "--batch-sizes", "32", "64", "128")
    s = doc["summary"]
    assert s["learning_rate"] == 0.1 and "relative" in s["rule"]
    table = {r["batch_size"]: r["train_accuracy"] for r in s["table"]}
    expected = range_test.relative_drop_batch_bounds(list(table), list(table.values()))
    assert (s["b_min"], s["b_max"]) == (expected["b_min"], expected["b_max"])


def test_the_perceptron_course_protocol_starts_from_uniform_01_weights():
    assert perceptron_configs.COURSE.init == "uniform01"
    w = linear.INITIALIZERS["uniform01"](jax.random.key(3), 100_000)
    assert float(w.min()) >= 0.0 and float(w.max()) < 1.0
    assert float(w.mean()) == pytest.approx(0.5, abs=0.01)
    outcome = perceptron.seed_outcome(jax.random.key(0), perceptron_configs.COURSE_SMOKE)
    assert ((outcome["w0"] >= 0) & (outcome["w0"] < 1)).all()
    with pytest.raises(validation.ConfigError) as error:
        dataclasses.replace(perceptron_configs.COURSE, init="zeros")
    assert error.value.fields == ("init",)
