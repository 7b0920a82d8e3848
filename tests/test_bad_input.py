"""Every refused input, as a table: one test per row.

Each row calls one public function (or the command line) with one bad value and checks
that the error names the parameter and, where there is one, the accepted range. The
command-line rows extend tests/test_cli.py's table (which they do not repeat): one line,
``error: ...``, exit code 2, no traceback.
"""
from __future__ import annotations

import builtins
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

import began_lite as bl
from began_lite.data import load_image_folder
from began_lite.device import pick_device
from began_lite.mixtures import mixture_2d
from began_lite.profiles import resolve_profile
from began_lite.equilibrium import convergence_measure
from began_lite.models import Decoder, Encoder
from began_lite.wasserstein import empirical_wasserstein
from began_lite import checkpoint as ck
from began_lite import data as bd
from began_lite import equilibrium as eq
from began_lite import classifier as bc
from began_lite import evaluate as be
from began_lite import normality as bn
from began_lite import models as bmod
from began_lite.cli import main
from began_lite.callbacks import every, write_samples
from began_lite.checkpoint import CheckpointError
from began_lite.train import Trainer

HAS_CUDA = torch.cuda.is_available()
NAN, INF = float("nan"), float("inf")
TINY = ["--image-size", "8", "--filters", "4", "--z-dim", "4", "--h-dim", "4", "--batch-size", "8",
        "--device", "cpu", "--no-progress"]


