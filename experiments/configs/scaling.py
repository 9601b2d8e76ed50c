"""Strong and weak scaling of data-parallel training: configurations."""

import dataclasses
import math

from experiments.configs import common
from jaxsched import validation
from jaxsched.scaling import INTERCONNECTS
from jaxsched.validation import ConfigError

# The measured LeNet-5 (and the prediction's) takes 28x28x1 images: the MNIST-shaped datasets.
DATASETS = ("fashion_mnist", "mnist")


@dataclasses.dataclass(frozen=True)
class Config:
    """What `python -m experiments.scaling` measures and predicts.

    Measured (every device count in `device_counts`, simulated CPU devices here):
      LeNet-5 on real Fashion-MNIST: strong scaling at the global batches
        `lenet_strong_batches`, weak scaling at the per-device batches `lenet_weak_batches`,
        `lenet_steps` timed steps per configuration (after one warm-up step).
      ResNet-`resnet_depth` on CIFAR-shaped random input [B, 32, 32, 3] (timing only; no
        CIFAR-10 offline here): `resnet_strong_batches` / `resnet_weak_batches` /
        `resnet_steps`. Chosen smaller than the issue's 256 / 1024 and 32 / 128 / 512 so the
        default run takes about 10 minutes on a 2-core CPU (a ResNet-44 step over 1,024 images
        takes about 8 s there, and every configuration is compiled twice).
      SGD `learning_rate` with `momentum`.
    Predicted (jaxsched.scaling, ring all-reduce): LeNet-5, ResNet-`resnet_depth`, AlexNet and
      VGG19 (1000 classes) over `predict_devices` for every link in `interconnects`, strong at
      global batch `predict_strong_batch` and weak at per-device batch `predict_weak_batch`.
      Per-step compute comes from training FLOPs (3 x XLA's forward-pass flops) divided by a
      rate: the rate measured here on one device (basis "this_cpu"; AlexNet and VGG19 take
      ResNet's) or `gpu_flops_per_s` (basis "gpu_assumed", every model).
    """

    device_counts: tuple[int, ...] = (1, 2, 4, 8)
    lenet_strong_batches: tuple[int, ...] = (256, 1024)
    lenet_weak_batches: tuple[int, ...] = (32, 128, 512)
    lenet_steps: int = 5
    resnet_depth: int = 44
    resnet_strong_batches: tuple[int, ...] = (64, 256)
    resnet_weak_batches: tuple[int, ...] = (8, 32)
    resnet_steps: int = 3
    learning_rate: float = 0.01
    momentum: float = 0.9
    predict_devices: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    predict_strong_batch: int = 256
    predict_weak_batch: int = 32
    # An A100 training ResNet-50 in mixed precision: about 2,600 images/s x 3 x 4.1 GFLOP
    # (NVIDIA's published throughput), i.e. ~32 TFLOP/s sustained; rounded to 30e12.
    gpu_flops_per_s: float = 30e12
    interconnects: tuple[str, ...] = tuple(INTERCONNECTS)
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        common.counts("device_counts", self.device_counts)
        if 1 not in self.device_counts:
            raise ConfigError(
                "device_counts",
                "must include 1 (the baseline of every speedup)",
                str(tuple(self.device_counts)),
            )
        devices = math.lcm(*self.device_counts)
        for model in ("lenet", "resnet"):
            strong = f"{model}_strong_batches"
            common.counts(strong, getattr(self, strong))
            bad = [b for b in getattr(self, strong) if b % devices]
            if bad:
                raise ConfigError(
                    (strong, "device_counts"),
                    f"must satisfy: every batch of {{{strong}}} is a multiple of {devices}, the "
                    "least common multiple of {device_counts} (each device gets an equal share)",
                    " ".join(map(str, bad)),
                )
            common.counts(f"{model}_weak_batches", getattr(self, f"{model}_weak_batches"))
            validation.integer(f"{model}_steps", getattr(self, f"{model}_steps"), minimum=1)
        common.resnet_depth("resnet_depth", self.resnet_depth)
        common.positive("learning_rate", self.learning_rate)
        common.below_one("momentum", self.momentum)
        common.counts("predict_devices", self.predict_devices)
        validation.integer("predict_strong_batch", self.predict_strong_batch, minimum=1)
        validation.integer("predict_weak_batch", self.predict_weak_batch, minimum=1)
        common.positive("gpu_flops_per_s", self.gpu_flops_per_s)
        common.names("interconnects", self.interconnects, INTERCONNECTS)
        validation.choice("dataset", self.dataset, DATASETS)
        common.path("data_dir", self.data_dir, optional=True)
        common.seed(self.seed)
        # LeNet-5 steps on real training images: the largest global batch must exist.
        pool = common.train_pool(self.dataset, None)
        common.fits("lenet_strong_batches", self.lenet_strong_batches, pool)
        largest_weak = max(self.lenet_weak_batches) * max(self.device_counts)
        if largest_weak > pool.size:
            raise ConfigError(
                ("lenet_weak_batches", "device_counts", "dataset"),
                f"must satisfy max({{lenet_weak_batches}}) * max({{device_counts}}) <= "
                f"{pool.size}, the training examples ({pool.text})",
                str(largest_weak),
            )


DEFAULT = Config()
# Seconds: two device counts, batches 8/16, ResNet-8, two timed steps.
SMOKE = dataclasses.replace(
    DEFAULT,
    device_counts=(1, 2),
    lenet_strong_batches=(16,),
    lenet_weak_batches=(8,),
    lenet_steps=2,
    resnet_depth=8,
    resnet_strong_batches=(16,),
    resnet_weak_batches=(8,),
    resnet_steps=2,
    predict_devices=(1, 2, 4, 8),
)
