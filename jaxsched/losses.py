"""Losses and metrics on logits float[B, K] and integer labels int[B]; the L2 penalty."""

from typing import Any

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Mean softmax cross-entropy (nats) over the batch; a float32 scalar."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Fraction of the batch whose arg-max logit equals the label; a float32 scalar."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def masked_sums(logits: jnp.ndarray, labels: jnp.ndarray, mask: jnp.ndarray) -> dict:
    """Summed loss, correct count and example count over the rows where mask is true.

    Summing (instead of averaging) keeps evaluation exact when the last batch is padded: the
    caller adds the sums over batches and divides once (AlgoPerf's convention).
    """
    mask = mask.astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return {
        "loss_sum": jnp.sum(losses * mask),
        "correct": jnp.sum(correct * mask),
        "count": jnp.sum(mask),
    }


def kernel_mask(params: Any, include_biases: bool = False) -> Any:
    """A tree of bools like `params`: True for leaves named "kernel" (and "bias" if asked).

    Flax's Dense and Conv layers name their weights "kernel" and "bias" (BatchNorm's are "scale"
    and "bias", so `include_biases` also selects BatchNorm biases). Usable as an optax mask.
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
