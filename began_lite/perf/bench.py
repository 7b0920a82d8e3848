"""Benchmarks: how fast a training step runs, and against what (appendix "Benchmarks").

``python -m began_lite bench`` times ``Trainer.train_step`` on the paper's networks (n = 128,
N_z = N_h = 64, RGB; BEGAN §3.5, §4.1) at 16 to 128 px, batch 16 and 64, beside the
:class:`~began_lite.perf.baseline.PlainStep` written the way most public implementations are.
Each runs in two fresh processes, with glibc's malloc tuned by
:func:`began_lite.perf.allocator.tune_malloc` and as it comes (a tuning cannot be undone in a
process). The rows of one size and batch are timed in turns (up to 5 rounds of a block of steps
each; the median block counts), so that other programs' load hits all alike. ``--quick`` is the
CI form (16 px, batch 16, n = 32, 3 timed steps: seconds). Only :func:`main` prints.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import multiprocessing
import os
import resource
import statistics
import sys
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..checkpoint import atomic_write_bytes
from ..config import TrainConfig
from ..device import autocast_dtype, cpu_id, pick_device
from ..train import Trainer
from .allocator import TUNED_ENV, glibc, libc_name, tune_malloc
from .baseline import PlainStep
from .flops import count_step_flops, measure_peak, timed
from .table import format_table

__all__ = ["Row", "bench_config", "first_step", "run_benchmark", "thread_scaling", "main", "SIZES", "BATCHES",
           "VARIANTS", "MALLOCS"]

SIZES = (16, 32, 64, 128)  # the paper trains at 32 to 256 px (§4.1); our networks stop at 128
BATCHES = (16, 64)  # the paper's batch 16 (§4.1), and a larger one that fills a GPU better
VARIANTS = {"ours": {}, "float32": {"dtype": "float32"}, "compile": {"compile": True}}  # one change each to ours
MALLOCS = ("tuned", "default")  # glibc malloc tuned by began_lite.allocator, or as it comes


def bench_config(image_size: int, batch_size: int, device: str, *, filters: int = 128, channels: int = 3,
                 **changes) -> TrainConfig:
    """The paper's networks at ``image_size`` (n = ``filters``, N_z = N_h = 64, RGB), our device defaults."""
    return TrainConfig(image_size=image_size, batch_size=batch_size, channels=channels, filters=filters, z_dim=64,
                       h_dim=64, device=device, **changes)


# --------------------------------------------------------------------------- measuring
@dataclass
class Row:
    """One line of the table: one implementation at one size and batch on one device, one malloc setting."""
    device: str
    image_size: int
    batch_size: int
    impl: str  # a name from VARIANTS, or "plain"
    malloc: str = "default"  # "tuned" (began_lite.allocator.tune_malloc) or "default"
    steps_per_s: float | None = None
    images_per_s: float | None = None
    faults_per_step: float | None = None  # minor page faults of the process per timed step
    gflop_per_step: float | None = None
    gflop_per_s: float | None = None
    peak_fraction: float | None = None  # of peak_name's matmul rate
    peak_name: str = "float32"
    memory_mib: float | None = None
    first_step_s: float | None = None  # the warm-up step (includes compilation when compiling)
    timed_steps: int = 0  # in up to 5 interleaved rounds
    note: str = ""  # why a row was skipped


# --------------------------------------------------------------------------- one process per row
def _worker(conn, impl: str, config: TrainConfig, malloc: str, threads: int) -> None:
    """A row's process: tune malloc (or not), build the step, warm up when told, then time blocks of steps."""
    usage = lambda: resource.getrusage(resource.RUSAGE_SELF)  # noqa: E731
    try:
        if malloc == "tuned":
            tune_malloc()
        torch.set_num_threads(threads)
        device, gen = pick_device(config.device), torch.Generator().manual_seed(0)
        make = PlainStep if impl == "plain" else lambda c, d: Trainer(c, d).train_step
        make(bench_config(8, 2, config.device, filters=4, channels=config.channels, dtype=config.dtype),
             torch.zeros(4, config.channels, 8, 8))()  # the libraries' one-time set-up, not timed
        data = torch.rand(max(256, 4 * config.batch_size), config.channels, config.image_size, config.image_size,
                          generator=gen) * 2 - 1  # alike in every process
        conn.send("ready")
        conn.recv()  # warm-ups one at a time, once all are ready, so that no other row runs during one
        base = usage().ru_maxrss  # the resident set's peak so far: imports, set-up, data
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step = make(config, data)
        w = first_step(device, step, config, compiled=impl == "compile")
        # The peak's rise: CUDA's allocator's, or the resident set's (ru_maxrss: KiB on Linux, bytes on macOS).
        w["memory_mib"] = (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else
                           (usage().ru_maxrss - base) * (1 if sys.platform == "darwin" else 1024)) / 2**20
        if impl != "plain" and autocast_dtype(config.dtype, device) == torch.bfloat16:
            w["peak_name"] = "bfloat16"
        conn.send(w)
        while (k := conn.recv()) is not None:
            faults = usage().ru_minflt
            seconds = timed(device, lambda: [step() for _ in range(k)])
            conn.send((seconds / k, (usage().ru_minflt - faults) / k))
    except Exception as err:  # noqa: BLE001  (reported by the parent, which raises)
        conn.send({"error": f"{impl} ({malloc}): {type(err).__name__}: {err}"})


