"""Benchmarks: jaxsched and its peers side by side, in one process on one machine.

    python -m benchmarks [--smoke] [--only NAME ...] [--peers jaxsched keras torch]
                         [--repetitions N] [--out runs/benchmarks]
    python -m benchmarks.<name> [same options]

Benchmarks (one module each, `run(smoke, peers, repetitions) -> rows` and `main()`):

  lenet_epoch    LeNet-5 on Fashion-MNIST, SGD, one epoch at batch 64, 512, 4096: jaxsched
                 `loop.fit`, Keras `model.fit` (with and without jit_compile), PyTorch's loop
                 (eager and `torch.compile`)
  batch_throughput  LeNet-5 updates at batch 64, 512, 4096: images/s, op profiles, variants
  lr_grid        the 11-rate LR range test: `sweep.fit_grid` against 11 `loop.fit` / Keras fits
  lr_grid_notebook  the notebooks' full grid, 11 rates x 5 epochs (Keras extrapolated)
  dead_relu      1000 dead-ReLU simulations vmapped against the Keras loop (extrapolated)
  depth_width    the 143 depth-vs-width MLPs for 2 epochs: `shape_grid.fit_shapes` ("auto",
                 "sequential", "depth") against the Keras loop (sampled, extrapolated)
  batch_cycling  a cyclic batch size under the "shapes" and "accumulate" strategies
  resnet_step    ResNet-44 + cutout batch augmentation, M = 1..16: images/s and XLA memory
  minigooglenet_step  MiniGoogLeNet's step, B = 64, 512, vs Keras / PyTorch; FLOP/s vs matmul
  conv_block     one 3x3 convolution per image: whole batch, interleaved slices, lax.map
  conv_lowering  LeNet-5's and ResNet's convolutions per image: XLA, im2col, banded tiles
  host_memory    train steps under glibc's default allocator, huge pages and one reusing
                 heap, each setting in its own process (page faults, peak memory)
  roofline       NumPy / XLA matmul rates and the LeNet / ResNet steps' fraction of them
  loop_design    the measurements behind the training loop's design (dispatch, scan, layouts)
  rerun_compile  each runner's --smoke twice in fresh processes: what a rerun pays to compile

Every measurement is repeated (median, min, max of the repetitions after a warm-up); ratios
divide by the jaxsched baseline of the same measurement. Results go to benchmarks.json (rows
plus the environment: versions, CPU model, cores, threads, device) and benchmarks.md (the
table). Peers are the optional `bench` extra (`pip install -e .[bench]`); a missing one gives
a 'skipped' row, never a crash.
"""
