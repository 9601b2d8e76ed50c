r"""A linear classifier without bias, y_hat = sign(w . x), trained one sample at a time.

Labels are y in {-1, +1} (float). The margin of a sample is m = y * (w . x); a sample counts as
correctly classified when m > 0 (a point on the boundary, m = 0, is an error). Losses per sample:

    perceptron criterion  max(0, -m)     subgradient -y x where m <= 0, else 0
    hinge                 max(0, 1 - m)  subgradient -y x where m < 1,  else 0

So one plain-SGD step on a sample is w <- w + lr * y * x exactly when the perceptron
misclassifies it (Rosenblatt's rule, which also moves w off w = 0) / when its margin is below 1
for hinge, and leaves w unchanged otherwise. The subgradients at the kinks are fixed by writing
the losses with `jnp.where` (JAX differentiates the branch taken).
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def margin(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """y * (w . x): w float[D], x float[..., D], y float[...] in {-1, +1} -> float[...]."""
    return y * (x @ w)


def perceptron_loss(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Perceptron criterion max(0, -y w.x), per sample (shapes as `margin`)."""
    m = margin(w, x, y)
    return jnp.where(m <= 0, -m, 0.0)


def hinge_loss(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Hinge loss max(0, 1 - y w.x), per sample (shapes as `margin`)."""
    m = margin(w, x, y)
    return jnp.where(m < 1, 1.0 - m, 0.0)


LOSSES: dict[str, LossFn] = {"perceptron": perceptron_loss, "hinge": hinge_loss}


def accuracy(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of samples with y w.x > 0: w float[D], x float[N, D], y float[N] -> scalar."""
    return jnp.mean(margin(w, x, y) > 0)


def linearly_separable_2d(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """n points uniform in [0, 1]^2, labelled -1 where x0 <= x1 and +1 otherwise.

    Returns x float32[n, 2] and y float32[n] in {-1, +1}. The true boundary x0 = x1 passes
    through the origin, so a linear model without bias can separate the classes (w ~ (1, -1)).
    """
    x = jax.random.uniform(key, (n, 2), jnp.float32)
    return x, jnp.where(x[:, 0] <= x[:, 1], -1.0, 1.0).astype(jnp.float32)


def glorot_uniform(key: jax.Array, dim: int) -> jax.Array:
    """float32[dim] weights of a one-unit Dense layer, Keras's default kernel initializer:
    uniform in +-sqrt(6 / (dim + 1)) (+-sqrt(2) for dim = 2)."""
    return jax.nn.initializers.glorot_uniform()(key, (dim, 1), jnp.float32)[:, 0]


def uniform01(key: jax.Array, dim: int) -> jax.Array:
    """float32[dim] weights uniform in [0, 1) (NumPy's `np.random.uniform` / `rand` default: the
    course perceptron notebook's uniform initial weights, as read here)."""
    return jax.random.uniform(key, (dim,), jnp.float32)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "uniform01": uniform01}


class Trace(NamedTuple):
    """What `sgd_per_sample` returns, one row per epoch.

    weights: float[E, D], w after each epoch (weights[-1] is the trained model).
    loss: float[E], mean per-sample loss over the epoch, each measured just before that
      sample's update (Keras's per-epoch "loss" with batch_size=1).
    accuracy: float[E], the same running mean of "margin > 0".
    """

    weights: jax.Array
    loss: jax.Array
    accuracy: jax.Array


@functools.partial(jax.jit, static_argnames=("loss_fn", "epochs", "shuffle"))
def sgd_per_sample(
    loss_fn: LossFn,
    w0: jax.Array,
    x: jax.Array,
    y: jax.Array,
    key: jax.Array,
    *,
    learning_rate: float | jax.Array,
    epochs: int,
    shuffle: bool = True,
) -> Trace:
    """Trains w (float[D], from w0) with optax.sgd(learning_rate), one update per sample.

    x float[N, D], y float[N] in {-1, +1}. With `shuffle` (as Keras's fit, whose default is
    shuffle=True) every epoch visits the samples in its own random order, drawn from
    fold_in(key, epoch); without, in index order (then `key` is unused). A `lax.scan` over
    epochs of a `lax.scan` over samples: one compiled loop, vmappable over keys and data.
    """
    tx = optax.sgd(learning_rate)
    n = x.shape[0]

    def sample_step(carry, sample):
        w, opt_state = carry
        xi, yi = sample
        loss, grad = jax.value_and_grad(loss_fn)(w, xi, yi)
        correct = margin(w, xi, yi) > 0
        updates, opt_state = tx.update(grad, opt_state, w)
        return (optax.apply_updates(w, updates), opt_state), (loss, correct)

    def epoch_step(carry, epoch):
        order = (
            jax.random.permutation(jax.random.fold_in(key, epoch), n) if shuffle else jnp.arange(n)
        )
        carry, (losses, correct) = jax.lax.scan(sample_step, carry, (x[order], y[order]))
        return carry, (carry[0], jnp.mean(losses), jnp.mean(correct))

    _, (weights, loss, acc) = jax.lax.scan(
        epoch_step, (w0, tx.init(w0)), jnp.arange(epochs, dtype=jnp.uint32)
    )
    return Trace(weights, loss, acc)
