"""Every experiment config checks its fields when it is made (`__post_init__`): a bad value
raises `validation.ConfigError` naming the config fields concerned. No data, no training."""

import dataclasses
import math
import pathlib
from types import ModuleType

import numpy as np
import pytest

from experiments.configs import (
    adaptive_optimizers,
    batch_augmentation,
    batch_size,
    bn_dropout,
    clr_fashion_mnist,
    cnn_arithmetic,
    common,
    dead_relu,
    init_activations,
    lr_range_test,
    perceptron,
    scaling,
)
from jaxsched.validation import ConfigError

MODULES: tuple[ModuleType, ...] = (
    adaptive_optimizers,
    batch_augmentation,
    batch_size,
    bn_dropout,
    clr_fashion_mnist,
    cnn_arithmetic,
    common,
    dead_relu,
    init_activations,
    lr_range_test,
    perceptron,
    scaling,
)
CLASSES = sorted(
    {
        value
        for module in MODULES
        for value in vars(module).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__.startswith("experiments.configs")
    },
    key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
)
PRESETS = {
    f"{module.__name__.rsplit('.', 1)[1]}.{name}": value
    for module in MODULES
    for name, value in vars(module).items()
    if name.isupper() and dataclasses.is_dataclass(value) and not isinstance(value, type)
}

LENET = common.LeNetExperiment()
ADAPTIVE = adaptive_optimizers.DEFAULT
AUGMENT = batch_augmentation.DEFAULT
SWEEP = batch_size.SWEEP
CYCLIC = batch_size.CYCLIC
CYCLIC_GIVEN = dataclasses.replace(batch_size.CYCLIC, b_min=64, b_max=512)
BATCH_VS_LR = batch_size.BATCH_VS_LR
BN = bn_dropout.DEFAULT
CLR = clr_fashion_mnist.DEFAULT
CNN = cnn_arithmetic.DEFAULT
DEAD = dead_relu.DEFAULT
INIT = init_activations.DEFAULT
RANGE = lr_range_test.DEFAULT
PERCEPTRON = perceptron.DEFAULT
SCALING = scaling.DEFAULT
NAN, INF = math.nan, math.inf

