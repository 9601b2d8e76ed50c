"""Tests for jaxsched.data: local file formats, tfds fallback, preprocessing, batching."""

import gzip
import pathlib
import struct
import time

import chex
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxsched import data

IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialises a uint8 array in IDX format."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: pathlib.Path, array: np.ndarray, gz: bool) -> None:
    payload = idx_bytes(array)
    if gz:
        pathlib.Path(f"{path}.gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_mnist_dir(directory: pathlib.Path, gz: bool, seed: int = 0) -> dict:
    """Writes the four IDX files (5 train, 3 test examples of 28x28); returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (5,), dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (3,), dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(directory / stem, array, gz)
    return arrays


def check_mnist(ds: data.Dataset, arrays: dict, prefix: str) -> None:
    images, labels = arrays[f"{prefix}-images-idx3-ubyte"], arrays[f"{prefix}-labels-idx1-ubyte"]
    chex.assert_shape(ds.images, (len(labels), 28, 28, 1))
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
    np.testing.assert_array_equal(ds.images[..., 0], images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.num_examples == len(labels)


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_from_data_dir(tmp_path, gz):
    arrays = make_mnist_dir(tmp_path / "mnist", gz)
    assert data.find_local("mnist", tmp_path) == tmp_path / "mnist"
    check_mnist(data.load("mnist", "train", data_dir=tmp_path), arrays, "train")
    check_mnist(data.load("mnist", "test", data_dir=tmp_path), arrays, "t10k")


def test_load_idx_from_env_and_root_itself(tmp_path, monkeypatch):
    arrays = make_mnist_dir(tmp_path, gz=True)  # files directly in the root
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.find_local("fashion_mnist") == tmp_path
    check_mnist(data.load("fashion_mnist", "test"), arrays, "t10k")


def test_explicit_data_dir_wins_over_env(tmp_path, monkeypatch):
    explicit = make_mnist_dir(tmp_path / "a" / "mnist", gz=False, seed=1)
    make_mnist_dir(tmp_path / "b" / "mnist", gz=False, seed=2)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "b"))
    check_mnist(data.load("mnist", data_dir=tmp_path / "a"), explicit, "train")


def test_read_idx_other_ndim_and_dtype(tmp_path):
    cube = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "cube").write_bytes(idx_bytes(cube))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "cube"), cube)
    ints = np.array([[1, -2], [300000, 7]], dtype=">i4")
    (tmp_path / "ints").write_bytes(
        bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 2) + ints.tobytes()
    )
    out = data.read_idx(tmp_path / "ints")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ints)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x42" + b[3:], "type code"),
        (lambda b: b[:-1], "payload"),
        (lambda b: b + b"\x00", "payload"),
        (lambda b: b[:6], "header"),
    ],
)
def test_read_idx_corrupt(tmp_path, mutate, match):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(mutate(idx_bytes(np.zeros((2, 3, 3), np.uint8)))))
    with pytest.raises(ValueError, match=match):
        data.read_idx(path)


def test_mismatched_label_count(tmp_path):
    arrays = make_mnist_dir(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", arrays["train-labels-idx1-ubyte"][:4], False)
    with pytest.raises(ValueError, match="labels"):
        data.load("mnist", data_dir=tmp_path)


# ---------------------------------------------------------------- CIFAR-10 binary


def cifar_records(labels, start: int) -> tuple[bytes, np.ndarray]:
    """Records whose pixel values encode (record, channel, row, col); returns bytes and NHWC."""
    n = len(labels)
    planes = (np.arange(n * 3 * 32 * 32, dtype=np.int64).reshape(n, 3, 32, 32) + start) % 251
    planes = planes.astype(np.uint8)
    raw = b"".join(bytes([lab]) + planes[i].tobytes() for i, lab in enumerate(labels))
    return raw, planes.transpose(0, 2, 3, 1)


@pytest.mark.parametrize(
    "layout", ["cifar-10-batches-bin", "cifar10/cifar-10-batches-bin", "cifar10", "."]
)
def test_load_cifar10_binary(tmp_path, layout):
    directory = tmp_path / layout
    directory.mkdir(parents=True, exist_ok=True)
    expected_images, expected_labels = [], []
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
        labels = [(3 * i + j) % 10 for j in range(3)]
        raw, images = cifar_records(labels, start=100 * i)
        (directory / name).write_bytes(raw)
        expected_images.append(images)
        expected_labels.append(labels)
    assert data.find_local("cifar10", tmp_path) == directory

    train = data.load("cifar10", "train", data_dir=tmp_path)
    chex.assert_shape(train.images, (15, 32, 32, 3))
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    np.testing.assert_array_equal(train.images, np.concatenate(expected_images[:5]))
    np.testing.assert_array_equal(train.labels, np.concatenate(expected_labels[:5]))
    test = data.load("cifar10", "test", data_dir=tmp_path)
    np.testing.assert_array_equal(test.images, expected_images[5])
    np.testing.assert_array_equal(test.labels, expected_labels[5])


def test_cifar_pixel_placement(tmp_path):
    plane = np.zeros((3, 32, 32), np.uint8)
    plane[0, 1, 2] = 200  # red, row 1, column 2
    plane[2, 31, 0] = 7  # blue, row 31, column 0
    (tmp_path / "b.bin").write_bytes(bytes([4]) + plane.tobytes())
    ds = data.read_cifar10_binary(tmp_path / "b.bin")
    assert ds.images.shape == (1, 32, 32, 3) and ds.labels.tolist() == [4]
    assert ds.images[0, 1, 2, 0] == 200 and ds.images[0, 31, 0, 2] == 7
    assert int(ds.images.sum()) == 207


def test_cifar_bad_size_and_label(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(3072))
    with pytest.raises(ValueError, match="3073"):
        data.read_cifar10_binary(tmp_path / "short.bin")
    (tmp_path / "label.bin").write_bytes(bytes([10]) + bytes(3072))
    with pytest.raises(ValueError, match="0..9"):
        data.read_cifar10_binary(tmp_path / "label.bin")


# ---------------------------------------------------------------- tensorflow-datasets


@pytest.mark.parametrize("name, shape", [("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_paths_under_mock(tmp_path, name, shape):
    with tfds.testing.mock_data(num_examples=6):
        for ds in (
            data._load_tfds_tf(name, "train", str(tmp_path), download=False),
            data._load_tfds_source(name, "test", str(tmp_path)),
        ):
            chex.assert_shape(ds.images, (6, *shape))
            assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
            assert ds.labels.shape == (6,) and 0 <= ds.labels.min() <= ds.labels.max() < 10


@pytest.mark.parametrize("has_tf", [True, False])
def test_load_falls_back_to_tfds(tmp_path, monkeypatch, has_tf):
    monkeypatch.setattr(data, "_tfds_prepared", lambda name, tfds_dir: (True, str(tmp_path)))
    monkeypatch.setattr(data, "_tf_available", lambda: has_tf)
    with tfds.testing.mock_data(num_examples=4):
        ds = data.load("mnist", "test", data_dir=tmp_path)
    chex.assert_shape(ds.images, (4, 28, 28, 1))
    assert ds.labels.dtype == np.int32


def test_tfds_prepared_is_false_for_empty_dir(tmp_path):
    prepared, where = data._tfds_prepared("cifar10", str(tmp_path))
    assert not prepared and where.startswith(str(tmp_path))


@pytest.mark.parametrize("name", ["cifar10", "fashion_mnist"])
def test_clear_error_when_missing_offline(tmp_path, monkeypatch, name):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setattr(data, "_network_reachable", lambda timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load(name, data_dir=tmp_path)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert repr(name) in message and "unreachable" in message
    assert str(tmp_path / name) in message and str(tmp_path) in message
    assert "pip install 'jaxsched[tfds]'" in message and data.DATA_DIR_ENV in message
    assert ("cifar-10-batches-bin" in message) == (name == "cifar10")
    assert ("apt-get install dataset-fashion-mnist" in message) == (name == "fashion_mnist")
    assert isinstance(info.value, FileNotFoundError)


def test_clear_error_without_download(tmp_path, monkeypatch):
    def probe(timeout=3.0):
        raise AssertionError("network must not be probed when download=False")

    monkeypatch.setattr(data, "_network_reachable", probe)
    with pytest.raises(data.DatasetNotFoundError, match="download=False"):
        data.load("mnist", "test", data_dir=tmp_path, download=False)


def test_bad_name_and_split():
    with pytest.raises(ValueError, match="name must be one of.*cifar10"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split must be one of.*test"):
        data.load("mnist", "validation")


# ---------------------------------------------------------------- real Fashion-MNIST


def test_real_fashion_mnist():
    assert data.find_local("fashion_mnist") == pathlib.Path(data.DEBIAN_FASHION_MNIST_DIR)
    train = data.load("fashion_mnist", "train")
    test = data.load("fashion_mnist", "test")
    chex.assert_shape(train.images, (60000, 28, 28, 1))
    chex.assert_shape(test.images, (10000, 28, 28, 1))
    assert train.images.dtype == test.images.dtype == np.uint8
    assert train.labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), np.full(10, 6000))
    assert test.labels.min() == 0 and test.labels.max() == 9
    assert train.images.max() == 255


# ---------------------------------------------------------------- preprocessing


def test_to_float():
    out = data.to_float(np.array([0, 51, 255], np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(data.to_float(out), out)  # idempotent


def test_subtract_pixel_mean():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (7, 4, 4, 3), dtype=np.uint8)
    out_train, out_test = data.subtract_pixel_mean(train, test)
    assert out_train.dtype == out_test.dtype == np.float32
    chex.assert_shape([out_train, out_test], [(50, 4, 4, 3), (7, 4, 4, 3)])
    np.testing.assert_allclose(out_train.mean(axis=0), 0.0, atol=1e-6)
    mean = train.astype(np.float64).mean(axis=0) / 255
    np.testing.assert_allclose(out_test, test / 255 - mean, atol=1e-6)


def test_standardize_per_channel():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (40, 5, 5, 3), dtype=np.uint8)
    train[..., 2] //= 4  # a channel with different statistics
    test = rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8)
    out_train, out_test = data.standardize_per_channel(train, test)
    assert out_train.dtype == out_test.dtype == np.float32
    np.testing.assert_allclose(out_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out_train.std(axis=(0, 1, 2)), 1.0, rtol=1e-5)
    x = train.astype(np.float64) / 255
    expected = (test / 255 - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(out_test, expected, atol=1e-5)
    (single,) = data.standardize_per_channel(np.full((2, 2, 2, 1), 9, np.uint8))
    np.testing.assert_array_equal(single, 0.0)  # constant channel: centred, no NaN
    with pytest.raises(ValueError, match="train_images"):
        data.standardize_per_channel(np.zeros((4, 4), np.uint8))


def test_resize_pad_keeps_centre():
    images = np.random.default_rng(2).integers(1, 256, (3, 28, 28, 1), dtype=np.uint8)
    out = data.resize(images, 32)
    assert out.shape == (3, 32, 32, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 2:30, 2:30], images)
    assert int(out.sum()) == int(images.sum())  # only zeros added
    assert data.resize(np.ones((1, 28, 28, 1), np.uint8), 31)[0, :, :, 0].sum(axis=1)[1] == 28


def test_resize_bilinear():
    images = np.full((2, 28, 28, 3), 255, np.uint8)
    out = data.resize(images, 32, method="bilinear")
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)  # constant image stays constant, in [0, 1]


def test_resize_errors():
    images = np.zeros((1, 28, 28, 1), np.uint8)
    with pytest.raises(ValueError, match="size"):
        data.resize(images, 27)
    with pytest.raises(ValueError, match="size"):
        data.resize(images, 0, method="bilinear")
    with pytest.raises(ValueError, match="method must be one of"):
        data.resize(images, 32, method="nearest")
    with pytest.raises(ValueError, match="images"):
        data.resize(np.zeros((28, 28, 1), np.uint8), 32)


# ---------------------------------------------------------------- batching


def test_epoch_batches_deterministic_per_epoch():
    first = list(data.epoch_batches(100, 10, seed=3, epoch=0))
    again = list(data.epoch_batches(100, 10, seed=3, epoch=0))
    chex.assert_trees_all_equal(first, again)
    other_epoch = np.concatenate(list(data.epoch_batches(100, 10, seed=3, epoch=1)))
    other_seed = np.concatenate(list(data.epoch_batches(100, 10, seed=4, epoch=0)))
    assert not np.array_equal(np.concatenate(first), other_epoch)
    assert not np.array_equal(np.concatenate(first), other_seed)


def test_epoch_batches_drop_remainder():
    batches = list(data.epoch_batches(103, 10, seed=0, epoch=5))
    assert len(batches) == data.num_batches(103, 10) == 10
    assert all(b.shape == (10,) and np.issubdtype(b.dtype, np.integer) for b in batches)
    flat = np.concatenate(batches)
    assert len(np.unique(flat)) == 100 and flat.min() >= 0 and flat.max() < 103


def test_epoch_batches_keep_remainder():
    batches = list(data.epoch_batches(103, 10, seed=0, epoch=5, drop_remainder=False))
    assert len(batches) == data.num_batches(103, 10, drop_remainder=False) == 11
    assert [len(b) for b in batches] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(103))


@pytest.mark.parametrize("batch_size", [0, -1, 11])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        data.epoch_batches(10, batch_size, seed=0, epoch=0)
    with pytest.raises(ValueError, match="batch_size"):
        data.num_batches(10, batch_size)
