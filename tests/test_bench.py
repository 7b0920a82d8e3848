"""Speed: the benchmark command, its FLOP count and baseline, and the trainer's speed options.

No timing thresholds here (CI machines vary); the tests check that the benchmark runs and
reports finite, positive numbers, that the FLOP count is the real step's, and that every speed
option computes the same step.
"""
import contextlib
import json
import math
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import began_lite as bl
from began_lite import step as step_module
from began_lite.perf.allocator import glibc
from began_lite.perf.baseline import PlainStep
from began_lite.perf.bench import bench_config, first_step, run_benchmark, thread_scaling
from began_lite.perf.flops import count_step_flops
from began_lite.perf.table import format_table
from began_lite.train import Trainer


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


# --------------------------------------------------------------------------- the bench command
COLUMNS = ("device", "size", "batch", "impl", "malloc", "steps/s", "img/s", "faults/step", "GFLOP/step", "GFLOP/s",
           "%peak", "MiB")


def test_bench_quick_cli(tmp_path):
    """The CI form: each implementation with malloc tuned and as it comes, page faults per step, ratios."""
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "began_lite", "bench", "--quick", "--device", "cpu", "--threads", "1",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    header = next(line for line in lines if line.startswith("device"))
    assert all(c in header.split() for c in COLUMNS)
    assert any(line.startswith("peak matmul on cpu: float32") for line in lines)
    table = [line.split() for line in lines if line.startswith("cpu ")]
    mallocs = ["tuned", "default"] if glibc() else ["default"]
    assert [row[3:5] for row in table] == [[impl, m] for impl in ("ours", "plain") for m in mallocs]
    for row in table:  # steps/s, img/s: finite and positive; faults/step: >= 0; GFLOP/step, GFLOP/s, %peak > 0
        assert all(math.isfinite(float(v)) and float(v) > 0 for v in row[5:7] + row[8:11]), row
        assert float(row[7]) >= 0, row
    ratio = "ratio ours (default)/plain (default) steps/s at cpu 16 px batch 16: "
    assert any(line.startswith(ratio) for line in lines)
    result = json.loads(out.read_text())
    assert result["peaks"]["cpu"]["float32"] > 0 and result["machine"]["libc"]
    for row in result["rows"]:
        assert row["steps_per_s"] > 0 and row["timed_steps"] == 3 and row["faults_per_step"] >= 0
        assert row["images_per_s"] == pytest.approx(16 * row["steps_per_s"])
        assert 0 < row["peak_fraction"] < 5  # a fraction of the measured peak (not above it by much)


