"""Faults, provoked for real: SIGKILL and Ctrl-C (SIGINT) sent to a training process, and divergence.

* A run is killed (SIGKILL: no handler, no cleanup) at four points: right after its first
  checkpoint appears; at a random moment while it trains; in the middle of writing a
  checkpoint (half of the temporary file on disk); and after the temporary file is complete
  but before the rename that publishes it. After every kill the last checkpoint loads
  (``weights_only=True``), and ``train --resume`` continues. The run ends bit-identical, on
  the CPU, to a run that was never interrupted.
* Ctrl-C stops at the end of the step, saves, and exits with code 130; resuming from that
  checkpoint is exact too.
* A NaN stops training with a message naming the step and the last good checkpoint, which
  stays byte for byte as it was.

Every process runs with one thread (OMP_NUM_THREADS=1), so the whole file takes well under a
minute, most of it in starting Python and importing torch.
"""
from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import began_lite as bl
from began_lite.checkpoint import load_checkpoint
from began_lite.train import Trainer, TrainingDiverged
from conftest import tiny_config

STEPS = 60
EVERY = 5  # --checkpoint-every
RUN = ["--image-size", "8", "--filters", "4", "--z-dim", "4", "--h-dim", "4", "--batch-size", "8",
       "--device", "cpu", "--profile", "quick", "--no-progress", "--sample-every", "1000"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "BEGAN_LITE_DEVICE": "cpu"}
ENV.pop("BEGAN_LITE_PROFILE", None)

# Run `python -m began_lite ...` with torch.save made to stop inside the atomic write of the
# process's second checkpoint: after writing half the bytes ("half") or all of them but before
# the rename ("full"), it creates MARKER and sleeps, so the test can SIGKILL it right there.
PAUSED_SAVE = textwrap.dedent("""
    import io, os, runpy, sys, time
    import torch

    marker, mode = sys.argv[1], sys.argv[2]
    sys.argv = ["began_lite"] + sys.argv[3:]
    real_save, saves = torch.save, []

    def paused_save(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) < 2:
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        f.write(data[: len(data) // 2] if mode == "half" else data)
        f.flush()
        os.fsync(f.fileno())
        open(marker, "w").close()
        time.sleep(300)

    torch.save = paused_save
    runpy.run_module("began_lite", run_name="__main__", alter_sys=True)
""")


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "began_lite", *args]