def first_step(device: torch.device, step, config: TrainConfig, *, compiled: bool) -> dict:
    """The first step's seconds (compiling, with ``compiled``) and the FLOPs it counted. Under FlopCounterMode
    torch.compile would run the step eagerly, and keep doing so: a compiled step's FLOPs are counted apart."""
    if compiled:
        return {"first_step_s": timed(device, step), "gflop_per_step": count_step_flops(config) / 1e9}
    with FlopCounterMode(display=False) as counter:
        seconds = timed(device, step)
    return {"first_step_s": seconds, "gflop_per_step": counter.get_total_flops() / 1e9}


def _start(impl: str, config: TrainConfig, malloc: str, threads: int):
    """A row's process, started in a fresh interpreter (malloc as it comes): (its end of the pipe, the process)."""
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_worker, args=(child, impl, config, malloc, threads), daemon=True)
    # A "default" process must not inherit a tuning by environment variables (the Makefile's).
    hidden = {k: os.environ.pop(k) for k in (*TUNED_ENV, "GLIBC_TUNABLES") if malloc == "default" and k in os.environ}
    try:
        proc.start()
    finally:
        os.environ.update(hidden)
    return parent, proc


def _ask(conn, *message):
    """Send ``message`` (if given) to a row's process and return its answer, raising on its error."""
    for m in message:
        conn.send(m)
    answer = conn.recv()
    if isinstance(answer, dict) and "error" in answer:
        raise RuntimeError(f"bench: a row's process failed: {answer['error']}")
    return answer


def _stop(procs) -> None:
    for conn, proc in procs:  # told to stop; killed if it has not after 30 s
        with contextlib.suppress(OSError):
            conn.send(None)
        proc.join(timeout=30)
        proc.kill()


def _time_interleaved(live: list, steps: int | None, seconds: float) -> None:
    """Time rows in turns: up to 5 rounds of a block of k steps of each; steps/s is k over the median block."""
    total = steps or max(3, int(seconds / max(max(row.first_step_s for row, _ in live), 1e-6)))
    rounds, k = min(total, 5), max(1, math.ceil(total / min(total, 5)))
    times = {id(row): [] for row, _ in live}
    for _ in range(rounds):
        for row, conn in live:
            times[id(row)].append(_ask(conn, k))
    for row, _ in live:
        row.timed_steps, row.steps_per_s = rounds * k, 1.0 / statistics.median(t for t, _ in times[id(row)])
        row.images_per_s, row.gflop_per_s = row.steps_per_s * row.batch_size, row.gflop_per_step * row.steps_per_s
        row.faults_per_step = statistics.median(f for _, f in times[id(row)])


def run_benchmark(*, devices=("cpu",), sizes=SIZES, batches=BATCHES, variants=("ours",), mallocs=MALLOCS,
                  filters: int = 128, steps: int | None = None, seconds: float = 10.0, max_seconds: float = 300.0,
                  peak_n: int | None = None, report=None) -> dict:
    """Time our step (each of ``variants``) and the plain step, each with each of ``mallocs`` ("tuned" only
    on glibc), for every size and batch on every device, each row in a process of its own; ``steps``
    per row (default: ``seconds`` worth for the slowest, at least 3). A CPU row whose warm-up and 3
    steps would take over ``max_seconds`` (its FLOPs over the best rate so far) is skipped with a note.
    ``report(row)`` is called after each size and batch. Returns ``{"machine", "peaks", "rows"}``."""
    for name, values, known in (("variants", variants, VARIANTS), ("mallocs", mallocs, MALLOCS)):
        if not values or any(v not in known for v in values):
            raise ValueError(f"{name} must be some of {list(known)}, got {list(values)!r}")
    for name, values in (("sizes", sizes), ("batches", batches)):
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ValueError(f"{name} must be integers >= 1, got {values!r}")
    mallocs = [m for m in mallocs if m == "default" or glibc() is not None] or ["default"]
    result = {"machine": _machine(), "peaks": {}, "rows": []}
    for device in map(pick_device, devices):
        dtypes = ["float32"] + (["bfloat16"] if device.type == "cuda" and torch.cuda.is_bf16_supported() else [])
        peaks = {dt: measure_peak(device, getattr(torch, dt), n=peak_n) for dt in dtypes}
        rate, rows = 0.25 * peaks["float32"], []  # FLOP/s guessed for the first estimate; then the best measured
        for size, batch in itertools.product(sizes, batches):
            group = [Row(str(device), size, batch, impl, malloc) for impl in [*variants, "plain"] for malloc in mallocs]
            rate = _measure(group, filters=filters, rate=rate, max_seconds=max_seconds, steps=steps, seconds=seconds)
            rows += group
            for row in group if report is not None else ():
                report(row)
        for dt in dtypes:  # measured again at the end: on a busy machine one of the two may be slowed down
            peaks[dt] = max(peaks[dt], measure_peak(device, getattr(torch, dt), n=peak_n))
        for row in rows:
            row.peak_name = row.peak_name if row.peak_name in peaks else "float32"
            if row.gflop_per_s is not None:
                row.peak_fraction = row.gflop_per_s * 1e9 / peaks[row.peak_name]
        result["peaks"][str(device)] = {k: v / 1e9 for k, v in peaks.items()}
        result["rows"] += [asdict(row) for row in rows]
    return result


