"""Losses and metrics on logits float[B, K] and integer labels int[B]; the objectives
(`Objective`: classification, MSE) the train and eval steps use; the L2 penalty."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Mean softmax cross-entropy (nats) over the batch; a float32 scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]))), 4)  # log 4
      1.3863
    """
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Fraction of the batch whose arg-max logit equals the label; a float32 scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(accuracy(jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.array([0, 1])))
      0.5
    """
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


class Objective(NamedTuple):
    """What a train / eval step minimizes and counts, as pure functions of a batch.

    name: how it is named ("classification", "mse").
    per_example: (outputs float[B, ...], targets[B, ...]) -> float32[B], each example's loss;
      the batch loss is its mean.
    correct: (outputs, targets) -> float32[B], 1.0 where the prediction is right (accuracy is
      its mean), or None where accuracy is undefined (the steps then report NaN).
    integer_targets: whether targets are integer class labels int[B] (else real numbers).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxsched import losses
      >>> losses.MSE.per_example(jnp.array([[1.0], [3.0]]), jnp.array([1.0, 1.0]))
      Array([0., 4.], dtype=float32)
      >>> losses.MSE.correct is None, losses.CLASSIFICATION.integer_targets
      (True, True)
    """

    name: str
    per_example: Callable[[jax.Array, jax.Array], jax.Array]
    correct: Callable[[jax.Array, jax.Array], jax.Array] | None
    integer_targets: bool


def _argmax_correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def _squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean over the output features of (outputs - targets)^2: float[B]. Targets [B] go with
    outputs [B, 1] (or [B]); else targets are shaped like the outputs."""
    outputs = jnp.asarray(outputs)
    targets = jnp.asarray(targets).astype(outputs.dtype)
    if targets.ndim == outputs.ndim - 1:
        targets = targets[..., None]
    return jnp.mean(jnp.square(outputs - targets), axis=tuple(range(1, outputs.ndim)))


# Softmax cross-entropy on logits float[B, K] and labels int[B]; accuracy by arg-max. The same
# ops as `cross_entropy` / `accuracy` / `masked_sums`, so the numbers are bit-identical.
CLASSIFICATION = Objective(
    name="classification",
    per_example=optax.softmax_cross_entropy_with_integer_labels,
    correct=_argmax_correct,
    integer_targets=True,
)
# Mean squared error for regression: outputs float[B, K], targets float[B, K] (or [B], K = 1).
MSE = Objective(name="mse", per_example=_squared_error, correct=None, integer_targets=False)
OBJECTIVES = {"classification": CLASSIFICATION, "mse": MSE}


def objective(spec: str | Objective) -> Objective:
    """The Objective named by `spec` ("classification" or "mse"), or `spec` itself.

    Raises ValueError naming `loss` for anything else (the name of the argument in `loop.fit`).

    Examples:
      >>> from jaxsched import losses
      >>> losses.objective("mse") is losses.MSE
      True
      >>> losses.objective(losses.CLASSIFICATION).name
      'classification'
    """
    if isinstance(spec, Objective):
        return spec
    if isinstance(spec, str) and spec in OBJECTIVES:
        return OBJECTIVES[spec]
    raise ValueError(f"loss must be one of {tuple(OBJECTIVES)} or a losses.Objective, got {spec!r}")


def batch_accuracy(obj: Objective, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The batch's accuracy under `obj`, a float32 scalar: the mean of `obj.correct`, NaN when
    it is None (for CLASSIFICATION exactly `accuracy`).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxsched import losses
      >>> float(losses.batch_accuracy(losses.MSE, jnp.zeros((2, 1)), jnp.ones(2)))
      nan
    """
    if obj.correct is None:
        return jnp.full((), jnp.nan, jnp.float32)
    if obj is CLASSIFICATION:
        return accuracy(outputs, targets)
    return jnp.mean(obj.correct(outputs, targets))


def masked_sums(
    logits: jnp.ndarray,
    labels: jnp.ndarray,
    mask: jnp.ndarray,
    objective: Objective = CLASSIFICATION,
) -> dict:
    """Summed loss, correct count and example count over the rows where mask is true.

    Summing (instead of averaging) keeps evaluation exact when the last batch is padded: the
    caller adds the sums over batches and divides once (AlgoPerf's convention). logits: the
    outputs [B, ...]; labels: the targets [B, ...]; mask: bool[B]. "correct" is NaN when the
    objective has no `correct` (e.g. MSE).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxsched import losses
      >>> sums = losses.masked_sums(jnp.array([[2.0, 0.0], [0.0, 2.0]]), jnp.array([0, 0]),
      ...                           jnp.array([True, False]))
      >>> float(sums["correct"]), float(sums["count"])
      (1.0, 1.0)
    """
    mask = mask.astype(jnp.float32)
    losses = objective.per_example(logits, labels)
    if objective.correct is None:
        correct_sum = jnp.full((), jnp.nan, jnp.float32)
    else:
        correct_sum = jnp.sum(objective.correct(logits, labels) * mask)
    return {
        "loss_sum": jnp.sum(losses * mask),
        "correct": correct_sum,
        "count": jnp.sum(mask),
    }


def kernel_mask(params: Any, include_biases: bool = False) -> Any:
    """A tree of bools like `params`: True for leaves named "kernel" (and "bias" if asked).

    Flax's Dense and Conv layers name their weights "kernel" and "bias" (BatchNorm's are "scale"
    and "bias", so `include_biases` also selects BatchNorm biases). Usable as an optax mask.

    Examples:
      >>> kernel_mask({"dense": {"kernel": 1.0, "bias": 0.0}})
      {'dense': {'bias': False, 'kernel': True}}
    """
    names = ("kernel", "bias") if include_biases else ("kernel",)

    def selected(path, _) -> bool:
        last = path[-1] if path else None
        return getattr(last, "key", getattr(last, "name", None)) in names

    return jax.tree_util.tree_map_with_path(selected, params)


def l2_penalty(params: Any, coefficient: float = 0.01, include_biases: bool = False) -> jax.Array:
    """Keras's `kernel_regularizer=l2(coefficient)` on every layer: coefficient * sum(w^2).

    The sum runs over the "kernel" leaves of a Flax param tree (and the "bias" leaves with
    `include_biases`, like adding `bias_regularizer=l2(coefficient)`). Added to the loss, its
    gradient 2 * coefficient * w joins the data gradient, so adaptive optimizers rescale it;
    for decoupled weight decay use `optimizers.make(..., weight_decay=...)` instead.

    Args:
      params: a Flax param tree.
      coefficient: float >= 0, Keras's `l2` factor (Keras's default is 0.01).
      include_biases: also penalise leaves named "bias".

    Returns:
      A float32 scalar (0 when no leaf is selected).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(l2_penalty({"kernel": jnp.array([1.0, 2.0]), "bias": jnp.ones(2)}, 0.1))
      0.5
    """
    if isinstance(coefficient, int | float) and not coefficient >= 0:
        raise ValueError(f"coefficient must be >= 0, got {coefficient}")
    mask = kernel_mask(params, include_biases)
    total = jnp.zeros((), jnp.float32)
    for leaf, selected in zip(
        jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(mask), strict=True
    ):
        if selected:
            total = total + jnp.sum(jnp.square(leaf.astype(jnp.float32)))
    return coefficient * total