class Evil:
    """Unpickling this would run code: it creates the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


def _npz_declaring(path, name, shape):
    """An .npz whose array header declares ``shape`` (float32) over a few bytes of data."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}.npy", buf.getvalue() + bytes(64))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, tiny_config):
    """A folder of bad files, and one small real run to point at."""
    from PIL import Image

    t = tmp_path_factory.mktemp("bad_input")
    (t / "afile").write_text("not a folder")
    (t / "emptydir").mkdir()
    (t / "texts").mkdir()  # a folder of non-images
    (t / "texts" / "notes.txt").write_text("hello")
    (t / "texts" / "table.csv").write_text("a,b\n1,2\n")
    (t / "fakes").mkdir()  # image names, no image inside
    (t / "fakes" / "a.png").write_bytes(b"\x89PNG but not really")
    (t / "fakes" / "b.jpg").write_bytes(b"")
    (t / "mixed").mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(t / "mixed" / "ok.png")
    (t / "mixed" / "bad.webp").write_bytes(b"RIFF....WEBP")
    (t / "random.pt").write_bytes(random.Random(0).randbytes(512))
    (t / "empty.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(3)}, t / "foreign.pt")  # a valid torch file, not ours
    torch.save([1, 2, 3], t / "list.pt")
    ck.save_checkpoint({"step": 1}, t / "noconfig.pt")  # our format tag, no config
    ck.save_checkpoint({"config": {"gamma": 7.0}}, t / "badconfig.pt")
    digits = {"dataset": "digits", "data_fingerprint": bd.fingerprint("digits")}  # what `train` would store
    ck.save_checkpoint({"config": tiny_config(extra=digits).to_dict(), "generator": {"w": torch.zeros(1)}},
                       t / "badweights.pt")
    torch.save({"format": ck.FORMAT, "config": Evil(t / "pwned")}, t / "evil.pt")
    run = t / "run"
    assert main(["train", "--dataset", "digits", "--steps", "2", "--out", str(run), *TINY]) == 0
    blob = (run / "checkpoint.pt").read_bytes()
    (t / "cut.pt").write_bytes(blob[: len(blob) // 3])
    (t / "random.npz").write_bytes(random.Random(1).randbytes(300))
    np.savez(t / "noimages.npz", x=np.zeros(3))
    np.savez(t / "rgb.npz", images=np.zeros((4, 3, 8, 8), np.float32))
    np.savez(t / "nan.npz", images=np.full((4, 1, 8, 8), np.nan, np.float32))
    np.savez(t / "empty.npz", images=np.zeros((0, 1, 8, 8), np.float32))
    np.savez(t / "one.npz", images=np.zeros((1, 1, 8, 8), np.float32))
    np.savez(t / "uint8.npz", images=np.full((4, 1, 8, 8), 200, np.uint8))  # pixels as a PNG holds them
    np.savez(t / "five.npz", images=np.full((4, 1, 8, 8), 5.0, np.float32))  # floats outside [-1, 1]
    _npz_declaring(t / "huge.npz", "images", (10**9, 1, 16, 16))
    np.savez(t / "pickled.npz", images=np.array([object()], dtype=object))
    (t / "dir.npz").mkdir()
    yield t
    assert not (t / "pwned").exists(), "a crafted pickle ran code"


@pytest.fixture(scope="module")
def digits8():
    return bl.load_digits(8)[:64]


# --------------------------------------------------------------------------- the package
# (id, call(ctx, digits8, tiny_config), exception, regex the message must match: the parameter, the range)
V, C = ValueError, CheckpointError
API = [
    # wasserstein
    ("w2-mean-nan", lambda c, d, tiny_config: bl.gaussian_w2(NAN, 1, 0, 1), V, r"^m1 contains NaN or inf"),
    ("w2-mean-str", lambda c, d, tiny_config: bl.gaussian_w2("a", 1, 0, 1), V, r"^m1 must be a number or an array"),
    ("w2-var-negative", lambda c, d, tiny_config: bl.gaussian_w2(0, -1, 0, 1), V, r"^C1 is a variance and must be >= 0"),
    ("w2-cov-shape", lambda c, d, tiny_config: bl.gaussian_w2(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), V,
     r"^C1 must have shape \(2, 2\)"),
    ("w2-cov-asymmetric", lambda c, d, tiny_config: bl.gaussian_w2(np.zeros(2), [[1, .5], [0, 1]], np.zeros(2), np.eye(2)), V,
     r"^C1 must be symmetric"),
    ("w2-cov-not-psd", lambda c, d, tiny_config: bl.gaussian_w2(np.zeros(2), np.eye(2), np.zeros(2), [[1, 2], [2, 1]]), V,
     r"^C2 must be positive semi-definite"),
    ("w2-mixed-dims", lambda c, d, tiny_config: bl.gaussian_w2(0, 1, np.zeros(2), np.eye(2)), V, r"m2 must be a scalar too"),
    ("emp-p-below-1", lambda c, d, tiny_config: empirical_wasserstein([1, 2], [1, 2], p=0.5), V, r"^p must be a finite number >= 1"),
    ("emp-p-inf", lambda c, d, tiny_config: empirical_wasserstein([1, 2], [1, 2], p=INF), V, r"^p must be a finite number >= 1"),
    ("emp-p-str", lambda c, d, tiny_config: empirical_wasserstein([1, 2], [1, 2], p="2"), V, r"^p must be a finite number >= 1"),
    ("emp-empty", lambda c, d, tiny_config: bl.empirical_w1([], [1.0]), V, r"^x must be a non-empty array"),
    ("emp-dims", lambda c, d, tiny_config: bl.empirical_w2(np.zeros((3, 2)), np.zeros((3, 3))), V, r"^x and y must have the same dimension"),
    ("emp-inf", lambda c, d, tiny_config: bl.empirical_w2([1.0, 2.0], [1.0, INF]), V, r"^y contains NaN or inf"),
    ("emp-3d", lambda c, d, tiny_config: bl.empirical_w2(np.zeros((3, 2, 2)), np.zeros((3, 2, 2))), V, r"^x must be .* shape \(n,\) or \(n, d\)"),
    ("emp-unequal-nd", lambda c, d, tiny_config: bl.empirical_w2(np.zeros((3, 2)), np.zeros((4, 2))), V, r"^x and y must have equal sizes"),
    ("emp-too-many", lambda c, d, tiny_config: bl.empirical_w2(np.zeros((5, 2)), np.zeros((5, 2)), max_assignment=2), V,
     r"at most max_assignment=2"),
    ("jensen-empty", lambda c, d, tiny_config: bl.jensen_bound([], []), V, r"^x must be a non-empty array"),
    # losses
    ("recon-eta", lambda c, d, tiny_config: bl.reconstruction_loss(torch.zeros(2, 3), torch.zeros(2, 3), eta=3), V, r"^eta must be 1 or 2"),
    ("recon-shape", lambda c, d, tiny_config: bl.reconstruction_loss(torch.zeros(2, 3), torch.zeros(2, 4)), V,
     r"^x and x_hat must have the same shape"),
    ("recon-int", lambda c, d, tiny_config: bl.reconstruction_loss(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), V,
     r"^x must be a floating-point tensor"),
    ("recon-numpy", lambda c, d, tiny_config: bl.reconstruction_loss(np.zeros((2, 3)), torch.zeros(2, 3)), V, r"^x must be a torch.Tensor"),
    ("recon-1d", lambda c, d, tiny_config: bl.reconstruction_loss(torch.zeros(3), torch.zeros(3)), V, r"^x must have a batch dimension"),
    ("recon-devices", lambda c, d, tiny_config: bl.reconstruction_loss(torch.zeros(2, 3), torch.zeros(2, 3, device="meta")), V,
     r"^x and x_hat must be on the same device"),
    ("pt-one-row", lambda c, d, tiny_config: bl.pulling_away_term(torch.zeros(1, 3)), V, r"^s must hold at least 2 embeddings"),
    ("pt-3d", lambda c, d, tiny_config: bl.pulling_away_term(torch.zeros(2, 3, 4)), V, r"^s must be a 2-D tensor \(N, d\)"),
    ("pt-int", lambda c, d, tiny_config: bl.pulling_away_term(torch.zeros(2, 3, dtype=torch.long)), V, r"^s must be a floating-point tensor"),
    ("began-k-range", lambda c, d, tiny_config: bl.began_losses(torch.zeros(3), torch.zeros(3), 2.0), V, r"^k must be in \[0, 1\]"),
    ("began-k-nan", lambda c, d, tiny_config: bl.began_losses(torch.zeros(3), torch.zeros(3), NAN), V, r"^k must be in \[0, 1\]"),
    ("began-2d", lambda c, d, tiny_config: bl.began_losses(torch.zeros(3, 2), torch.zeros(3), 0.5), V, r"^loss_real must be a non-empty 1-D"),
    ("began-empty", lambda c, d, tiny_config: bl.began_losses(torch.zeros(3), torch.zeros(0), 0.5), V, r"^loss_fake must be a non-empty 1-D"),
    ("ebgan-margin-negative", lambda c, d, tiny_config: bl.ebgan_losses(torch.zeros(3), torch.zeros(3), -1.0), V,
     r"^margin must be a finite number > 0"),
    ("ebgan-margin-inf", lambda c, d, tiny_config: bl.ebgan_losses(torch.zeros(3), torch.zeros(3), INF), V, r"^margin must be a finite number > 0"),
    # equilibrium
    ("ctl-gamma-0", lambda c, d, tiny_config: bl.EquilibriumController(0.0), V, r"^gamma must be in \(0, 1\]"),
    ("ctl-gamma-nan", lambda c, d, tiny_config: bl.EquilibriumController(NAN), V, r"^gamma must be finite and in \(0, 1\]"),
    ("ctl-gamma-str", lambda c, d, tiny_config: bl.EquilibriumController("0.5"), V, r"^gamma must be a number"),
    ("ctl-lambda-negative", lambda c, d, tiny_config: bl.EquilibriumController(0.5, -1), V, r"^lambda_k must be >= 0"),
    ("ctl-k-range", lambda c, d, tiny_config: bl.EquilibriumController(0.5, 0.001, 2), V, r"^k must be in \[0, 1\]"),
    ("ctl-update-nan", lambda c, d, tiny_config: bl.EquilibriumController().update(NAN, 1.0), V, r"^loss_real must be finite"),
    ("ctl-update-vector", lambda c, d, tiny_config: bl.EquilibriumController().update(torch.zeros(3), 1.0), V,
     r"^loss_real must be a number or a 0-d tensor"),
    ("m-global-gamma", lambda c, d, tiny_config: convergence_measure(1, 1, 2), V, r"^gamma must be in \(0, 1\]"),
    ("m-global-inf", lambda c, d, tiny_config: convergence_measure(INF, 1, 0.5), V, r"^loss_real must be finite"),
    ("sim-steps", lambda c, d, tiny_config: eq.simulate_controller(steps=0), V, r"^steps must be an integer >= 1"),
    ("sim-pull", lambda c, d, tiny_config: eq.simulate_controller(pull=2.0), V, r"^pull must be in \(0, 1\]"),
    ("sim-push", lambda c, d, tiny_config: eq.simulate_controller(push=0.0), V, r"^push must be a finite number > 0"),
    ("sim-noise-negative", lambda c, d, tiny_config: eq.simulate_controller(noise=-1.0), V, r"^noise must be a finite number >= 0"),
    ("sim-noise-nan", lambda c, d, tiny_config: eq.simulate_controller(noise=NAN), V, r"^noise must be a finite number >= 0"),
    # models
    ("z-n-0", lambda c, d, tiny_config: bl.sample_z(0, 4), V, r"^n must be an integer >= 1"),
    ("z-dim-float", lambda c, d, tiny_config: bl.sample_z(2, 4.0), V, r"^z_dim must be an integer >= 1"),
    ("z-n-bool", lambda c, d, tiny_config: bl.sample_z(True, 4), V, r"^n must be an integer >= 1"),
    ("G-config-dict", lambda c, d, tiny_config: bl.Generator({"z_dim": 4}), V, r"^config must be a TrainConfig"),
    ("D-config-dict", lambda c, d, tiny_config: bl.Discriminator({"z_dim": 4}), V, r"^config must be a TrainConfig"),
    ("G-z-width", lambda c, d, tiny_config: bl.Generator(tiny_config())(torch.zeros(2, 5)), V, r"^z must have shape \(B, 4\)"),
    ("G-z-int", lambda c, d, tiny_config: bl.Generator(tiny_config())(torch.zeros(2, 4, dtype=torch.long)), V,
     r"^z must have the network's dtype torch.float32"),
    ("G-z-float64", lambda c, d, tiny_config: bl.Generator(tiny_config())(torch.zeros(2, 4, dtype=torch.float64)), V,
     r"^z must have the network's dtype torch.float32"),
    ("G-z-numpy", lambda c, d, tiny_config: bl.Generator(tiny_config())(np.zeros((2, 4))), V, r"^z must be a torch.Tensor \(B, 4\)"),
    ("D-x-channels", lambda c, d, tiny_config: bl.Discriminator(tiny_config())(torch.zeros(2, 3, 8, 8)), V,
     r"^x must have shape \(B, 1, 8, 8\)"),
    ("D-x-float64", lambda c, d, tiny_config: bl.Discriminator(tiny_config())(torch.zeros(2, 1, 8, 8, dtype=torch.float64)), V,
     r"^x must have the network's dtype"),
    ("D-x-device", lambda c, d, tiny_config: bl.Discriminator(tiny_config())(torch.zeros(2, 1, 8, 8, device="meta")), V,
     r"^x is on meta but the network is on cpu"),
    ("decoder-v-width", lambda c, d, tiny_config: Decoder(4, image_size=8, channels=1, filters=2, repeat=1)(torch.zeros(2, 3)), V,
     r"^v must have shape \(B, 4\)"),
    ("decoder-size", lambda c, d, tiny_config: Decoder(4, image_size=12, channels=1, filters=2, repeat=1), V,
     r"^image_size must be a power of two in \[8, 128\]"),
    ("decoder-filters-0", lambda c, d, tiny_config: Decoder(4, image_size=8, channels=1, filters=0, repeat=1), V,
     r"^filters must be an integer >= 1"),
    ("encoder-h-0", lambda c, d, tiny_config: Encoder(0, image_size=8, channels=1, filters=2, repeat=1), V, r"^h_dim must be an integer >= 1"),
    ("carry-range", lambda c, d, tiny_config: bl.Generator(tiny_config()).set_carry(2), V, r"^carry must be in \[0, 1\]"),
    ("carry-nan", lambda c, d, tiny_config: bl.Generator(tiny_config()).set_carry(NAN), V, r"^carry must be in \[0, 1\]"),
    ("num-scales", lambda c, d, tiny_config: bmod.num_scales(12), V, r"^image_size must be a power of two in \[8, 128\]"),
    # data
    ("digits-size-small", lambda c, d, tiny_config: bl.load_digits(3), V, r"^image_size must be an integer in \[4, 1024\]"),
    ("digits-size-str", lambda c, d, tiny_config: bl.load_digits("16"), V, r"^image_size must be an integer in \[4, 1024\]"),
    ("faces-size-nan", lambda c, d, tiny_config: bl.load_faces(NAN), V, r"^image_size must be an integer in \[4, 1024\]"),
    ("folder-channels", lambda c, d, tiny_config: load_image_folder(c / "mixed", 8, channels=2), V, r"^channels must be 1 or 3"),
    ("folder-limit", lambda c, d, tiny_config: load_image_folder(c / "mixed", 8, limit=0), V, r"^limit must be None or an integer >= 1"),
    ("folder-missing", lambda c, d, tiny_config: load_image_folder(c / "missing", 8), V, r"^data folder .* does not exist"),
    ("folder-is-file", lambda c, d, tiny_config: load_image_folder(c / "afile", 8), V, r"^data folder .* is not a folder"),
    ("folder-empty", lambda c, d, tiny_config: load_image_folder(c / "emptydir", 8), V, r"^data folder .* holds no images \(looked for .png"),
    ("folder-non-images", lambda c, d, tiny_config: load_image_folder(c / "texts", 8), V, r"^data folder .* holds no images"),
    ("folder-fake-images", lambda c, d, tiny_config: load_image_folder(c / "fakes", 8), V,
     r"^data folder .* has 2 unreadable image\(s\): .*a.png"),
    ("folder-one-bad", lambda c, d, tiny_config: load_image_folder(c / "mixed", 8), V, r"has 1 unreadable image\(s\): .*bad.webp"),
    ("mixture-kind", lambda c, d, tiny_config: mixture_2d("spiral"), V, r"^kind must be 'ring' or 'grid'"),
    ("mixture-n", lambda c, d, tiny_config: mixture_2d("ring", 0), V, r"^n must be an integer >= 1"),
    ("mixture-std-nan", lambda c, d, tiny_config: mixture_2d("ring", 10, std=NAN), V, r"^std must be a finite number > 0"),
    ("mixture-std-negative", lambda c, d, tiny_config: mixture_2d("ring", 10, std=-1.0), V, r"^std must be a finite number > 0"),
    ("mixture-seed", lambda c, d, tiny_config: mixture_2d("ring", 10, seed=-1), V, r"^seed must be an integer in \[0, 2\*\*63\)"),
    ("mixture-modes-kind", lambda c, d, tiny_config: bl.mixture_modes("x"), V, r"^kind must be 'ring' or 'grid'"),
    ("resize-3d", lambda c, d, tiny_config: bd.resize(torch.zeros(1, 8, 8), 16), V, r"^x must be a float tensor \(N, C, H, W\)"),
    ("resize-int", lambda c, d, tiny_config: bd.resize(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 16), V, r"^x must be a float tensor"),
    ("resize-size", lambda c, d, tiny_config: bd.resize(torch.zeros(1, 1, 8, 8), 0), V, r"^image_size must be an integer in \[4, 1024\]"),
    # metrics
    ("normality-few", lambda c, d, tiny_config: bn.normality_stats([1.0, 2.0, 3.0]), V, r"^samples must hold at least 20 values"),
    ("normality-nan", lambda c, d, tiny_config: bn.normality_stats([NAN] * 30), V, r"^samples contains NaN or inf"),
    ("normality-str", lambda c, d, tiny_config: bn.normality_stats("abc"), V, r"^samples must be an array of numbers"),
    ("eff-pixels-empty", lambda c, d, tiny_config: bn.effective_pixels([], [1.0, 2.0, 3.0]), V, r"^pixel_values must hold at least 3 finite"),
    ("frechet-1d", lambda c, d, tiny_config: be.frechet_distance(np.zeros(5), np.zeros(5)), V,
     r"^real_features and fake_features must be \(n, d\)"),
    ("frechet-one-row", lambda c, d, tiny_config: be.frechet_distance(np.zeros((1, 2)), np.zeros((5, 2))), V, r"need at least 2 rows"),
    ("coverage-empty", lambda c, d, tiny_config: be.mode_coverage(torch.zeros(0, 10)), V, r"^probs must be a non-empty \(N, classes\)"),
    ("coverage-nan", lambda c, d, tiny_config: be.mode_coverage(torch.full((3, 10), NAN)), V, r"^probs must be probabilities: finite and in \[0, 1\]"),
    ("coverage-threshold", lambda c, d, tiny_config: be.mode_coverage(torch.ones(3, 10) / 10, threshold=2), V,
     r"^threshold must be a number in \(0, 1\]"),
    ("coverage-min-share", lambda c, d, tiny_config: be.mode_coverage(torch.ones(3, 10) / 10, min_share=-0.1), V,
     r"^min_share must be a number in \[0, 1\]"),
    ("classifier-rgb", lambda c, d, tiny_config: bc.DigitClassifier.prepare(torch.zeros(2, 3, 8, 8)), V, r"^images must be a non-empty tensor \(N, 1, S, S\)"),
    ("classifier-empty", lambda c, d, tiny_config: bc.DigitClassifier.prepare(torch.zeros(0, 1, 8, 8)), V, r"^images must be a non-empty"),
    ("classifier-nan", lambda c, d, tiny_config: bc.DigitClassifier.prepare(torch.full((2, 1, 8, 8), NAN)), V, r"^images must be finite"),
    ("evaluate-one", lambda c, d, tiny_config: be.evaluate_digits(torch.zeros(1, 1, 8, 8), bc.DigitClassifier()), V,
     r"^images must hold at least 2 samples"),
    ("classifier-held-out", lambda c, d, tiny_config: bc.train_digit_classifier(held_out=5000), V, r"^held_out must be an integer in \[1, 1697\]"),
    ("classifier-epochs", lambda c, d, tiny_config: bc.train_digit_classifier(epochs=0), V, r"^epochs must be an integer >= 1"),
    # checkpoint
    ("ckpt-path-none", lambda c, d, tiny_config: ck.load_checkpoint(None), C, r"^checkpoint: the path must be a non-empty str"),
    ("ckpt-missing", lambda c, d, tiny_config: ck.load_checkpoint(c / "missing.pt"), C, r"^checkpoint: .* does not exist"),
    ("ckpt-dir-without", lambda c, d, tiny_config: ck.load_checkpoint(c / "emptydir"), C, r"^checkpoint: run directory .* holds no checkpoint.pt"),
    ("ckpt-random-bytes", lambda c, d, tiny_config: ck.load_checkpoint(c / "random.pt"), C, r"^checkpoint: .* is truncated or not a checkpoint"),
    ("ckpt-empty-file", lambda c, d, tiny_config: ck.load_checkpoint(c / "empty.pt"), C, r"^checkpoint: .* is truncated or not a checkpoint"),
    ("ckpt-truncated", lambda c, d, tiny_config: ck.load_checkpoint(c / "cut.pt"), C, r"^checkpoint: .* is truncated or not a checkpoint"),
    ("ckpt-foreign-dict", lambda c, d, tiny_config: ck.load_checkpoint(c / "foreign.pt"), C, r"^checkpoint: .* is not a began_lite checkpoint"),
    ("ckpt-foreign-list", lambda c, d, tiny_config: ck.load_checkpoint(c / "list.pt"), C, r"^checkpoint: .* is not a began_lite checkpoint"),
    ("ckpt-crafted-pickle", lambda c, d, tiny_config: ck.load_checkpoint(c / "evil.pt"), C, r"^checkpoint: .* is not plain data and was refused"),
    ("ckpt-no-config", lambda c, d, tiny_config: ck.checkpoint_config(ck.load_checkpoint(c / "noconfig.pt"), c / "noconfig.pt"), C,
     r"^checkpoint: .* holds no valid training config \(KeyError"),
    ("ckpt-bad-config", lambda c, d, tiny_config: ck.checkpoint_config(ck.load_checkpoint(c / "badconfig.pt")), C,
     r"holds no valid training config .*gamma must be in \(0, 1\]"),
    ("ckpt-save-parent-is-file", lambda c, d, tiny_config: ck.save_checkpoint({}, c / "afile" / "x.pt"), V, r"^path: cannot create the folder"),
    # train
    ("ae-model-str", lambda c, d, tiny_config: bl.fit_autoencoder("model", d, steps=1), V, r"^model must be a torch.nn.Module"),
    ("ae-data-list", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), [1, 2], steps=1), V,
     r"^data must be a non-empty float tensor \(N, C, H, W\)"),
    ("ae-data-nan", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), d * NAN, steps=1), V, r"^data must be finite"),
    ("ae-data-shape", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), bl.load_digits(16)[:8], steps=1), V,
     r"^x must have shape \(B, 1, 8, 8\)"),
    ("ae-steps", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), d, steps=-1), V, r"^steps must be an integer >= 0"),
    ("ae-batch", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), d, steps=1, batch_size=0), V,
     r"^batch_size must be an integer >= 1"),
    ("ae-lr-nan", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), d, steps=1, lr=NAN), V,
     r"^lr must be a finite number > 0"),
    ("ae-lr-inf", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), d, steps=1, lr=INF), V,
     r"^lr must be a finite number > 0"),
    ("ae-eta", lambda c, d, tiny_config: bl.fit_autoencoder(bl.Discriminator(tiny_config()), d, steps=1, eta=3), V, r"^eta must be 1 or 2"),
    ("losses-batch", lambda c, d, tiny_config: bl.reconstruction_losses(bl.Discriminator(tiny_config()), d, batch_size=0), V,
     r"^batch_size must be an integer >= 1"),
    ("losses-int", lambda c, d, tiny_config: bl.reconstruction_losses(bl.Discriminator(tiny_config()), d.long()), V,
     r"^x must be a non-empty float tensor"),
    ("trainer-config", lambda c, d, tiny_config: Trainer({"gamma": 0.5}, d), V, r"^config must be a TrainConfig"),
    ("trainer-data-shape", lambda c, d, tiny_config: Trainer(tiny_config(image_size=16), d), V, r"^data must have shape \(N, 1, 16, 16\)"),
    ("trainer-data-range", lambda c, d, tiny_config: Trainer(tiny_config(), d * 3), V, r"^data must be finite and scaled to \[-1, 1\]"),
    ("trainer-data-nan", lambda c, d, tiny_config: Trainer(tiny_config(), d * NAN), V, r"^data must be finite"),
    ("trainer-data-empty", lambda c, d, tiny_config: Trainer(tiny_config(), d[:0]), V, r"^data must be a non-empty float tensor"),
    ("trainer-data-int", lambda c, d, tiny_config: Trainer(tiny_config(), d.long()), V, r"^data must be a non-empty float tensor"),
    ("trainer-data-float64", lambda c, d, tiny_config: Trainer(tiny_config(), d.double()), V, r"^data must be float32"),
    ("trainer-data-numpy", lambda c, d, tiny_config: Trainer(tiny_config(), d.numpy()), V, r"^data must be a non-empty float tensor"),
    ("trainer-run-dir-file", lambda c, d, tiny_config: Trainer(tiny_config(), d, run_dir=c / "afile"), V, r"^out must be a folder"),
    ("trainer-run-dir-under-file", lambda c, d, tiny_config: Trainer(tiny_config(), d, run_dir=c / "afile" / "run"), V,
     r"^out: cannot create .*afile/run.*: a file is in the way"),
    ("trainer-fixed-k", lambda c, d, tiny_config: Trainer(tiny_config(), d, fixed_k=2.0), V, r"^k must be in \[0, 1\]"),
    ("trainer-fixed-k-ebgan", lambda c, d, tiny_config: Trainer(tiny_config(objective="ebgan"), d, fixed_k=1.0), V,
     r"^fixed_k applies to the 'began' objective only"),
    ("trainer-n-fixed", lambda c, d, tiny_config: Trainer(tiny_config(), d, n_fixed=0), V, r"^n must be an integer >= 1"),
    ("train-steps", lambda c, d, tiny_config: Trainer(tiny_config(), d).train(-1, progress=False), V, r"^steps must be an integer >= 0"),
    ("train-steps-float", lambda c, d, tiny_config: Trainer(tiny_config(), d).train(1.5, progress=False), V, r"^steps must be an integer >= 0"),
    ("train-checkpoint-every", lambda c, d, tiny_config: Trainer(tiny_config(), d).train(1, progress=False, checkpoint_every=0), V,
     r"^checkpoint_every must be an integer >= 1"),
    ("train-every", lambda c, d, tiny_config: every(-2, write_samples), V, r"^every: n must be an integer >= 1"),
    ("train-every-fn", lambda c, d, tiny_config: every(2, "write"), V, r"^every: fn must be callable"),
    ("train-callback", lambda c, d, tiny_config: Trainer(tiny_config(), d).train(1, progress=False, callbacks=[3]), V,
     r"^callbacks must be callable"),
    ("sample-n", lambda c, d, tiny_config: Trainer(tiny_config(), d).sample(0), V, r"^n must be an integer >= 1"),
    ("sample-z", lambda c, d, tiny_config: Trainer(tiny_config(), d).sample(z=torch.zeros(2, 7)), V, r"^z must have shape \(B, 4\)"),
    ("save-no-run-dir", lambda c, d, tiny_config: Trainer(tiny_config(), d).save(), V, r"^path is needed when the trainer has no run_dir"),
    ("resume-network-change", lambda c, d, tiny_config: Trainer.from_checkpoint(c / "run", d, filters=8), V,
     r"^config_changes: \['filters'\] shape the networks"),
    ("resume-wrong-data", lambda c, d, tiny_config: Trainer.from_checkpoint(c / "run", bl.load_digits(16)[:8]), V,
     r"^data must have shape \(N, 1, 8, 8\)"),
    ("resume-no-config", lambda c, d, tiny_config: Trainer.from_checkpoint(c / "noconfig.pt", d), C, r"holds no valid training config"),
    ("resume-incomplete", lambda c, d, tiny_config: Trainer.from_checkpoint(c / "badweights.pt", d), C,
     r"does not hold a complete training state"),
    # config
    ("cfg-gamma-range", lambda c, d, tiny_config: bl.TrainConfig(gamma=1.5), V, r"^gamma must be in \(0, 1\], got 1.5"),
    ("cfg-gamma-nan", lambda c, d, tiny_config: bl.TrainConfig(gamma=NAN), V, r"^gamma must be a finite number in \(0, 1\], got nan"),
    ("cfg-gamma-str", lambda c, d, tiny_config: bl.TrainConfig(gamma="0.5"), V, r"^gamma must be a finite number in \(0, 1\], got '0.5'"),
    ("cfg-lambda-inf", lambda c, d, tiny_config: bl.TrainConfig(lambda_k=INF), V, r"^lambda_k must be a finite number >= 0"),
    ("cfg-k0", lambda c, d, tiny_config: bl.TrainConfig(k0=2.0), V, r"^k0 must be in \[0, 1\]"),
    ("cfg-eta", lambda c, d, tiny_config: bl.TrainConfig(eta=3), V, r"^eta must be 1 or 2"),
    ("cfg-eta-bool", lambda c, d, tiny_config: bl.TrainConfig(eta=True), V, r"^eta must be 1 or 2"),
    ("cfg-margin", lambda c, d, tiny_config: bl.TrainConfig(margin=0.0), V, r"^margin must be > 0"),
    ("cfg-image-size", lambda c, d, tiny_config: bl.TrainConfig(image_size=12), V, r"^image_size must be a power of two in \[8, 128\]"),
    ("cfg-image-size-float", lambda c, d, tiny_config: bl.TrainConfig(image_size=64.0), V, r"^image_size must be an integer"),
    ("cfg-channels", lambda c, d, tiny_config: bl.TrainConfig(channels=2), V, r"^channels must be 1 or 3"),
    ("cfg-filters", lambda c, d, tiny_config: bl.TrainConfig(filters=0), V, r"^filters must be >= 1"),
    ("cfg-lr-zero", lambda c, d, tiny_config: bl.TrainConfig(lr=0.0), V, r"^lr must be > 0"),
    ("cfg-lr-inf", lambda c, d, tiny_config: bl.TrainConfig(lr=INF), V, r"^lr must be a finite number > 0"),
    ("cfg-betas-length", lambda c, d, tiny_config: bl.TrainConfig(adam_betas=(0.9,)), V, r"^adam_betas must be two numbers in \[0, 1\)"),
    ("cfg-betas-nan", lambda c, d, tiny_config: bl.TrainConfig(adam_betas=(NAN, 0.9)), V, r"^adam_betas must be two numbers in \[0, 1\)"),
    ("cfg-lr-decay", lambda c, d, tiny_config: bl.TrainConfig(lr_decay=0.0), V, r"^lr_decay must be in \(0, 1\]"),
    ("cfg-ema", lambda c, d, tiny_config: bl.TrainConfig(ema=1.0), V, r"^ema must be in \[0, 1\)"),
    ("cfg-shift-large", lambda c, d, tiny_config: bl.TrainConfig(image_size=16, shift=5), V,
     r"^shift must be an integer in \[0, image_size / 4 = 4\], got 5"),
    ("cfg-shift-negative", lambda c, d, tiny_config: bl.TrainConfig(shift=-1), V, r"^shift must be an integer in \[0, image_size / 4 = 16\]"),
    ("cfg-shift-float", lambda c, d, tiny_config: bl.TrainConfig(shift=1.0), V, r"^shift must be an integer, got 1.0"),
    ("cfg-shift-points", lambda c, d, tiny_config: bl.TrainConfig(data_dim=2, shift=1), V,
     r"^shift must be 0 when data_dim >= 1 \(points are not images\), got 1"),
    ("cfg-steps", lambda c, d, tiny_config: bl.TrainConfig(steps=-1), V, r"^steps must be >= 0"),
    ("cfg-seed", lambda c, d, tiny_config: bl.TrainConfig(seed=2**63), V, r"^seed must be an integer in \[0, 2\*\*63\)"),
    ("cfg-device-int", lambda c, d, tiny_config: bl.TrainConfig(device=0), V, r"^device must be a string"),
    ("cfg-dtype", lambda c, d, tiny_config: bl.TrainConfig(dtype="half"), V, r"^dtype must be one of \('auto', 'float32'"),
    ("cfg-profile", lambda c, d, tiny_config: bl.TrainConfig(profile="medium"), V, r"^profile must be one of \('quick', 'full', 'paper-small'\)"),
    ("cfg-objective", lambda c, d, tiny_config: bl.TrainConfig(objective="wgan"), V, r"^objective must be one of \('began', 'ebgan'\)"),
    ("cfg-skip-str", lambda c, d, tiny_config: bl.TrainConfig(skip="no"), V, r"^skip must be True or False"),
    ("cfg-residual-int", lambda c, d, tiny_config: bl.TrainConfig(vanishing_residual=1), V, r"^vanishing_residual must be True or False"),
    ("cfg-extra-object", lambda c, d, tiny_config: bl.TrainConfig(extra={"f": object()}), V, r"^extra must be a dict of plain values"),
    ("cfg-extra-key", lambda c, d, tiny_config: bl.TrainConfig(extra={1: "a"}), V, r"^extra must be a dict of plain values \(str keys"),
    ("cfg-from-dict-list", lambda c, d, tiny_config: bl.TrainConfig.from_dict([1, 2]), V, r"^config must be a dict of fields"),
    ("cfg-from-dict-unknown", lambda c, d, tiny_config: bl.TrainConfig.from_dict({"gama": 1}), V, r"^config has unknown fields \['gama'\]"),
    ("cfg-profile-unknown-field", lambda c, d, tiny_config: bl.TrainConfig.for_profile("quick", gama=1), V,
     r"^unknown config field\(s\) \['gama'\]; the fields are \[.*'gamma'"),
    ("cfg-profile-name", lambda c, d, tiny_config: bl.TrainConfig.for_profile("medium"), V, r"^profile must be one of"),
    ("device-name", lambda c, d, tiny_config: pick_device("tpu"), V, r"^device must be 'auto', 'cpu', 'cuda\[:i\]' or 'mps'"),
    ("device-type", lambda c, d, tiny_config: pick_device(3), V, r"^device must be a string"),
    ("device-index", lambda c, d, tiny_config: pick_device("cuda:x"), V, r"^device must be 'auto', 'cpu', 'cuda\[:i\]' or 'mps'"),
    pytest.param("device-cuda-absent", lambda c, d, tiny_config: pick_device("cuda"), V, r"CUDA is not available here",
                 marks=pytest.mark.skipif(HAS_CUDA, reason="CUDA is present")),
    ("seed-negative", lambda c, d, tiny_config: bl.seed_everything(-1), V, r"^seed must be an integer in \[0, 2\*\*63\)"),
    ("seed-float", lambda c, d, tiny_config: bl.seed_everything(1.5), V, r"^seed must be an integer in \[0, 2\*\*63\)"),
]


