"""Where metrics go besides the History: one small writer interface, in the spirit of
clu.metric_writers.

A `MetricWriter` takes named scalars at an integer step (`write_scalars`), and has `flush` and
`close`. `hooks.WriteMetrics` feeds one from a training run, and `loop.fit(writers=[...])`
adds that hook for each writer; the History stays the run's record (results.json is
unchanged), the writers are extra outlets.

  JsonLinesWriter(path)       one JSON object per call, appended to a file (any JSON reader).
  TensorBoardWriter(logdir)   TensorBoard event files, through tensorboardX or TensorFlow's
                              tf.summary (imported when the writer is made, never by
                              `import jaxsched`).

Examples:
  >>> import json, os, tempfile
  >>> from jaxsched import writers
  >>> path = os.path.join(tempfile.mkdtemp(), "metrics.jsonl")
  >>> writer = writers.JsonLinesWriter(path)
  >>> writer.write_scalars(1, {"train/loss": 2.25, "learning_rate": 0.1})
  >>> writer.write_scalars(2, {"train/loss": float("nan")})
  >>> writer.close()
  >>> [json.loads(line) for line in open(path)]
  [{'step': 1, 'train/loss': 2.25, 'learning_rate': 0.1}, {'step': 2, 'train/loss': None}]

  Training with a TensorBoard writer (then `tensorboard --logdir runs/tb`):

      state, history = loop.fit(
          model, tx, train_data, epochs=10, batch_size=64,
          writers=[writers.TensorBoardWriter("runs/tb")],
      )
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from jaxsched import results


@runtime_checkable
class MetricWriter(Protocol):
    """Writes named scalars at integer steps (clu.metric_writers.MetricWriter's scalar part).

    write_scalars(step, scalars): one record of `scalars` (name -> float) at `step`.
    flush(): makes what was written so far visible to readers.
    close(): flushes and releases the writer's resources.
    """

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """Appends one JSON object per `write_scalars` call to `path`: {"step": step, **scalars}.

    Non-finite values are written as null (as in results.json), so any JSON reader loads the
    file. Lines are buffered and flushed on `flush` and `close`; the file (and its folder) is
    made on the first write, and a closed writer reopens it (appending) when written again.

    Examples:
      >>> import json, os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "run", "metrics.jsonl")
      >>> with JsonLinesWriter(path) as writer:
      ...     writer.write_scalars(10, {"epoch/val_loss": 0.5, "epoch/val_accuracy": 0.8})
      >>> json.loads(open(path).readline())
      {'step': 10, 'epoch/val_loss': 0.5, 'epoch/val_accuracy': 0.8}
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file: IO[str] | None = None

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")  # noqa: SIM115 (closed by close())
        row = results.to_jsonable({"step": int(step), **{k: float(v) for k, v in scalars.items()}})
        self._file.write(json.dumps(row, allow_nan=False) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "JsonLinesWriter":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class TensorBoardWriter:
    """Writes scalars to TensorBoard event files in `logdir` (view: `tensorboard --logdir
    logdir`).

    Uses tensorboardX when it is installed, else TensorFlow's summary ops (TensorFlow comes with
    the `tfds` extra; the scalars are written as tf.summary.scalar writes them, without needing
    the tensorboard package). The library is imported here, not by `import jaxsched`; with
    neither, an ImportError says what to install. A closed writer starts a new event file when
    written again.

    Raises:
      ImportError: when neither tensorboardX nor tensorflow can be imported.

    Examples:
      Reading the scalars back with TensorFlow:

          writer = TensorBoardWriter("runs/tb")
          writer.write_scalars(1, {"train/loss": 2.3})
          writer.close()
          for event in tf.compat.v1.train.summary_iterator(next(Path("runs/tb").iterdir())):
              for value in event.summary.value:
                  print(event.step, value.tag, tf.make_ndarray(value.tensor))
    """

    def __init__(self, logdir: str | os.PathLike):
        self.logdir = Path(logdir)
        self._writer: Any = None
        try:
            import tensorboardX  # noqa: F401

            self.backend = "tensorboardX"
        except ImportError:
            try:
                import tensorflow  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "TensorBoardWriter needs tensorboardX (pip install tensorboardX) or "
                    "TensorFlow (pip install tensorflow-cpu, or jaxsched's 'tfds' extra)"
                ) from exc
            self.backend = "tensorflow"

    def _open(self) -> Any:
        if self._writer is None:
            self.logdir.mkdir(parents=True, exist_ok=True)
            if self.backend == "tensorboardX":
                from tensorboardX import SummaryWriter

                self._writer = SummaryWriter(str(self.logdir))
            else:
                import tensorflow as tf

                self._writer = tf.summary.create_file_writer(str(self.logdir))
        return self._writer

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        writer = self._open()
        if self.backend == "tensorboardX":
            for tag, value in scalars.items():
                writer.add_scalar(tag, float(value), int(step))
            return
        import tensorflow as tf

        # What tensorboard.summary.v2.scalar writes: a float32 tensor tagged for the
        # "scalars" plugin (tf.summary.scalar itself needs the tensorboard package).
        metadata = tf.compat.v1.SummaryMetadata(
            plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        with writer.as_default():
            for tag, value in scalars.items():
                tensor = tf.constant(float(value), tf.float32)
                tf.summary.write(tag, tensor, step=int(step), metadata=metadata)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