BAD = [
    # The fields every LeNet-5 experiment shares (LeNetExperiment and each subclass).
    *[
        (preset, overrides, fields)
        for preset in (LENET, SWEEP, CYCLIC, BATCH_VS_LR, CLR)
        for overrides, fields in [
            (dict(dataset="auto"), ("dataset",)),  # lenet_setup loads it as given
            (dict(dataset="imagenet"), ("dataset",)),
            (dict(data_dir=""), ("data_dir",)),
            (dict(seed=-1), ("seed",)),
            (dict(seed=1.5), ("seed",)),
            (dict(seed=2**31), ("seed",)),
            (dict(train_examples=0), ("train_examples",)),
            (dict(test_examples=0), ("test_examples",)),
            (dict(preprocessing="whiten"), ("preprocessing",)),
            (dict(input_norm="layernorm"), ("input_norm",)),
            (dict(hidden_batchnorm="yes"), ("hidden_batchnorm",)),
            (dict(divergence_loss=0.0), ("divergence_loss",)),
            (dict(divergence_loss=INF), ("divergence_loss",)),
            (dict(bounds_from=""), ("bounds_from",)),
            (dict(bounds_from=None), ("bounds_from",)),
            (dict(lr_min=0.01), ("lr_min", "lr_max")),  # alone it would be ignored
            (dict(lr_max=0.1), ("lr_min", "lr_max")),
            (dict(lr_min=0.1, lr_max=0.1), ("lr_min", "lr_max")),
            (dict(lr_min=0.2, lr_max=0.1), ("lr_min", "lr_max")),
            (dict(lr_min=0.0, lr_max=0.1), ("lr_min",)),
            (dict(lr_min=NAN, lr_max=0.1), ("lr_min",)),
            (dict(lr_min=0.01, lr_max=INF), ("lr_max",)),
            (dict(sweep_steps=11), ("sweep_steps",)),  # the sweep rule needs 12 updates
            (dict(batch_size=0), ("batch_size",)),
            (dict(batch_size=True), ("batch_size",)),
        ]
    ],
    (LENET, dict(batch_size=60_001), ("batch_size", "dataset")),
    (LENET, dict(batch_size=513, train_examples=512), ("batch_size", "train_examples")),
    (LENET, dict(dataset="cifar10", batch_size=50_001), ("batch_size", "dataset")),
    # batch_size_sweep
    (SWEEP, dict(batch_sizes=()), ("batch_sizes",)),
    (SWEEP, dict(batch_sizes=(16, 0)), ("batch_sizes",)),
    (SWEEP, dict(batch_sizes=(16, 32.0)), ("batch_sizes",)),
    (SWEEP, dict(batch_sizes=(16, 32, 16)), ("batch_sizes",)),
    (SWEEP, dict(batch_sizes=16), ("batch_sizes",)),
    (SWEEP, dict(train_examples=4096), ("batch_sizes", "train_examples")),
    (SWEEP, dict(max_device_batch=1000), ("batch_sizes", "max_device_batch")),
    (SWEEP, dict(max_device_batch=0), ("max_device_batch",)),
    (SWEEP, dict(epochs=0), ("epochs",)),
    (SWEEP, dict(lr=0.0), ("lr",)),
    (SWEEP, dict(lr=-0.1), ("lr",)),
    (SWEEP, dict(tolerance=0.0), ("tolerance",)),  # suggest_batch_bounds: (0, 1)
    (SWEEP, dict(tolerance=1.0), ("tolerance",)),
    # cyclic_batch_size
    (CYCLIC, dict(b_min=64), ("b_min", "b_max")),
    (CYCLIC, dict(b_max=512), ("b_min", "b_max")),
    (CYCLIC, dict(b_min=512, b_max=64), ("b_min", "b_max")),
    (CYCLIC, dict(b_min=0, b_max=64), ("b_min",)),
    (CYCLIC, dict(b_min=48, b_max=512), ("b_min", "policies")),  # cyclic_batch_size fails
    (CYCLIC, dict(b_min=64, b_max=500), ("b_max", "policies")),
    (CYCLIC, dict(b_min=48, b_max=512, policies=("epoch_cycle",)), ("b_min", "policies")),
    (CYCLIC, dict(b_min=64, b_max=65_536), ("b_max", "dataset", "validation_examples")),
    (
        CYCLIC,
        dict(b_min=16, b_max=1024, train_examples=768, validation_examples=256),
        ("b_max", "train_examples", "validation_examples"),
    ),
    (CYCLIC_GIVEN, dict(max_device_batch=100), ("b_min", "b_max", "max_device_batch")),
    (
        CYCLIC_GIVEN,
        dict(b_min=48, policies=("fixed",), max_device_batch=32, strategy="accumulate"),
        ("b_min", "b_max", "max_device_batch", "strategy"),
    ),
    (CYCLIC_GIVEN, dict(batch_bounds_from="sweep.json"), ("b_min", "b_max", "batch_bounds_from")),
    (CYCLIC, dict(batch_bounds_from=""), ("batch_bounds_from",)),
    (CYCLIC, dict(policies=()), ("policies",)),
    (CYCLIC, dict(policies=("fixed", "cosine")), ("policies",)),
    (CYCLIC, dict(policies=("fixed", "fixed")), ("policies",)),
    (CYCLIC, dict(policies="fixed"), ("policies",)),
    (CYCLIC, dict(epochs=0), ("epochs",)),
    (CYCLIC, dict(step_size_epochs=0.0), ("step_size_epochs",)),
    (CYCLIC, dict(step_size_epochs=-1.0), ("step_size_epochs",)),
    (CYCLIC, dict(increase_every_epochs=0), ("increase_every_epochs",)),
    (CYCLIC, dict(strategy="scan"), ("strategy",)),
    (CYCLIC, dict(max_device_batch=0), ("max_device_batch",)),
    (CYCLIC, dict(lr=0.0), ("lr",)),
    (CYCLIC, dict(validation_examples=-1), ("validation_examples",)),  # 0: the test split
    (CYCLIC, dict(validation_examples=60_000), ("validation_examples", "dataset")),
    (
        CYCLIC,
        dict(train_examples=5000, validation_examples=5000),
        ("validation_examples", "train_examples"),
    ),
    # No b_min / b_max / batch_bounds_from: the runner sweeps SWEEP's sizes (up to 8192) first.
    (
        CYCLIC,
        dict(train_examples=8191, validation_examples=100),
        ("b_min", "b_max", "train_examples"),
    ),
    (CYCLIC, dict(max_device_batch=1000), ("max_device_batch", "b_min", "b_max")),
    # batch_vs_lr
    (BATCH_VS_LR, dict(b_start=0), ("b_start",)),
    (BATCH_VS_LR, dict(b_start=64, b_end=32), ("b_start", "b_end")),
    (BATCH_VS_LR, dict(b_end=100), ("b_start", "b_end")),  # doubling stops at 64
    (BATCH_VS_LR, dict(b_start=48, b_end=1024), ("b_start", "b_end")),
    (BATCH_VS_LR, dict(b_end=65_536), ("b_end", "dataset", "validation_examples")),
    (BATCH_VS_LR, dict(max_device_batch=1000), ("b_start", "b_end", "max_device_batch")),
    (BATCH_VS_LR, dict(double_every_epochs=0), ("double_every_epochs",)),
    (BATCH_VS_LR, dict(epochs=0), ("epochs",)),
    (BATCH_VS_LR, dict(step_size_epochs=0.0), ("step_size_epochs",)),
    (BATCH_VS_LR, dict(lr=NAN), ("lr",)),
    (BATCH_VS_LR, dict(validation_examples=60_000), ("validation_examples", "dataset")),
    # clr_fashion_mnist
    (CLR, dict(policies=("cosine",)), ("policies",)),
    (CLR, dict(policies=("triangular", "triangular")), ("policies",)),
    (CLR, dict(step_size_epochs=0.0), ("step_size_epochs",)),
    (CLR, dict(gamma=0.0), ("gamma",)),
    (CLR, dict(gamma=1.5), ("gamma",)),
    (CLR, dict(clr_paper_bounds=(0.001,)), ("clr_paper_bounds",)),
    (CLR, dict(clr_paper_bounds=(0.001, 0.006, 0.01)), ("clr_paper_bounds",)),
    (CLR, dict(clr_paper_bounds=(0.006, 0.001)), ("clr_paper_bounds",)),
    (CLR, dict(clr_paper_bounds=(0.0, 0.006)), ("clr_paper_bounds",)),
    (CLR, dict(max_epochs=0), ("max_epochs",)),
    (CLR, dict(patience=0), ("patience",)),
    (CLR, dict(target_accuracy=1.5), ("target_accuracy",)),
    (CLR, dict(restore_best=1), ("restore_best",)),
    (CLR, dict(validation_examples=-1), ("validation_examples",)),  # 0: the test split
    (
        CLR,
        dict(batch_size=513, train_examples=768, validation_examples=256),
        ("batch_size", "train_examples", "validation_examples"),
    ),
    # lr_range_test
    (RANGE, dict(dataset="auto"), ("dataset",)),
    (RANGE, dict(data_dir=""), ("data_dir",)),
    (RANGE, dict(learning_rates=()), ("learning_rates",)),
    (RANGE, dict(learning_rates=(0.1, 0.0)), ("learning_rates",)),
    (RANGE, dict(learning_rates=(0.1, INF)), ("learning_rates",)),
    (RANGE, dict(learning_rates=(0.1, 0.1)), ("learning_rates",)),
    (RANGE, dict(epochs=0), ("epochs",)),
    (RANGE, dict(batch_size=0), ("batch_size",)),
    (RANGE, dict(batch_size=60_001), ("batch_size", "dataset")),
    (RANGE, dict(batch_size=300, train_examples=256), ("batch_size", "train_examples")),
    (RANGE, dict(seed=-1), ("seed",)),
    (RANGE, dict(optimizer="lamb"), ("optimizer",)),
    (RANGE, dict(input_norm="layernorm"), ("input_norm",)),
    (RANGE, dict(hidden_batchnorm=None), ("hidden_batchnorm",)),
    (RANGE, dict(preprocessing="whiten"), ("preprocessing",)),
    (RANGE, dict(train_examples=0), ("train_examples",)),
    (RANGE, dict(eval_examples=0), ("eval_examples",)),
    (RANGE, dict(eval_batch_size=0), ("eval_batch_size",)),
    (RANGE, dict(divergence_loss=-1.0), ("divergence_loss",)),
    (RANGE, dict(method="bisect"), ("method",)),
    (RANGE, dict(grid_strategy="pmap"), ("grid_strategy",)),
    (RANGE, dict(grid_chunk=0), ("grid_chunk",)),
    (RANGE, dict(sweep_start=0.0), ("sweep_start",)),
    (RANGE, dict(sweep_end=INF), ("sweep_end",)),
    (RANGE, dict(sweep_start=10.0, sweep_end=1.0), ("sweep_start", "sweep_end")),
    (RANGE, dict(sweep_start=1.0, sweep_end=1.0), ("sweep_start", "sweep_end")),
    (RANGE, dict(sweep_steps=1), ("sweep_steps",)),
    (RANGE, dict(sweep_factor=1.0), ("sweep_factor",)),
    # adaptive_optimizers
    (ADAPTIVE, dict(dataset="imagenet"), ("dataset",)),
    (ADAPTIVE, dict(optimizers=()), ("optimizers",)),
    (ADAPTIVE, dict(optimizers=("sgd", "lamb")), ("optimizers",)),
    (ADAPTIVE, dict(optimizers=("adam", "adam")), ("optimizers",)),
    (ADAPTIVE, dict(regularizations=("l1",)), ("regularizations",)),
    (ADAPTIVE, dict(hidden=()), ("hidden",)),
    (ADAPTIVE, dict(hidden=(64, 0)), ("hidden",)),
    (ADAPTIVE, dict(epochs=0), ("epochs",)),
    (ADAPTIVE, dict(batch_size=0), ("batch_size",)),
    (ADAPTIVE, dict(batch_size=50_001), ("batch_size", "dataset")),  # auto: CIFAR-10's 50000
    (ADAPTIVE, dict(batch_size=257, train_examples=256), ("batch_size", "train_examples")),
    (ADAPTIVE, dict(seed=-1), ("seed",)),
    (ADAPTIVE, dict(l2_coefficient=-0.01), ("l2_coefficient",)),
    (ADAPTIVE, dict(input_dropout=1.0), ("input_dropout",)),
    (ADAPTIVE, dict(hidden_dropout=-0.1), ("hidden_dropout",)),
    (ADAPTIVE, dict(preset="torch"), ("preset",)),
    (ADAPTIVE, dict(preprocessing="whiten"), ("preprocessing",)),
    (ADAPTIVE, dict(train_examples=0), ("train_examples",)),
    (ADAPTIVE, dict(test_examples=0), ("test_examples",)),
    (ADAPTIVE, dict(divergence_loss=0.0), ("divergence_loss",)),
    # batch_augmentation
    (AUGMENT, dict(dataset="imagenet"), ("dataset",)),
    (AUGMENT, dict(depth=45), ("depth",)),
    (AUGMENT, dict(depth=2), ("depth",)),
    (AUGMENT, dict(shortcut="C"), ("shortcut",)),
    (AUGMENT, dict(bn_momentum=1.0), ("bn_momentum",)),
    (AUGMENT, dict(batch_size=0), ("batch_size",)),
    (AUGMENT, dict(batch_size=45_001), ("batch_size", "dataset", "validation_examples")),
    (AUGMENT, dict(copies=()), ("copies",)),
    (AUGMENT, dict(copies=(1, 0)), ("copies",)),
    (AUGMENT, dict(copies=(1, 2, 2)), ("copies",)),
    (AUGMENT, dict(cutout_size=0), ("cutout_size",)),
    (AUGMENT, dict(cutout_size=33), ("cutout_size",)),
    (AUGMENT, dict(recipe="lamb"), ("recipe",)),
    (AUGMENT, dict(epochs=0), ("epochs",)),
    (AUGMENT, dict(max_updates=0), ("max_updates",)),
    (AUGMENT, dict(target_accuracy=-0.1), ("target_accuracy",)),
    (AUGMENT, dict(stop_at_target=None), ("stop_at_target",)),
    (AUGMENT, dict(validation_examples=0), ("validation_examples",)),
    (AUGMENT, dict(validation_examples=50_000), ("validation_examples", "dataset")),
    (
        AUGMENT,
        dict(train_examples=256, validation_examples=256),
        ("validation_examples", "train_examples"),
    ),
    (AUGMENT, dict(train_examples=0), ("train_examples",)),
    (AUGMENT, dict(test_examples=0), ("test_examples",)),
    (AUGMENT, dict(preprocessing="whiten"), ("preprocessing",)),
    (AUGMENT, dict(seed=-1), ("seed",)),
    (AUGMENT, dict(divergence_loss=NAN), ("divergence_loss",)),
    # bn_dropout
    (BN, dict(dataset="imagenet"), ("dataset",)),
    (BN, dict(variants=()), ("variants",)),
    (BN, dict(variants=("bn",)), ("variants",)),
    (BN, dict(variants=("dropout", "dropout")), ("variants",)),
    (BN, dict(learning_rate=0.0), ("learning_rate",)),
    (BN, dict(batch_size=0), ("batch_size",)),
    (BN, dict(batch_size=60_001), ("batch_size", "dataset")),  # auto: MNIST-sized
    (BN, dict(epochs=0), ("epochs",)),
    (BN, dict(input_dropout=1.0), ("input_dropout",)),
    (BN, dict(hidden_dropout=1.0), ("hidden_dropout",)),
    (BN, dict(seed=-1), ("seed",)),
    (BN, dict(train_examples=0), ("train_examples",)),
    (BN, dict(test_examples=0), ("test_examples",)),
    (BN, dict(divergence_loss=0.0), ("divergence_loss",)),
    # cnn_arithmetic
    (CNN, dict(num_classes=0), ("num_classes",)),
    (CNN, dict(alexnet_input=(64, 64, 3)), ("alexnet_input",)),
    (CNN, dict(alexnet_input=(227, 227)), ("alexnet_input",)),
    (CNN, dict(vgg_input=(16, 16, 3)), ("vgg_input",)),
    (CNN, dict(vgg_input=(224, 224, 0)), ("vgg_input",)),
    (CNN, dict(stack_kernel_size=0), ("stack_kernel_size",)),
    (CNN, dict(stack_depths=()), ("stack_depths",)),
    (CNN, dict(stack_depths=(0, 1)), ("stack_depths",)),
    (CNN, dict(stack_depths=(1, 1)), ("stack_depths",)),
    (CNN, dict(stack_input=(32, 32)), ("stack_input",)),
    (
        CNN,
        dict(stack_input=(4, 4, 8), stack_depths=(2,)),
        ("stack_input", "stack_depths", "stack_kernel_size"),
    ),
    (CNN, dict(inception_input=(32, 32, -1)), ("inception_input",)),
    (CNN, dict(naive_filters=(128, 192)), ("naive_filters",)),
    (CNN, dict(reduced_filters=(128, 64, 192, 64, 96, 0)), ("reduced_filters",)),
    (CNN, dict(seed=-1), ("seed",)),
    # dead_relu
    (DEAD, dict(activations=()), ("activations",)),
    (DEAD, dict(activations=("elu",)), ("activations",)),
    (DEAD, dict(initializers=("he_normal", "he_normal")), ("initializers",)),
    (DEAD, dict(initializers=("orthogonal",)), ("initializers",)),
    (DEAD, dict(leaky_slope=1.0), ("leaky_slope",)),
    (DEAD, dict(simulations=0), ("simulations",)),
    (DEAD, dict(train_points=0), ("train_points",)),
    (DEAD, dict(test_points=1), ("test_points",)),
    (DEAD, dict(x_limit=0.0), ("x_limit",)),
    (DEAD, dict(width=0), ("width",)),
    (DEAD, dict(depth=0), ("depth",)),
    (DEAD, dict(epochs=0), ("epochs",)),
    (DEAD, dict(batch_size=0), ("batch_size",)),
    (DEAD, dict(batch_size=3001), ("batch_size", "train_points")),
    (DEAD, dict(learning_rate=0.0), ("learning_rate",)),
    (DEAD, dict(optimizer="lamb"), ("optimizer",)),
    (DEAD, dict(preset="torch"), ("preset",)),
    (DEAD, dict(collapse_variance=-1e-3), ("collapse_variance",)),
    (DEAD, dict(confidence=1.0), ("confidence",)),
    (DEAD, dict(confidence=0.0), ("confidence",)),
    (DEAD, dict(seed=-1), ("seed",)),
    (DEAD, dict(one_by_one=-1), ("one_by_one",)),
    (DEAD, dict(one_by_one=1001), ("one_by_one", "simulations")),
    # init_activations
    (INIT, dict(dataset="imagenet"), ("dataset",)),
    (INIT, dict(activations=()), ("activations",)),
    (INIT, dict(activations=("elu",)), ("activations",)),
    (INIT, dict(stddevs=(0.0,)), ("stddevs",)),
    (INIT, dict(stddevs=(0.1, 0.1)), ("stddevs",)),
    (INIT, dict(initializers=("orthogonal",)), ("initializers",)),
    (INIT, dict(stddevs=(), initializers=()), ("stddevs", "initializers")),
    (INIT, dict(width=0), ("width",)),
    (INIT, dict(depth=0), ("depth",)),
    (INIT, dict(seed=-1), ("seed",)),
    (INIT, dict(preprocessing="whiten"), ("preprocessing",)),
    (INIT, dict(test_examples=0), ("test_examples",)),
    (INIT, dict(density_points=1), ("density_points",)),
    (INIT, dict(density_samples=1), ("density_samples",)),
    # perceptron
    (PERCEPTRON, dict(losses=()), ("losses",)),
    (PERCEPTRON, dict(losses=("perceptron", "logistic")), ("losses",)),
    (PERCEPTRON, dict(losses=("hinge", "hinge")), ("losses",)),
    (PERCEPTRON, dict(train_examples=0), ("train_examples",)),
    (PERCEPTRON, dict(test_examples=0), ("test_examples",)),
    (PERCEPTRON, dict(epochs=0), ("epochs",)),
    (PERCEPTRON, dict(learning_rate=0.0), ("learning_rate",)),
    (PERCEPTRON, dict(learning_rate=NAN), ("learning_rate",)),
    (PERCEPTRON, dict(shuffle="no"), ("shuffle",)),
    (PERCEPTRON, dict(seed=-1), ("seed",)),
    (PERCEPTRON, dict(repeats=0), ("repeats",)),
    (PERCEPTRON, dict(seed=2**31 - 1, repeats=2), ("seed", "repeats")),
    # scaling
    (SCALING, dict(device_counts=()), ("device_counts",)),
    (SCALING, dict(device_counts=(2, 4)), ("device_counts",)),
    (SCALING, dict(device_counts=(1, 2, 2)), ("device_counts",)),
    (SCALING, dict(device_counts=(1, 0)), ("device_counts",)),
    (SCALING, dict(lenet_strong_batches=(100,)), ("lenet_strong_batches", "device_counts")),
    (SCALING, dict(resnet_strong_batches=(12,)), ("resnet_strong_batches", "device_counts")),
    (SCALING, dict(lenet_strong_batches=()), ("lenet_strong_batches",)),
    (SCALING, dict(lenet_strong_batches=(60_008,)), ("lenet_strong_batches", "dataset")),
    (SCALING, dict(lenet_weak_batches=(0,)), ("lenet_weak_batches",)),
    (
        SCALING,
        dict(lenet_weak_batches=(8_000,)),
        ("lenet_weak_batches", "device_counts", "dataset"),
    ),
    (SCALING, dict(resnet_weak_batches=(8, 8)), ("resnet_weak_batches",)),
    (SCALING, dict(lenet_steps=0), ("lenet_steps",)),
    (SCALING, dict(resnet_steps=0), ("resnet_steps",)),
    (SCALING, dict(resnet_depth=10), ("resnet_depth",)),
    (SCALING, dict(learning_rate=0.0), ("learning_rate",)),
    (SCALING, dict(momentum=1.0), ("momentum",)),
    (SCALING, dict(predict_devices=()), ("predict_devices",)),
    (SCALING, dict(predict_devices=(1, -2)), ("predict_devices",)),
    (SCALING, dict(predict_strong_batch=0), ("predict_strong_batch",)),
    (SCALING, dict(predict_weak_batch=0), ("predict_weak_batch",)),
    (SCALING, dict(gpu_flops_per_s=0.0), ("gpu_flops_per_s",)),
    (SCALING, dict(gpu_flops_per_s=INF), ("gpu_flops_per_s",)),
    (SCALING, dict(interconnects=()), ("interconnects",)),
    (SCALING, dict(interconnects=("token_ring",)), ("interconnects",)),
    (SCALING, dict(dataset="cifar10"), ("dataset",)),  # LeNet-5 is measured on 28x28x1
    (SCALING, dict(data_dir=""), ("data_dir",)),
    (SCALING, dict(seed=-1), ("seed",)),
]

