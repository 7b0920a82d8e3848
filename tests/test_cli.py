"""The command line: a real train -> sample -> resume round trip, and every refused input."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import began_lite as bl
from began_lite.__main__ import main

TINY = ["--image-size", "8", "--filters", "4", "--z-dim", "4", "--h-dim", "4", "--batch-size", "8",
        "--device", "cpu", "--no-progress"]


def run_cli(*args):
    """Run in a real subprocess so exit codes and stderr are what a user sees."""
    return subprocess.run([sys.executable, "-m", "began_lite", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--dataset", "digits", "--steps", "6", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_run(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"checkpoint.pt", "history.csv", "history.json", "config.json", "samples"} <= names


def test_sample_npz_and_png(trained_run, tmp_path):
    npz = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(trained_run), "--n", "10", "--out", str(npz)]) == 0
    with np.load(npz) as f:
        images = f["images"]
    assert images.shape == (10, 1, 8, 8) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    png = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(trained_run / "checkpoint.pt"), "--n", "4", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same seed, same samples.
    again = tmp_path / "t.npz"
    main(["sample", "--checkpoint", str(trained_run), "--n", "10", "--out", str(again)])
    with np.load(npz) as a, np.load(again) as b:
        assert np.array_equal(a["images"], b["images"])


def test_resume_continues_exactly(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "--dataset", "digits", "--steps", "8", "--out", str(straight), *TINY]) == 0
    assert main(["train", "--dataset", "digits", "--steps", "4", "--out", str(split), *TINY]) == 0
    assert main(["train", "--resume", str(split), "--steps", "8", "--no-progress"]) == 0  # the total
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 8 and a["k"] == b["k"]
    assert all(torch.equal(a["generator"][n], b["generator"][n]) for n in a["generator"])


def test_eta_lr_ramp_and_adam_betas_flags_reach_the_run(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--dataset", "digits", "--steps", "8", "--out", str(out), "--eta", "2", "--lr", "1e-3",
                 "--lr-ramp", "2", "6", "--adam-betas", "0.8", "0.99", *TINY]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    cfg = state["config"]
    assert (cfg["eta"], cfg["lr_ramp_start"], cfg["lr_ramp_end"], cfg["adam_betas"]) == (2, 2, 6, [0.8, 0.99])
    assert state["opt_d"]["param_groups"][0]["betas"] == (0.8, 0.99)  # the optimisers use them
    lrs = state["history"]["lr"]
    assert lrs[:3] == [1e-3] * 3 and lrs[4] == pytest.approx((1e-3 + cfg["lr_min"]) / 2) and state["lr"] == cfg["lr_min"]
    assert main(["train", "--resume", str(out), "--eta", "1", "--no-progress"]) == 2  # a new run's setting
    assert main(["train", "--resume", str(out), "--adam-betas", "0.5", "0.999", "--no-progress"]) == 2


def test_tanh_output_and_began_pt_weight_flags_reach_the_run(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--dataset", "digits", "--steps", "4", "--out", str(out), "--tanh-output",
                 "--began-pt-weight", "0", *TINY]) == 0
    cfg = torch.load(out / "checkpoint.pt", weights_only=True)["config"]
    assert (cfg["tanh_output"], cfg["began_pt_weight"]) == (True, 0.0)
    npz = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(out), "--n", "6", "--out", str(npz)]) == 0
    assert main(["train", "--resume", str(out), "--no-tanh-output", "--no-progress"]) == 2  # a new run's setting
    plain = tmp_path / "p"
    assert main(["train", "--dataset", "digits", "--steps", "1", "--out", str(plain), "--no-tanh-output", *TINY]) == 0
    assert torch.load(plain / "checkpoint.pt", weights_only=True)["config"]["tanh_output"] is False


def test_checkpoint_from_before_tanh_output_still_loads(trained_run, tmp_path):
    """Checkpoints written before the field existed have no tanh_output in their config: the default applies."""
    state = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    del state["config"]["tanh_output"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    assert main(["sample", "--checkpoint", str(old), "--n", "4", "--out", str(tmp_path / "o.npz")]) == 0
    from began_lite.train import Trainer

    resumed = Trainer.from_checkpoint(old, bl.load_digits(8), run_dir=tmp_path / "resumed")
    assert resumed.config.tanh_output is False and resumed.step == 6


def test_evaluate_reports(trained_run, tmp_path):
    npz = tmp_path / "s.npz"
    main(["sample", "--checkpoint", str(trained_run), "--n", "50", "--out", str(npz)])
    r = run_cli("evaluate", "--samples", str(npz), "--json")
    assert r.returncode == 0, r.stderr
    assert '"classes_covered"' in r.stdout and '"frechet"' in r.stdout


def _folder_with_bad_image(tmp_path):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(d / "ok.png")
    (d / "broken.jpg").write_bytes(b"not an image")
    return d


# (arguments, text the one-line error must contain)
BAD = [
    (["train", "--dataset", "digits", "--gamma", "1.5", "--out", "{tmp}/r"], "gamma must be in (0, 1]"),
    (["train", "--dataset", "digits", "--gamma", "0", "--out", "{tmp}/r"], "gamma must be in (0, 1]"),
    (["train", "--dataset", "digits", "--gamma", "nan", "--out", "{tmp}/r"], "gamma must be a finite number"),
    (["train", "--dataset", "digits", "--lambda-k", "-0.1", "--out", "{tmp}/r"], "lambda_k must be >= 0"),
    (["train", "--dataset", "digits", "--lr", "-1", "--out", "{tmp}/r"], "lr must be > 0"),
    (["train", "--dataset", "digits", "--image-size", "24", "--out", "{tmp}/r"], "image_size must be a power of two in [8, 128]"),
    (["train", "--dataset", "digits", "--image-size", "256", "--out", "{tmp}/r"], "image_size must be a power of two in [8, 128]"),
    (["train", "--dataset", "digits", "--batch-size", "0", "--out", "{tmp}/r"], "batch_size must be >= 1"),
    (["train", "--dataset", "digits", "--z-dim", "0", "--out", "{tmp}/r"], "z_dim must be >= 1"),
    (["train", "--dataset", "digits", "--steps", "-5", "--out", "{tmp}/r"], "steps must be >= 0"),
    (["train", "--dataset", "digits", "--gamma", "abc", "--out", "{tmp}/r"], "--gamma"),
    (["train", "--dataset", "mnist", "--out", "{tmp}/r"], "--dataset"),
    (["train", "--dataset", "folder", "--out", "{tmp}/r"], "--dataset folder needs --data"),
    (["train", "--dataset", "folder", "--data", "{tmp}/missing", "--out", "{tmp}/r"], "does not exist"),
    (["train", "--dataset", "folder", "--data", "{tmp}/empty", "--out", "{tmp}/r"], "holds no images"),
    (["train", "--dataset", "folder", "--data", "{tmp}/imgs", "--out", "{tmp}/r"], "broken.jpg"),
    (["train", "--dataset", "digits", "--out", "{tmp}/afile"], "out must be a directory"),
    (["train", "--dataset", "digits", "--device", "tpu", "--out", "{tmp}/r"], "device must be"),
    (["train", "--out", "{tmp}/r"], "dataset"),
    (["train", "--dataset", "mixture", "--mixture", "spiral", "--out", "{tmp}/r"], "--mixture"),
    (["train", "--dataset", "digits", "--mixture", "grid", "--out", "{tmp}/r"], "--mixture applies to --dataset mixture only"),
    (["train", "--resume", "{tmp}/missing.pt"], "does not exist"),
    (["train", "--resume", "{tmp}/truncated.pt"], "truncated"),
    (["sample", "--checkpoint", "{tmp}/missing", "--out", "{tmp}/s.npz"], "does not exist"),
    (["sample", "--checkpoint", "{tmp}/truncated.pt", "--out", "{tmp}/s.npz"], "truncated"),
    (["sample", "--checkpoint", "{tmp}/evil.pt", "--out", "{tmp}/s.npz"], "not plain data"),
    (["sample", "--checkpoint", "{tmp}/truncated.pt", "--n", "0", "--out", "{tmp}/s.npz"], "n must be >= 1"),
    (["sample", "--checkpoint", "{tmp}/truncated.pt", "--out", "{tmp}/s.jpg"], "out must end in .png or .npz"),
    (["evaluate", "--samples", "{tmp}/missing.npz"], "samples"),
]


@pytest.fixture(scope="module")
def bad_inputs_dir(tmp_path_factory):
    import os

    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "empty").mkdir()
    (tmp / "afile").write_text("x")
    _folder_with_bad_image(tmp)
    (tmp / "truncated.pt").write_bytes(b"PK\x03\x04 truncated")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp}/pwned",))

    torch.save({"format": "began_lite.checkpoint/1", "x": Evil()}, tmp / "evil.pt")
    return tmp


def main_in_process(args, capsys):
    """main() as the console would run it: (exit code, stderr)."""
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args,expected", BAD, ids=[" ".join(a[:3]) + " " + e[:20] for a, e in BAD])
def test_bad_input_one_line_exit_2(bad_inputs_dir, args, expected, capsys):
    args = [a.format(tmp=bad_inputs_dir) for a in args] + (["--no-progress"] if args[0] == "train" else [])
    code, err = main_in_process(args, capsys)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert expected in lines[0]
    assert not (bad_inputs_dir / "pwned").exists()


@pytest.mark.parametrize("args", [["train", "--dataset", "digits", "--gamma", "2", "--out", "x"],
                                  ["sample", "--checkpoint", "{tmp}/evil.pt", "--out", "{tmp}/s.npz"]])
def test_real_process_exit_code_and_no_traceback(bad_inputs_dir, args):
    r = run_cli(*[a.format(tmp=bad_inputs_dir) for a in args])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
    assert not (bad_inputs_dir / "pwned").exists()
