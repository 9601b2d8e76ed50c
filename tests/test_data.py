"""Tests for jaxsched.data: local file formats, tfds fallback, preprocessing, batching."""

import gzip
import hashlib
import json
import os
import pathlib
import pickle
import struct

import chex
import jax.numpy as jnp
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
    with pytest.raises(data.DataFileError, match=match) as info:
        data.read_idx(path)
    assert str(info.value).startswith(f"{path}: ") and info.value.path == str(path)


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


# ---------------------------------------------------------------- strict search


DEBIAN = pathlib.Path(data.DEBIAN_FASHION_MNIST_DIR)
needs_debian = pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(), reason="dataset-fashion-mnist absent"
)


@needs_debian
@pytest.mark.parametrize("sub", ["empty", "does-not-exist"])
def test_explicit_data_dir_never_falls_back_to_debian(tmp_path, sub):
    (tmp_path / "empty").mkdir()
    root = tmp_path / sub
    assert data.find_local("fashion_mnist") == DEBIAN  # Debian's copy is there ...
    assert data.find_local("fashion_mnist", root) is None  # ... but not used for data_dir
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("fashion_mnist", "test", data_dir=root, download=False)
    message = str(info.value)
    searched = message.split("and for a prepared")[0]
    assert f"{root}/fashion_mnist" in searched and str(DEBIAN) not in searched
    assert "never mixed with other sources" in message
    note = "does not exist" if sub == "does-not-exist" else "none of the standard files"
    assert f"\n  {root} ({note})\n" in searched


@needs_debian
def test_env_root_is_strict_too(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path / "cifar10-only" / "mnist", gz=False)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "cifar10-only"))
    assert data.find_local("mnist") == tmp_path / "cifar10-only" / "mnist"
    assert data.find_local("fashion_mnist") is None  # not Debian's copy
    with pytest.raises(data.DatasetNotFoundError, match=rf"\${data.DATA_DIR_ENV} is set"):
        data.load("fashion_mnist", download=False)
    monkeypatch.setenv(data.DATA_DIR_ENV, "")  # empty = unset: the defaults again
    assert data.find_local("fashion_mnist") == DEBIAN


def test_explicit_data_dir_is_not_mixed_with_env(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path / "env" / "mnist", gz=False)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    (tmp_path / "explicit").mkdir()
    with pytest.raises(data.DatasetNotFoundError, match="never mixed"):
        data.load("mnist", data_dir=tmp_path / "explicit", download=False)


def test_empty_string_data_dir_is_an_error(monkeypatch):
    monkeypatch.setattr(data, "_tfds_prepared", lambda *a: pytest.fail("searched anyway"))
    for call in (data.load, data.find_local, data.describe):
        with pytest.raises(ValueError, match="data_dir is an empty string"):
            call("fashion_mnist", data_dir="")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("stem", IDX_STEMS)
def test_incomplete_idx_folder(tmp_path, gz, stem):
    folder = tmp_path / "fashion_mnist"
    make_mnist_dir(folder, gz)
    make_mnist_dir(tmp_path, gz)  # a complete copy in the root itself is not a fallback
    (folder / (f"{stem}.gz" if gz else stem)).unlink()
    for call in (
        lambda: data.load("fashion_mnist", "train", tmp_path),
        lambda: data.find_local("fashion_mnist", tmp_path),
        lambda: data.describe("fashion_mnist", tmp_path),
    ):
        with pytest.raises(data.DatasetIncompleteError) as info:
            call()
        assert isinstance(info.value, data.DatasetNotFoundError)
        assert f"{folder} is incomplete: missing {stem}[.gz] (" in str(info.value)


def test_incomplete_cifar_folder(tiny_cifar_root):
    (tiny_cifar_root / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    (tiny_cifar_root / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("cifar10", "test", tiny_cifar_root)
    folder = tiny_cifar_root / "cifar-10-batches-bin"
    assert f"{folder} is incomplete: missing data_batch_3.bin, test_batch.bin" in str(info.value)


# ---------------------------------------------------------------- errors name the file


def gzip_truncated(raw: bytes) -> bytes:
    return gzip.compress(raw)[:-20]


def gzip_bad_crc(raw: bytes) -> bytes:
    packed = bytearray(gzip.compress(raw))
    packed[-8] ^= 0xFF  # the CRC-32 in the trailer
    return bytes(packed)


def gzip_bad_deflate(raw: bytes) -> bytes:
    packed = bytearray(gzip.compress(raw))
    packed[10] = 0xFF  # first byte of the deflate stream: block type 3 (reserved)
    return bytes(packed)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (gzip_truncated, "EOFError"),
        (gzip_bad_crc, "BadGzipFile"),
        (gzip_bad_deflate, "error: Error -3"),  # zlib.error
        (lambda raw: raw[:-5], "payload"),
        (lambda raw: b"\x08" + raw[1:], "magic"),
        (lambda raw: b"", "magic"),
    ],
)
def test_corrupt_file_is_named(tmp_path, corrupt, match):
    arrays = make_mnist_dir(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(corrupt(idx_bytes(arrays["t10k-images-idx3-ubyte"])))
    check_mnist(data.load("mnist", "train", tmp_path), arrays, "train")  # other split fine
    with pytest.raises(data.DataFileError, match=match) as info:
        data.load("mnist", "test", tmp_path)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{path}: ")
    if corrupt in (gzip_truncated, gzip_bad_crc, gzip_bad_deflate):
        assert "corrupt or truncated gzip data" in str(info.value)


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "a-directory").mkdir()
    for reader in (data.read_idx, data.read_cifar10_binary):
        with pytest.raises(data.DataFileError, match="cannot read the file") as info:
            reader(tmp_path / "a-directory")
        assert str(info.value).startswith(f"{tmp_path / 'a-directory'}: ")
    path = tmp_path / "locked"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8)))

    def denied(self):  # chmod 000 does not stop root, so simulate what it does
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    with pytest.raises(data.DataFileError, match="Permission denied") as info:
        data.read_idx(path)
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value.__cause__, PermissionError)