def _api_id(row):
    return row.values[0] if hasattr(row, "values") else row[0]


@pytest.mark.parametrize("name,call,exc,pattern", API, ids=[_api_id(r) for r in API])
def test_api_refuses(ctx, digits8, tiny_config, name, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(ctx, digits8, tiny_config)


def test_profile_from_environment_refused(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "medium")
    with pytest.raises(ValueError, match=r"^BEGAN_LITE_PROFILE must be one of \('quick', 'full', 'paper-small'\)"):
        resolve_profile()


def test_numpy_numbers_make_loadable_checkpoints(tiny_config, tmp_path, digits8):
    """A config built from NumPy numbers (a sweep over np.linspace) still saves plain data."""
    cfg = tiny_config(gamma=np.float64(0.5), seed=np.int64(1), lr=np.float32(1e-3))
    tr = Trainer(cfg, digits8, run_dir=tmp_path / "r")
    tr.train(1, progress=False)
    assert ck.load_checkpoint(tmp_path / "r")["config"]["gamma"] == 0.5


# --------------------------------------------------------------------------- the command line
# (arguments, text the one-line error must contain); {tmp} is the ctx folder.
CLI = [
    (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
    (["train", "--dataset", "digits", "--out", "{tmp}/r", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["train", "--dataset", "digits", "--steps", "abc", "--out", "{tmp}/r"], "argument --steps: must be an integer, got 'abc'"),
    (["train", "--dataset", "digits", "--batch-size", "1.5", "--out", "{tmp}/r"], "argument --batch-size: must be an integer, got '1.5'"),
    (["train", "--dataset", "digits", "--lr", "fast", "--out", "{tmp}/r"], "argument --lr: must be a number, got 'fast'"),
    (["train", "--dataset", "digits", "--lr", "inf", "--out", "{tmp}/r"], "lr must be a finite number > 0, got inf"),
    (["train", "--dataset", "digits", "--lambda-k", "nan", "--out", "{tmp}/r"], "lambda_k must be a finite number >= 0"),
    (["train", "--dataset", "digits", "--gamma=-inf", "--out", "{tmp}/r"], "gamma must be a finite number in (0, 1]"),
    (["train", "--dataset", "digits", "--seed", "-1", "--out", "{tmp}/r"], "seed must be an integer in [0, 2**63)"),
    (["train", "--dataset", "digits", "--filters", "0", "--out", "{tmp}/r"], "filters must be >= 1"),
    (["train", "--dataset", "digits", "--eta", "3", "--out", "{tmp}/r"], "eta must be 1 or 2, got 3"),
    (["train", "--dataset", "digits", "--adam-betas", "0.9", "1.0", "--out", "{tmp}/r"], "adam_betas must be two numbers in [0, 1)"),
    (["train", "--dataset", "digits", "--h-dim", "0", "--out", "{tmp}/r"], "h_dim must be >= 1"),
    (["train", "--dataset", "digits", "--image-size", "4", "--out", "{tmp}/r"], "image_size must be a power of two in [8, 128]"),
    (["train", "--dataset", "digits", "--channels", "3", "--out", "{tmp}/r"], "channels: --dataset digits is grey"),
    (["train", "--dataset", "folder", "--data", "{tmp}/mixed", "--channels", "2", "--out", "{tmp}/r"], "argument --channels: invalid choice: 2"),
    (["train", "--dataset", "digits", "--objective", "wgan", "--out", "{tmp}/r"], "argument --objective: invalid choice: 'wgan'"),
    (["train", "--dataset", "digits", "--profile", "medium", "--out", "{tmp}/r"], "argument --profile: invalid choice"),
    (["train", "--dataset", "digits", "--checkpoint-every", "0", "--out", "{tmp}/r"], "checkpoint-every must be >= 1"),
    (["train", "--dataset", "digits", "--sample-every", "-1", "--out", "{tmp}/r"], "sample-every must be >= 1"),
    (["train", "--dataset", "digits", "--device", "cuda:x", "--out", "{tmp}/r"], "device must be 'auto', 'cpu', 'cuda[:i]' or 'mps'"),
    pytest.param(["train", "--dataset", "digits", "--device", "cuda", "--out", "{tmp}/r"], "CUDA is not available",
                 marks=pytest.mark.skipif(HAS_CUDA, reason="CUDA is present")),
    (["train", "--dataset", "digits"], "out: --out DIR is required"),
    (["train", "--dataset", "folder", "--data", "{tmp}/afile", "--out", "{tmp}/r"], "is not a folder"),
    (["train", "--dataset", "folder", "--data", "{tmp}/texts", "--out", "{tmp}/r"], "holds no images"),
    (["train", "--dataset", "folder", "--data", "{tmp}/fakes", "--out", "{tmp}/r"], "2 unreadable image(s)"),
    (["train", "--dataset", "digits", "--out", "{tmp}/afile/run"], "out: cannot create"),
    (["train", "--resume", "{tmp}/random.pt"], "is truncated or not a checkpoint"),
    (["train", "--resume", "{tmp}/cut.pt"], "is truncated or not a checkpoint"),
    (["train", "--resume", "{tmp}/foreign.pt"], "is not a began_lite checkpoint"),
    (["train", "--resume", "{tmp}/noconfig.pt"], "holds no valid training config"),
    (["train", "--resume", "{tmp}/badweights.pt"], "does not hold a complete training state"),
    (["train", "--resume", "{tmp}/emptydir"], "holds no checkpoint.pt"),
    (["train", "--resume", "{tmp}/evil.pt"], "is not plain data and was refused"),
    (["train", "--resume", "{tmp}/run", "--gamma", "0.3"], "gamma: --gamma cannot be combined with --resume"),
    (["train", "--resume", "{tmp}/run", "--out", "{tmp}/other"], "out: --out cannot be combined with --resume"),
    (["train", "--resume", "{tmp}/run", "--steps", "-1"], "steps must be >= 0"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.npz", "--n", "x"], "argument --n: must be an integer, got 'x'"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.npz", "--n", "-3"], "n must be >= 1"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.npz", "--seed", "1e3"], "argument --seed: must be an integer"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/afile/s.png"], "out: "),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/dir.npz"], "out must be a file path"),
    (["sample", "--checkpoint", "{tmp}/random.pt", "--out", "{tmp}/s.npz"], "is truncated or not a checkpoint"),
    (["sample", "--checkpoint", "{tmp}/foreign.pt", "--out", "{tmp}/s.npz"], "is not a began_lite checkpoint"),
    (["sample", "--checkpoint", "{tmp}/noconfig.pt", "--out", "{tmp}/s.npz"], "holds no valid training config"),
    (["sample", "--checkpoint", "{tmp}/badweights.pt", "--out", "{tmp}/s.npz"], "holds no generator matching its config"),
    (["sample", "--checkpoint", "{tmp}/emptydir", "--out", "{tmp}/s.npz"], "holds no checkpoint.pt"),
    (["evaluate"], "one of the arguments --samples --checkpoint is required"),
    (["evaluate", "--samples", "{tmp}/dir.npz"], "is not a file"),
    (["evaluate", "--samples", "{tmp}/random.npz"], "is not an .npz (the zip archive"),
    (["evaluate", "--samples", "{tmp}/noimages.npz"], "'images'"),
    (["evaluate", "--samples", "{tmp}/pickled.npz"], "samples: 'images' must hold floats in [-1, 1]"),
    (["evaluate", "--samples", "{tmp}/rgb.npz"], "images must be a non-empty tensor (N, 1, S, S)"),
    (["evaluate", "--samples", "{tmp}/empty.npz"], "images must be a non-empty tensor"),
    (["evaluate", "--samples", "{tmp}/nan.npz"], "images must be finite"),
    (["evaluate", "--samples", "{tmp}/one.npz"], "images must hold at least 2 samples"),
    # bounds on what a user types (issue 30): refused before any work, the accepted range named
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.npz", "--n", "100000000"],
     "n must be >= 1 and at most 100000 for a .npz, got 100000000"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.npz", "--n", str(2**63 - 1)], "at most 100000"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.png", "--n", "5000"], "at most 4096 for a .png"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.png", "--scale", "0"], "scale must be an integer in [1, 64]"),
    (["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/s.npz", "--seed", "-1"], "seed must be an integer in [0, 2**63)"),
    (["train", "--dataset", "digits", "--threads", "0", "--out", "{tmp}/r"], "threads must be an integer in [1, "),
    (["evaluate", "--samples", "{tmp}/uint8.npz"], "samples: 'images' must hold floats in [-1, 1] (float32, as `sample` writes), got uint8"),
    (["evaluate", "--samples", "{tmp}/five.npz"], "samples: images must lie in [-1, 1] (as `sample` writes them), got values in [5, 5]"),
    (["evaluate", "--samples", "{tmp}/huge.npz"], "declares shape (1000000000, 1, 16, 16): more than 100000 samples"),
    (["evaluate", "--checkpoint", "{tmp}/run", "--n", "1"], "n must be >= 2 and at most 100000"),
]


