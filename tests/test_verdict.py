"""The digit verdict (`python -m began_lite verdict`): the commands it runs, the numbers it reports, its refusals."""
import json
import math

import numpy as np
import pytest
import torch

from began_lite.cli import main
from began_lite.cli.verdict import seed_passes
from began_lite.evaluate import evaluate_digits

TINY = "--steps 3 --image-size 8 --filters 4 --z-dim 4 --h-dim 4 --batch-size 8 --device cpu"


def test_verdict_reports_what_evaluate_finds(tmp_path, capsys):
    out = tmp_path / "v"
    code = main(["verdict", "--seeds", "0", "--out", str(out), "--n", "40", "--train-args", TINY])
    record = json.loads((out / "verdict.json").read_text())
    (run,) = record["runs"]
    assert code == (0 if run["passes"] else 1) and record["all_pass"] == run["passes"] and record["complete"]
    # the run the verdict trained is the seed's, with the recipe's flags winning over the fixed --image-size 16
    cfg = torch.load(out / "seed0" / "checkpoint.pt", weights_only=True)["config"]
    assert (cfg["seed"], cfg["steps"], cfg["image_size"], cfg["filters"]) == (0, 3, 8, 4)
    assert run["train_summary"].startswith("done: step 3 in") and run["train_wall_seconds"] > 0
    # its report is the evaluator's, recomputed here in-process from the samples it wrote
    with np.load(out / "seed0.npz") as f:
        images = torch.from_numpy(f["images"])
    assert images.shape == (40, 1, 8, 8)
    mine = evaluate_digits(images)
    assert run["report"]["counts"] == mine["counts"]
    assert math.isclose(run["report"]["frechet"], mine["frechet"], rel_tol=1e-9)
    assert run["passes"] == seed_passes(mine, 0.2)
    printed = capsys.readouterr().out
    assert f"classes {mine['classes_covered']:2d}/10" in printed and "wrote" in printed
    # a second verdict into the same folder is refused: the runs there are not fresh
    assert main(["verdict", "--seeds", "0", "--out", str(out), "--train-args", TINY]) == 2
    assert "exists already" in capsys.readouterr().err


def test_the_pass_rule():
    even = {"counts": [100] * 10, "classes_covered": 10, "max_share": 0.1}
    assert seed_passes(even)
    assert not seed_passes({**even, "classes_covered": 9})
    assert not seed_passes({**even, "max_share": 0.21}) and seed_passes({**even, "max_share": 0.21}, max_share=0.25)


@pytest.mark.parametrize("args, message", [
    (["--train-args", "--out elsewhere"], "train_args: --out is set by the verdict itself"),
    (["--train-args=--seed=3"], "train_args: --seed is set by the verdict itself"),
    (["--train-args=--overwrite"], "train_args: --overwrite is set by the verdict itself"),
    (["--train-args=--ou x " + TINY], "unrecognized arguments: --ou x"),  # train takes no abbreviations
    (["--train-args=--lr '2e-4"], "train_args: cannot be split into flags"),
    (["--seeds", "1", "1"], "seeds must be distinct"),
    (["--seeds", "-1"], "seeds must be integers >= 0"),
    (["--n", "1"], "n must be an integer >= 2"),
    (["--max-share", "0.05"], "max_share must be a number in [0.1, 1]"),
    (["--train-args", "--gamma 2 " + TINY], "train_args: `began_lite train"),
])
def test_verdict_refuses(tmp_path, capsys, args, message):
    assert main(["verdict", "--out", str(tmp_path / "v"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    if "--gamma" in args[-1]:
        assert "gamma must be in (0, 1], got 2.0" in err  # train's own message, passed on


def test_verdict_refuses_a_file_as_its_folder(tmp_path, capsys):
    (tmp_path / "v").write_text("")
    assert main(["verdict", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: out must be a folder, but {str(tmp_path / 'v')!r} is a file"


def test_a_failed_seed_keeps_the_finished_ones(tmp_path, capsys):
    out = tmp_path / "v"
    # seed 2**63 passes the verdict's own checks but `train` refuses it: the verdict stops with train's error
    assert main(["verdict", "--seeds", "0", str(2**63), "--out", str(out), "--n", "20", "--train-args", TINY]) == 2
    assert "seed must be an integer in [0, 2**63)" in capsys.readouterr().err
    record = json.loads((out / "verdict.json").read_text())
    assert [r["seed"] for r in record["runs"]] == [0] and record["complete"] is False
