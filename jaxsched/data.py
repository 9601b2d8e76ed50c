"""Image-classification data: local IDX / CIFAR binary files, tensorflow-datasets fallback.

Arrays are NumPy: images uint8[N, H, W, C] (NHWC), labels int32[N]. Nothing is unpickled.

Where `load` looks (one root only, never a mix): an explicit `data_dir`, else
`$JAXSCHED_DATA_DIR`, else the defaults (Debian's Fashion-MNIST, tfds's default directory).
Every problem with a file on disk raises `DataFileError` (a ValueError) whose message starts
with the file's path; a missing or incomplete dataset raises `DatasetNotFoundError`.
`describe` records which files (sizes, SHA-256) `load` reads.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pathlib
import socket
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

DATASETS = ("fashion_mnist", "mnist", "cifar10")
SPLITS = ("train", "test")
NUM_CLASSES = {"fashion_mnist": 10, "mnist": 10, "cifar10": 10}
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
_HASH_CHUNK = 1 << 20
# (path, st_dev, st_ino, size, mtime_ns) -> sha256 hex: `describe` hashes each file version once.
_SHA256_CACHE: dict[tuple[str, int, int, int, int], str] = {}


class Dataset(NamedTuple):
    """One split: images uint8[N, H, W, C] and labels int32[N]."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def num_examples(self) -> int:
        return int(self.labels.shape[0])


def as_dataset(value: Any, name: str = "train_data") -> Dataset:
    """A `Dataset` from a Dataset or an (inputs, targets) pair of arrays (inputs [N, ...]
    floating point, i.e. already preprocessed; targets [N] class labels or regression targets).

    Examples:
      >>> ds = as_dataset((np.zeros((4, 3), np.float32), np.arange(4)))
      >>> ds.images.shape, ds.labels.tolist()
      ((4, 3), [0, 1, 2, 3])
    """
    if isinstance(value, Dataset):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        inputs, targets = np.asarray(value[0]), np.asarray(value[1])
        if inputs.dtype.kind in "iub":
            raise ValueError(
                f"{name} inputs must be floating point (preprocessed), got {inputs.dtype}"
            )
        return Dataset(inputs, targets)
    raise ValueError(
        f"{name} must be a jaxsched.data.Dataset or an (inputs, targets) pair of arrays, "
        f"got {type(value).__name__}"
    )


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is neither on disk nor obtainable by download right now."""


class DatasetIncompleteError(DatasetNotFoundError):
    """A folder `load` searches holds some, but not all, of the dataset's standard files."""


