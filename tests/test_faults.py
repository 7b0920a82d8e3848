"""Faults, provoked for real: signals, kills, full disks, a second writer, damaged checkpoints, divergence.

* SIGKILL at four points (right after the first checkpoint appears; at a random moment; with half
  of the temporary file on disk; with all of it, before the rename): the last checkpoint loads,
  ``train --resume`` goes on, and the run ends bit-identical to one never interrupted.
* SIGINT (Ctrl-C) and SIGTERM finish the step, save, exit 130 and 143; a second Ctrl-C during
  the save waits for it.
* A write the OS refuses (ENOSPC, EFBIG, EROFS, ENAMETOOLONG, EACCES) ends in one line naming the
  path, exit code 4; what was saved before stays as it was.
* A run folder belongs to one run (refused as a new --out, --overwrite to replace it; never an
  older checkpoint over a newer one; the one before kept as checkpoint.prev.pt) and to one
  writer (a second is refused naming the holder's pid; a reader needs no lock).
* A checkpoint says what it holds: a flipped byte, NaN weights and a small file declaring a
  huge tensor are refused at load in one line; a run is tied to its data.
* A NaN stops training with a message naming the step and the last good checkpoint.

Every process runs with one thread (OMP_NUM_THREADS=1).
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import began_lite as bl
from began_lite import checkpoint as ck
from began_lite.checkpoint import load_checkpoint, save_checkpoint
from began_lite.cli import main
from began_lite.train import Trainer, TrainingDiverged

STEPS = 60
EVERY = 5  # --checkpoint-every
RUN = ["--image-size", "8", "--filters", "4", "--z-dim", "4", "--h-dim", "4", "--batch-size", "8",
       "--device", "cpu", "--profile", "quick", "--no-progress", "--sample-every", "1000"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "BEGAN_LITE_DEVICE": "cpu"}
ENV.pop("BEGAN_LITE_PROFILE", None)

# `python -m began_lite ...` with os.replace watched: in mode "half" or "full" the second rename onto
# checkpoint.pt stops first (its temporary file cut to half, or whole), creates MARKER and sleeps, so
# that the test can SIGKILL it right there; in mode "slow", once MARKER.go exists, every rename onto
# checkpoint.pt creates MARKER and waits 1.5 s first (a slow disk, for a second Ctrl-C to land in).
WATCHED = textwrap.dedent("""
    import os, runpy, sys, time

    marker, mode = sys.argv[1], sys.argv[2]
    sys.argv = ["began_lite"] + sys.argv[3:]
    real_replace, renames = os.replace, []

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(str(dst)) == "checkpoint.pt":
            renames.append(dst)
            if mode in ("half", "full") and len(renames) == 2:
                if mode == "half":
                    os.truncate(src, os.path.getsize(src) // 2)
                open(marker, "w").close()
                time.sleep(300)
            if mode == "slow" and os.path.exists(marker + ".go"):
                open(marker, "w").close()
                time.sleep(1.5)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    runpy.run_module("began_lite", run_name="__main__", alter_sys=True)
""")


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "began_lite", *args]


def start(argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


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


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(run: Path) -> dict:
    """Every file under ``run`` (but the lock) with its digest."""
    return {str(p.relative_to(run)): digest(p) for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def assert_loadable(run: Path) -> dict:
    state = load_checkpoint(run)  # weights_only=True, digests and finiteness verified inside
    assert state["step"] % EVERY == 0 and 0 < state["step"] <= STEPS
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


def one_line_error(err: str) -> str:
    """The last line of stderr, which must be the whole of the error: no traceback above it."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") or last.startswith("interrupted: "), err
    return last


def train_tiny(out, steps=4, *extra) -> None:
    assert main(["train", "--dataset", "digits", "--steps", str(steps), "--checkpoint-every", "2",
                 "--sample-every", "2", "--out", str(out), *RUN[:-2], *extra]) == 0


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


# --------------------------------------------------------------------------- kills and signals


