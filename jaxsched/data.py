"""Image-classification data: local IDX / CIFAR binary files, tensorflow-datasets fallback.

Arrays are NumPy: images uint8[N, H, W, C] (NHWC), labels int32[N]. Nothing is unpickled.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pathlib
import socket
from collections.abc import Iterator
from typing import NamedTuple

import jax
import numpy as np

DATASETS = ("fashion_mnist", "mnist", "cifar10")
SPLITS = ("train", "test")
DATA_DIR_ENV = "JAXSCHED_DATA_DIR"
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR_TRAIN, _CIFAR_TEST = tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin"
_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + R, G, B planes of 32x32
# IDX type code -> big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_LAYOUT = {
    "mnist": "<dir>/mnist/ (or <dir>/) with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or .gz)",
    "cifar10": f"<dir>/{_CIFAR_DIR}/ (or <dir>/cifar10/{_CIFAR_DIR}/, <dir>/cifar10/, <dir>/) "
    "with data_batch_1.bin ... data_batch_5.bin and test_batch.bin "
    "(the extracted cifar-10-binary.tar.gz)",
}
_LAYOUT["fashion_mnist"] = _LAYOUT["mnist"].replace("<dir>/mnist/", "<dir>/fashion_mnist/")


class Dataset(NamedTuple):
    """One split: images uint8[N, H, W, C] and labels int32[N]."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def num_examples(self) -> int:
        return int(self.labels.shape[0])


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is neither on disk nor obtainable by download right now."""


def _check_name_split(name: str, split: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _make_dataset(images: np.ndarray, labels: np.ndarray) -> Dataset:
    """Validates uint8[N, H, W, C] images against labels[N]; casts labels to int32."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8[N, H, W, C], got {images.dtype}{images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels shape {labels.shape} does not match {images.shape[0]} images")
    return Dataset(images, labels.astype(np.int32))


def _candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[pathlib.Path]:
    """Directories that may hold the files, in order, under data_dir, $JAXSCHED_DATA_DIR, Debian."""
    roots = [data_dir, os.environ.get(DATA_DIR_ENV) or None]
    roots += [DEBIAN_FASHION_MNIST_DIR] if name == "fashion_mnist" else []
    dirs = []
    for root in (pathlib.Path(r).expanduser() for r in roots if r is not None):
        if name == "cifar10":
            dirs += [root / name / _CIFAR_DIR, root / name, root / _CIFAR_DIR, root]
        else:
            dirs += [root / name, root]
    return dirs


def _idx_file(directory: pathlib.Path, stem: str) -> pathlib.Path | None:
    """The raw file `stem` if present, else `stem.gz`, else None."""
    return next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)


def _is_complete(name: str, directory: pathlib.Path) -> bool:
    if name == "cifar10":
        return all((directory / f).is_file() for f in (*_CIFAR_TRAIN, _CIFAR_TEST))
    return all(_idx_file(directory, stem) is not None for stem in _IDX_STEMS)


