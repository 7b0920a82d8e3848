"""The chapter experiments: memoised runs, score trajectories, sweeps and the `experiment` command."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from began_lite.experiments import digit_run, sweep
from began_lite.metrics import mean_pairwise_l1

TINY = dict(image_size=8, filters=8, repeat=1, batch_size=8)


def test_mean_pairwise_l1_against_a_double_loop():
    x = torch.randn(7, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    a = x.flatten(1).numpy().astype(np.float64)
    brute = np.mean([np.abs(a[i] - a[j]).mean() for i in range(7) for j in range(7) if i != j])
    assert mean_pairwise_l1(x) == pytest.approx(brute, rel=1e-12)
    assert mean_pairwise_l1(torch.ones(5, 4)) == 0.0
    with pytest.raises(ValueError, match="N >= 2"):
        mean_pairwise_l1(torch.ones(1, 4))


def test_scoring_during_training_changes_nothing(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    plain, rep_plain = digit_run(6, seed=3, **TINY)
    scored, rep_scored = digit_run(6, seed=3, eval_every=3, **TINY)
    assert all(torch.equal(a, b) for a, b in zip(plain.G.state_dict().values(), scored.G.state_dict().values()))
    assert rep_plain["frechet"] == rep_scored["frechet"]
    steps = [p["step"] for p in rep_scored["trajectory"]]
    assert steps == [3, 6]
    # the last trajectory point is the final score: the same samples, the same evaluator
    assert rep_scored["trajectory"][-1]["frechet"] == rep_scored["frechet"]
    assert rep_scored["trajectory"][-1]["m_global"] == pytest.approx(float(scored.history["m_global"][-3:].mean()))


def test_a_cached_run_is_the_same_run(monkeypatch, tmp_path):
    monkeypatch.setenv("BEGAN_LITE_CACHE", str(tmp_path))
    first, rep1 = digit_run(5, seed=1, **TINY)
    again, rep2 = digit_run(5, seed=1, **TINY)
    assert rep1["cached"] is False and rep2["cached"] is True
    assert len(list(tmp_path.glob("*.pt"))) == 1
    for a, b in zip(first.state_dict()["generator"].values(), again.state_dict()["generator"].values()):
        assert torch.equal(a, b)
    assert np.array_equal(first.history["k"], again.history["k"])
    assert rep1["frechet"] == rep2["frechet"] and torch.equal(first.sample(4, seed=0), again.sample(4, seed=0))
    other, rep3 = digit_run(5, seed=2, **TINY)  # another seed is another run
    assert rep3["cached"] is False
    (tmp_path / next(tmp_path.glob("*.pt")).name).write_bytes(b"not a checkpoint")  # damaged entries are redone
    _, rep4 = digit_run(5, seed=1, **TINY)
    assert rep4["frechet"] == rep1["frechet"]


def test_digit_run_is_the_profile_before_the_shift(monkeypatch):
    """The stored runs were made before the shift and the weight average joined the quick profile:
    digit_run leaves both out unless asked (BEFORE_SHIFT), so that a chapter's rerun is the stored computation."""
    from began_lite import TrainConfig
    from began_lite.experiments import BEFORE_SHIFT

    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    quick = TrainConfig.for_profile("quick")
    assert (quick.shift, quick.ema) != (0, 0.0) and BEFORE_SHIFT == {"shift": 0, "ema": 0.0}
    plain, _ = digit_run(1, seed=0, **TINY)
    assert (plain.config.shift, plain.config.ema) == (0, 0.0)
    asked, _ = digit_run(1, seed=0, shift=1, ema=0.9, **TINY)
    assert (asked.config.shift, asked.config.ema) == (1, 0.9)
    # everything else is the profile's
    tiny = TrainConfig.for_profile("quick", steps=1, seed=0, **TINY)
    assert plain.config.replace(**{k: getattr(tiny, k) for k in BEFORE_SHIFT}) == tiny


