"""CNN arithmetic (parameters, activations, multiply-accumulates): configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import validation
from jaxsched.validation import ConfigError

# Smallest sides whose feature maps survive every layer: AlexNet's stride-4 conv and three 3/2
# pools, VGG19's five 2/2 pools.
MIN_SIDE = {"alexnet_input": 67, "vgg_input": 32}


@dataclasses.dataclass(frozen=True)
class Config:
    """Counts for the classic CNNs of jaxsched.models.classic, from their Flax definitions.

    num_classes: size of AlexNet's and VGG19's last layer (ImageNet's 1000).
    alexnet_input / vgg_input: one image's (H, W, C); the course's 227x227x3 and 224x224x3.
    stack_kernel_size: F of the stacked F x F 'VALID' stride-1 convolutions.
    stack_depths: the numbers N of stacked convolutions compared with one (NF-N+1) x (NF-N+1)
      convolution; each pair runs on one random input of stack_input (H, W, C), every layer
      with C filters, and their output shapes are compared.
    inception_input: (H, W, C) of the Inception module's input; the course's 32x32x256.
    naive_filters: the naive module's (#1x1, #3x3, #5x5) filters, next to which the 3x3
      max-pool passes the input's C channels through: 128 + 192 + 96 + 256 = 672 out.
    reduced_filters: the dimension-reduced module's (#1x1, #3x3 reduce, #3x3, #5x5 reduce,
      #5x5, pool proj), GoogLeNet's column order: 64-channel 1x1 reductions before the 3x3 and
      5x5 and a 64-filter 1x1 after the pool, the same 1x1, 3x3, 5x5 filters as the naive
      module: 128 + 192 + 96 + 64 = 480 out.
    seed: PRNG seed of the random input and weights of the stacked-convolution check.
    """

    num_classes: int = 1000
    alexnet_input: tuple[int, int, int] = (227, 227, 3)
    vgg_input: tuple[int, int, int] = (224, 224, 3)
    stack_kernel_size: int = 3
    stack_depths: tuple[int, ...] = (1, 2, 3, 4)
    stack_input: tuple[int, int, int] = (32, 32, 64)
    inception_input: tuple[int, int, int] = (32, 32, 256)
    naive_filters: tuple[int, int, int] = (128, 192, 96)
    reduced_filters: tuple[int, int, int, int, int, int] = (128, 64, 192, 64, 96, 64)
    seed: int = 0

    def __post_init__(self) -> None:
        validation.integer("num_classes", self.num_classes, minimum=1)
        for name, side in MIN_SIDE.items():
            common.shape(name, getattr(self, name), 3)
            height, width, _ = getattr(self, name)
            if min(height, width) < side:
                raise ConfigError(
                    name,
                    f"must have height and width >= {side} (else a feature map vanishes)",
                    str(tuple(getattr(self, name))),
                )
        validation.integer("stack_kernel_size", self.stack_kernel_size, minimum=1)
        common.counts("stack_depths", self.stack_depths)
        common.shape("stack_input", self.stack_input, 3)
        common.shape("inception_input", self.inception_input, 3)
        common.shape("naive_filters", self.naive_filters, 3)
        common.shape("reduced_filters", self.reduced_filters, 6)
        common.seed(self.seed)
        # N stacked F x F 'VALID' convolutions shrink each side by N (F - 1).
        shrink = max(self.stack_depths) * (self.stack_kernel_size - 1)
        if min(self.stack_input[:2]) <= shrink:
            raise ConfigError(
                ("stack_input", "stack_depths", "stack_kernel_size"),
                "must satisfy min(height, width of {stack_input}) > max({stack_depths}) * "
                f"({{stack_kernel_size}} - 1) = {shrink}",
                str(tuple(self.stack_input)),
            )


DEFAULT = Config()
# Everything but the stacked-convolution check is shapes only (no parameter is allocated), so
# the smoke run keeps the course's networks and shrinks that check's input and channels.
SMOKE = dataclasses.replace(DEFAULT, stack_depths=(1, 2, 3), stack_input=(16, 16, 8))
# The course notebook asks its receptive-field question with 5x5 kernels: N stacked 5x5
# convolutions see (4N + 1) x (4N + 1), three of them 13x13.
COURSE = dataclasses.replace(DEFAULT, stack_kernel_size=5)
COURSE_SMOKE = dataclasses.replace(SMOKE, stack_kernel_size=5)
PROTOCOLS = {"course": (COURSE, COURSE_SMOKE)}