class DataFileError(ValueError):
    """A dataset file cannot be read or decoded, or holds wrong data.

    The message starts with the file's path (`.path`); `.problem` is the rest.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path, self.problem = os.fspath(path), problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable although __init__ takes two arguments
        return type(self), (self.path, self.problem)


def _check_name_split(name: str, split: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


# ---------------------------------------------------------------- label checks


def _labels_problem(labels: np.ndarray, num_classes: int | None) -> str | None:
    """What is wrong with labels (1-D, integer, in [0, num_classes) or >= 0), or None."""
    if labels.ndim != 1:
        return f"labels must be 1-D, got shape {labels.shape}"
    if not np.issubdtype(labels.dtype, np.integer):
        return f"labels must have an integer dtype, got {labels.dtype}"
    if labels.size == 0:
        return None
    bad = (labels < 0) if num_classes is None else (labels < 0) | (labels >= num_classes)
    if not bad.any():
        return None
    first, count = int(np.argmax(bad)), int(np.count_nonzero(bad))
    valid = "negative" if num_classes is None else f"outside 0..{num_classes - 1}"
    return (
        f"label {labels[first]} at index {first} is {valid}"
        + ("" if num_classes is None else f" ({num_classes} classes)")
        + f"; {count} of {labels.size} labels are out of range"
    )


def _check_num_classes(num_classes: Any) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")


def check_labels(labels: Any, num_classes: int, *, what: str = "labels") -> None:
    """Raises ValueError (message starts with `what`) unless `labels` is a 1-D integer array
    with every value in [0, num_classes); the message gives the first bad value and its index.
    """
    _check_num_classes(num_classes)
    problem = _labels_problem(np.asarray(labels), num_classes)
    if problem is not None:
        raise ValueError(f"{what}: {problem}")


def check_dataset(
    ds: Dataset,
    num_classes: int | None = None,
    *,
    what: str = "train_data",
    integer_labels: bool = True,
) -> None:
    """Raises ValueError (message starts with `what`) unless `ds.images` has one leading example
    axis matching `ds.labels`, a 1-D integer array with values in [0, num_classes) (only >= 0
    when num_classes is None). Images are not copied (works on device arrays too).

    integer_labels=False (regression targets): `ds.labels` need only have a leading example
    axis matching the images'; its dtype and values are not checked here.
    """
    if num_classes is not None:
        _check_num_classes(num_classes)
    image_shape, labels = np.shape(ds.images), np.asarray(ds.labels)
    if len(image_shape) < 1:
        raise ValueError(f"{what}.images must have a leading example axis, got a scalar")
    if not integer_labels:
        if labels.ndim < 1:
            raise ValueError(f"{what}.labels must have a leading example axis, got a scalar")
        if image_shape[0] != labels.shape[0]:
            raise ValueError(
                f"{what}: {image_shape[0]} images but {labels.shape[0]} labels "
                "(images[i] and labels[i] must be the same example)"
            )
        return
    if labels.ndim != 1:
        raise ValueError(f"{what}.labels: labels must be 1-D, got shape {labels.shape}")
    if image_shape[0] != labels.shape[0]:
        raise ValueError(
            f"{what}: {image_shape[0]} images but {labels.shape[0]} labels "
            "(images[i] and labels[i] must be the same example)"
        )
    problem = _labels_problem(labels, num_classes)
    if problem is not None:
        raise ValueError(f"{what}.labels: {problem}")


def _make_dataset(
    images: np.ndarray, labels: np.ndarray, num_classes: int | None = None, what: str = "data"
) -> Dataset:
    """Validates uint8[N, H, W, C] images against labels[N]; casts labels to int32."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            f"{what}: images must be uint8[N, H, W, C], got {images.dtype}{images.shape}"
        )
    check_dataset(Dataset(images, labels), num_classes, what=what)
    return Dataset(images, labels.astype(np.int32))


# ---------------------------------------------------------------- where the files are


class _Search(NamedTuple):
    """Where `load` looked for `name` and what it found (shared by load, find_local, describe)."""

    name: str
    origin: str  # "data_dir", "env" or "default": which root was used
    root: pathlib.Path | None  # data_dir or $JAXSCHED_DATA_DIR (also tfds's data_dir); None
    candidates: list[pathlib.Path]  # folders searched for local files, in order
    directory: pathlib.Path | None  # the folder holding all standard files, or None


def _candidate_dirs(name: str, root: pathlib.Path) -> list[pathlib.Path]:
    """Folders under `root` that may hold `name`'s files, in search order."""
    if name == "cifar10":
        return [root / name / _CIFAR_DIR, root / name, root / _CIFAR_DIR, root]
    return [root / name, root]


def _idx_file(directory: pathlib.Path, stem: str) -> pathlib.Path | None:
    """The raw file `stem` if present, else `stem.gz`, else None."""
    return next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)


def _standard_files(name: str, directory: pathlib.Path) -> tuple[list[pathlib.Path], list[str]]:
    """(the dataset's standard files present in `directory`, names of the missing ones)."""
    if name == "cifar10":
        paths = [directory / f for f in (*_CIFAR_TRAIN, _CIFAR_TEST)]
        return [p for p in paths if p.is_file()], [p.name for p in paths if not p.is_file()]
    found = {stem: _idx_file(directory, stem) for stem in _IDX_STEMS}
    return (
        [p for p in found.values() if p is not None],
        [f"{stem}[.gz]" for stem, p in found.items() if p is None],
    )


def _split_files(name: str, split: str, directory: pathlib.Path) -> list[pathlib.Path]:
    """The files `load` reads for one split of a complete folder (IDX: images, then labels)."""
    if name == "cifar10":
        return [directory / f for f in (_CIFAR_TRAIN if split == "train" else (_CIFAR_TEST,))]
    prefix = "train" if split == "train" else "t10k"
    return [
        _idx_file(directory, f"{prefix}-{kind}")
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    ]