def _measure(group: list[Row], *, filters: int, rate: float, max_seconds: float, steps, seconds) -> float:
    """Measure the rows of one device, size and batch, each in a process of its own, started together and
    timed in turns; a CPU row estimated (at ``rate`` FLOP/s) to take over ``max_seconds`` is skipped.
    Returns the best rate known so far, for the next group's estimates."""
    live = []
    for row in group:
        config = bench_config(row.image_size, row.batch_size, row.device, filters=filters,
                              **VARIANTS.get(row.impl, {"dtype": "float32"}))
        estimate = count_step_flops(config) / rate
        if row.device == "cpu" and 4 * estimate > max_seconds:
            row.note = f"skipped: ~{estimate:.0f} s a step here; raise --max-seconds to run it"
        else:
            live.append((row, *_start(row.impl, config, row.malloc, torch.get_num_threads())))
    try:
        for _, conn, _ in live:  # started together: their imports and set-up overlap
            _ask(conn)
        for row, conn, _ in live:  # warmed up in turn
            vars(row).update(_ask(conn, "warm up"))
        if live:
            _time_interleaved([(row, conn) for row, conn, _ in live], steps, seconds)
    finally:
        _stop([(conn, proc) for _, conn, proc in live])
    return max([rate] + [row.gflop_per_s * 1e9 for row, _, _ in live])


def _machine() -> dict:
    """What the table's first line names: torch, the processor, cores and threads, the C library, the GPU."""
    return {"torch": torch.__version__, "cpu": cpu_id(), "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "libc": libc_name(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


# --------------------------------------------------------------------------- threads or processes
def thread_scaling(steps: int = 200, processes: int | None = None) -> dict:
    """Quick-profile steps/s on this CPU (random images, malloc tuned) of one process with ``processes``
    threads, and of ``processes`` one-thread processes at once, summed (how `make test` runs the chapters)."""
    processes = processes or os.cpu_count() or 1
    if steps < 1 or processes < 1:
        raise ValueError(f"steps and processes must be >= 1, got {steps} and {processes}")
    config = TrainConfig.for_profile("quick", device="cpu", seed=0)

    def rate(threads: int, copies: int) -> float:
        procs = [_start("ours", config, "tuned", threads) for _ in range(copies)]
        try:
            for conn, _ in procs:
                _ask(conn), _ask(conn, "warm up")
            for conn, _ in procs:  # all at once
                conn.send(steps)
            return sum(1 / _ask(conn)[0] for conn, _ in procs)
        finally:
            _stop(procs)
    one, many = rate(processes, 1), rate(1, processes)
    return {"processes": processes, "steps": steps, "one_process_steps_per_s": one,
            "one_thread_processes_steps_per_s": many, "ratio": many / one}


# --------------------------------------------------------------------------- command line
def main(args) -> int:
    """Run the benchmark the parsed ``args`` describe and print the table (``bench`` command)."""
    for name in ("steps", "threads", "filters"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(args, name)}")
    if not args.seconds > 0 or not args.max_seconds > 0:
        raise ValueError("seconds and max-seconds must be > 0")
    if args.processes is not None:
        r = result = thread_scaling(args.steps or 200, args.processes)
        print(f"quick profile on the CPU, {r['steps']} timed steps per process:\n  1 process x {r['processes']} "
              f"threads : {r['one_process_steps_per_s']:.1f} steps/s\n  {r['processes']} processes x 1 thread: "
              f"{r['one_thread_processes_steps_per_s']:.1f} steps/s in all\n  ratio (processes / threads)  : "
              f"{r['ratio']:.2f}x")
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if args.device == "all" else [args.device]
        quick = args.quick
        result = run_benchmark(
            devices=devices, sizes=tuple(args.sizes or ((16,) if quick else SIZES)),
            batches=tuple(args.batches or ((16,) if quick else BATCHES)),
            variants=list(dict.fromkeys(args.variants + (["compile"] if args.compile else []))),
            mallocs=MALLOCS if args.malloc == "both" else (args.malloc,),
            filters=args.filters or (32 if quick else 128),
            steps=args.steps or (3 if quick else None), seconds=args.seconds, max_seconds=args.max_seconds,
            peak_n=1024 if quick and "cuda" not in devices else None,
            report=lambda row: print(f"  measured {row.device} {row.image_size} px batch {row.batch_size} {row.impl} "
                                     f"({row.malloc})" + (f": {row.steps_per_s:.3f} steps/s" if row.steps_per_s
                                                          else f": {row.note}"), file=sys.stderr, flush=True))
        print(format_table(result))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(result, indent=1).encode())
    return 0
