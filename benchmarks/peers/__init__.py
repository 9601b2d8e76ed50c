"""The peers' side of the benchmarks: Keras 3 on TensorFlow and PyTorch, each imported only
when its benchmark runs (`benchmarks.common.unavailable` says when one is not installed)."""
