"""Every runner's CLI rejects bad values before any work: exit 2, one line naming the flag,
nothing trained and nothing written (issue 14's table of bad inputs)."""

import importlib

import pytest

from jaxsched import loop, shape_grid, sweep

# (runner, argv after --smoke, the flag the one-line message must name)
BAD_INPUTS = [
    # shared flags
    ("lr_range_test", ["--seed", "-1"], "--seed"),
    ("lr_range_test", ["--seed", "abc"], "--seed"),
    ("batch_augmentation", ["--seed", "-3"], "--seed"),
    # lr_range_test
    ("lr_range_test", ["--epochs", "0"], "--epochs"),
    ("lr_range_test", ["--epochs", "-1"], "--epochs"),
    ("lr_range_test", ["--epochs", "2.5"], "--epochs"),
    ("lr_range_test", ["--lrs", "inf", "0.1"], "--lrs"),
    ("lr_range_test", ["--lrs", "nan"], "--lrs"),
    ("lr_range_test", ["--lrs", "0"], "--lrs"),
    ("lr_range_test", ["--lrs", "-0.1"], "--lrs"),
    ("lr_range_test", ["--lrs", "0.1", "0.1"], "--lrs"),
    ("lr_range_test", ["--batch-size", "0"], "--batch-size"),
    ("lr_range_test", ["--batch-size", "100000"], "--batch-size"),
    ("lr_range_test", ["--method", "sweep", "--sweep-start", "10", "--sweep-end", "1"], "--sweep"),
    ("lr_range_test", ["--method", "sweep", "--sweep-steps", "0"], "--sweep-steps"),
    ("lr_range_test", ["--grid-chunk", "0"], "--grid-chunk"),
    ("lr_range_test", ["--method", "nope"], "--method"),
    # batch_size_sweep
    ("batch_size_sweep", ["--batch-sizes", "16", "100000"], "--batch-sizes"),
    ("batch_size_sweep", ["--batch-sizes", "0"], "--batch-sizes"),
    ("batch_size_sweep", ["--epochs", "0"], "--epochs"),
    ("batch_size_sweep", ["--lr", "0"], "--lr"),
    ("batch_size_sweep", ["--lr", "nan"], "--lr"),
    ("batch_size_sweep", ["--lr", "-inf"], "--lr"),
    ("batch_size_sweep", ["--max-device-batch", "0"], "--max-device-batch"),
    ("batch_size_sweep", ["--lr-min", "0.01"], "--lr-max"),
    ("batch_size_sweep", ["--relative-drop", "1.5"], "--relative-drop"),
    ("batch_size_sweep", ["--tolerance", "0"], "--tolerance"),
    ("batch_size_sweep", ["--bound-rule", "median"], "--bound-rule"),
    ("batch_size_sweep", ["--protocol", "notebook"], "--protocol"),
    # cyclic_batch_size
    ("cyclic_batch_size", ["--b-min", "48"], "--b-min"),
    ("cyclic_batch_size", ["--b-min", "128"], "--b-min"),
    ("cyclic_batch_size", ["--b-min", "0"], "--b-min"),
    ("cyclic_batch_size", ["--step-size-epochs", "0"], "--step-size-epochs"),
    ("cyclic_batch_size", ["--step-size-epochs", "-1"], "--step-size-epochs"),
    ("cyclic_batch_size", ["--lr-min", "0.1", "--lr-max", "0.01"], "--lr-min"),
    ("cyclic_batch_size", ["--epochs", "0"], "--epochs"),
    ("cyclic_batch_size", ["--momentum", "1"], "--momentum"),
    ("cyclic_batch_size", ["--validation-examples", "-1"], "--validation-examples"),
    ("cyclic_batch_size", ["--validation-examples", "768"], "--validation-examples"),
    ("cyclic_batch_size", ["--protocol", "course", "--lr", "0"], "--lr"),
    # batch_vs_lr
    ("batch_vs_lr", ["--b-start", "0"], "--b-start"),
    ("batch_vs_lr", ["--b-start", "128", "--b-end", "64"], "--b-start"),
    ("batch_vs_lr", ["--double-every-epochs", "0"], "--double-every-epochs"),
    ("batch_vs_lr", ["--step-size-epochs", "nan"], "--step-size-epochs"),
    # clr_fashion_mnist
    ("clr_fashion_mnist", ["--max-epochs", "0"], "--max-epochs"),
    ("clr_fashion_mnist", ["--patience", "0"], "--patience"),
    ("clr_fashion_mnist", ["--step-size-epochs", "0"], "--step-size-epochs"),
    ("clr_fashion_mnist", ["--lr-min", "1", "--lr-max", "0.1"], "--lr-min"),
    ("clr_fashion_mnist", ["--lr-max", "0.1"], "--lr-min"),
    ("clr_fashion_mnist", ["--optimizer", "lbfgs"], "--optimizer"),
    # validating on the test split while selecting on it (early stopping, best epoch)
    ("clr_fashion_mnist", ["--validation-examples", "0"], "--no-restore-best"),
    ("clr_fashion_mnist", ["--validation-examples", "0", "--no-restore-best"], "--patience"),
    ("clr_fashion_mnist", ["--protocol", "course", "--validation-examples", "-2"], "--validation-"),
    # batch_augmentation
    ("batch_augmentation", ["--depth", "9"], "--depth"),
    ("batch_augmentation", ["--copies", "0"], "--copies"),
    ("batch_augmentation", ["--epochs", "0"], "--epochs"),
    ("batch_augmentation", ["--bn-momentum", "1.5"], "--bn-momentum"),
    ("batch_augmentation", ["--cutout-size", "0"], "--cutout-size"),
    ("batch_augmentation", ["--cutout-size", "33"], "--cutout-size"),
    ("batch_augmentation", ["--validation-examples", "0"], "--validation-examples"),
    ("batch_augmentation", ["--train-examples", "0"], "--train-examples"),
    # bn_dropout / adaptive_optimizers
    ("bn_dropout", ["--epochs", "0"], "--epochs"),
    ("bn_dropout", ["--train-examples", "-5"], "--train-examples"),
    ("adaptive_optimizers", ["--epochs", "0"], "--epochs"),
    ("adaptive_optimizers", ["--batch-size", "0"], "--batch-size"),
    # single-device runners
    ("perceptron", ["--epochs", "0"], "--epochs"),
    ("perceptron", ["--lr", "nan"], "--lr"),
    ("perceptron", ["--train-examples", "0"], "--train-examples"),
    ("dead_relu", ["--simulations", "0"], "--simulations"),
    ("dead_relu", ["--epochs", "0"], "--epochs"),
    ("init_activations", ["--stddevs", "0"], "--stddevs"),
    ("init_activations", ["--stddevs", "nan"], "--stddevs"),
    ("init_activations", ["--test-examples", "0"], "--test-examples"),
    ("cnn_arithmetic", ["--num-classes", "0"], "--num-classes"),
    ("cnn_arithmetic", ["--stack-depths", "0"], "--stack-depths"),
    ("scaling", ["--device-counts", "0"], "--device-counts"),
    ("scaling", ["--gpu-flops-per-s", "0"], "--gpu-flops-per-s"),
    # minigooglenet
    ("minigooglenet", ["--width", "0"], "--width"),
    ("minigooglenet", ["--epochs", "0"], "--epochs"),
    ("minigooglenet", ["--batch-size", "0"], "--batch-size"),
    ("minigooglenet", ["--lr-min", "1", "--lr-max", "0.1"], "--lr-min"),
    ("minigooglenet", ["--b-start", "64", "--b-end", "32"], "--b-start"),
    ("minigooglenet", ["--gamma", "nan"], "--gamma"),
    # depth_vs_width
    ("depth_vs_width", ["--epochs", "0"], "--epochs"),
    ("depth_vs_width", ["--patience", "0"], "--patience"),
    ("depth_vs_width", ["--widths", "0"], "--widths"),
    ("depth_vs_width", ["--widths", "8", "8"], "--widths"),
    ("depth_vs_width", ["--max-depth", "0"], "--max-depth"),
    ("depth_vs_width", ["--max-units", "2"], "--max-units"),
    ("depth_vs_width", ["--batch-size", "100000"], "--batch-size"),
    ("depth_vs_width", ["--learning-rate", "-1"], "--learning-rate"),
    ("depth_vs_width", ["--seeds", "-1"], "--seeds"),
    ("depth_vs_width", ["--strategy", "fastest"], "--strategy"),
    ("depth_vs_width", ["--devices", "2"], "--devices"),
]


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained although the input was bad")

    monkeypatch.setattr(loop, "fit", refuse)
    monkeypatch.setattr(sweep, "fit_grid", refuse)
    monkeypatch.setattr(shape_grid, "fit_shapes", refuse)


@pytest.mark.parametrize(("runner", "argv", "flag"), BAD_INPUTS)
def test_bad_value_is_a_one_line_usage_error(runner, argv, flag, tmp_path, capsys, no_training):
    module = importlib.import_module(f"experiments.{runner}")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--smoke", "--quiet", "--out", str(out), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith(f"python -m experiments.{runner}: error: "), err
    assert flag in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


def test_out_that_is_a_file_stops_before_work(tmp_path, capsys, no_training):
    from experiments import lr_range_test

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as exit_info:
            lr_range_test.main(["--smoke", "--quiet", "--out", str(out)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "argument --out" in err and str(blocker) in err, err
    assert blocker.read_text() == "not a folder"


def test_empty_data_dir_is_not_replaced_by_another_copy(tmp_path, capsys, no_training):
    from experiments import lr_range_test

    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        lr_range_test.main(["--smoke", "--quiet", "--out", str(out), "--data-dir", str(empty)])
    assert exit_info.value.code == 2
    assert str(empty) in capsys.readouterr().err
    assert not (out / "results.json").exists()
