"""Speed and GPU tools, off the book's path: how fast a training step runs and why.

:mod:`~began_lite.perf.bench` times :meth:`~began_lite.train.Trainer.train_step` against a plain
PyTorch step (the ``bench`` command); :mod:`~began_lite.perf.flops` counts the FLOPs of the real
:func:`~began_lite.step.gan_step` and measures a device's peak rate; :mod:`~began_lite.perf.allocator`
tunes glibc's malloc for training on a CPU (the command line calls it); and
:mod:`~began_lite.perf.gpu_check` is the one-GPU check (``python -m began_lite.perf.gpu_check``).
They import the loop and the paper's modules; nothing in the loop, the chapters or the book's
chapters imports them, and importing this package loads none of them.
"""