def _origin_note(name: str, origin: str, root: pathlib.Path | None) -> str:
    others = f"${DATA_DIR_ENV}" + (", Debian's copy" if name == "fashion_mnist" else "")
    if origin == "data_dir":
        return (
            f"data_dir was given explicitly, so only {root} was searched: an explicit data_dir is "
            f"never mixed with other sources ({others} and tfds's default directory are not used)."
        )
    if origin == "env":
        debian = " (Debian's copy is not used)" if name == "fashion_mnist" else ""
        return (
            f"${DATA_DIR_ENV} is set, so only {root} was searched, as if it were passed as "
            f"data_dir{debian}; unset it to use the defaults."
        )
    return ""


def _search(name: str, data_dir: str | os.PathLike | None) -> _Search:
    """Resolves where `name` lives; raises DatasetIncompleteError on a partial folder.

    One root only: `data_dir` if given, else $JAXSCHED_DATA_DIR if set and non-empty, else the
    defaults (Debian's Fashion-MNIST). Under it, the first candidate folder holding any of the
    standard files decides: all present -> that folder; some missing -> error (no fallback).
    """
    if data_dir is not None:
        if not os.fspath(data_dir):
            raise ValueError(
                "data_dir is an empty string; pass None (the default search: "
                f"${DATA_DIR_ENV}, then Debian's copy / tfds) or a directory"
            )
        origin, root = "data_dir", pathlib.Path(data_dir).expanduser()
    elif os.environ.get(DATA_DIR_ENV):
        origin, root = "env", pathlib.Path(os.environ[DATA_DIR_ENV]).expanduser()
    else:
        origin, root = "default", None
    if root is not None:
        candidates = _candidate_dirs(name, root)
    elif name == "fashion_mnist":
        candidates = _candidate_dirs(name, pathlib.Path(DEBIAN_FASHION_MNIST_DIR))
    else:
        candidates = []
    for directory in candidates:
        present, missing = _standard_files(name, directory)
        if present and not missing:
            return _Search(name, origin, root, candidates, directory)
        if present:
            raise DatasetIncompleteError(
                f"Dataset {name!r}: {directory} is incomplete: missing {', '.join(missing)} "
                f"(it holds {', '.join(p.name for p in present)}). A folder with some of the "
                "standard files is never skipped for another copy: add the missing files "
                f"({_LAYOUT[name]}) or remove the partial ones. " + _origin_note(name, origin, root)
            )
    return _Search(name, origin, root, candidates, None)


