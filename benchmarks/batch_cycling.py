"""A cyclic batch-size run of LeNet-5 on Fashion-MNIST under both strategies of jaxsched.batching:
compilations, seconds compiling, the run's seconds, and the steady-state seconds per update at
each batch size.

    python -m benchmarks.batch_cycling [--smoke]

"shapes" compiles one train step per distinct batch size; "accumulate" compiles one step at the
smallest size and runs an update of size s as s / b_min micro-batches (optax.MultiSteps). Each
repetition is a fresh `loop.fit(batch_size=cyclic_batch_size(...), strategy=...)` (so it
compiles again); the per-update times come from the same train step as `fit` builds, warm,
`number` updates per repetition. jaxsched only: the two strategies are compared, no peer.
"""

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import common, fixtures
from jaxsched import batch_schedules, batching, loop, optimizers, train
from jaxsched.models import LeNet5

NAME = "batch_cycling"


@dataclasses.dataclass(frozen=True)
class Size:
    b_min: int
    b_max: int
    step_size: int  # updates per half-cycle
    epochs: int
    updates_per_repetition: int  # `number` of the per-update timings


FULL = Size(b_min=64, b_max=512, step_size=40, epochs=1, updates_per_repetition=10)
SMOKE = Size(b_min=16, b_max=64, step_size=6, epochs=1, updates_per_repetition=2)


def make_update(strategy: str, size: Size, num_examples: int, sample: jax.Array):
    """(update(batch_size) -> state, micro size): one optimizer update of the given size
    through the step `loop.fit` builds for `strategy` (MultiSteps k from the plan for
    "accumulate"), the state threaded through donated calls."""
    schedule = batch_schedules.cyclic_batch_size(size.b_min, size.b_max, size.step_size)
    plan = batching.plan(num_examples, schedule, epochs=size.epochs, strategy=strategy)
    tx = optimizers.make("sgd", fixtures.KERAS_SGD_RATE, preset="keras")
    tx = loop.accumulating(tx, plan)  # as loop.fit wraps it
    model = LeNet5()
    step = train.CompiledStep(train.make_train_step(model, tx), donate_state=True)
    box = {"state": train.init_train_state(model, tx, jax.random.key(0), sample[:1])}
    micro = plan.micro[0] if strategy == "accumulate" else None

    def update(batch_size: int):
        m = micro or batch_size
        images = jnp.asarray(sample[:m])
        labels = jnp.zeros((m,), jnp.int32)
        for _ in range(batch_size // m):
            box["state"], _ = step(box["state"], images, labels)
        return box["state"]

    return update, plan


def measure(strategy: str, size: Size, repetitions: int, smoke: bool) -> list[dict[str, Any]]:
    train_ds = fixtures.fashion_mnist(smoke)
    n = len(train_ds.labels)
    schedule = batch_schedules.cyclic_batch_size(size.b_min, size.b_max, size.step_size)
    case = f"cyclic {size.b_min}-{size.b_max}, {size.step_size} updates per half-cycle"
    base = strategy == "shapes"
    fixtures.lenet_fit(train_ds, size.b_min, epochs=1, seed=0, max_steps=1)  # warm-up
    outs = [
        fixtures.lenet_fit(
            train_ds, schedule, epochs=size.epochs, seed=r, strategy=strategy, sync_every=100
        )
        for r in range(repetitions)
    ]
    hist = [o["history"] for o in outs]
    images = sum(hist[0].steps["batch_size"])
    updates = len(hist[0].steps["loss"])
    note = f"loop.fit(strategy={strategy!r}), {size.epochs} epoch(s), {updates} updates"
    rows = [
        common.row(
            NAME,
            case,
            "jaxsched",
            strategy,
            "compilations",
            [h.num_compilations for h in hist],
            "count",
            baseline=base,
            note=note,
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            strategy,
            "compile",
            [h.compile_time_s for h in hist],
            baseline=base,
            note=note,
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            strategy,
            "run (compile incl.)",
            [h.wall_time_s for h in hist],
            items=images,
            baseline=base,
            note=note,
        ),
    ]
    update, plan = make_update(strategy, size, n, train_ds.images)
    for b in sorted({s for sizes in plan.sizes for s in sizes}):
        stats = common.repeat(
            lambda b=b: update(b), repetitions, warmup=1, number=size.updates_per_repetition
        )
        how = (
            "1 batch"
            if plan.micro[0] == b or strategy == "shapes"
            else (f"{b // plan.micro[0]} x {plan.micro[0]} micro-batches")
        )
        rows.append(
            common.row(
                NAME,
                case,
                "jaxsched",
                strategy,
                f"update at batch {b}",
                stats,
                items=b,
                baseline=base,
                note=f"warm; {how}",
            )
        )
    return rows


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Both strategies on the same schedule (jaxsched only)."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    rows = []
    for strategy in batching.STRATEGIES:
        rows += common.peer_rows(
            NAME,
            "jaxsched",
            strategy,
            peers,
            lambda strategy=strategy: measure(strategy, size, repetitions, smoke),
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
