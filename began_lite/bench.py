"""Benchmarks: how fast a training step runs, and against what (appendix "Benchmarks").

``python -m began_lite bench`` times :meth:`Trainer.train_step <began_lite.train.Trainer.train_step>`
on the paper's networks (n = 128 filters, N_z = N_h = 64, RGB; BEGAN §3.5, §4.1) at 16, 32,
64 and 128 pixels and batch 16 and 64, and, in the same run, the same networks trained by a
:class:`PlainStep`, a BEGAN step written the way most public implementations write it.
For every row it reports

* **steps/s** and **img/s** (real images consumed: batch x steps/s). After one warm-up
  step each, the implementations of one size and batch are timed *in turns* (up to five
  rounds, each a block of steps of every one), and the median block counts: on a machine
  that other programs share, a burst of their load then hits all alike;
* **GFLOP/step**: the model FLOPs of one whole step (forward and backward of the D step
  and of the G step), counted by ``torch.utils.flop_counter.FlopCounterMode`` over that
  implementation's warm-up step, not estimated. Adam's element-wise work is not counted;
* **GFLOP/s** and **%peak**: the FLOP rate achieved, as a fraction of the peak of the same
  device measured in the same run by timing a large matrix product (float32; a step run
  under bfloat16 autocast on a GPU is compared with the bfloat16 peak);
* **MiB**: how far memory rose, at its peak, while the implementation was built and took
  its first step: weights, gradients, Adam's moments and the activations of a step. On
  CUDA from ``torch.cuda.max_memory_allocated``. On a CPU PyTorch keeps no such count, so
  it is the rise of the process's resident set (Linux' high-water mark, reset before the
  row, after freed memory is handed back to the kernel): approximate, and ``-`` where the
  kernel does not offer it;
* the **ratio** of our steps/s to the plain step's, per size and batch.

``--quick`` is the form CI runs (16 px, batch 16, n = 32 filters rather than the paper's
128, three timed steps: a few seconds on a CPU). On a CPU the full form skips a row whose
estimated time exceeds ``--max-seconds``, and says so. Library functions print nothing; :func:`main` (the ``bench`` command) does.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import TrainConfig, pick_device, seed_everything
from .models import Discriminator, Generator
from .objectives import make_objective
from .train import Trainer, _autocast_dtype

__all__ = ["PlainStep", "Row", "measure_peak", "count_step_flops", "bench_config", "run_benchmark",
           "format_table", "main", "SIZES", "BATCHES", "VARIANTS"]

SIZES = (16, 32, 64, 128)  # the paper trains at 32 to 256 px (§4.1); our networks stop at 128
BATCHES = (16, 64)  # the paper's batch 16 (§4.1), and a larger one that fills a GPU better
# Our step with one TrainConfig change each, to measure one speed choice at a time.
VARIANTS = {
    "ours": {},
    "channels_last": {"memory_format": "channels_last"},
    "contiguous": {"memory_format": "contiguous"},
    "float32": {"dtype": "float32"},
    "sync-step": {"sync": "step"},
    "sync-loss": {"sync": "loss"},
    "compile": {"compile": "default"},
    "cudagraphs": {"compile": "reduce-overhead"},
}


def bench_config(image_size: int, batch_size: int, device: str, *, filters: int = 128, **changes) -> TrainConfig:
    """The paper's networks at ``image_size`` (n = ``filters``, N_z = N_h = 64, RGB), our device defaults."""
    return TrainConfig(image_size=image_size, batch_size=batch_size, channels=3, filters=filters, z_dim=64,
                       h_dim=64, device=device, **changes)


