"""Losses and metrics on logits float[B, K] and integer labels int[B]."""

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