GOOD = [
    (LENET, dict(lr_min=1e-4, lr_max=0.1)),
    (LENET, dict(lr_min=1e-4, lr_max=0.1, bounds_from="runs/lr_range_test/results.json")),
    (LENET, dict(bounds_from=pathlib.Path("runs/lr_range_test/results.json"))),
    (LENET, dict(data_dir=pathlib.Path("/data"), seed=2**31 - 1, sweep_steps=12)),
    (LENET, dict(batch_size=60_000)),  # the whole split
    (LENET, dict(batch_size=512, train_examples=512)),
    (LENET, dict(train_examples=70_000, batch_size=60_000)),  # more than the split: all of it
    (LENET, dict(dataset="cifar10", preprocessing="standardize", input_norm="none")),
    (LENET, dict(seed=np.int64(3), batch_size=np.int64(32))),  # NumPy integers too
    (SWEEP, dict(batch_sizes=(100, 200, 400), max_device_batch=None)),
    (SWEEP, dict(batch_sizes=(3000,), max_device_batch=1000)),  # 3 micro-batches of 1000
    (SWEEP, dict(batch_sizes=[16, 32])),
    (SWEEP, dict(lr=5.0, tolerance=0.5)),
    (CYCLIC, dict(b_min=16, b_max=16)),
    (CYCLIC, dict(b_min=1, b_max=32_768)),
    (CYCLIC, dict(b_min=48, b_max=500, policies=("fixed", "increase", "clr"))),
    (CYCLIC, dict(b_min=64, b_max=512, strategy="accumulate", max_device_batch=64)),
    (CYCLIC, dict(batch_bounds_from="runs/batch_size_sweep/results.json")),
    (CYCLIC, dict(train_examples=8192, validation_examples=100)),  # the sweep's 8192 fits
    (CYCLIC, dict(step_size_epochs=0.25, lr=0.5)),
    (BATCH_VS_LR, dict(b_start=48, b_end=768)),  # any start, doubled
    (BATCH_VS_LR, dict(b_start=64, b_end=64)),
    (BATCH_VS_LR, dict(b_end=32_768)),  # 32768 <= 60000 - 10000
    (BATCH_VS_LR, dict(b_start=48, b_end=3072, max_device_batch=1024)),  # 3 x 1024
    (CLR, dict(gamma=1.0, target_accuracy=1.0, patience=100, policies=("clr_paper",))),
    (CLR, dict(batch_size=512, train_examples=768, validation_examples=256)),
    (RANGE, dict(learning_rates=(1e6, 1e-12), grid_strategy="loop", optimizer="adam")),
    (RANGE, dict(grid_chunk=1)),
    (RANGE, dict(method="sweep", sweep_start=1e-12, sweep_end=1e3, sweep_factor=1.01)),
    (ADAPTIVE, dict(dataset="auto", batch_size=50_000, l2_coefficient=0.0, input_dropout=0.0)),
    (ADAPTIVE, dict(dataset="cifar10", hidden=(8,), optimizers=("adadelta",))),
    (AUGMENT, dict(depth=8, cutout_size=32, bn_momentum=0.0, copies=(32,), max_updates=1)),
    (AUGMENT, dict(train_examples=65, validation_examples=1, batch_size=64)),
    (AUGMENT, dict(target_accuracy=0.0, recipe="he", shortcut="A", stop_at_target=False)),
    (BN, dict(dataset="mnist", batch_size=60_000, hidden_dropout=0.0, variants=("dropout",))),
    (CNN, dict(alexnet_input=(67, 67, 1), vgg_input=(32, 32, 1), stack_depths=(3,))),
    (CNN, dict(stack_input=(5, 5, 1), stack_depths=(2,), stack_kernel_size=3)),
    (CNN, dict(stack_input=(1, 1, 1), stack_kernel_size=1)),
    (DEAD, dict(one_by_one=0, leaky_slope=0.0, collapse_variance=0.0, batch_size=3000)),
    (DEAD, dict(one_by_one=1000, optimizer="sgd", preset="optax", confidence=0.999)),
    (INIT, dict(stddevs=(), initializers=("lecun_normal",))),
    (INIT, dict(stddevs=(0.5,), initializers=(), activations=("relu",), density_points=2)),
    (PERCEPTRON, dict(seed=2**31 - 2, repeats=2, losses=("hinge",), shuffle=False)),
    (SCALING, dict(device_counts=(1,), lenet_strong_batches=(7,), resnet_strong_batches=(3,))),
    (SCALING, dict(device_counts=(1, 3), lenet_strong_batches=(6,), resnet_strong_batches=(6,))),
    (SCALING, dict(dataset="mnist", momentum=0.0, lenet_weak_batches=(7_500,))),
]