def test_sweep_record(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    rec = sweep({"low": {"gamma": 0.3, **TINY}, "high": {"gamma": 1.0, **TINY}}, [0], 4, eval_every=2)
    assert [(r["arm"], r["seed"]) for r in rec["runs"]] == [("low", 0), ("high", 0)]
    assert rec["runs"][0]["config"]["gamma"] == 0.3 and rec["runs"][1]["config"]["gamma"] == 1.0
    assert {"torch", "device", "git_commit", "date"} <= set(rec["provenance"])
    assert all(len(r["trajectory"]) == 2 for r in rec["runs"])
    json.dumps(rec)  # plain data
    with pytest.raises(ValueError, match="non-empty"):
        sweep({}, [0], 4)


def test_experiment_command_writes_its_record(tmp_path, capsys):
    env = {"BEGAN_LITE_CACHE": "off", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = tmp_path / "results"
    r = subprocess.run([sys.executable, "-m", "began_lite", "experiment", "objectives", "--steps", "2", "--seeds", "0",
                        "--eval-every", "1", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    rec = json.loads((out / "objectives.json").read_text())
    assert rec["experiment"] == "objectives" and rec["steps"] == 2 and len(rec["runs"]) == 2
    assert rec["command"].startswith("python -m began_lite experiment objectives --steps 2")
    # refusals, in this process (a real process's exit code and stderr are tested in test_cli)
    from began_lite.__main__ import main

    assert main(["experiment", "objectives", "--steps", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: steps must be >= 1, got 0"
    (tmp_path / "file").write_text("")
    assert main(["experiment", "objectives", "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "out must be a folder" in err and "Traceback" not in err


def test_eta_experiment_changes_only_the_loss_exponent_and_the_gain(tmp_path, capsys):
    """Chapter 5's stored `eta` experiment: the quick profile with eta = 2, at the profile's lambda_k and at ten
    times that; nothing else differs, so the quick profile's own runs (gamma-sweep, gamma=1.0) are its baseline."""
    from began_lite.__main__ import main
    from began_lite.config import TrainConfig
    from began_lite.experiments import EXPERIMENTS

    quick = TrainConfig.for_profile("quick").to_dict()
    assert EXPERIMENTS["gamma-sweep"]["gamma=1.0"] == {"gamma": quick["gamma"]}  # the baseline is the profile itself
    for arm, lambda_k in (("eta=2", quick["lambda_k"]), ("eta=2 lambda_k=0.1", 0.1)):
        cfg = TrainConfig.for_profile("quick", **EXPERIMENTS["eta"][arm]).to_dict()
        assert {k for k in cfg if cfg[k] != quick[k]} == ({"eta"} if lambda_k == quick["lambda_k"] else {"eta", "lambda_k"})
        assert cfg["eta"] == 2 and cfg["lambda_k"] == lambda_k
    # `eta`, like every stored digit experiment, is a name the command accepts: the refusal is about --steps
    for name in EXPERIMENTS:
        assert main(["experiment", name, "--steps", "0", "--out", str(tmp_path)]) == 2
        assert capsys.readouterr().err.strip() == "error: steps must be >= 1, got 0"


def test_stored_result_reads_the_record_the_command_wrote():
    from began_lite.experiments import RESULTS_DIR, stored_result

    from began_lite.experiments import BEFORE_SHIFT, EXPERIMENTS, FACES

    for name in (*EXPERIMENTS, *FACES, "mixtures", "recipe-verdicts"):  # what the chapters read
        assert stored_result(name) == json.loads((RESULTS_DIR / f"{name}.json").read_text())
    for name, arms in EXPERIMENTS.items():  # each stored digit experiment was made with today's arms and seeds 0-2
        record = stored_result(name)
        assert record["arms"] == json.loads(json.dumps(arms)) and record["seeds"] == [0, 1, 2], name
        assert record["command"].startswith(f"python -m began_lite experiment {name} "), name
        # ... before the shift: what digit_run runs (a record older than the fields has neither)
        assert all({k: r["config"].get(k, v) for k, v in BEFORE_SHIFT.items()} == BEFORE_SHIFT for r in record["runs"]), name
    for name, settings in FACES.items():  # each stored faces run with its settings
        config = stored_result(name)["config"]
        assert {k: config.get(k, v) for k, v in BEFORE_SHIFT.items()} == {**BEFORE_SHIFT, **{
            k: v for k, v in settings.items() if k in BEFORE_SHIFT}}, name
    assert stored_result("eta")["command"].startswith("python -m began_lite experiment eta ")
    with pytest.raises(FileNotFoundError, match=r"no stored result .*nope\.json.*experiment nope"):
        stored_result("nope")


def test_check_rerun_is_exact_on_the_records_machine_and_within_the_seed_spread_elsewhere():
    from began_lite.experiments import check_rerun, cpu_id, same_computation

    here = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_id(),
            "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__)}
    assert same_computation(here)[0]
    record = {"provenance": here}
    seeds = [50.0, 120.0, 80.0]  # the stored arm's seeds at the rerun's step: spread 70
    # the record's machine: exact to rel_tol, nothing looser
    assert check_rerun(record, 50.004, 50.0, seeds).startswith("exact")
    with pytest.raises(AssertionError, match="not the stored result"):
        check_rerun(record, 50.01, 50.0, seeds)  # 2e-4 > 1e-4, though well inside the spread
    # any of the four differing, or unknown (records made before issue 16 have neither cpu_capability nor cpu),
    # -> the seed spread
    other = "AVX2" if here["cpu_capability"] != "AVX2" else "DEFAULT"
    for prov in ({**here, "cpu_capability": other}, {**here, "cpu": "another processor"},
                 {**here, "torch_threads": here["torch_threads"] + 1}, {**here, "torch": "0.0.0"},
                 {k: v for k, v in here.items() if k not in ("cpu_capability", "cpu")}):
        same, why = same_computation(prov)
        assert not same and (why.startswith("recorded with") and ", here " in why
                             or why == f"not recorded: cpu_capability, cpu; here {here['cpu_capability']} kernels")
        assert check_rerun({"provenance": prov}, 110.0, 50.0, seeds).startswith("within twice the stored seeds' spread")
        assert check_rerun({"provenance": prov}, -90.0, 50.0, seeds).startswith("within")  # 140 away: the edge
        with pytest.raises(AssertionError, match="outside twice the stored seed spread"):
            check_rerun({"provenance": prov}, 191.0, 50.0, seeds)  # farther from its run than twice the seeds' range
        with pytest.raises(ValueError, match="at least 2 stored seeds"):
            check_rerun({"provenance": prov}, 50.0, 50.0, [50.0])
    # arrays: element by element
    prov = {**here, "cpu_capability": other}
    assert check_rerun({"provenance": prov}, [1.0, 2.5], [1.1, 2.0], [[1.1, 2.0], [1.3, 3.0]]).startswith("within")
    with pytest.raises(AssertionError):
        check_rerun({"provenance": prov}, [1.0, 2.5], [1.1, 2.0], [[1.1, 2.0], [1.15, 3.0]])


def test_provenance_records_what_makes_a_run_reproducible():
    from began_lite.experiments import cpu_id, provenance, same_computation

    prov = provenance()
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and prov["cpu"] == cpu_id()
    assert prov["torch_threads"] == torch.get_num_threads() and prov["torch"] == str(torch.__version__)
    assert same_computation(prov) == same_computation(json.loads(json.dumps(prov)))
    assert same_computation(prov)[0]


def test_showcase_record_stores_a_generator_that_samples_what_was_scored(tmp_path, monkeypatch):
    """The showcase's weights reload (weights_only) into a generator that draws the very samples the run scored."""
    from began_lite.checkpoint import save_checkpoint
    from began_lite.experiments import load_showcase, score_digits, showcase_record
    from began_lite.models import sample_z

    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    record, weights, png = showcase_record(4, eval_every=2, check_steps=2, check_seeds=(0, 1), **TINY, shift=2)  # 8 px: at most 2
    assert [p["step"] for p in record["trajectory"]] == [2, 4]
    assert [f["seed"] for f in record["first_steps"]] == [0, 1] and png.startswith(b"\x89PNG")
    assert record["settings"]["ema"] == 0.999 and record["config"]["ema"] == 0.999 and record["config"]["shift"] == 2
    save_checkpoint(weights, tmp_path / "showcase.pt")
    G = load_showcase(tmp_path / "showcase.pt")
    z = sample_z(1000, record["config"]["z_dim"], generator=torch.Generator().manual_seed(12345))
    with torch.no_grad():
        x = torch.cat([G(c) for c in z.split(256)]).clamp(-1, 1)
    assert score_digits(x)["frechet"] == pytest.approx(record["final"]["frechet"], rel=1e-9)


def test_the_stored_showcase_is_the_documented_one():
    from began_lite.experiments import SHOWCASE, SHOWCASE_PATH, load_showcase, stored_result

    record = stored_result("showcase")
    assert record["settings"] == json.loads(json.dumps(SHOWCASE)) and record["wall_seconds"] < 20 * 60
    assert record["command"] == (f"python -m began_lite experiment showcase --steps {record['steps']} --seeds 0 "
                                 f"--eval-every 500 --out data/results")
    assert SHOWCASE_PATH.stat().st_size < 1_000_000  # a small file
    assert sum(p.numel() for p in load_showcase().parameters()) > 0


def test_faces_flip_trains_on_the_faces_and_their_mirror_images(monkeypatch):
    import began_lite.experiments as ex
    from began_lite.data import load_faces

    seen = {}
    real_trainer = ex.Trainer

    def spy(config, data, **kw):
        seen["data"] = data
        return real_trainer(config, data, **kw)

    monkeypatch.setattr(ex, "Trainer", spy)
    faces = load_faces(16)
    ex.faces_run(1, image_size=16, flip=True)
    assert seen["data"].shape == (200, 1, 16, 16)
    assert torch.equal(seen["data"][:100], faces) and torch.equal(seen["data"][100:], faces.flip(-1))
    assert not torch.equal(faces, faces.flip(-1))  # the mirror images are new images
    ex.faces_run(1, image_size=16)
    assert torch.equal(seen["data"], faces)
    with pytest.raises(ValueError, match=r"^flip must be True or False, got 'yes'"):
        ex.faces_run(1, image_size=16, flip="yes")
    record, png = ex.faces_record(2, image_size=16, name="faces-flip")
    assert record["experiment"] == "faces-flip" and record["flip"] is True and png[:4] == b"\x89PNG"
    assert (record["config"]["shift"], record["config"]["ema"]) == (0, 0.0)  # made before the shift
    record, _ = ex.faces_record(2, image_size=16, name="faces-shift")
    assert record["flip"] is True and (record["config"]["shift"], record["config"]["ema"]) == (3, 0.999)
    assert seen["data"].shape == (200, 1, 16, 16)
    with pytest.raises(ValueError, match=r"^name must be one of \['faces', 'faces-flip', 'faces-shift'\], got 'face'"):
        ex.faces_record(2, image_size=16, name="face")