class PlainStep:
    """A BEGAN step written the straightforward way: the baseline our step is compared with.

    As in most public implementations: real and fake batches go through D in two separate
    passes; the G step back-propagates into D's weights as well (D is not frozen; those
    gradients are discarded by the next ``zero_grad``); the losses are read with ``.item()``
    every step to update k; float32, contiguous tensors, no fusion, no compilation. The
    networks, Adam settings and the z_D / z_G draws are the same as :class:`~began_lite.train.Trainer`'s.
    """

    def __init__(self, config: TrainConfig, data: torch.Tensor):
        self.config, self.device = config, pick_device(config.device)
        seed_everything(config.seed)
        self.G = Generator(config).to(self.device)
        self.D = Discriminator(config).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=tuple(config.adam_betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=tuple(config.adam_betas))
        self.data = data.to(self.device)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.k = config.k0

    def __call__(self) -> dict:
        cfg, dev, B = self.config, self.device, self.config.batch_size
        x = self.data[torch.randint(len(self.data), (B,), generator=self.gen).to(dev)]
        z_d = (torch.rand(B, cfg.z_dim, generator=self.gen) * 2 - 1).to(dev)
        z_g = (torch.rand(B, cfg.z_dim, generator=self.gen) * 2 - 1).to(dev)

        self.opt_d.zero_grad()
        fake = self.G(z_d).detach()
        loss_real = torch.mean(torch.abs(x - self.D(x)))
        loss_fake = torch.mean(torch.abs(fake - self.D(fake)))
        loss_d = loss_real - self.k * loss_fake
        loss_d.backward()
        self.opt_d.step()

        self.opt_g.zero_grad()
        fake = self.G(z_g)
        loss_g = torch.mean(torch.abs(fake - self.D(fake)))
        loss_g.backward()
        self.opt_g.step()

        balance = cfg.gamma * loss_real.item() - loss_g.item()
        self.k = min(max(self.k + cfg.lambda_k * balance, 0.0), 1.0)
        return {"loss_real": loss_real.item(), "loss_fake": loss_g.item(), "k": self.k,
                "m_global": loss_real.item() + abs(balance)}


# --------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_peak(device, dtype: torch.dtype = torch.float32, *, n: int | None = None, repeats: int = 10) -> float:
    """The FLOP rate (FLOP/s) of an ``n`` x ``n`` matrix product on ``device``: the best of ``repeats``.

    ``n`` defaults to 2048 on a CPU and 8192 on a GPU, large enough to reach the BLAS
    library's best rate. A product of two n x n matrices is 2 n^3 FLOPs.
    """
    device = pick_device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    torch.mm(a, b)  # warm-up: threads, kernels, caches
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def count_step_flops(config: TrainConfig) -> int:
    """FLOPs of one training step of ``config``'s networks, counted on the meta device (no arithmetic).

    The same D step and G step as the trainer's, on tensors without data, so even the
    largest configuration is counted in a second; :func:`run_benchmark` uses it to
    estimate a row's time before running it. The test suite checks it against a count
    over a real step.
    """
    with torch.device("meta"):
        G, D = Generator(config), Discriminator(config)
        real = torch.zeros(config.batch_size, config.channels, config.image_size, config.image_size)
        z = torch.zeros(config.batch_size, config.z_dim)
    objective = make_objective(config)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            fake = G(z)
        objective.d_loss(D, real, fake)[0].backward()
        D.requires_grad_(False)
        objective.g_loss(D, G(z))[0].backward()
    return int(counter.get_total_flops())


def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _release_free_memory() -> None:
    """Hand memory that earlier rows freed back to the OS, so that this row's peak is its own."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: return free heap pages to the kernel
    except (OSError, AttributeError):
        pass


class _MemoryPeak:
    """Peak memory of what runs inside: CUDA allocator peak, or the rise of a Linux process's resident set."""

    def __init__(self, device: torch.device):
        self.device, self.mib = device, None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _release_free_memory()
            try:  # "5" resets the high-water mark VmHWM to the current resident set (Linux >= 4.0)
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self._base = _rss_kib("VmRSS")
            except OSError:
                self._base = None
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._base is not None and (hwm := _rss_kib("VmHWM")) is not None:
            self.mib = max(0, hwm - self._base) / 1024
        return False


@dataclass
class Row:
    """One line of the table: one implementation at one size and batch on one device."""

    device: str
    image_size: int
    batch_size: int
    impl: str  # "ours", a name from VARIANTS, or "plain"
    steps_per_s: float | None = None
    images_per_s: float | None = None
    gflop_per_step: float | None = None
    gflop_per_s: float | None = None
    peak_fraction: float | None = None  # of peak_name's matmul rate
    peak_name: str = "float32"
    memory_mib: float | None = None
    first_step_s: float | None = None  # the warm-up step (includes compilation when compiling)
    timed_steps: int = 0  # in up to 5 interleaved rounds
    note: str = ""  # why a row was skipped


