"""experiments.batch_augmentation end to end with a ResNet-8 on tiny real Fashion-MNIST."""

import dataclasses
import json

import pytest

from experiments import batch_augmentation
from experiments.configs.batch_augmentation import SMOKE
from jaxsched import loop, optimizers

TINY = dataclasses.replace(
    SMOKE,
    dataset="fashion_mnist",
    copies=(2,),
    train_examples=192,
    validation_examples=64,
    test_examples=64,
    target_accuracy=0.05,
    epochs=2,
)


@pytest.mark.slow
def test_baseline_and_batch_augmented_runs(tmp_path, monkeypatch):
    doc = batch_augmentation.run(TINY, tmp_path, quiet=True)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert [r["key"] for r in on_disk["runs"]] == ["baseline", "M=2"]
    for run in on_disk["runs"]:
        f = run["final"]
        assert f["time_to_target"]["reached"] and f["time_to_target"]["epoch"] == 1
        assert f["host_rss_mib"] > 0 and run["history"]["status"] == "stopped"
        assert f["step_memory_mib"] > 0
    assert (tmp_path / "checkpoints" / "M_2").is_dir()
    assert (tmp_path / "validation_error.png").stat().st_size > 0
    assert (tmp_path / "cutout_examples.png").stat().st_size > 0
    assert doc["summary"]["dataset"] == "fashion_mnist"
    # 128 training images at batch 64: two updates (each on 2 x 64 augmented images for M=2).
    assert len(doc["runs"][1]["history"]["steps"]["loss"]) == 2
    # M=2 trains on twice the images per step: XLA's footprint of the step grows with it.
    memory = [r["final"]["step_memory_mib"] for r in doc["runs"]]
    assert memory[1] > 1.5 * memory[0]

    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("retrained a completed run"))
    assert batch_augmentation.run(TINY, tmp_path, quiet=True)["runs"] == doc["runs"]


def test_recipes():
    tx, reg = batch_augmentation.recipe(SMOKE, steps_per_epoch=10)
    state = tx.init({"w": 0.0})
    assert float(optimizers.hyperparams(state)["learning_rate"]) == pytest.approx(1e-3)
    he = dataclasses.replace(SMOKE, recipe="he")
    tx, _ = batch_augmentation.recipe(he, steps_per_epoch=10)
    hp = optimizers.hyperparams(tx.init({"w": 0.0}))
    assert float(hp["learning_rate"]) == pytest.approx(0.1)
    assert float(hp["momentum"]) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="recipe"):
        dataclasses.replace(SMOKE, recipe="lamb")