def test_bench_rejects_bad_options(capsys):
    from began_lite.__main__ import main

    assert main(["bench", "--variants", "warp-speed"]) == 2
    assert capsys.readouterr().err.startswith("error: variants must be some of ['ours', 'float32', 'compile']")
    assert main(["bench", "--steps", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: steps must be >= 1")
    for removed in ("channels_last", "sync-step", "cudagraphs"):  # settings that no longer exist (issue 15)
        assert main(["bench", "--variants", removed]) == 2
        capsys.readouterr()
    with pytest.raises(ValueError, match="^mallocs must be some of"):
        run_benchmark(mallocs=("jemalloc",))


def test_skipped_rows_are_reported():
    result = run_benchmark(sizes=(16,), batches=(16,), filters=8, steps=1, max_seconds=1e-9, peak_n=256)
    assert all(r["note"].startswith("skipped") for r in result["rows"]) and len(result["rows"]) in (2, 4)
    assert "skipped" in format_table(result)


def test_flop_count_on_meta_equals_a_real_step(tiny_config):
    """The meta-device count (used to estimate rows) counts exactly what a real trainer step does,
    the random shift T included."""
    config = tiny_config(channels=3, image_size=16, filters=6, repeat=2, shift=2)
    trainer = Trainer(config, torch.rand(64, 3, 16, 16) * 2 - 1)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    assert counter.get_total_flops() == count_step_flops(config) > 0


# FLOPs of the paper's layers (BEGAN §3.5, chapter 6): a 3x3 convolution c_in -> c_out on an hw x hw
# output makes 2 * 9 c_in c_out hw^2 (a multiply and an add per weight per pixel); a linear map 2 n_in n_out.
def conv(c_in, c_out, hw):
    return 2 * 9 * c_in * c_out * hw * hw


def fc(n_in, n_out):
    return 2 * n_in * n_out


def decoder_flops(n_in, S, C, n, r):
    s = int(math.log2(S // 8))
    return fc(n_in, 64 * n) + sum(r * conv(n, n, 8 * 2**i) for i in range(s + 1)) + conv(n, C, S)


def encoder_flops(n_h, S, C, n, r):
    s = int(math.log2(S // 8))
    return (conv(C, n, S) + sum(r * conv((i + 1) * n, (i + 1) * n, S // 2**i) for i in range(s + 1))
            + sum(conv((i + 1) * n, (i + 2) * n, S // 2**(i + 1)) for i in range(s)) + fc(64 * (s + 1) * n, n_h))


@pytest.mark.parametrize("S, C, n, r, B", [(8, 1, 4, 1, 8), (16, 1, 4, 2, 8), (32, 3, 3, 2, 5)])
def test_flop_count_is_the_hand_count_of_the_step(S, C, n, r, B):
    """One step by hand, G and D one image's forward FLOPs, a backward pass computing the gradients of
    a layer's input and of its weights at one forward's cost each, only where they are needed:
    D's update: G(z_D) without a graph (G), D on x and G(z_D) (2 D), D's backward (4 D), less the
    first convolution's input gradient (images need none: 2 stem). G's update: G(z_G) (G), D (D),
    D's backward for its input only, D frozen (D), G's backward (2 G), less its first layer's input
    gradient (z needs none: G_fc). In all B (4 G - G_fc + 8 D - 2 stem)."""
    config = bl.TrainConfig(image_size=S, channels=C, filters=n, repeat=r, z_dim=4, h_dim=6, batch_size=B,
                            device="cpu")
    G = decoder_flops(4, S, C, n, r)
    D = encoder_flops(6, S, C, n, r) + decoder_flops(6, S, C, n, r)
    assert count_step_flops(config) == B * (4 * G - fc(4, 64 * n) + 8 * D - 2 * conv(C, n, S))


def test_flop_count_follows_the_step(tiny_config, monkeypatch):
    """Counted on the real gan_step, not a copy: a step that did not freeze D for G's update would also
    compute D's weight gradients there, one more D forward's worth of FLOPs, and the count says so."""
    config = tiny_config(image_size=16, repeat=2)
    frozen = count_step_flops(config)

    @contextlib.contextmanager
    def not_frozen(D):
        yield D

    monkeypatch.setattr(step_module, "_frozen", not_frozen)
    n, S, B = config.filters, config.image_size, config.batch_size
    D = encoder_flops(config.h_dim, S, 1, n, 2) + decoder_flops(config.h_dim, S, 1, n, 2)
    assert count_step_flops(config) - frozen == B * D


def test_plain_step_computes_the_same_training():
    """The baseline does the same maths as our step (two passes instead of one, D not frozen)."""
    config = bench_config(8, 8, "cpu", filters=4, dtype="float32", lambda_k=0.05)
    data = torch.rand(64, 3, 8, 8) * 2 - 1
    ours, plain = Trainer(config, data), PlainStep(config, data)
    for _ in range(5):
        logs_ours, logs_plain = ours.train_step(), plain()
    assert max_diff(params(ours.D), params(plain.D)) < 1e-5
    assert max_diff(params(ours.G), params(plain.G)) < 1e-5
    assert plain.k == pytest.approx(ours.k, abs=1e-6) and ours.k > 0
    assert logs_plain["m_global"] == pytest.approx(logs_ours["m_global"], rel=1e-4)


# --------------------------------------------------------------------------- speed options
def test_cpu_defaults_keep_the_reference_path(tiny_config, digits8):
    """On the CPU by default: plain float32 (no autocast), no channels-last, no wrapper, no compilation."""
    tr = Trainer(tiny_config(dtype="auto"), digits8)
    assert isinstance(tr.autocast, contextlib.nullcontext) and not tr.channels_last
    assert tr.G_step is tr.G and tr.D_step is tr.D
    bf16 = Trainer(tiny_config(dtype="bfloat16"), digits8)  # asked for: autocast, on the CPU too
    assert isinstance(bf16.autocast, torch.autocast) and bf16.autocast.fast_dtype == torch.bfloat16


def test_ema_computes_the_same_steps(tiny_config, digits8):
    """A weight average for sampling leaves the training itself as it was."""
    ref, ema = Trainer(tiny_config(), digits8), Trainer(tiny_config(ema=0.9), digits8)
    ref.train(20, progress=False)
    ema.train(20, progress=False)
    assert max_diff(params(ref.D), params(ema.D)) == 0 and max_diff(params(ref.G), params(ema.G)) == 0


def test_vanishing_residual_carry_reaches_the_sampler(tiny_config, digits8):
    """forward reads a Python copy of the carry; it follows set_carry, loading and the EMA copy."""
    tr = Trainer(tiny_config(vanishing_residual=True, vanishing_steps=10, ema=0.5), digits8)
    tr.train(4, progress=False)
    assert tr.sampler.decoder._carry == pytest.approx(0.7) == float(tr.sampler.decoder.carry)
    D = bl.Discriminator(tr.config)
    D.load_state_dict(tr.D.state_dict())
    assert D.encoder._carry == float(tr.D.encoder.carry) == pytest.approx(0.7)


@pytest.mark.parametrize("value", ["off", "default", "reduce-overhead"])
def test_compile_must_be_a_bool(tiny_config, value):  # issue 15: compile is True or False, no modes
    with pytest.raises(ValueError, match=r"^compile"):
        tiny_config(compile=value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_defaults_and_agreement(tiny_config, digits8):
    """On CUDA: bfloat16 autocast; the same k trajectory as float32 on the CPU."""
    tr = Trainer(tiny_config(device="cuda", dtype="auto"), digits8)
    tr.train(10, progress=False)
    ref = Trainer(tiny_config(), digits8)
    ref.train(10, progress=False)
    assert tr.k == pytest.approx(ref.k, abs=0.02)


# --------------------------------------------------------------------------- image folder cache
def _write_images(folder, n, seed=0):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / f"im{i:02d}.png")


def test_image_folder_cache_is_read_back_and_invalidated(tmp_path, monkeypatch):
    from began_lite import data as D

    _write_images(tmp_path / "imgs", 5)
    fresh = D.load_image_folder(tmp_path / "imgs", 8)
    first = D.load_image_folder(tmp_path / "imgs", 8, cache=True)
    cached = list((tmp_path / "imgs" / D.CACHE_DIR_NAME).iterdir())
    assert torch.equal(first, fresh) and len(cached) == 1 and cached[0].suffix == ".pt"

    def no_decoding(*a, **k):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(D, "_decode_all", no_decoding)
    assert torch.equal(D.load_image_folder(tmp_path / "imgs", 8, cache=True), fresh)  # read from the file
    monkeypatch.undo()
    # A new file, another size or a damaged cache file: decoded again.
    assert D.load_image_folder(tmp_path / "imgs", 16, cache=True).shape == (5, 3, 16, 16)
    _write_images(tmp_path / "imgs", 6, seed=1)  # rewrites im00..im04 and adds im05
    again = D.load_image_folder(tmp_path / "imgs", 8, cache=True)
    assert again.shape == (6, 3, 8, 8) and not torch.equal(again[:5], fresh)
    for f in (tmp_path / "imgs" / D.CACHE_DIR_NAME).iterdir():
        f.write_bytes(b"not a tensor file")
    assert torch.equal(D.load_image_folder(tmp_path / "imgs", 8, cache=True), again)


def test_image_folder_worker_processes_decode_the_same(tmp_path):
    from began_lite import data as D

    _write_images(tmp_path / "imgs", 6)
    assert torch.equal(D.load_image_folder(tmp_path / "imgs", 8, workers=2), D.load_image_folder(tmp_path / "imgs", 8))


def test_thread_scaling_compares_processes_with_threads():
    r = thread_scaling(steps=1, processes=1)  # the plumbing; `bench --processes` measures
    assert r["processes"] == 1 and r["steps"] == 1
    for key in ("one_process_steps_per_s", "one_thread_processes_steps_per_s"):
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["ratio"] == pytest.approx(r["one_thread_processes_steps_per_s"] / r["one_process_steps_per_s"])
    with pytest.raises(ValueError, match="processes"):
        thread_scaling(steps=1, processes=-1)


def test_a_compiled_first_step_really_compiles():
    """Under FlopCounterMode torch.compile runs eagerly (and stays eager): the first GPU run's compile
    rows timed the uncompiled step. The compiled row's first step must run outside the counter."""
    import torch._dynamo

    torch._dynamo.reset()
    cfg = bl.TrainConfig(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=4,
                         device="cpu", dtype="float32", profile="quick", compile=True)
    step = Trainer(cfg, torch.rand(16, 1, 8, 8) * 2 - 1).train_step
    row = first_step(torch.device("cpu"), step, cfg, compiled=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # G and D compiled
    assert row["gflop_per_step"] == count_step_flops(cfg) / 1e9 > 0 and row["first_step_s"] > 0