def start(argv) -> subprocess.Popen:
    return subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, proc, timeout=120.0, what=""):
    """Poll ``cond()`` every 2 ms until it holds; fail if ``proc`` ends first or time runs out."""
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (code {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def checkpoint_step(run: Path) -> int | None:
    try:
        return int(load_checkpoint(run)["step"])
    except Exception:  # not there yet
        return None


def temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*.tmp"))


def assert_loadable(run: Path) -> dict:
    state = load_checkpoint(run)  # weights_only=True inside
    assert state["step"] % EVERY == 0 and 0 < state["step"] <= STEPS
    for part in ("generator", "discriminator"):
        assert all(torch.isfinite(t).all() for t in state[part].values())
    assert len(state["history"]["k"]) == state["step"]
    return state


def assert_same_run(a: dict, b: dict) -> None:
    """Bit-identical training state: every tensor, every logged number, the RNG streams."""
    assert a["step"] == b["step"] and a["k"] == b["k"] and a["lr"] == b["lr"]
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys()
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), (part, name)
    for opt in ("opt_g", "opt_d"):
        for i, s in a[opt]["state"].items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(torch.as_tensor(s[key]), torch.as_tensor(b[opt]["state"][i][key])), (opt, i, key)
    assert torch.equal(a["rng"]["batches"], b["rng"]["batches"])
    assert a["history"] == b["history"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The uninterrupted run, started at once so that it trains while the other tests set up."""
    out = tmp_path_factory.mktemp("baseline") / "run"
    proc = start(cli("train", "--dataset", "digits", "--steps", str(STEPS), "--checkpoint-every", str(EVERY),
                     "--out", str(out), *RUN))

    def result() -> dict:
        if proc.returncode is None:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        return load_checkpoint(out)

    return result


def test_sigkill_at_four_points_then_resume_is_exact(tmp_path, baseline):
    run = tmp_path / "run"
    rng = random.Random(0)
    kills = []

    # 1. Right after the first checkpoint appears.
    proc = start(cli("train", "--dataset", "digits", "--steps", str(STEPS), "--checkpoint-every", str(EVERY),
                     "--out", str(run), *RUN))
    wait_for(lambda: (run / "checkpoint.pt").exists(), proc, what="the first checkpoint")
    kill(proc)
    kills.append(("after the first checkpoint", assert_loadable(run)["step"]))

    # 2. At a random moment while training: after one or two more saves, then 0-50 ms (a few
    #    steps) later. Counted in saves, not seconds, so a fast machine cannot finish the run first.
    target = checkpoint_step(run) + EVERY * rng.choice([1, 2])
    proc = start(cli("train", "--resume", str(run), "--checkpoint-every", str(EVERY), "--no-progress"))
    wait_for(lambda: (checkpoint_step(run) or 0) >= target, proc, what=f"the checkpoint of step {target}")
    time.sleep(rng.uniform(0.0, 0.05))
    kill(proc)
    kills.append(("at a random moment", assert_loadable(run)["step"]))

    # 3 and 4. Inside the atomic write: half the temporary file written; then all of it, not yet renamed.
    for mode, label in (("half", "mid-write (half the temporary file)"), ("full", "after the write, before the rename")):
        assert checkpoint_step(run) + 3 * EVERY <= STEPS, "no room left for two more saves and a pause"
        marker = tmp_path / f"paused-{mode}"
        before = load_checkpoint(run)
        proc = start([sys.executable, "-c", PAUSED_SAVE, str(marker), mode,
                      "train", "--resume", str(run), "--checkpoint-every", str(EVERY), "--no-progress"])
        wait_for(marker.exists, proc, what=f"the paused save ({mode})")
        stale = temporaries(run)
        assert any(name.startswith(".checkpoint.pt.") for name in stale), stale
        kill(proc)
        after = assert_loadable(run)
        # The published checkpoint is the one before the interrupted save: the resumed run's first.
        assert after["step"] == before["step"] + EVERY
        kills.append((label, after["step"]))

    # Finish with `--steps N`, N the run's total (not steps to add): it reaches the uninterrupted run.
    finish = cli("train", "--resume", str(run), "--steps", str(STEPS), "--no-progress")
    r = subprocess.run(finish, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert temporaries(run) == [], "resuming in place removes the half-written files"
    assert_same_run(load_checkpoint(run), baseline())
    # The same command again (as after a crash, when one cannot tell whether it finished) changes nothing.
    files = {p.name: digest(p) for p in run.iterdir() if p.is_file()}
    again = subprocess.run(finish, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr.strip().splitlines()[-1], again.stderr
    assert {p.name: digest(p) for p in run.iterdir() if p.is_file()} == files
    print("kill points (label, checkpoint step left on disk):", kills)


def test_ctrl_c_saves_the_step_and_exits_130(tmp_path, baseline):
    run = tmp_path / "run"
    proc = start(cli("train", "--dataset", "digits", "--steps", "100000", "--checkpoint-every", str(EVERY),
                     "--out", str(run), *RUN))
    wait_for(lambda: (run / "checkpoint.pt").exists(), proc, what="the first checkpoint")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: stopped after step ") and "train --resume" in last, err
    step = int(last.split("after step ")[1].split(";")[0])
    state = load_checkpoint(run)
    assert state["step"] == step and len(state["history"]["k"]) == step
    assert step < STEPS, "Ctrl-C came too late to compare with the baseline"
    # The stopped run continues exactly, like one that was never stopped (resumed in this
    # process, to spare a second start of Python; the CLI resume is tested above).
    resumed = Trainer.from_checkpoint(run, bl.load_digits(8))
    resumed.train(STEPS - step, progress=False)
    assert_same_run(resumed.state_dict(), baseline())


# --------------------------------------------------------------------------- divergence


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    tr = Trainer(tiny_config(), bl.load_digits(8)[:128], run_dir=tmp_path / "r")
    real_d_loss = tr.objective.d_loss

    def d_loss(D, real, fake):  # L_D becomes NaN at step 7
        loss, logs = real_d_loss(D, real, fake)
        return (loss * float("nan"), logs) if tr.step == 6 else (loss, logs)

    monkeypatch.setattr(tr.objective, "d_loss", d_loss)
    ckpt = tmp_path / "r" / "checkpoint.pt"
    saved = {}  # step -> sha256 of checkpoint.pt right after that step's save
    real_save = tr.save
    monkeypatch.setattr(tr, "save", lambda *a, **k: (real_save(*a, **k), saved.update({tr.step: digest(ckpt)}))[0])
    with pytest.raises(TrainingDiverged) as err:
        tr.train(20, progress=False, checkpoint_every=3)
    assert str(err.value) == f"training diverged at step 7: L_D = nan; the last good checkpoint is {ckpt}"
    assert sorted(saved) == [3, 6] and digest(ckpt) == saved[6]  # untouched since step 6's save
    state = load_checkpoint(ckpt)
    assert state["step"] == 6
    assert all(torch.isfinite(t).all() for part in ("generator", "discriminator") for t in state[part].values())


def test_nan_weights_are_never_saved(tmp_path):
    """A NaN that reaches the weights without a NaN loss (here: planted) is caught at the save."""
    tr = Trainer(tiny_config(), bl.load_digits(8)[:128], run_dir=tmp_path / "r")
    ckpt = tmp_path / "r" / "checkpoint.pt"

    def poison(t, logs):
        if t.step == 4:
            with torch.no_grad():
                t.G.decoder.to_image.weight[0, 0, 0, 0] = float("inf")

    tr.train(2, progress=False)
    good = digest(ckpt)
    with pytest.raises(TrainingDiverged, match=r"^training diverged by step 4: generator holds NaN or inf, so it "
                                               r"was not saved; the last good checkpoint is .*checkpoint.pt"):
        tr.train(10, progress=False, checkpoint_every=4, callbacks=[poison])
    assert digest(ckpt) == good and load_checkpoint(ckpt)["step"] == 2


def test_cli_divergence_exit_1(tmp_path, capsys):
    """A learning rate of 1e30 blows up in the first step: exit code 1, one line, no checkpoint claimed."""
    from began_lite.__main__ import main

    code = main(["train", "--dataset", "digits", "--steps", "5", "--lr", "1e30", "--out", str(tmp_path / "r"), *RUN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: training diverged at step 1: ") and "no checkpoint was written" in err[-1]
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_resume_to_a_total_is_idempotent(tmp_path, capsys):
    """`--steps` is the run's total: 20 steps, then a resume to 40, is the run of 40; the resume again does nothing."""
    from began_lite.__main__ import main

    short, straight = tmp_path / "short", tmp_path / "straight"
    assert main(["train", "--dataset", "digits", "--steps", "20", "--out", str(short), *RUN]) == 0
    assert main(["train", "--resume", str(short), "--steps", "40", "--no-progress"]) == 0
    assert main(["train", "--dataset", "digits", "--steps", "40", "--out", str(straight), *RUN]) == 0
    a, b = load_checkpoint(short), load_checkpoint(straight)
    assert a["config"]["steps"] == b["config"]["steps"] == 40
    assert_same_run(a, b)
    files = {p.name: digest(p) for p in short.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(short), "--steps", "40", "--no-progress"]) == 0
    assert main(["train", "--resume", str(short), "--no-progress"]) == 0  # no --steps: the run's own total, 40
    assert capsys.readouterr().err.count("nothing to do") == 2
    assert {p.name: digest(p) for p in short.iterdir() if p.is_file()} == files