def test_truncated_cifar_file_is_named(tiny_cifar_root):
    path = tiny_cifar_root / "cifar-10-batches-bin" / "data_batch_4.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataFileError, match="3073") as info:
        data.load("cifar10", "train", tiny_cifar_root)
    assert str(info.value).startswith(f"{path}: ")


def test_data_file_error_pickles():
    err = pickle.loads(pickle.dumps(data.DataFileError("/x/y.gz", "bad magic")))
    assert str(err) == "/x/y.gz: bad magic" and err.path == "/x/y.gz"


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("value", [255, 10])
def test_out_of_range_idx_label_is_named(tmp_path, value):
    arrays = make_mnist_dir(tmp_path, gz=True)
    labels = arrays["train-labels-idx1-ubyte"].copy()
    labels[[3, 4]] = value
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    with pytest.raises(data.DataFileError) as info:
        data.load("fashion_mnist", "train", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: label {value} at index 3 is outside 0..9 (10 classes)")
    assert "2 of 5 labels" in message


def test_out_of_range_cifar_label_is_named(tiny_cifar_root):
    path = tiny_cifar_root / "cifar-10-batches-bin" / "data_batch_2.bin"
    raw = bytearray(path.read_bytes())
    raw[2 * 3073] = 255  # label byte of record 2
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataFileError) as info:
        data.load("cifar10", "train", tiny_cifar_root)
    assert str(info.value).startswith(f"{path}: label 255 at index 2 is outside 0..9")


def test_float_label_file_is_rejected(tmp_path):
    make_mnist_dir(tmp_path, gz=False)
    floats = np.zeros(3, ">f4")
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 3) + floats.tobytes())
    with pytest.raises(data.DataFileError, match="labels must be integers") as info:
        data.load("mnist", "test", tmp_path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("num_images, num_labels", [(100, 128), (128, 100)])
def test_image_label_count_mismatch_names_both_files(tmp_path, num_images, num_labels):
    make_mnist_dir(tmp_path, gz=True)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((num_images, 4, 4), np.uint8), True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(num_labels, np.uint8), True)
    with pytest.raises(data.DataFileError) as info:
        data.load("mnist", "train", tmp_path)
    images, labels = (
        tmp_path / "train-images-idx3-ubyte.gz",
        tmp_path / "train-labels-idx1-ubyte.gz",
    )
    assert str(info.value).startswith(
        f"{images}: holds {num_images} images but {labels} holds {num_labels} labels"
    )


def test_check_labels():
    data.check_labels(np.array([0, 9, 3], np.uint8), 10)
    data.check_labels(jnp.arange(10), 10)
    data.check_labels(np.zeros(0, np.int32), 10)
    with pytest.raises(ValueError, match=r"^labels: label -1 at index 2 is outside 0\.\.9"):
        data.check_labels(np.array([0, 1, -1, 5]), 10)
    with pytest.raises(ValueError, match=r"^y: label 10 at index 0 is outside 0\.\.9 .*1 of 2"):
        data.check_labels([10, 9], 10, what="y")
    with pytest.raises(ValueError, match="integer dtype, got float32"):
        data.check_labels(np.zeros(3, np.float32), 10)
    with pytest.raises(ValueError, match="1-D"):
        data.check_labels(np.zeros((2, 3), np.int32), 10)
    for bad in (0, -3, 2.5, True, None):
        with pytest.raises(ValueError, match="num_classes must be a positive integer"):
            data.check_labels(np.zeros(3, np.int32), bad)


def test_check_dataset():
    images = np.zeros((4, 2, 2, 1), np.float32)
    data.check_dataset(data.Dataset(images, np.array([0, 1, 2, 3])), 4)
    data.check_dataset(data.Dataset(jnp.asarray(images), jnp.array([0, 1, 2, 30])))  # only >= 0
    with pytest.raises(ValueError, match=r"^train_data: 4 images but 3 labels"):
        data.check_dataset(data.Dataset(images, np.array([0, 1, 2])), 10)
    with pytest.raises(ValueError, match=r"^eval_data\.labels: label -2 at index 1 is negative"):
        data.check_dataset(data.Dataset(images, np.array([0, -2, 1, 1])), what="eval_data")
    with pytest.raises(ValueError, match=r"^train_data\.labels: label 4 at index 3 is outside"):
        data.check_dataset(data.Dataset(images, np.array([0, 1, 2, 4])), 4)
    with pytest.raises(ValueError, match="integer dtype"):
        data.check_dataset(data.Dataset(images, np.zeros(4, np.float32)), 10)
    with pytest.raises(ValueError, match="1-D"):
        data.check_dataset(data.Dataset(images, np.zeros((4, 1), np.int32)), 10)