def find_local(name: str, data_dir: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The folder `load` reads `name`'s local files from, or None (then tfds is tried).

    Same search as `load`: raises DatasetIncompleteError when the first folder with any of the
    standard files lacks some of them, ValueError for an empty-string data_dir.
    """
    _check_name_split(name, "train")
    return _search(name, data_dir).directory


# ---------------------------------------------------------------- file formats


def _read_file(path: str | os.PathLike) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as err:
        raise DataFileError(path, f"cannot read the file: {err.strerror or err}") from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (raw or gzip) into a native-endian array of the stored shape.

    Raises DataFileError (a ValueError; the message starts with `path`) when the file cannot be
    read, the gzip stream is corrupt or truncated, the magic number or type code is bad, or the
    payload size does not match the header.
    """
    data = _read_file(path)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            kind = type(err).__qualname__
            kind = kind if type(err).__module__ == "builtins" else f"{type(err).__module__}.{kind}"
            raise DataFileError(path, f"corrupt or truncated gzip data ({kind}: {err})") from err
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataFileError(path, "not an IDX file (magic must start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataFileError(
            path, f"IDX type code {code:#04x} is not one of {[hex(c) for c in _IDX_DTYPES]}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(path, f"truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataFileError(
            path, f"IDX payload is {len(data) - header} B, {shape} needs {expected}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_cifar10_binary(path: str | os.PathLike) -> Dataset:
    """Reads one CIFAR-10 binary batch of 3073-byte records (label, then R, G, B 32x32 planes).

    Returns images uint8[N, 32, 32, 3] (NHWC) and labels int32[N] in 0..9. Raises DataFileError
    (message starts with `path`) for an unreadable file, a bad size or a label above 9.
    """
    data = _read_file(path)
    if not data or len(data) % _CIFAR_RECORD:
        raise DataFileError(path, f"size {len(data)} is not a positive multiple of {_CIFAR_RECORD}")
    records = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int32)
    problem = _labels_problem(labels, NUM_CLASSES["cifar10"])
    if problem is not None:
        raise DataFileError(path, problem)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Dataset(np.ascontiguousarray(images), labels)


def _load_local(name: str, split: str, directory: pathlib.Path) -> Dataset:
    paths = _split_files(name, split, directory)
    if name == "cifar10":
        parts = [read_cifar10_binary(p) for p in paths]
        return Dataset(
            np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
        )
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataFileError(
            images_path,
            f"images must be uint8[N, H, W] (IDX type 0x08, 3 dimensions), "
            f"got {images.dtype}{list(images.shape)}",
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataFileError(
            labels_path,
            f"labels must be integers[N] (1 dimension), got {labels.dtype}{list(labels.shape)}",
        )
    if len(images) != len(labels):
        raise DataFileError(
            images_path,
            f"holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "the two files must have the same count (mixed or partly downloaded files?)",
        )
    problem = _labels_problem(labels, NUM_CLASSES[name])
    if problem is not None:
        raise DataFileError(labels_path, problem)
    return Dataset(images[..., None], labels.astype(np.int32))


# ---------------------------------------------------------------- tensorflow-datasets


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


def _tfds_version(name: str, tfds_dir: str | None) -> str:
    """The version of `name`'s tfds builder (what a prepared copy under tfds_dir holds)."""
    import tensorflow_datasets as tfds

    return str(tfds.builder(name, data_dir=tfds_dir).version)


def _load_tfds_tf(name: str, split: str, tfds_dir: str | None, download: bool) -> Dataset:
    """Loads a split through tfds.load (needs TensorFlow)."""
    import tensorflow_datasets as tfds

    # Batching in chunks rather than batch_size=-1: that pads to sys.maxsize when the split
    # sizes are unknown (e.g. under tfds.testing.mock_data) and aborts TensorFlow.
    ds = tfds.load(name, split=split, data_dir=tfds_dir, as_supervised=True, download=download)
    chunks = list(tfds.as_numpy(ds.batch(8192)))
    return _make_dataset(
        np.concatenate([c[0] for c in chunks]),
        np.concatenate([c[1] for c in chunks]),
        NUM_CLASSES[name],
        f"tfds {name} {split}",
    )


def _load_tfds_source(name: str, split: str, tfds_dir: str | None) -> Dataset:
    """Loads a prepared array_record split through tfds.data_source (no TensorFlow)."""
    import tensorflow_datasets as tfds

    source = tfds.data_source(name, split=split, data_dir=tfds_dir, download=False)
    examples = [source[i] for i in range(len(source))]
    return _make_dataset(
        np.stack([e["image"] for e in examples]),
        np.asarray([e["label"] for e in examples]),
        NUM_CLASSES[name],
        f"tfds {name} {split}",
    )


def _dir_note(directory: pathlib.Path) -> str:
    if not directory.exists():
        return " (does not exist)"
    if not directory.is_dir():
        return " (not a directory)"
    if not os.access(directory, os.R_OK | os.X_OK):
        return " (not readable)"
    return " (none of the standard files)"


def _not_found_message(search: _Search, split: str | None, tfds_where: str, reason: str) -> str:
    name = search.name
    lines = [
        f"Dataset {name!r}" + (f" (split {split!r})" if split else "") + " not found.",
        "Searched for local files in:",
        *(
            [f"  {d}{_dir_note(d)}" for d in search.candidates]
            or [f"  nothing (no data_dir, ${DATA_DIR_ENV} unset)"]
        ),
        f"and for a prepared tensorflow-datasets copy in: {tfds_where}",
    ]
    note = _origin_note(name, search.origin, search.root)
    lines += [note] if note else []
    lines += [f"Not downloading it because {reason}.", "To get it, either:"]
    if name == "fashion_mnist":
        lines.append(
            f"  - apt-get install dataset-fashion-mnist (files go to "
            f"{DEBIAN_FASHION_MNIST_DIR}, used when neither data_dir nor ${DATA_DIR_ENV} is "
            "given), or"
        )
    lines += [
        f"  - put the files in {_LAYOUT[name]}, and pass --data-dir <dir> or set "
        f"{DATA_DIR_ENV}=<dir>, or",
        "  - on a machine with internet access: pip install 'jaxsched[tfds]' (installs "
        "TensorFlow) and load with download=True; tensorflow-datasets then downloads it "
        "into <dir> (copy that directory to offline machines).",
    ]
    return "\n".join(lines)


def _tfds_dir(search: _Search) -> str | None:
    return None if search.root is None else str(search.root)


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> Dataset:
    """Loads a split as images uint8[N, H, W, C] and labels int32[N] in [0, NUM_CLASSES[name]).

    One root is searched, never a mix: `data_dir` when given (an empty string is a ValueError),
    else `$JAXSCHED_DATA_DIR` when set and non-empty, else the defaults (fashion_mnist only:
    DEBIAN_FASHION_MNIST_DIR). Under the root R, local files are looked for in `R/<name>/`
    then R (CIFAR-10 also in `cifar-10-batches-bin/`); the first of these folders holding any
    of the standard files must hold all of them (else DatasetIncompleteError, naming the
    missing files). With no local files, tensorflow-datasets is used with R as its data_dir
    (its default directory when there is no R): tfds.load with TensorFlow, else
    tfds.data_source for a prepared array_record copy. Raises DatasetNotFoundError at once when
    the data is absent and cannot be downloaded, and DataFileError (a ValueError naming the
    file) when a local file is unreadable, corrupt, or holds mismatched counts or bad labels.
    """
    _check_name_split(name, split)
    search = _search(name, data_dir)
    if search.directory is not None:
        return _load_local(name, split, search.directory)
    tfds_dir = _tfds_dir(search)
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
            raise DatasetNotFoundError(_not_found_message(search, split, tfds_where, reason))
    if has_tf:
        return _load_tfds_tf(name, split, tfds_dir, download)
    return _load_tfds_source(name, split, tfds_dir)


# ---------------------------------------------------------------- provenance


def _sha256(path: pathlib.Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, cached per (path, device, inode, size, mtime)."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _SHA256_CACHE:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(_HASH_CHUNK):
                    digest.update(chunk)
            _SHA256_CACHE[key] = digest.hexdigest()
    except OSError as err:
        raise DataFileError(path, f"cannot read the file: {err.strerror or err}") from err
    return st.st_size, _SHA256_CACHE[key]


def describe(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """What `load(name, split, data_dir)` reads, as JSON-ready data for a run's record.

    Local files: {"dataset", "format": "idx" | "cifar10-binary", "directory": absolute path
    (symlinks resolved), "files": [{"name", "bytes", "sha256"}] for every file of both splits,
    in the order load reads them (train then test)}. A prepared tfds copy: {"dataset",
    "format": "tfds", "directory": the builder's data_dir, "version", "files": []}.

    Uses load's search exactly (same errors); hashes are cached per file version, so a second
    call does not re-read the files. Never downloads: raises DatasetNotFoundError when load
    would have to (call it after load).
    """
    _check_name_split(name, "train")
    search = _search(name, data_dir)
    if search.directory is not None:
        files = []
        for path in [p for split in SPLITS for p in _split_files(name, split, search.directory)]:
            size, sha256 = _sha256(path)
            files.append({"name": path.name, "bytes": size, "sha256": sha256})
        return {
            "dataset": name,
            "format": "cifar10-binary" if name == "cifar10" else "idx",
            "directory": str(search.directory.resolve()),
            "files": files,
        }
    tfds_dir = _tfds_dir(search)
    prepared, tfds_where = _tfds_prepared(name, tfds_dir)
    if not prepared:
        raise DatasetNotFoundError(
            _not_found_message(
                search, None, tfds_where, "describe() only reports data already on disk"
            )
        )
    return {
        "dataset": name,
        "format": "tfds",
        "directory": tfds_where,
        "version": _tfds_version(name, tfds_dir),
        "files": [],
    }


# ---------------------------------------------------------------- preprocessing


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


def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, frac float32) per output index: cv2 INTER_LINEAR's half-pixel-centre source
    src = (dst + 0.5) * in_size / out_size - 0.5, clamped to the edge pixels."""
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = src - i0
    frac[i0 < 0] = 0.0
    i0 = np.maximum(i0, 0)
    frac[i0 >= in_size - 1] = 0.0
    i0 = np.minimum(i0, in_size - 1)
    return i0, np.minimum(i0 + 1, in_size - 1), frac.astype(np.float32)


def resize(images: np.ndarray, size: int, method: str = "pad") -> np.ndarray:
    """Resizes [N, H, W, C] images to [N, size, size, C].

    "pad": zero-pads symmetrically (28 -> 32 is LeNet-5's original input), keeps the dtype;
    needs size >= H and size >= W. "bilinear": jax.image.resize of to_float(images), float32.
    "linear": OpenCV's cv2.resize(..., interpolation=cv2.INTER_LINEAR) of to_float(images) in
    NumPy, float32: half-pixel centres, src = (dst + 0.5) * H / size - 0.5, clamped at the
    borders, no antialiasing; rows and columns separately (columns first, as OpenCV does).
    For upscaling "bilinear" gives the same values to float32 rounding (about 1e-7 on [0, 1]
    data); downscaling differs (jax antialiases; OpenCV also switches an exact 2x downscale to
    INTER_AREA, which "linear" does not).

    Examples:
      >>> x = np.array([[0, 1], [2, 3]], np.float32).reshape(1, 2, 2, 1)
      >>> resize(x, 4, "linear")[0, :, :, 0]
      array([[0.  , 0.25, 0.75, 1.  ],
             [0.5 , 0.75, 1.25, 1.5 ],
             [1.5 , 1.75, 2.25, 2.5 ],
             [2.  , 2.25, 2.75, 3.  ]], dtype=float32)
      >>> resize(np.ones((1, 28, 28, 1), np.uint8), 32).shape
      (1, 32, 32, 1)
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
    if method in ("bilinear", "linear"):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if method == "bilinear":
            return np.asarray(jax.image.resize(to_float(images), (n, size, size, c), "bilinear"))
        x = to_float(images)
        x0, x1, fx = _linear_taps(w, size)
        fx = fx[:, None]
        x = x[:, :, x0] * (1 - fx) + x[:, :, x1] * fx  # [N, H, size, C]
        y0, y1, fy = _linear_taps(h, size)
        fy = fy[:, None, None]
        return np.ascontiguousarray(x[:, y0] * (1 - fy) + x[:, y1] * fy, dtype=np.float32)
    raise ValueError(f"method must be one of ('pad', 'bilinear', 'linear'), got {method!r}")


def pixel_mean_resize(train_images: np.ndarray, *others: np.ndarray, size: int = 32) -> tuple:
    """`subtract_pixel_mean` (the per-pixel mean float32[H, W, C] of to_float(train_images)),
    then `resize(..., size, "linear")` (OpenCV's INTER_LINEAR) of each array.

    Returns float32 arrays (train, *others) [N, size, size, C]. This is the MiniGoogLeNet course
    notebook's Fashion-MNIST preprocessing (per-pixel train mean subtracted, 28 -> 32 with
    cv2.resize INTER_LINEAR, scaled to [0, 1], one channel), done on the [0, 1] scale: the
    notebook subtracts on the 0..255 scale, resizes, then divides by 255. All three steps are
    linear and the resize weights sum to 1, so any order gives the same values to float32
    rounding (about 1e-7), provided the resize sees float data (resizing uint8 images with cv2
    would round to integers first). Values lie in [-1, 1], not [0, 1], once the mean is off.

    Examples:
      >>> train = np.array([[[0], [2]], [[2], [4]]], np.float32).reshape(1, 2, 2, 1)
      >>> test = np.full((1, 2, 2, 1), 3.0, np.float32)
      >>> tr, te = pixel_mean_resize(train, test, size=4)
      >>> tr.shape, te.shape, float(abs(tr).max())
      ((1, 4, 4, 1), (1, 4, 4, 1), 0.0)
      >>> te[0, :, :, 0].tolist()[0]
      [3.0, 2.5, 1.5, 1.0]
    """
    centred = subtract_pixel_mean(train_images, *others)
    return tuple(resize(x, size, "linear") for x in centred)


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


# ---------------------------------------------------------------- experiment splits

# What `load_splits` can apply; "pixel_mean_resize32" is `pixel_mean_resize` to 32x32.
PREPROCESSING = ("scale", "pixel_mean", "standardize", "pixel_mean_resize32")


def subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """A seeded random `n` examples of `ds` (images [N, ...], labels [N]) -> [n, ...], [n], in
    their original order; `ds` itself when `n` is None or >= N."""
    if n is None or n >= len(ds.labels):
        return ds
    if n < 1:
        raise ValueError(f"the number of examples must be >= 1, got {n}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds.labels))[:n])
    return Dataset(ds.images[idx], ds.labels[idx])


def split_validation(ds: Dataset, n: int, seed: int) -> tuple[Dataset, Dataset]:
    """(rest, held): a seeded random `n` examples of `ds` (images [N, ...], labels [N]) held
    out as a validation set [n, ...], the other N - n kept for training; both keep the
    original order."""
    if not 0 < n < len(ds.labels):
        raise ValueError(f"validation_examples must be in [1, {len(ds.labels) - 1}], got {n}")
    perm = np.random.default_rng([seed, 7]).permutation(len(ds.labels))
    keep, held = np.sort(perm[n:]), np.sort(perm[:n])
    return Dataset(ds.images[keep], ds.labels[keep]), Dataset(ds.images[held], ds.labels[held])


def load_splits(
    dataset: str,
    data_dir: str | os.PathLike | None,
    preprocessing: str,
    train_examples: int | None,
    eval_examples: int | None,
    seed: int,
    image_size: int | None = None,
) -> tuple[Dataset, Dataset]:
    """(train, test) of `dataset` (`load`) as float32 images [N, H, W, C] and int32 labels [N],
    preprocessed with the training split's statistics: "scale" ([0, 1], `to_float`),
    "pixel_mean" (`subtract_pixel_mean`), "standardize" (`standardize_per_channel`) or
    "pixel_mean_resize32" (`pixel_mean_resize` to 32x32: the per-pixel train mean of the
    `train_examples` used subtracted, then OpenCV-style bilinear resize; MiniGoogLeNet's input).

    `train_examples` / `eval_examples` take a seeded random subset (`subset`, seeds `seed` and
    `seed + 1`; None keeps the whole split); `image_size` zero-pads smaller images to that side
    (28 -> 32 for 32x32 nets). "pixel_mean_resize32" resizes instead of padding: with it
    `image_size` must be None or 32.
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    resizes = preprocessing == "pixel_mean_resize32"
    if resizes and image_size not in (None, 32):
        raise ValueError(
            f"preprocessing 'pixel_mean_resize32' resizes to 32x32, so image_size must be None or "
            f"32, got {image_size!r}"
        )
    train = subset(load(dataset, "train", data_dir), train_examples, seed)
    test = subset(load(dataset, "test", data_dir), eval_examples, seed + 1)
    if not resizes and image_size is not None and image_size != train.images.shape[1]:
        train = Dataset(resize(train.images, image_size, "pad"), train.labels)
        test = Dataset(resize(test.images, image_size, "pad"), test.labels)
    x_train, x_test = to_float(train.images), to_float(test.images)
    if preprocessing == "pixel_mean":
        x_train, x_test = subtract_pixel_mean(x_train, x_test)
    elif preprocessing == "standardize":
        x_train, x_test = standardize_per_channel(x_train, x_test)
    elif resizes:
        x_train, x_test = pixel_mean_resize(x_train, x_test, size=32)
    return Dataset(x_train, train.labels), Dataset(x_test, test.labels)


def resolve_dataset(
    name: str, data_dir: str | os.PathLike | None, preferred: str = "cifar10"
) -> str:
    """The dataset an experiment's `name` means: "auto" -> `preferred` where it can be loaded,
    else "fashion_mnist" (real data, always installable offline), saying so; any other name
    unchanged. A partial copy of `preferred` raises `DatasetIncompleteError` (a mistake to
    report, not a reason to switch)."""
    if name != "auto":
        return name
    try:
        load(preferred, "test", data_dir)
        return preferred
    except DatasetIncompleteError:
        raise
    except DatasetNotFoundError:
        print(
            f"{preferred} is not available here; running on Fashion-MNIST (real data) instead. "
            f"See README 'Data' to add {preferred}.",
            flush=True,
        )
        return "fashion_mnist"