def find_local(name: str, data_dir: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The first directory holding all standard files of `name` (see `load`), or None."""
    _check_name_split(name, "train")
    return next((d for d in _candidate_dirs(name, data_dir) if _is_complete(name, d)), None)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (raw or gzip) into a native-endian array of the stored shape.

    Raises ValueError on a bad magic number, unknown type code, or wrong payload size.
    """
    data = pathlib.Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (magic must start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: IDX type code {code:#04x} is not one of {[hex(c) for c in _IDX_DTYPES]}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX payload is {len(data) - header} B, {shape} needs {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_cifar10_binary(path: str | os.PathLike) -> Dataset:
    """Reads one CIFAR-10 binary batch of 3073-byte records (label, then R, G, B 32x32 planes).

    Returns images uint8[N, 32, 32, 3] (NHWC) and labels int32[N] in 0..9.
    """
    data = pathlib.Path(path).read_bytes()
    if not data or len(data) % _CIFAR_RECORD:
        raise ValueError(f"{path}: size {len(data)} is not a positive multiple of {_CIFAR_RECORD}")
    records = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int32)
    if labels.max() > 9:
        raise ValueError(f"{path}: labels must be in 0..9, found {labels.max()}")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Dataset(np.ascontiguousarray(images), labels)


def _load_local(name: str, split: str, directory: pathlib.Path) -> Dataset:
    if name == "cifar10":
        parts = [
            read_cifar10_binary(directory / f)
            for f in (_CIFAR_TRAIN if split == "train" else (_CIFAR_TEST,))
        ]
        return Dataset(
            np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
        )
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_idx_file(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_idx_file(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3:
        raise ValueError(f"{directory}: {prefix} images must be [N, H, W], got {images.shape}")
    return _make_dataset(images[..., None], labels)


def _tf_available() -> bool:  # without importing it (slow)
    return importlib.util.find_spec("tensorflow") is not None


def _network_reachable(timeout: float = 3.0) -> bool:
    """Whether tfds's download host accepts a TCP connection within `timeout` seconds."""
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds_prepared(name: str, tfds_dir: str | None) -> tuple[bool, str]:
    """(is `name` prepared under tfds_dir, the tfds directory it lives in or a reason)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return False, "tensorflow-datasets is not installed"
    builder = tfds.builder(name, data_dir=tfds_dir)
    return builder.is_prepared(), str(builder.data_dir)


def _load_tfds_tf(name: str, split: str, tfds_dir: str | None, download: bool) -> Dataset:
    """Loads a split through tfds.load (needs TensorFlow)."""
    import tensorflow_datasets as tfds

    # Batching in chunks rather than batch_size=-1: that pads to sys.maxsize when the split
    # sizes are unknown (e.g. under tfds.testing.mock_data) and aborts TensorFlow.
    ds = tfds.load(name, split=split, data_dir=tfds_dir, as_supervised=True, download=download)
    chunks = list(tfds.as_numpy(ds.batch(8192)))
    return _make_dataset(
        np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
    )


def _load_tfds_source(name: str, split: str, tfds_dir: str | None) -> Dataset:
    """Loads a prepared array_record split through tfds.data_source (no TensorFlow)."""
    import tensorflow_datasets as tfds

    source = tfds.data_source(name, split=split, data_dir=tfds_dir, download=False)
    examples = [source[i] for i in range(len(source))]
    return _make_dataset(
        np.stack([e["image"] for e in examples]), np.asarray([e["label"] for e in examples])
    )


def _not_found_message(
    name: str, split: str, searched: list[pathlib.Path], tfds_where: str, reason: str
) -> str:
    lines = [
        f"Dataset {name!r} (split {split!r}) not found.",
        "Searched for local files in:",
        *([f"  {d}" for d in searched] or [f"  nothing (no data_dir, ${DATA_DIR_ENV} unset)"]),
        f"and for a prepared tensorflow-datasets copy in: {tfds_where}",
        f"Not downloading it because {reason}.",
        "To get it, either:",
    ]
    if name == "fashion_mnist":
        lines.append(
            f"  - apt-get install dataset-fashion-mnist (files go to "
            f"{DEBIAN_FASHION_MNIST_DIR}), or"
        )
    lines += [
        f"  - put the files in {_LAYOUT[name]}, and pass --data-dir <dir> or set "
        f"{DATA_DIR_ENV}=<dir>, or",
        "  - on a machine with internet access: pip install 'jaxsched[tfds]' (installs "
        "TensorFlow) and load with download=True; tensorflow-datasets then downloads it "
        "into <dir> (copy that directory to offline machines).",
    ]
    return "\n".join(lines)


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> Dataset:
    """Loads a split as images uint8[N, H, W, C] and labels int32[N].

    Local files are searched first in `data_dir`, then `$JAXSCHED_DATA_DIR`, then (fashion_mnist
    only) DEBIAN_FASHION_MNIST_DIR; under each root R in `R/<name>/` then R (CIFAR-10 also in
    `cifar-10-batches-bin/`). Otherwise tensorflow-datasets is used with that root as its
    data_dir (tfds.load with TensorFlow, else tfds.data_source for a prepared array_record
    copy). Raises DatasetNotFoundError at once when the data is absent and cannot be downloaded.
    """
    _check_name_split(name, split)
    directory = find_local(name, data_dir)
    if directory is not None:
        return _load_local(name, split, directory)
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    tfds_dir = None if root is None else str(pathlib.Path(root).expanduser())
    prepared, tfds_where = _tfds_prepared(name, tfds_dir)
    has_tf = _tf_available()
    if not prepared:
        reason = (
            "download=False"
            if not download
            else "TensorFlow (needed for tfds downloads) is not installed"
            if not has_tf
            else "storage.googleapis.com:443 is unreachable"
            if not _network_reachable()
            else ""
        )
        if reason:
            raise DatasetNotFoundError(
                _not_found_message(name, split, _candidate_dirs(name, data_dir), tfds_where, reason)
            )
    if has_tf:
        return _load_tfds_tf(name, split, tfds_dir, download)
    return _load_tfds_source(name, split, tfds_dir)


def to_float(images: np.ndarray) -> np.ndarray:
    """Integer images (uint8 0..255) -> float32 in [0, 1]; float input is only cast to float32.

    Idempotent, so float images (already scaled) are never divided by 255 twice.
    """
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) / np.float32(255)
    return images.astype(np.float32)


def subtract_pixel_mean(train_images: np.ndarray, *others: np.ndarray) -> tuple:
    """Subtracts the per-pixel mean float32[H, W, C] of to_float(train_images) from each array.

    Returns float32 arrays (train, *others), same shapes as the inputs.
    """
    train = to_float(train_images)
    mean = train.mean(axis=0, dtype=np.float64).astype(np.float32)
    return (train - mean, *(to_float(x) - mean for x in others))


def standardize_per_channel(train_images: np.ndarray, *others: np.ndarray) -> tuple:
    """(x - mean) / std with per-channel float32[C] statistics of to_float(train_images) [N,H,W,C].

    Returns float32 arrays (train, *others). A constant channel (std 0) is only centred.
    """
    train = to_float(train_images)
    if train.ndim != 4:
        raise ValueError(f"train_images must be [N, H, W, C], got shape {train.shape}")
    mean = train.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    std = train.std(axis=(0, 1, 2), dtype=np.float64)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    return ((train - mean) / std, *((to_float(x) - mean) / std for x in others))


def resize(images: np.ndarray, size: int, method: str = "pad") -> np.ndarray:
    """Resizes [N, H, W, C] images to [N, size, size, C].

    "pad": zero-pads symmetrically (28 -> 32 is LeNet-5's original input), keeps the dtype;
    needs size >= H and size >= W. "bilinear": jax.image.resize of to_float(images), float32.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    n, h, w, c = images.shape
    if method == "pad":
        if size < max(h, w):
            raise ValueError(f"size must be >= {max(h, w)} (the image size) for 'pad', got {size}")
        top, left = (size - h) // 2, (size - w) // 2
        pad = ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0))
        return np.pad(images, pad)
    if method == "bilinear":
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        return np.asarray(jax.image.resize(to_float(images), (n, size, size, c), "bilinear"))
    raise ValueError(f"method must be one of ('pad', 'bilinear'), got {method!r}")


def num_batches(num_examples: int, batch_size: int, drop_remainder: bool = True) -> int:
    """Number of batches per epoch: floor(N / B) if drop_remainder else ceil(N / B)."""
    if not 1 <= batch_size <= num_examples:
        raise ValueError(
            f"batch_size must be in [1, num_examples={num_examples}], got {batch_size}"
        )
    return num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)


def epoch_batches(
    num_examples: int, batch_size: int, *, seed: int, epoch: int, drop_remainder: bool = True
) -> Iterator[np.ndarray]:
    """Yields int64[batch_size] index arrays over one shuffled epoch.

    The permutation comes from np.random.default_rng([seed, epoch]): identical for the same
    (seed, epoch), different across epochs. With drop_remainder (default) every batch has
    exactly batch_size indices (one compiled train-step shape) and the last N mod B examples
    of this epoch's permutation are skipped; since each epoch reshuffles, all examples are
    still seen across epochs. Otherwise a smaller final batch covers the rest.
    """
    count = num_batches(num_examples, batch_size, drop_remainder)  # validates eagerly
    perm = epoch_permutation(num_examples, seed=seed, epoch=epoch)
    return (perm[i * batch_size : (i + 1) * batch_size] for i in range(count))


def epoch_permutation(num_examples: int, *, seed: int, epoch: int) -> np.ndarray:
    """int64[num_examples]: epoch `epoch`'s shuffled order, from np.random.default_rng([seed,
    epoch]) (what `epoch_batches` slices; a varying batch size slices it into unequal parts)."""
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    return np.random.default_rng([seed, epoch]).permutation(num_examples)
