"""batch_size_sweep, cyclic_batch_size and batch_vs_lr end to end on tiny real Fashion-MNIST."""

import dataclasses
import json

import pytest

from experiments import batch_size_sweep, batch_vs_lr, cyclic_batch_size
from experiments.configs.batch_size import BATCH_VS_LR_SMOKE, CYCLIC_SMOKE, SWEEP_SMOKE
from jaxsched import schedules

TINY_SWEEP = dataclasses.replace(
    SWEEP_SMOKE,
    batch_sizes=(16, 32, 64, 128),
    train_examples=256,
    test_examples=128,
    max_device_batch=32,
)


@pytest.mark.slow
def test_batch_size_sweep_records_every_size_and_detects_bounds(tmp_path):
    doc = batch_size_sweep.run(TINY_SWEEP, tmp_path, quiet=True)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert [r["batch_size"] for r in on_disk["runs"]] == [16, 32, 64, 128]
    by_size = {r["batch_size"]: r["final"] for r in doc["runs"]}
    assert by_size[16]["updates"] == 256 // 16 and by_size[128]["updates"] == 2
    # 64 and 128 exceed max_device_batch=32: accumulated over one 32-example shape.
    assert by_size[128]["num_compilations"] == 1
    s = doc["summary"]
    assert s["learning_rate"] == SWEEP_SMOKE.lr
    assert s["b_min"] in (16, 32, 64, 128) and s["b_min"] <= s["b_max"]
    assert isinstance(s["bracketed"], bool) and s["message"]
    assert (tmp_path / "batch_size_sweep.png").stat().st_size > 0


TINY_CYCLIC = dataclasses.replace(
    CYCLIC_SMOKE,
    policies=("fixed", "cyclic", "epoch_cycle"),
    train_examples=512,
    validation_examples=128,
    epochs=2,
)


@pytest.mark.slow
@pytest.mark.parametrize("strategy, compilations", [("shapes", 3), ("accumulate", 1)])
def test_cyclic_batch_size_policies(tmp_path, strategy, compilations):
    config = dataclasses.replace(TINY_CYCLIC, strategy=strategy, max_device_batch=64)
    doc = cyclic_batch_size.run(config, tmp_path, quiet=True)
    runs = {r["policy"]: r for r in doc["runs"]}
    assert runs["fixed"]["final"]["batch_sizes"] == [16]
    assert runs["cyclic"]["final"]["batch_sizes"] == [16, 32, 64]
    assert runs["cyclic"]["final"]["num_compilations"] == compilations
    lr_bounds = {"lr_min": 0.005, "lr_max": 0.05}
    bounds = {"b_min": 16, "b_max": 64}
    settings = cyclic_batch_size.policy_settings("cyclic", config, bounds, lr_bounds, 384)
    assert settings["lr"] == 0.005  # lr_min: the rate of the batch-size sweep by default
    sizes = runs["cyclic"]["history"]["steps"]["batch_size"]
    assert sizes == [settings["batch_size"](u) for u in range(len(sizes))]
    epoch_sizes = runs["epoch_cycle"]["history"]["steps"]["batch_size"]
    assert epoch_sizes[0] == 16 and epoch_sizes[-1] == 32  # epoch 0 at 16, epoch 1 at 32
    for name in ("epochs.png", "updates.png", "batch_size.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_cyclic_batch_bounds_from_a_sweep_file(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"summary": {"b_min": 32, "b_max": 256, "bracketed": True}}))
    config = dataclasses.replace(CYCLIC_SMOKE, b_min=None, b_max=None, batch_bounds_from=str(path))
    bounds = cyclic_batch_size.batch_bounds(config, tmp_path, quiet=True)
    assert (bounds["b_min"], bounds["b_max"]) == (32, 256)


@pytest.mark.slow
def test_batch_vs_lr_grows_the_batch_at_a_fixed_rate(tmp_path):
    config = dataclasses.replace(BATCH_VS_LR_SMOKE, train_examples=512, validation_examples=128)
    doc = batch_vs_lr.run(config, tmp_path, quiet=True)
    grow, clr = doc["runs"]
    assert (grow["policy"], clr["policy"]) == ("increase_batch", "clr")
    # Epoch e trains at 16 * 2^e (doubling every epoch), the rate fixed at lr_max.
    assert grow["final"]["batch_sizes"] == [16, 32, 64]
    lrs = grow["history"]["steps"]["learning_rate"]
    assert lrs == pytest.approx([0.05] * len(lrs))
    step_size = round(0.5 * 384 / 16)  # step_size_epochs x training examples / b_start
    expected = schedules.schedule_values(schedules.cyclic_lr(0.005, 0.05, step_size), 10)
    assert clr["history"]["steps"]["learning_rate"][:10] == pytest.approx(expected.tolist())
    assert (tmp_path / "loss_vs_batch.png").stat().st_size > 0