def _id(case: tuple) -> str:
    preset, overrides = case[0], case[1]
    return f"{type(preset).__name__}-" + ",".join(f"{k}={v!r}" for k, v in overrides.items())


@pytest.mark.parametrize("preset, overrides, fields", BAD, ids=[_id(c) for c in BAD])
def test_bad_values_raise_naming_the_fields(preset, overrides, fields):
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(preset, **overrides)
    assert caught.value.fields == fields, str(caught.value)
    names = {f.name for f in dataclasses.fields(preset)}
    assert set(caught.value.fields) <= names  # the CLI maps every one to its flag
    message = str(caught.value)
    assert message.startswith(" and ".join(fields) + " must ")
    assert "{" not in message, message  # every {field} mention was filled in


@pytest.mark.parametrize("preset, overrides", GOOD, ids=[_id(c) for c in GOOD])
def test_valid_edge_values_are_accepted(preset, overrides):
    config = dataclasses.replace(preset, **overrides)
    for name, value in overrides.items():
        assert getattr(config, name) == value


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid(name):
    preset = PRESETS[name]
    assert dataclasses.replace(preset) == preset  # __post_init__ runs again


def test_presets_cover_every_config_module():
    modules = {name.split(".")[0] for name in PRESETS}
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in MODULES} - {"common"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
def test_every_config_class_checks_itself(cls):
    assert "__post_init__" in vars(cls), f"{cls.__qualname__} has no __post_init__ of its own"
    covered = {type(case[0]) for case in BAD}
    assert cls in covered, f"no bad-value case for {cls.__qualname__}"
    cls()  # the defaults are valid


def test_error_message_format():
    with pytest.raises(ConfigError, match=r"^epochs must be an integer >= 1, got 0$"):
        dataclasses.replace(PERCEPTRON, epochs=0)
    with pytest.raises(ConfigError, match=r"^lr_min and lr_max must be given together"):
        dataclasses.replace(CLR, lr_min=0.01)
    error = pytest.raises(ConfigError, dataclasses.replace, CLR, lr_min=0.2, lr_max=0.1).value
    flags = error.describe(lambda field: "--" + field.replace("_", "-"))
    assert flags == "--lr-min and --lr-max must satisfy --lr-min < --lr-max, got 0.2 and 0.1"