def _cli_id(row):
    args, expected = row.values if hasattr(row, "values") else row
    return " ".join(a for a in args[:1] + [a for a in args[1:] if a.startswith("--")][:3]) + ": " + expected[:30]


def run_main(args, capsys):
    """main() as the console runs it: (exit code, stderr)."""
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args,expected", CLI, ids=[_cli_id(r) for r in CLI])
def test_cli_refuses(ctx, args, expected, capsys):
    args = [a.format(tmp=ctx) for a in args]
    if args and args[0] == "train" and "--no-progress" not in args:
        args.append("--no-progress")
    code, err = run_main(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("args", [
    ["train", "--dataset", "digits", "--steps", "abc", "--out", "{tmp}/r"],
    ["train", "--resume", "{tmp}/evil.pt"],
    ["sample", "--checkpoint", "{tmp}/run", "--out", "{tmp}/afile/s.png"],
], ids=["argparse-type", "crafted-pickle", "out-under-a-file"])
def test_cli_real_process_one_line_no_traceback(ctx, args):
    r = subprocess.run([sys.executable, "-m", "began_lite", *[a.format(tmp=ctx) for a in args]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error:")
    assert not (ctx / "pwned").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="as root every folder is writable, so a read-only --out cannot be provoked by chmod")
def test_cli_out_not_writable(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code, err = run_main(["train", "--dataset", "digits", "--out", str(ro / "run"), *TINY], capsys)
    assert code == 4 and f"cannot write {str(ro / 'run')!r}: Permission denied (EACCES)" in err


def test_out_of_range_messages_name_range():
    """Spot check of the format every config message follows: '<field> must be <range>, got <value>'."""
    with pytest.raises(ValueError) as err:
        bl.TrainConfig(lambda_k=-1.0)
    assert str(err.value) == "lambda_k must be >= 0, got -1.0"


def test_threads_beyond_the_cpu_count_refused(ctx):
    """--threads 100000 crashed PyTorch (a segfault, issue 30): refused in one line naming the CPU count."""
    r = subprocess.run([sys.executable, "-m", "began_lite", "train", "--dataset", "digits", "--threads", "100000",
                        "--out", str(ctx / "r")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: threads must be an integer in [1, {os.cpu_count()}] (this machine's CPU " \
                               f"count), got 100000"