def _warm_up(row: Row, make_step, device: torch.device, flops: int | None):
    """Build the implementation and run its first step, counting its FLOPs (unless given) and memory."""
    with _MemoryPeak(device) as mem:
        step = make_step()
        _sync(device)
        t0 = time.perf_counter()
        if flops is None:
            with FlopCounterMode(display=False) as counter:
                step()
            flops = counter.get_total_flops()
        else:
            step()
        _sync(device)
        row.first_step_s = time.perf_counter() - t0
    row.memory_mib = mem.mib
    row.gflop_per_step = flops / 1e9
    return step


def _time_interleaved(live: list, device: torch.device, steps: int | None, seconds: float) -> None:
    """Time the implementations of one size and batch in turns, so that a change in the machine's
    load (other programs) hits them alike: up to 5 rounds, each a block of k steps of every one;
    steps/s is k over the median block time."""
    slowest = max(row.first_step_s for row, _ in live)
    total = steps or max(3, int(seconds / max(slowest, 1e-6)))
    rounds = min(total, 5)
    blocks = {id(row): max(1, math.ceil(total / rounds)) for row, _ in live}
    times: dict[int, list[float]] = {id(row): [] for row, _ in live}
    for _ in range(rounds):
        for row, step in live:
            k = blocks[id(row)]
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(k):
                step()
            _sync(device)
            times[id(row)].append((time.perf_counter() - t0) / k)
    for row, _ in live:
        t = sorted(times[id(row)])
        median = t[len(t) // 2] if len(t) % 2 else (t[len(t) // 2 - 1] + t[len(t) // 2]) / 2
        row.timed_steps = rounds * blocks[id(row)]
        row.steps_per_s = 1.0 / median
        row.images_per_s = row.steps_per_s * row.batch_size
        row.gflop_per_s = row.gflop_per_step * row.steps_per_s


def run_benchmark(*, devices=("cpu",), sizes=SIZES, batches=BATCHES, variants=("ours",), filters: int = 128,
                  steps: int | None = None, seconds: float = 10.0, max_seconds: float = 300.0,
                  peak_n: int | None = None, report=None) -> dict:
    """Time our step (each of ``variants``) and the plain step for every size and batch on every device.

    ``steps`` timed steps per implementation (default: about ``seconds`` worth for the
    slowest, at least 3), taken in up to 5 interleaved rounds. A CPU row whose warm-up and
    three timed steps would take more than ``max_seconds`` (estimated from its FLOPs, counted
    on the meta device, and the best FLOP rate seen so far) is skipped with a note. The peak
    is measured before and after the rows, and the higher taken. ``report(row)`` is called
    after each size and batch. Returns ``{"machine": ..., "peaks": ..., "rows": [...]}``.
    """
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"variants: {name!r} is not one of {sorted(VARIANTS)}")
    for name, values in (("sizes", sizes), ("batches", batches)):
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ValueError(f"{name} must be integers >= 1, got {values!r}")
    result = {"machine": _machine(), "peaks": {}, "rows": []}
    for dev_name in devices:
        device = pick_device(dev_name)
        dtypes = [torch.float32] + ([torch.bfloat16] if device.type == "cuda" and torch.cuda.is_bf16_supported() else [])
        peaks = {str(dt).removeprefix("torch."): measure_peak(device, dt, n=peak_n) for dt in dtypes}
        # One tiny step of each kind first: the one-time set-up of the libraries (thread pools,
        # kernels) would otherwise be timed and counted as memory in the first row.
        tiny = bench_config(8, 2, str(device), filters=4)
        tiny_data = torch.zeros(4, 3, 8, 8)
        _trainer_step(tiny, tiny_data)()
        PlainStep(tiny, tiny_data)()
        rate = 0.25 * peaks["float32"]  # FLOP/s guessed for the first estimate; then the best measured
        rows = []
        data_gen = torch.Generator().manual_seed(0)
        for size in sizes:
            for batch in batches:
                data = torch.rand(max(256, 4 * batch), 3, size, size, generator=data_gen) * 2 - 1
                live = []
                for impl, changes in [(name, VARIANTS[name]) for name in variants] + [("plain", None)]:
                    config = bench_config(size, batch, str(device), filters=filters,
                                          **(changes if changes is not None else {"dtype": "float32"}))
                    bf16 = changes is not None and _autocast_dtype(config, device) == torch.bfloat16
                    row = Row(str(device), size, batch, impl, peak_name="bfloat16" if bf16 and "bfloat16" in peaks
                              else "float32")
                    rows.append(row)
                    estimate = count_step_flops(config) / rate
                    if device.type == "cpu" and 4 * estimate > max_seconds:
                        row.note = f"skipped: ~{estimate:.0f} s a step here; raise --max-seconds to run it"
                        continue
                    compiled = changes is not None and config.compile != "off"
                    make = (lambda c=config, d=data: _trainer_step(c, d)) if changes is not None else \
                        (lambda c=config, d=data: PlainStep(c, d))
                    # Under torch.compile the counter would see compiled kernels: count the same maths uncompiled.
                    step = _warm_up(row, make, device, count_step_flops(config) if compiled else None)
                    live.append((row, step))
                if live:
                    _time_interleaved(live, device, steps, seconds)
                    rate = max([rate] + [row.gflop_per_s * 1e9 for row, _ in live])
                del live
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if report is not None:
                    for row in rows[-len(variants) - 1:]:
                        report(row)
        # Measured again at the end: on a busy machine one of the two may be slowed down.
        for dt in dtypes:
            name = str(dt).removeprefix("torch.")
            peaks[name] = max(peaks[name], measure_peak(device, dt, n=peak_n))
        for row in rows:
            if row.gflop_per_s is not None:
                row.peak_fraction = row.gflop_per_s * 1e9 / peaks[row.peak_name]
        result["peaks"][str(device)] = {k: v / 1e9 for k, v in peaks.items()}
        result["rows"] += [asdict(row) for row in rows]
    return result


