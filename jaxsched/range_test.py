"""Choosing lr_min / lr_max from an LR range test.

Grid form (the course's seeds): train a fresh model for a few epochs at each learning rate of a
log-spaced grid and look at the final training loss against log10(lr). The seeds read the
bounds off that curve by eye, in the region where the loss falls fastest. `suggest_from_grid`
makes that reading a rule:

  * runs that diverged (or whose final loss is not finite) are excluded, as is every larger
    learning rate than the smallest one that diverged: past that point training is unstable;
  * lr_max is the learning rate with the lowest final loss among the rest;
  * lr_min is the lower end of the steepest-falling segment of the curve at or below lr_max:
    the adjacent pair (lr_a < lr_b) with the most negative slope
    (loss(lr_b) - loss(lr_a)) / (log10 lr_b - log10 lr_a).
  * when no segment falls (lr_max is the smallest usable rate), lr_min = lr_max / 10.
"""

import itertools
import math
from collections.abc import Sequence
from typing import Any


def suggest_from_grid(
    learning_rates: Sequence[float], final_losses: Sequence[float]
) -> dict[str, Any]:
    """Applies the rule above.

    Args:
      learning_rates: the grid, positive, any order.
      final_losses: final training loss per learning rate; NaN/inf (or None) for diverged runs.

    Returns:
      {"lr_min", "lr_max", "steepest_segment": [lr_a, lr_b] or None, "usable": [lrs], "rule"}.

    Raises:
      ValueError: on mismatched lengths, non-positive rates, or when no run has a finite loss.
    """
    if len(learning_rates) != len(final_losses):
        raise ValueError(
            f"learning_rates and final_losses must have the same length, got "
            f"{len(learning_rates)} and {len(final_losses)}"
        )
    if any(not lr > 0 for lr in learning_rates):
        raise ValueError(f"learning_rates must all be > 0, got {list(learning_rates)}")
    points = sorted(zip(learning_rates, final_losses, strict=True))
    finite = [lr for lr, loss in points if loss is not None and math.isfinite(loss)]
    unstable = [lr for lr, loss in points if loss is None or not math.isfinite(loss)]
    if not finite:
        raise ValueError("no learning rate gave a finite final loss; try smaller rates")
    limit = min(unstable) if unstable else math.inf
    usable = [
        (lr, loss) for lr, loss in points if lr < limit and loss is not None and math.isfinite(loss)
    ]
    lr_max, _ = min(usable, key=lambda p: p[1])
    below = [p for p in usable if p[0] <= lr_max]
    segments = [((a, la), (b, lb)) for (a, la), (b, lb) in itertools.pairwise(below)]
    slopes = [(lb - la) / (math.log10(b) - math.log10(a)) for (a, la), (b, lb) in segments]
    if slopes and min(slopes) < 0:
        (lr_min, _), (seg_hi, _) = segments[slopes.index(min(slopes))]
        steepest = [lr_min, seg_hi]
    else:
        lr_min, steepest = lr_max / 10, None
    return {
        "lr_min": lr_min,
        "lr_max": lr_max,
        "steepest_segment": steepest,
        "usable": [lr for lr, _ in usable],
        "rule": "lr_max: lowest final loss below the first diverged rate; lr_min: lower end "
        "of the steepest-falling segment of loss vs log10(lr) up to lr_max",
    }