@pytest.mark.slow
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
        proc = start([sys.executable, "-c", WATCHED, str(marker), mode,
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
    assert temporaries(run) == [], "resuming in place (under the lock) removes the half-written files"
    assert_same_run(load_checkpoint(run), baseline())
    # The same command again (as after a crash, when one cannot tell whether it finished) changes nothing.
    before = files(run)
    again = subprocess.run(finish, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr.strip().splitlines()[-1], again.stderr
    assert files(run) == before
    print("kill points (label, checkpoint step left on disk):", kills)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_the_step_and_exits_with_its_code(tmp_path, baseline, sig, code):
    """Ctrl-C and SIGTERM (kill, docker stop, a batch scheduler) alike: the step finished and saved,
    one line, 128 + the signal's number, nothing half-written left, and the run continues exactly."""
    run = tmp_path / "run"
    proc = start(cli("train", "--dataset", "digits", "--steps", "100000", "--checkpoint-every", str(EVERY),
                     "--out", str(run), *RUN))
    wait_for(lambda: (run / "checkpoint.pt").exists(), proc, what="the first checkpoint")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    last = one_line_error(err)
    assert last.startswith(f"interrupted: stopped after step ") and f"by {sig.name}" in last, last
    assert "train --resume" in last
    step = int(last.split("after step ")[1].split(" ")[0])
    state = load_checkpoint(run)
    assert state["step"] == step and len(state["history"]["k"]) == step
    assert temporaries(run) == [] and temporaries(run / "samples") == []
    assert step < STEPS, "the signal came too late to compare with the baseline"
    resumed = Trainer.from_checkpoint(run, bl.load_digits(8))  # in this process, to spare a start of Python
    resumed.train(STEPS, progress=False)
    assert_same_run(resumed.state_dict(), baseline())


@pytest.mark.slow
def test_a_second_ctrl_c_waits_for_the_save(tmp_path):
    run, marker = tmp_path / "run", tmp_path / "saving"
    proc = start([sys.executable, "-c", WATCHED, str(marker), "slow", "train", "--dataset", "digits", "--steps",
                  "100000", "--checkpoint-every", str(EVERY), "--out", str(run), *RUN])
    wait_for(lambda: (run / "checkpoint.pt").exists(), proc, what="the first checkpoint")
    Path(str(marker) + ".go").touch()  # from now on every save takes 1.5 s
    proc.send_signal(signal.SIGINT)
    wait_for(marker.exists, proc, what="a save in progress")
    proc.send_signal(signal.SIGINT)  # during the save
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = one_line_error(err)
    step = int(last.split("after step ")[1].split(" ")[0])
    assert load_checkpoint(run)["step"] == step and temporaries(run) == []


# --------------------------------------------------------------------------- writes the OS refuses

WRITE_ERRORS = [errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.ENAMETOOLONG, errno.EACCES]


def fail_fsync(monkeypatch, prefix: str, code: int, after: int = 0) -> None:
    """os.fsync raises OSError(code) on temporary files named ``.PREFIX...`` once ``after`` have passed:
    the disk refuses a write, as a full one does, at the moment the data must reach it."""
    real, seen = os.fsync, []

    def fsync(fd):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(f".{prefix}."):
            seen.append(name)
            if len(seen) > after:
                raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd through /proc (Linux)")


@needs_proc
@pytest.mark.parametrize("code", WRITE_ERRORS, ids=[errno.errorcode[c] for c in WRITE_ERRORS])
def test_a_refused_write_is_one_line_exit_4_and_loses_nothing(tmp_path, monkeypatch, capsys, code):
    run = tmp_path / "run"
    train_tiny(run, 2)
    kept = files(run)
    fail_fsync(monkeypatch, "checkpoint.pt", code)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 4
    last = one_line_error(capsys.readouterr().err)
    assert last == f"error: cannot write {str(run / 'checkpoint.pt')!r}: {os.strerror(code)} ({errno.errorcode[code]})"
    assert files(run)["checkpoint.pt"] == kept["checkpoint.pt"] and temporaries(run) == []
    png = tmp_path / "s.png"
    fail_fsync(monkeypatch, "s.png", code)
    assert main(["sample", "--checkpoint", str(run), "--out", str(png)]) == 4
    assert one_line_error(capsys.readouterr().err).startswith(f"error: cannot write {str(png)!r}: ")
    assert not png.exists() and temporaries(tmp_path) == []


def test_a_name_too_long_is_one_line_exit_4(tmp_path, capsys):
    long = "a" * 300
    assert main(["train", "--dataset", "digits", "--steps", "1", "--out", str(tmp_path / long), *RUN]) == 4
    assert one_line_error(capsys.readouterr().err).endswith("File name too long (ENAMETOOLONG)")
    run = tmp_path / "run"
    train_tiny(run, 2)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run), "--out", str(tmp_path / f"{long}.png")]) == 4
    assert one_line_error(capsys.readouterr().err).endswith("File name too long (ENAMETOOLONG)")