def test_tfds_labels_are_range_checked():
    with pytest.raises(ValueError, match=r"^tfds mnist train\.labels: label 10 at index 1"):
        data._make_dataset(
            np.zeros((2, 28, 28, 1), np.uint8), np.array([0, 10]), 10, "tfds mnist train"
        )


# ---------------------------------------------------------------- describe


def expected_files(directory: pathlib.Path, names) -> list[dict]:
    return [
        {
            "name": n,
            "bytes": (directory / n).stat().st_size,
            "sha256": hashlib.sha256((directory / n).read_bytes()).hexdigest(),
        }
        for n in names
    ]


@pytest.mark.parametrize("gz", [False, True])
def test_describe_idx(tmp_path, gz):
    folder = tmp_path / "mnist"
    make_mnist_dir(folder, gz)
    names = [f"{stem}.gz" if gz else stem for stem in IDX_STEMS]
    record = data.describe("mnist", tmp_path)
    assert record == {
        "dataset": "mnist",
        "format": "idx",
        "directory": str(folder.resolve()),
        "files": expected_files(folder, names),
    }
    assert json.loads(json.dumps(record)) == record

    # New content (same size, new mtime) and a new size: new hashes, not the cached ones.
    path = folder / names[1]
    write_idx(folder / IDX_STEMS[1], np.array([9, 9, 9, 9, 9], np.uint8), gz)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = data.describe("mnist", tmp_path)
    assert changed["files"] == expected_files(folder, names)
    assert changed["files"][1]["sha256"] != record["files"][1]["sha256"]
    assert changed["files"][0] == record["files"][0]
    write_idx(folder / IDX_STEMS[3], np.array([1, 2], np.uint8), gz)
    assert data.describe("mnist", tmp_path)["files"] == expected_files(folder, names)


def test_describe_caches_hashes(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path, gz=False)
    first = data.describe("mnist", tmp_path)
    monkeypatch.setattr(data.hashlib, "sha256", lambda: pytest.fail("hashed a file again"))
    assert data.describe("mnist", tmp_path) == first


def test_describe_prefers_what_load_reads(tmp_path):
    make_mnist_dir(tmp_path, gz=True)
    raw = make_mnist_dir(tmp_path, gz=False, seed=7)  # raw files win over .gz, in both
    assert [f["name"] for f in data.describe("mnist", tmp_path)["files"]] == list(IDX_STEMS)
    check_mnist(data.load("mnist", "test", tmp_path), raw, "t10k")


def test_describe_cifar(tiny_cifar_root):
    folder = tiny_cifar_root / "cifar-10-batches-bin"
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    assert data.describe("cifar10", tiny_cifar_root) == {
        "dataset": "cifar10",
        "format": "cifar10-binary",
        "directory": str(folder.resolve()),
        "files": expected_files(folder, names),
    }


@needs_debian
def test_describe_debian_default():
    record = data.describe("fashion_mnist")
    assert record["directory"] == str(DEBIAN.resolve()) and record["format"] == "idx"
    assert [f["name"] for f in record["files"]] == [f"{s}.gz" for s in IDX_STEMS]
    assert [f["bytes"] for f in record["files"]] == [
        (DEBIAN / f"{s}.gz").stat().st_size for s in IDX_STEMS
    ]


def test_describe_tfds(tmp_path, monkeypatch):
    where = str(tmp_path / "mnist" / "3.0.1")
    monkeypatch.setattr(data, "_tfds_prepared", lambda name, tfds_dir: (True, where))
    monkeypatch.setattr(data, "_tfds_version", lambda name, tfds_dir: "3.0.1")
    assert data.describe("mnist", tmp_path) == {
        "dataset": "mnist",
        "format": "tfds",
        "directory": where,
        "version": "3.0.1",
        "files": [],
    }
    monkeypatch.setattr(data, "_tfds_prepared", lambda name, tfds_dir: (False, where))
    with pytest.raises(data.DatasetNotFoundError, match="only reports data already on disk"):
        data.describe("mnist", tmp_path)


def test_tfds_version_offline(tmp_path):
    assert data._tfds_version("mnist", str(tmp_path)).count(".") == 2


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
    # It fails at once: no tfds load (and so no download attempt) is even started.
    monkeypatch.setattr(data, "_load_tfds_tf", lambda *a, **k: pytest.fail("tried tfds.load"))
    monkeypatch.setattr(data, "_load_tfds_source", lambda *a, **k: pytest.fail("tried tfds"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load(name, data_dir=tmp_path)
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
