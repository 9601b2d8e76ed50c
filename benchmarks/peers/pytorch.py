"""PyTorch: the same LeNet-5 and a plain training loop, eager and under `torch.compile`.

The loop is the idiomatic fast path on a CPU: the data set lives in memory as tensors (NCHW
float32, int64 labels), each epoch draws `torch.randperm` and slices it into batches (the last
partial batch is dropped, as jaxsched's loop does), and every step is zero_grad / forward /
cross-entropy / backward / SGD step, accumulating the loss and the correct count on the tensor
side (no per-step `.item()`). `torch.set_num_threads(os.cpu_count())` is set before it runs.
Under `torch.compile` the model's forward (and so its backward) is compiled by the default
Inductor backend; the optimizer step stays eager. Inductor's on-disk FX-graph and autograd
caches are switched off, so every first epoch compiles from scratch as on a fresh machine
(JAX keeps no persistent cache by default either).
"""

import os
import time
from typing import Any

import numpy as np

VARIANTS = {"eager loop": False, "torch.compile loop": True}


def torch():
    """Imports torch with its thread count set to the machine's cores."""
    import torch as t

    t.set_num_threads(os.cpu_count() or 1)
    return t


def lenet5(num_classes: int = 10):
    """jaxsched.models.LeNet5 in PyTorch (NCHW): BatchNorm with Keras's momentum 0.99
    (PyTorch's momentum=0.01) and epsilon 1e-3, Glorot-uniform kernels and zero biases as in
    Keras. 62,614 parameters counted as Keras does (62,160 trainable, 454 BatchNorm statistics
    held as buffers)."""
    t = torch()
    nn = t.nn

    def bn(c, dims=2):
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(c, eps=1e-3, momentum=0.01)

    model = nn.Sequential(
        bn(1),
        nn.Conv2d(1, 6, 5, padding=2),
        nn.Tanh(),
        bn(6),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        bn(16),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5),
        nn.Tanh(),
        bn(120),
        nn.Flatten(),
        nn.Linear(120, 84),
        nn.Tanh(),
        bn(84, dims=1),
        nn.Linear(84, num_classes),
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def count_params(model) -> int:
    """Parameters plus BatchNorm running means and variances, as Keras counts them."""
    stats = sum(
        b.numel()
        for name, b in model.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
    return sum(p.numel() for p in model.parameters()) + stats


def _disable_inductor_caches(t) -> None:
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = False
    if hasattr(functorch_config, "enable_autograd_cache"):
        functorch_config.enable_autograd_cache = False
    t._dynamo.reset()


def fit_epochs(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    epochs: int,
    compile: bool,
    seed: int,
    learning_rate: float = 0.01,
) -> dict[str, Any]:
    """A fresh LeNet-5 trained `epochs` epochs by the plain loop; returns "epoch_s" (seconds
    per epoch, the first includes torch.compile's compilation), "params", "final_loss",
    "images_per_epoch" and the thread settings."""
    t = torch()
    if compile:
        _disable_inductor_caches(t)
    t.manual_seed(seed)
    x = t.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32))
    y = t.from_numpy(labels.astype(np.int64))
    model = lenet5()
    model.train()
    step_model = t.compile(model) if compile else model
    opt = t.optim.SGD(model.parameters(), lr=learning_rate)
    n, steps = len(x), len(x) // batch_size
    epoch_s, mean_loss = [], float("nan")
    for _ in range(epochs):
        start = time.perf_counter()
        perm = t.randperm(n)
        loss_sum, correct = t.zeros(()), t.zeros((), dtype=t.int64)
        for i in range(steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            logits = step_model(xb)
            loss = t.nn.functional.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(1) == yb).sum()
        mean_loss = float(loss_sum) / steps  # waits for the epoch's work
        epoch_s.append(time.perf_counter() - start)
    return {
        "epoch_s": epoch_s,
        "params": count_params(model),
        "final_loss": mean_loss,
        "final_accuracy": float(correct) / (steps * batch_size),
        "images_per_epoch": steps * batch_size,
        "num_threads": t.get_num_threads(),
        "num_interop_threads": t.get_num_interop_threads(),
    }


def minigooglenet(width: float = 1.0, num_classes: int = 10, in_channels: int = 1):
    """jaxsched.models.MiniGoogLeNet in PyTorch (NCHW), the layout of its LAYOUT: conv_module =
    Conv2d (with bias) -> BatchNorm (Keras's momentum 0.99 = PyTorch's 0.01, epsilon 1e-3) ->
    ReLU, inception and downsample modules concatenated on the channels, 7x7 average pool,
    Dropout 0.5, Linear (logits; the softmax is in the loss); Glorot-uniform kernels and zero
    biases as in Keras. Every filter count K is max(1, round(K * width)); inputs 32x32."""
    from jaxsched.models import minigooglenet as mgn

    t = torch()
    nn = t.nn

    def conv(cin, filters, size, stride=1, padding="same"):
        cout = mgn.scaled(filters, width)
        pad = size // 2 if padding == "same" else 0
        layer = nn.Sequential(
            nn.Conv2d(cin, cout, size, stride=stride, padding=pad),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU(),
        )
        return layer, cout

    class Concat(nn.Module):
        def __init__(self, *branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x):
            return t.cat([b(x) for b in self.branches], dim=1)

    stem, c = conv(in_channels, mgn.STEM_FILTERS, 3)
    body = [stem]
    for kind, filters in mgn.LAYOUT:
        if kind == "inception":
            (a, ca), (b, cb) = conv(c, filters[0], 1), conv(c, filters[1], 3)
            body.append(Concat(a, b))
            c = ca + cb
        else:
            a, ca = conv(c, filters[0], 3, 2, "valid")
            body.append(Concat(a, nn.MaxPool2d(3, stride=2)))
            c = ca + c
    model = nn.Sequential(
        *body,
        nn.AvgPool2d(mgn.POOL_SIZE),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(c, num_classes),
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def minigooglenet_steps(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    repetitions: int,
    compile: bool,
    width: float = 1.0,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    seed: int = 0,
) -> dict[str, Any]:
    """A fresh MiniGoogLeNet trained on one fixed batch by the plain loop (zero_grad / forward /
    cross-entropy / backward / SGD with momentum): one cold step, one untimed warm step, then
    `repetitions` timed runs of `steps` steps, each ending on the loss's value.

    Returns "first_s" ([the cold step's seconds], torch.compile's compilation included),
    "step_s" (seconds per step, one per repetition), "params", "final_loss" and the thread
    settings."""
    t = torch()
    if compile:
        _disable_inductor_caches(t)
    t.manual_seed(seed)
    x = t.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32))
    y = t.from_numpy(labels.astype(np.int64))
    model = minigooglenet(width, in_channels=x.shape[1])
    model.train()
    step_model = t.compile(model) if compile else model
    opt = t.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = t.nn.functional.cross_entropy(step_model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    start = time.perf_counter()
    float(step())
    first_s = time.perf_counter() - start
    float(step())  # warm-up
    step_s, loss = [], float("nan")
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(steps):
            last = step()
        loss = float(last)  # waits for the repetition's work
        step_s.append((time.perf_counter() - start) / steps)
    return {
        "first_s": [first_s],
        "step_s": step_s,
        "params": count_params(model),
        "final_loss": loss,
        "num_threads": t.get_num_threads(),
        "num_interop_threads": t.get_num_interop_threads(),
    }
