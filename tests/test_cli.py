"""The command line: a real train -> sample -> evaluate -> resume round trip, the best and the last
checkpoint, help made from TrainConfig, no abbreviations, and every refused input."""
import argparse
import json
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import began_lite as bl
from began_lite.checkpoint import load_checkpoint
from began_lite.cli import EXIT_CODES, build_parser, main
from began_lite.cli.train_setup import profile_notice
from began_lite.config import TrainConfig, field_names
from began_lite.profiles import PROFILES

TINY = ["--image-size", "8", "--filters", "4", "--z-dim", "4", "--h-dim", "4", "--batch-size", "8",
        "--device", "cpu", "--no-progress"]


def run_cli(*args):
    """Run in a real subprocess so exit codes and stderr are what a user sees."""
    return subprocess.run([sys.executable, "-m", "began_lite", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """6 steps, saved and scored every 2: checkpoint.pt (step 6), checkpoint.prev.pt (4), best.pt."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--dataset", "digits", "--steps", "6", "--checkpoint-every", "2", "--sample-every", "2",
                 "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_run(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"checkpoint.pt", "checkpoint.prev.pt", "best.pt", "history.csv", "history.json", "config.json",
            "samples"} <= names
    assert load_checkpoint(trained_run)["step"] == 6 and load_checkpoint(trained_run / "checkpoint.prev.pt")["step"] == 4
    assert sorted(p.name for p in (trained_run / "samples").iterdir()) == [f"step_000000{s}.png" for s in (2, 4, 6)]


def test_best_is_the_evaluators_best(trained_run):
    """best.pt's score is the evaluator's Frechet distance of its samples, and no saved state scores lower."""
    from began_lite.chapters.runs import SAMPLE_SEED
    from began_lite.cli.sample import draw
    from began_lite.evaluate import evaluate_digits

    score = load_checkpoint(trained_run / "best.pt")["score"]
    assert score["step"] in (2, 4, 6) and (score["n"], score["seed"]) == (1000, SAMPLE_SEED)
    for name in ("best.pt", "checkpoint.pt", "checkpoint.prev.pt"):
        _, x = draw(trained_run / name, 1000, SAMPLE_SEED)
        frechet = evaluate_digits(x.clamp(-1, 1))["frechet"]
        if name == "best.pt":
            assert frechet == pytest.approx(score["frechet"], rel=1e-9)
        else:
            assert frechet >= score["frechet"] - 1e-9, name


def _images(npz):
    with np.load(npz) as f:
        return f["images"]


def test_sample_takes_the_best_or_the_last(trained_run, tmp_path, capsys):
    runs = {"last": [str(trained_run)], "last-file": [str(trained_run / "checkpoint.pt")],
            "best": [str(trained_run), "--best"], "best-file": [str(trained_run / "best.pt")]}
    for name, where in runs.items():
        assert main(["sample", "--checkpoint", *where, "--n", "10", "--out", str(tmp_path / f"{name}.npz")]) == 0
    same = {name: _images(tmp_path / f"{name}.npz") for name in runs}
    assert np.array_equal(same["last"], same["last-file"]) and np.array_equal(same["best"], same["best-file"])
    assert same["last"].shape == (10, 1, 8, 8) and same["last"].dtype == np.float32
    assert same["last"].min() >= -1 and same["last"].max() <= 1
    best_step = load_checkpoint(trained_run / "best.pt")["score"]["step"]
    assert np.array_equal(same["best"], same["last"]) == (best_step == 6)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(trained_run / "best.pt"), "--best", "--out", str(tmp_path / "x.npz")]) == 2
    assert "best: --best takes a run folder" in capsys.readouterr().err


def test_sample_png_is_upscaled_for_reading(trained_run, tmp_path):
    """4 digits of 8 px in a 2x2 grid (17 px with the 1 px gaps), each pixel repeated 6 times: 48 px a digit."""
    png = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(trained_run), "--n", "4", "--out", str(png)]) == 0
    assert Image.open(png).size == (17 * 6, 17 * 6)
    assert main(["sample", "--checkpoint", str(trained_run), "--n", "4", "--out", str(png), "--scale", "2"]) == 0
    assert Image.open(png).size == (34, 34)
    grid = np.asarray(Image.open(png))
    assert (grid[0::2, 0::2] == grid[1::2, 1::2]).all()  # nearest: each pixel a 2x2 block


def test_resume_continues_exactly(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "--dataset", "digits", "--steps", "8", "--out", str(straight), *TINY]) == 0
    assert main(["train", "--dataset", "digits", "--steps", "4", "--out", str(split), *TINY]) == 0
    assert main(["train", "--resume", str(split), "--steps", "8", "--no-progress"]) == 0  # the total
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["step"] == b["step"] == 8 and a["k"] == b["k"]
    assert all(torch.equal(a["generator"][n], b["generator"][n]) for n in a["generator"])


def test_flags_reach_the_run(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--dataset", "digits", "--steps", "4", "--out", str(out), "--eta", "2", "--lr", "1e-3",
                 "--adam-betas", "0.8", "0.99", "--no-tanh-output", "--margin", "0.5", *TINY]) == 0
    state = load_checkpoint(out)
    cfg = state["config"]
    assert (cfg["eta"], cfg["lr"], cfg["adam_betas"], cfg["tanh_output"], cfg["margin"]) == (2, 1e-3, [0.8, 0.99],
                                                                                              False, 0.5)
    assert state["opt_d"]["param_groups"][0]["betas"] == (0.8, 0.99)  # the optimisers use them
    for flag in (["--eta", "1"], ["--adam-betas", "0.5", "0.999"], ["--tanh-output"], ["--no-tanh-output"]):
        assert main(["train", "--resume", str(out), *flag, "--no-progress"]) == 2  # a new run's setting


def test_evaluate_explains_and_gives_references(trained_run, tmp_path, capsys):
    from began_lite.chapters.records import stored_result
    from began_lite.classifier import load_digit_classifier
    from began_lite.evaluate import digit_features, frechet_distance

    npz = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(trained_run), "--n", "50", "--out", str(npz)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--samples", str(npz), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the real digits' own score, recomputed: two disjoint halves of a seeded split, one against the other
    real, (clf, _) = bl.load_digits(8), load_digit_classifier()
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    halves = [digit_features(clf, real[p]) for p in (perm[:898], perm[898:])]
    assert report["reference"]["real_halves_frechet"] == pytest.approx(frechet_distance(*halves), rel=1e-9)
    stored = [r["report"]["frechet"] for r in stored_result("verdicts")["arms"]["defaults, seeds 5-9"]["result"]["runs"]]
    assert report["reference"]["quick_profile_verdict"]["median_frechet"] == statistics.median(stored)
    assert main(["evaluate", "--checkpoint", str(trained_run), "--n", "50"]) == 0  # the same, from the run
    text = capsys.readouterr().out
    assert f"Frechet distance to real digits {report['frechet']:.2f} (lower is better" in text
    assert "a class is covered when at least 2% of the confident samples (classifier p >= 0.9;" in text
    assert f"score {report['reference']['real_halves_frechet']:.2f} against each other" in text


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_abbreviations_are_refused(capsys):
    assert all(p.allow_abbrev is False for p in _parsers(build_parser()))
    for args in (["train", "--dataset", "digits", "--step", "30", "--out", "x"],  # not --steps
                 ["sample", "--checkpoint", "r", "--out", "x.png", "--sca", "2"]):  # not --scale
        with pytest.raises(SystemExit) as exit_:
            main(args)
        bad = next(a for a in args if a in ("--step", "--sca"))
        assert exit_.value.code == 2
        assert capsys.readouterr().err.strip().startswith(f"error: unrecognized arguments: {bad} ")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"began_lite {bl.__version__}\n"


def test_no_command_prints_usage_and_where_to_look():
    r = run_cli()
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines[0].startswith("usage: python -m began_lite")
    assert lines[-1] == "error: no command given; try `python -m began_lite --help`" and "Traceback" not in r.stderr


def _train_parser():
    return next(p for p in _parsers(build_parser()) if p.prog.endswith(" train"))


def _value(v) -> str:
    """How help shows a value (written out here again, not imported)."""
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (tuple, list)):
        return " ".join(_value(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def test_every_train_flag_has_help_with_each_profiles_value():
    actions = [a for a in _train_parser()._actions if a.option_strings and a.dest != "help"]
    assert all(a.help and len(a.help) > 20 for a in actions), [a.dest for a in actions if not a.help]
    docs = {f.name: f.metadata["doc"] for f in bl.TrainConfig.__dataclass_fields__.values()}
    by_dest = {a.dest: a for a in actions}
    assert set(field_names(cli=True)) <= set(by_dest)  # one flag per cli field, none hand-kept
    assert set(field_names(cli=False)) & set(by_dest) == {"channels", "profile"}  # run flags of their own
    for name in field_names(cli=True):
        text = by_dest[name].help.replace("%%", "%")
        assert by_dest[name].option_strings[0] == "--" + name.replace("_", "-") and text.startswith(docs[name])
        values = [_value(getattr(TrainConfig.for_profile(p), name)) for p in PROFILES]
        expected = [f"every profile {values[0]}"] if len(set(values)) == 1 else [f"{p} {v}" for p, v in
                                                                                  zip(PROFILES, values)]
        assert all(e in text for e in expected), (name, text, expected)


def test_train_help_is_grouped_with_examples_and_exit_codes():
    text = _train_parser().format_help()
    titles = ["\nessential: what", "\nthe objective (", "\nthe networks (", "\noptimisation (", "\nsystem: ",
              "\nexamples:\n"]
    at = [text.index(t) for t in titles]
    assert at == sorted(at), at
    text = text[text.index("\noptions:"):]  # after the usage line
    assert text.index("--dataset") < text.index("--steps") < text.index("--gamma") < text.index("--image-size")
    top = build_parser().format_help()
    assert all(f"  {code:>3}  {meaning}\n" in top for code, meaning in EXIT_CODES.items()), top


def test_a_notice_when_a_gpu_chose_the_full_profile(monkeypatch):
    monkeypatch.delenv("BEGAN_LITE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    full = TrainConfig.for_profile(None)
    assert full.profile == "full"
    notice = profile_notice(argparse.Namespace(profile=None), full)
    assert notice.startswith("notice: a GPU is present, so this run takes the full profile") and "100000 steps" in notice
    assert profile_notice(argparse.Namespace(profile="full"), full) is None  # asked for: no notice
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "full")
    assert profile_notice(argparse.Namespace(profile=None), full) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("BEGAN_LITE_PROFILE")
    assert profile_notice(argparse.Namespace(profile=None), TrainConfig.for_profile(None)) is None


def test_progress_in_a_file_is_lines(tmp_path, capsys):
    """stderr is not a terminal here (as when redirected to a file): a plain line every --log-every steps."""
    args = [a for a in TINY if a != "--no-progress"]
    assert main(["train", "--dataset", "digits", "--steps", "4", "--log-every", "2", "--out", str(tmp_path / "r"),
                 *args]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 2/4", "step 4/4"] and "steps/s" in lines[0]


def _folder_with_bad_image(tmp_path):
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
    (["train", "--dataset", "digits", "--image-size", "24", "--out", "{tmp}/r"],
     "image_size must be a power of two in [8, 128]"),
    (["train", "--dataset", "digits", "--image-size", "256", "--out", "{tmp}/r"],
     "image_size must be a power of two in [8, 128]"),
    (["train", "--dataset", "digits", "--batch-size", "0", "--out", "{tmp}/r"], "batch_size must be >= 1"),
    (["train", "--dataset", "digits", "--z-dim", "0", "--out", "{tmp}/r"], "z_dim must be >= 1"),
    (["train", "--dataset", "digits", "--steps", "-5", "--out", "{tmp}/r"], "steps must be >= 0"),
    (["train", "--dataset", "digits", "--gamma", "abc", "--out", "{tmp}/r"], "--gamma"),
    (["train", "--dataset", "mnist", "--out", "{tmp}/r"], "--dataset"),
    (["train", "--dataset", "folder", "--out", "{tmp}/r"], "--data DIR"),
    (["train", "--dataset", "folder", "--data", "{tmp}/missing", "--out", "{tmp}/r"], "does not exist"),
    (["train", "--dataset", "folder", "--data", "{tmp}/empty", "--out", "{tmp}/r"], "holds no images"),
    (["train", "--dataset", "folder", "--data", "{tmp}/imgs", "--out", "{tmp}/r"], "broken.jpg"),
    (["train", "--dataset", "digits", "--data", "{tmp}/imgs", "--out", "{tmp}/r"],
     "data: --data applies to --dataset folder only"),
    (["train", "--dataset", "digits", "--out", "{tmp}/afile"], "out must be a folder"),
    (["train", "--dataset", "digits", "--device", "tpu", "--out", "{tmp}/r"], "device must be"),
    (["train", "--out", "{tmp}/r"], "dataset"),
    (["train", "--dataset", "mixture", "--mixture", "spiral", "--out", "{tmp}/r"], "--mixture"),
    (["train", "--dataset", "digits", "--mixture", "grid", "--out", "{tmp}/r"],
     "--mixture applies to --dataset mixture only"),
    (["train", "--resume", "{tmp}/missing.pt"], "does not exist"),
    (["train", "--resume", "{tmp}/truncated.pt"], "truncated"),
    (["sample", "--checkpoint", "{tmp}/missing", "--out", "{tmp}/s.npz"], "does not exist"),
    (["sample", "--checkpoint", "{tmp}/truncated.pt", "--out", "{tmp}/s.npz"], "truncated"),
    (["sample", "--checkpoint", "{tmp}/evil.pt", "--out", "{tmp}/s.npz"], "not plain data"),
    (["sample", "--checkpoint", "{tmp}/truncated.pt", "--n", "0", "--out", "{tmp}/s.npz"], "n must be >= 1"),
    (["sample", "--checkpoint", "{tmp}/truncated.pt", "--out", "{tmp}/s.jpg"], "out must end in .png or .npz"),
    (["sample", "--checkpoint", "{tmp}", "--best", "--out", "{tmp}/s.png"], "holds no best.pt"),
    (["evaluate", "--samples", "{tmp}/missing.npz"], "samples"),
    (["evaluate", "--samples", "{tmp}/missing.npz", "--checkpoint", "{tmp}"], "not allowed with argument"),
    (["evaluate"], "one of the arguments --samples --checkpoint is required"),
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

    torch.save({"format": "began_lite.checkpoint/2", "x": Evil()}, tmp / "evil.pt")
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
    left = (bad_inputs_dir / "r").exists()
    shutil.rmtree(bad_inputs_dir / "r", ignore_errors=True)  # so that one row's leftover fails that row alone
    assert not left, "a refused run left a folder behind"


@pytest.mark.parametrize("args", [["train", "--dataset", "digits", "--gamma", "2", "--out", "x"],
                                  ["sample", "--checkpoint", "{tmp}/evil.pt", "--out", "{tmp}/s.npz"]])
def test_real_process_exit_code_and_no_traceback(bad_inputs_dir, args):
    r = run_cli(*[a.format(tmp=bad_inputs_dir) for a in args])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
    assert not (bad_inputs_dir / "pwned").exists()


def test_the_readme_lists_every_exit_code():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("| code | meaning |"):].split("\n\n")[0]  # the table, to its blank line
    listed = [int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.M)]
    assert listed == sorted(EXIT_CODES)