def test_a_file_size_limit_is_one_line_exit_4(tmp_path):
    """RLIMIT_FSIZE, for real: the process may write no file larger than 100 kB (EFBIG)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    run = tmp_path / "run"
    r = subprocess.run(cli("train", "--dataset", "digits", "--steps", "3", "--out", str(run), *RUN), env=ENV,
                       capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert r.returncode == 4, r.stderr
    assert one_line_error(r.stderr).endswith("File too large (EFBIG)") and str(run) in r.stderr
    assert temporaries(run) == []


def test_experiment_checks_its_folder_before_training(tmp_path, monkeypatch, capsys):
    import tempfile

    from began_lite.chapters import remake

    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if Path(kwargs.get("dir", "")) == tmp_path / "ro":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(remake, "run_all", lambda *a, **k: pytest.fail("trained before checking --out"))
    assert main(["experiment", "objectives", "--out", str(tmp_path / "ro"), "--no-progress"]) == 4
    assert one_line_error(capsys.readouterr().err).endswith("Read-only file system (EROFS)")


# --------------------------------------------------------------------------- the run folder


def test_a_folder_holding_a_run_is_refused_unless_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(run, 4)
    kept = files(run)
    capsys.readouterr()
    assert main(["train", "--dataset", "digits", "--steps", "2", "--out", str(run), *RUN[:2], "--batch-size", "4",
                 "--no-progress"]) == 2
    last = one_line_error(capsys.readouterr().err)
    assert "holds a run" in last and f"--resume {run}" in last and "--overwrite" in last
    assert files(run) == kept
    assert main(["train", "--dataset", "digits", "--steps", "2", "--sample-every", "2", "--out", str(run),
                 "--overwrite", *RUN[:-2], "--batch-size", "4"]) == 0
    assert load_checkpoint(run)["config"]["batch_size"] == 4 and load_checkpoint(run)["step"] == 2
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png"]  # none of the old run's


def test_an_older_checkpoint_never_replaces_a_newer_one(tmp_path, capsys):
    run, branch = tmp_path / "run", tmp_path / "branch"
    train_tiny(run, 4)
    prev = load_checkpoint(run / "checkpoint.prev.pt")  # the previous good checkpoint, kept
    assert prev["step"] == 2
    shutil.copy(run / "checkpoint.prev.pt", run / "old_step2.pt")
    kept = files(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run / "old_step2.pt"), "--steps", "3", "--no-progress"]) == 2
    last = one_line_error(capsys.readouterr().err)
    assert "is at step 4, newer than" in last and files(run) == kept
    # a checkpoint file saves into its own folder: copied elsewhere, it branches there
    branch.mkdir()
    shutil.copy(run / "best.pt", branch / "best.pt")
    assert main(["train", "--resume", str(branch / "best.pt"), "--steps", "6", "--no-progress"]) == 0
    assert load_checkpoint(branch)["step"] == 6 and files(run) == kept


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_reader_needs_no_lock(tmp_path, capsys):
    run = tmp_path / "run"
    proc = start(cli("train", "--dataset", "digits", "--steps", "100000", "--checkpoint-every", str(EVERY),
                     "--out", str(run), *RUN))
    wait_for(lambda: (run / "checkpoint.pt").exists(), proc, what="the first checkpoint")
    planted = run / ".checkpoint.pt.inprogress.tmp"  # as if the trainer were writing it now
    planted.write_bytes(b"half a checkpoint")
    for args in (["train", "--resume", str(run), "--no-progress"],
                 ["train", "--dataset", "digits", "--out", str(run), *RUN]):
        assert main(args) == 3
        last = one_line_error(capsys.readouterr().err)
        assert f"is in use: process {proc.pid} is training it" in last and f"kill -TERM {proc.pid}" in last
    assert planted.exists(), "a refused writer removed the running trainer's temporary file"
    assert main(["sample", "--checkpoint", str(run), "--n", "4", "--out", str(tmp_path / "s.npz")]) == 0
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    step = load_checkpoint(run)["step"]
    assert main(["train", "--resume", str(run), "--steps", str(step + 1), "--no-progress"]) == 0
    assert not planted.exists() and load_checkpoint(run)["step"] == step + 1


def test_planted_links_are_never_followed(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    assert main(["train", "--dataset", "digits", "--steps", "2", "--out", str(run), *RUN]) == 2
    assert "is a symbolic link" in one_line_error(capsys.readouterr().err)
    (run / ".lock").unlink()
    train_tiny(run, 2)
    (run / "checkpoint.prev.pt").symlink_to(victim)  # the name the next save keeps the last checkpoint under
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    assert victim.read_text() == "precious"
    assert not (run / "checkpoint.prev.pt").is_symlink() and load_checkpoint(run / "checkpoint.prev.pt")["step"] == 2


# --------------------------------------------------------------------------- what a checkpoint holds


def test_a_flipped_byte_in_tensor_data_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(run, 2)
    blob = bytearray((run / "checkpoint.pt").read_bytes())
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    name, at = next((n, blob.find(t.numpy().tobytes())) for n, t in state["generator_ema"].items()
                    if t.numel() > 8 and blob.count(t.numpy().tobytes()) == 1)  # its bytes, found once
    blob[at + 5] ^= 0x10
    (run / "checkpoint.pt").write_bytes(bytes(blob))
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run), "--out", str(tmp_path / "s.npz")]) == 2
    last = one_line_error(capsys.readouterr().err)
    assert f"is damaged: generator_ema/{name} does not match" in last and str(run / "checkpoint.pt") in last


def test_nan_weights_are_refused_at_load_and_never_called_good(tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(run, 2)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    next(iter(state["generator"].values())).view(-1)[0] = float("nan")
    save_checkpoint(state, run / "checkpoint.pt")  # with digests that match: only the values are wrong
    capsys.readouterr()
    for args in (["sample", "--checkpoint", str(run), "--out", str(tmp_path / "s.npz")],
                 ["train", "--resume", str(run), "--steps", "4", "--no-progress"]):
        assert main(args) == 2
        last = one_line_error(capsys.readouterr().err)
        assert "holds NaN or inf in generator" in last and str(run / "checkpoint.pt") in last
        assert "last good" not in last


@pytest.mark.slow
def test_a_small_file_declaring_a_huge_tensor_is_refused_cheaply(tmp_path):
    """A 1e9-element tensor in a few MB (a deflated entry): refused from the zip directory, unread."""
    n = 10**9
    buf = io.BytesIO()
    torch.save({"format": ck.FORMAT, "x": torch.zeros(10, dtype=torch.uint8)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data.pkl"):  # the storage and the tensor now declare n elements
                data = data.replace(b"K\n", b"J" + struct.pack("<i", n), 2)
            if info.filename.endswith("/data/0"):
                with z.open(info.filename, "w") as f:
                    for _ in range(n // 2**24):
                        f.write(bytes(2**24))
                    f.write(bytes(n % 2**24))
                continue
            z.writestr(info.filename, data, compress_type=zipfile.ZIP_STORED)  # as torch.save writes
    assert bomb.stat().st_size < 8 * 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start_time = time.perf_counter()
    with pytest.raises(ck.CheckpointError, match=r"holds a compressed entry '[^']*data/0' \(1000000000 bytes"):
        load_checkpoint(bomb)
    assert time.perf_counter() - start_time < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 100_000  # kB: nothing large was allocated


# --------------------------------------------------------------------------- a run and its data


def _image_folder(root: Path, n: int, seed: int) -> Path:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / f"img{i:02d}.png")
    return root


def test_resume_refuses_changed_data_unless_allowed(tmp_path, capsys):
    data, run = _image_folder(tmp_path / "imgs", 20, 0), tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--data", str(data), "--channels", "1", "--steps", "2",
                 "--out", str(run), *RUN]) == 0
    _image_folder(tmp_path / "other", 11, 1)
    for i in range(11):  # replace 11 of the 20 images
        shutil.copy(tmp_path / "other" / f"img{i:02d}.png", data / f"img{i:02d}.png")
    kept = files(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--data", str(data), "--steps", "4", "--no-progress"]) == 2
    last = one_line_error(capsys.readouterr().err)
    assert "is not the data this run trained on (20 files" in last and "--allow-data-change" in last
    assert files(run) == kept
    assert main(["train", "--resume", str(run), "--data", str(data), "--steps", "4", "--allow-data-change",
                 "--no-progress"]) == 0
    assert "note: the data differs from the run's" in capsys.readouterr().err
    assert load_checkpoint(run)["step"] == 4


def test_a_data_path_is_never_read_from_the_checkpoint(tmp_path, capsys):
    data, elsewhere, run = _image_folder(tmp_path / "a", 8, 0), _image_folder(tmp_path / "b", 8, 1), tmp_path / "r"
    assert main(["train", "--dataset", "folder", "--data", str(data), "--channels", "1", "--steps", "2",
                 "--out", str(run), *RUN]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["config"]["extra"]["data"] = str(elsewhere)  # edited to point elsewhere
    save_checkpoint(state, run / "checkpoint.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 2
    last = one_line_error(capsys.readouterr().err)
    assert "give it with --data DIR (a path is never taken from a checkpoint)" in last
    assert not (elsewhere / ".began_lite_cache").exists() and load_checkpoint(run)["step"] == 2


# --------------------------------------------------------------------------- divergence


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    tr = Trainer(tiny_config(), bl.load_digits(8)[:128], run_dir=tmp_path / "r")
    real_loss_d = tr.objective.loss_d

    def loss_d(loss_real, loss_fake):  # L_D becomes NaN at step 7
        loss, logs = real_loss_d(loss_real, loss_fake)
        return (loss * float("nan"), logs) if tr.step == 6 else (loss, logs)

    monkeypatch.setattr(tr.objective, "loss_d", loss_d)
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


def test_nan_weights_are_never_saved(tiny_config, tmp_path):
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
    code = main(["train", "--dataset", "digits", "--steps", "5", "--lr", "1e30", "--out", str(tmp_path / "r"), *RUN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: training diverged at step 1: ") and "no checkpoint was written" in err[-1]
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_resume_to_a_total_is_idempotent(tmp_path, capsys):
    """`--steps` is the run's total: 20 steps, then a resume to 40, is the run of 40; the resume again does nothing."""
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


def test_a_save_killed_after_keeping_the_previous_leaves_nothing(tmp_path):
    """A kill between keeping checkpoint.prev.pt (a hard link) and publishing the new checkpoint leaves the
    two names on one file; the next save keeps that file as the previous one and leaves no temporary file."""
    run = tmp_path / "run"
    train_tiny(run, 2)
    os.link(run / "checkpoint.pt", run / ".prev.tmp")
    os.replace(run / ".prev.tmp", run / "checkpoint.prev.pt")
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    assert temporaries(run) == [] and load_checkpoint(run / "checkpoint.prev.pt")["step"] == 2
    assert load_checkpoint(run)["step"] == 4