def _trainer_step(config: TrainConfig, data: torch.Tensor):
    return Trainer(config, data).train_step


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"torch": torch.__version__, "cpu": cpu, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# --------------------------------------------------------------------------- the table
def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(result: dict) -> str:
    """The benchmark as a text table, with the peaks above and the ratios to the plain step below."""
    m = result["machine"]
    lines = [f"began_lite bench: torch {m['torch']}; CPU {m['cpu']} ({m['cpu_count']} cores, "
             f"{m['threads']} threads)" + (f"; GPU {m['gpu']}" if m.get("gpu") else "")]
    for dev, peaks in result["peaks"].items():
        lines.append(f"peak matmul on {dev}: " + ", ".join(f"{k} {v:,.1f} GFLOP/s" for k, v in peaks.items()))
    head = (f"{'device':8s} {'size':>4s} {'batch':>5s} {'impl':14s} {'steps/s':>9s} {'img/s':>9s} "
            f"{'GFLOP/step':>10s} {'GFLOP/s':>9s} {'%peak':>6s} {'peak':>8s} {'MiB':>8s} {'1st s':>7s} {'n':>4s}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        if r["note"]:
            lines.append(f"{r['device']:8s} {r['image_size']:4d} {r['batch_size']:5d} {r['impl']:14s} {r['note']}")
            continue
        lines.append(
            f"{r['device']:8s} {r['image_size']:4d} {r['batch_size']:5d} {r['impl']:14s} {_fmt(r['steps_per_s'], '9.3f')} "
            f"{_fmt(r['images_per_s'], '9.1f')} {_fmt(r['gflop_per_step'], '10.2f')} {_fmt(r['gflop_per_s'], '9.1f')} "
            f"{_fmt(100 * r['peak_fraction'], '6.1f')} {r['peak_name']:>8s} {_fmt(r['memory_mib'], '8.0f')} "
            f"{_fmt(r['first_step_s'], '7.2f')} {r['timed_steps']:4d}")
    ratios = ratio_lines(result)
    if ratios:
        lines += [""] + ratios
    return "\n".join(lines)


def ratio_lines(result: dict) -> list[str]:
    """'ratio <impl>/plain at <device> <size> px batch <b>: <x>' for every measured pair."""
    rows = [r for r in result["rows"] if not r["note"]]
    plain = {(r["device"], r["image_size"], r["batch_size"]): r for r in rows if r["impl"] == "plain"}
    out = []
    for r in rows:
        p = plain.get((r["device"], r["image_size"], r["batch_size"]))
        if r["impl"] != "plain" and p is not None:
            out.append(f"ratio {r['impl']}/plain steps/s at {r['device']} {r['image_size']} px batch {r['batch_size']}: "
                       f"{r['steps_per_s'] / p['steps_per_s']:.2f}x")
    return out


# --------------------------------------------------------------------------- threads or processes
_SCALING_CHILD = """
import sys, time, torch
from began_lite.config import TrainConfig
from began_lite.data import load_digits
from began_lite.train import Trainer
cfg = TrainConfig.for_profile("quick", device="cpu", seed=0)
tr = Trainer(cfg, load_digits(cfg.image_size))
tr.train_step()
start = time.perf_counter()
for _ in range(int(sys.argv[1])):
    tr.train_step()
print(time.perf_counter() - start)
"""


def thread_scaling(steps: int = 200, processes: int | None = None) -> dict:
    """Quick-profile training steps per second on this CPU, two ways of using its cores:
    one process with ``processes`` threads, and ``processes`` one-thread processes at once
    (how `make test` runs the chapters). Each way runs in fresh interpreters (the thread
    count is fixed by ``OMP_NUM_THREADS`` before torch starts); the steps of every process
    are timed after one warm-up step. Returns both rates and their ratio."""
    import subprocess

    processes = processes or os.cpu_count() or 1
    if steps < 1 or processes < 1:
        raise ValueError(f"steps and processes must be >= 1, got {steps} and {processes}")

    def launch(threads: int, copies: int) -> float:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        procs = [subprocess.Popen([sys.executable, "-c", _SCALING_CHILD, str(steps)], env=env,
                                  stdout=subprocess.PIPE, text=True) for _ in range(copies)]
        outs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError("a thread-scaling process failed")
        return sum(steps / float(o) for o in outs)  # total steps per second of the copies

    one = launch(processes, 1)
    many = launch(1, processes)
    return {"processes": processes, "steps": steps, "one_process_steps_per_s": one,
            "one_thread_processes_steps_per_s": many, "ratio": many / one}


# --------------------------------------------------------------------------- command line
def main(args) -> int:
    """Run the benchmark the parsed ``args`` describe and print the table (``bench`` command)."""
    from .checkpoint import atomic_write_bytes

    for name in args.variants:
        if name not in VARIANTS:
            raise ValueError(f"variants: {name!r} is not one of {sorted(VARIANTS)}")
    for name in ("steps", "threads", "filters"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if not args.seconds > 0 or not args.max_seconds > 0:
        raise ValueError("seconds and max-seconds must be > 0")
    if getattr(args, "processes", None) is not None:
        r = thread_scaling(args.steps or 200, args.processes)
        print(f"quick profile (16 px digits, batch 32) on the CPU, {r['steps']} timed steps per process:\n"
              f"  1 process x {r['processes']} threads : {r['one_process_steps_per_s']:.1f} steps/s\n"
              f"  {r['processes']} processes x 1 thread: {r['one_thread_processes_steps_per_s']:.1f} steps/s in all\n"
              f"  ratio (processes / threads)  : {r['ratio']:.2f}x")
        if args.json:
            atomic_write_bytes(args.json, json.dumps(r, indent=1).encode())
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    variants = list(dict.fromkeys(args.variants + (["compile"] if args.compile else [])))
    quick = args.quick
    result = run_benchmark(
        devices=devices, sizes=tuple(args.sizes or ((16,) if quick else SIZES)),
        batches=tuple(args.batches or ((16,) if quick else BATCHES)), variants=variants,
        filters=args.filters or (32 if quick else 128),
        steps=args.steps or (3 if quick else None), seconds=args.seconds, max_seconds=args.max_seconds,
        peak_n=1024 if quick and "cuda" not in devices else None,
        report=lambda row: print(f"  measured {row.device} {row.image_size} px batch {row.batch_size} {row.impl}"
                                 + (f": {row.steps_per_s:.3f} steps/s" if row.steps_per_s else f": {row.note}"),
                                 file=sys.stderr, flush=True))
    print(format_table(result))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(result, indent=1).encode())
    return 0
