"""Flax (linen) models. Each is a pure `init` / `apply` pair over a params pytree."""

from jaxsched.models.lenet import LeNet5
from jaxsched.models.minigooglenet import MiniGoogLeNet
from jaxsched.models.mlp import MLP, DepthWidthNet
from jaxsched.models.resnet import ResNetV1
from jaxsched.models.utils import count_params

__all__ = ["MLP", "DepthWidthNet", "LeNet5", "MiniGoogLeNet", "ResNetV1", "count_params"]
