"""What the chapters call: digit runs and their scores, the run cache, the registry of stored
experiments (each arm states its settings), the command that remakes the records, and the records."""
from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import began_lite as bl
from began_lite.chapters import registry, remake
from began_lite.chapters.records import (KERNEL_SWITCHES, RESULTS_DIR, check_rerun, cpu_id, provenance, same_computation,
                                         stored_result)
from began_lite.chapters.runs import digit_run, faces_run, holdout_split
from began_lite.config import TrainConfig

TINY = dict(image_size=8, filters=8, repeat=1, batch_size=8)


def test_digit_run_is_the_profile_and_the_overrides_nothing_else(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    trainer, _ = digit_run(1, seed=0, **TINY)
    assert trainer.config == TrainConfig.for_profile("quick", steps=1, seed=0, **TINY)
    assert (trainer.config.shift, trainer.config.ema) == (2, 0.999)  # the profile's, capped at a quarter of 8 px
    small, _ = digit_run(1, profile="paper-small", seed=0, image_size=8)
    assert small.config == TrainConfig.for_profile("paper-small", steps=1, seed=0, image_size=8)


def test_scoring_during_training_changes_nothing(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    plain, rep_plain = digit_run(6, seed=3, **TINY)
    scored, rep_scored = digit_run(6, seed=3, eval_every=3, **TINY)
    assert all(torch.equal(a, b) for a, b in zip(plain.G.state_dict().values(), scored.G.state_dict().values()))
    assert rep_plain["frechet"] == rep_scored["frechet"]
    traj = rep_scored["trajectory"]
    assert [p["step"] for p in traj] == [3, 6]
    # the last point is the final score: the same samples, the same evaluator
    assert traj[-1]["frechet"] == rep_scored["frechet"] and traj[-1]["precision"] == rep_scored["precision"]
    assert traj[-1]["m_global"] == pytest.approx(float(scored.history["m_global"][-3:].mean()))
    assert traj[-1]["grid_png"] and "raw_g" in traj[-1]  # a grid of samples; G scored without the average
    curves = rep_scored["curves"]
    assert curves["step"] == [] or curves["k"]  # 6 steps make no block of 10
    assert set(rep_scored["loss_dist"]) >= {"mean_real", "mean_fake", "w1", "quantiles_real", "quantiles_fake"}
    assert len(rep_scored["class_loss_real"]) == 10


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
    _, rep3 = digit_run(5, seed=2, **TINY)  # another seed is another run
    assert rep3["cached"] is False
    next(tmp_path.glob("*.pt")).write_bytes(b"not a checkpoint")  # a damaged entry is redone
    _, rep4 = digit_run(5, seed=1, **TINY)
    assert rep4["frechet"] == rep1["frechet"]


def test_holdout_trains_on_the_rest_and_measures_both(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_CACHE", "off")
    train, held = holdout_split(297, 8)
    assert len(train) == 1500 and len(held) == 297
    assert not any(torch.equal(h, t) for h in held[:20] for t in train)  # no held-out digit is trained on
    trainer, report = digit_run(4, seed=0, holdout=297, eval_every=2, **TINY)
    assert len(trainer.data) == 1500
    point = report["trajectory"][-1]
    assert point["loss_d_train"] > 0 and point["loss_d_heldout"] > 0
    with pytest.raises(ValueError, match=r"^holdout must be an integer in \[1, 1697\]"):
        holdout_split(1797)


def test_every_arm_states_its_profile_and_resolves_to_a_config():
    for name, exp in registry.EXPERIMENTS.items():
        for label, settings in exp.arms.items():
            assert settings["profile"] in ("quick", "paper-small"), (name, label)
            profile, run, overrides = registry.split(exp, settings)
            TrainConfig.for_profile(profile, steps=exp.steps, **overrides)  # valid


def test_profile_minus_one_undoes_exactly_one_departure():
    quick, paper = TrainConfig.for_profile("quick"), TrainConfig.for_profile("paper-small")
    arms = registry.EXPERIMENTS["profile-minus-one"].arms
    for name, fields in registry.DEPARTURES.items():
        assert all(getattr(quick, f) != getattr(paper, f) for f in fields), name  # it is a departure
        label = f"quick profile - {name}"
        if label not in arms:  # the weight average: measured in every run instead (raw_g)
            continue
        cfg = TrainConfig.for_profile("quick", **{k: v for k, v in arms[label].items() if k != "profile"})
        differ = {f for f in TrainConfig.__dataclass_fields__ if getattr(cfg, f) != getattr(quick, f)}
        assert differ == set(fields), name


def test_shared_runs_are_trained_once():
    """gamma=1.0 is the quick profile itself: one run, however the arm writes it."""
    exp = registry.EXPERIMENTS["gamma-sweep"]
    a = registry.digit_job(exp, {"profile": "quick", "gamma": 1.0}, 0)
    b = registry.digit_job(exp, {"profile": "quick"}, 0)
    assert a != b and registry.run_key_of(a) == registry.run_key_of(b)
    jobs = registry.jobs_for(["gamma-sweep", "gain", "objectives"])
    assert len(jobs) == 20 + 3 + 3  # gain's 0.01 arm and the BEGAN arm are gamma=1.0's seeds 0-2


def test_the_command_writes_records_from_finished_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.EXPERIMENTS, "tiny", registry.Experiment(
        "test", {"low": {"profile": "quick", "gamma": 0.3, **TINY}, "k=0": {"profile": "quick", "fixed_k": 0.0, **TINY}},
        steps=4, seeds=(0, 1), eval_every=2))
    args = types.SimpleNamespace(names=["tiny"], out=str(tmp_path), jobs=1, no_progress=True)
    assert remake.main(args) == 0
    rec = json.loads((tmp_path / "tiny.json").read_text())
    assert [(r["arm"], r["seed"]) for r in rec["runs"]] == [("low", 0), ("low", 1), ("k=0", 0), ("k=0", 1)]
    assert rec["runs"][0]["config"]["gamma"] == 0.3 and rec["runs"][2]["final"]["k"] == 0.0
    assert {"torch", "cpu", "cpu_capability", "git_commit", "date"} <= set(rec["provenance"])
    assert rec["command"] == f"python -m began_lite experiment tiny --out {tmp_path} --jobs 1"
    with pytest.raises(ValueError, match=r"^NAME must be 'all' or among"):
        remake.main(types.SimpleNamespace(names=["nope"], out=str(tmp_path), jobs=1, no_progress=True))


STORED = sorted(registry.EXPERIMENTS)


@pytest.mark.parametrize("name", STORED)
def test_each_stored_record_is_what_the_registry_makes_today(name):
    """Every run of a stored digit experiment has the configuration its arm names, resolved today,
    and the record's arms, seeds, budget and command are the registry's."""
    exp, record = registry.EXPERIMENTS[name], stored_result(name)
    assert record["arms"] == json.loads(json.dumps(exp.arms)) and record["seeds"] == list(exp.seeds)
    assert (record["steps"], record["eval_every"]) == (exp.steps, exp.eval_every)
    assert record["command"].startswith(f"python -m began_lite experiment {name} ")
    assert len(record["runs"]) == len(exp.arms) * len(exp.seeds)
    for run in record["runs"]:
        profile, _, overrides = registry.split(exp, exp.arms[run["arm"]])
        want = TrainConfig.for_profile(profile, steps=exp.steps, seed=run["seed"], **overrides).to_dict()
        assert run["config"] == json.loads(json.dumps(want)), (name, run["arm"], run["seed"])


@pytest.mark.parametrize("name", ["faces", "mixtures", "showcase"])  # faces-flip was not remade
def test_the_other_records_name_todays_configuration(name):
    record = stored_result(name)
    runs = record["runs"] if "runs" in record else [record]
    for run in runs:
        TrainConfig.from_dict(run["config"])  # every field is today's
        if name != "mixtures":
            assert run["config"]["profile"] == "quick" and run["config"]["shift"] > 0 and run["config"]["ema"] > 0
    if name == "faces":  # the profile's settings, resolved today, at the faces' size
        want = TrainConfig.for_profile("quick", steps=record["steps"], seed=record["seed"], image_size=32, channels=1,
                                       **{k: v for k, v in record["settings"].items() if k not in ("profile", "flip")})
        assert record["config"] == json.loads(json.dumps(want.to_dict()))
    if name == "showcase":
        sweep = stored_result("gamma-sweep")
        seed0 = next(r for r in sweep["runs"] if r["arm"] == "gamma=1.0" and r["seed"] == 0)
        assert record["config"] == seed0["config"]  # the same run as the profile's seed 0
        assert record["final"]["frechet"] == seed0["final"]["frechet"]
        G = bl.load_showcase()
        assert sum(p.numel() for p in G.parameters()) > 0


def test_stored_result_names_the_command_that_makes_it():
    with pytest.raises(FileNotFoundError, match=r"no stored result .*nope\.json.*experiment nope"):
        stored_result("nope")
    assert stored_result("gamma-sweep") == json.loads((RESULTS_DIR / "gamma-sweep.json").read_text())


def test_check_rerun_is_exact_on_the_records_machine_and_within_the_seed_spread_elsewhere(monkeypatch):
    for name in KERNEL_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    here = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_id(),
            "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__), "mkl_instructions": None}
    assert same_computation(here)[0]
    record = {"provenance": here}
    seeds = [50.0, 120.0, 80.0]  # the stored arm's seeds at the rerun's step: spread 70
    assert check_rerun(record, 50.004, 50.0, seeds) == "exact"
    with pytest.raises(AssertionError, match="not the stored result"):
        check_rerun(record, 50.01, 50.0, seeds)  # 2e-4 > 1e-4, though well inside the spread
    other = "AVX2" if here["cpu_capability"] != "AVX2" else "DEFAULT"
    for prov in ({**here, "cpu_capability": other}, {**here, "cpu": "another processor"},
                 {**here, "torch_threads": here["torch_threads"] + 1}, {**here, "torch": "0.0.0"},
                 {**here, "mkl_instructions": "AVX2"}, {k: v for k, v in here.items() if k != "cpu"},
                 {**here, "kernel_switches": {"MKL_CBWR": "AVX2"}},
                 {**here, "kernel_switches": {"ONEDNN_MAX_CPU_ISA": "SSE41"}}):
        same, why = same_computation(prov)
        assert not same and why.startswith(("recorded with another", "not recorded"))
        assert str(prov.get("cpu", "")) not in why or "cpu" not in prov  # names fields, never the machine
        assert check_rerun({"provenance": prov}, 110.0, 50.0, seeds) == "within twice the stored seeds' spread"
        assert check_rerun({"provenance": prov}, -90.0, 50.0, seeds).startswith("within")  # 140 away: the edge
        with pytest.raises(AssertionError, match="outside twice the stored seed spread"):
            check_rerun({"provenance": prov}, 191.0, 50.0, seeds)
        with pytest.raises(ValueError, match="at least 2 stored seeds"):
            check_rerun({"provenance": prov}, 50.0, 50.0, [50.0])
    prov = {**here, "cpu_capability": other}  # arrays: element by element
    assert check_rerun({"provenance": prov}, [1.0, 2.5], [1.1, 2.0], [[1.1, 2.0], [1.3, 3.0]]).startswith("within")
    with pytest.raises(AssertionError):
        check_rerun({"provenance": prov}, [1.0, 2.5], [1.1, 2.0], [[1.1, 2.0], [1.15, 3.0]])


def test_provenance_records_what_makes_a_run_reproducible(monkeypatch):
    prov = provenance()
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")  # MKL's path moved: the same processor computes otherwise
    assert same_computation(prov) == (False, "recorded with another MKL_CBWR")
    assert same_computation(provenance())[0]
    monkeypatch.delenv("MKL_CBWR")
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and prov["cpu"] == cpu_id()
    assert prov["torch_threads"] == torch.get_num_threads() and prov["torch"] == str(torch.__version__)
    assert same_computation(prov) == same_computation(json.loads(json.dumps(prov)))
    assert same_computation(prov)[0]


def test_faces_flip_trains_on_the_faces_and_their_mirror_images(monkeypatch):
    import began_lite.chapters.runs as runs

    seen = {}
    real_trainer = runs.Trainer

    def spy(config, data, **kw):
        seen["data"] = data
        return real_trainer(config, data, **kw)

    monkeypatch.setattr(runs, "Trainer", spy)
    faces = bl.load_faces(16)
    faces_run(1, image_size=16, flip=True)
    assert seen["data"].shape == (200, 1, 16, 16)
    assert torch.equal(seen["data"][:100], faces) and torch.equal(seen["data"][100:], faces.flip(-1))
    faces_run(1, image_size=16)
    assert torch.equal(seen["data"], faces)
    with pytest.raises(ValueError, match=r"^flip must be True or False, got 'yes'"):
        faces_run(1, image_size=16, flip="yes")


def test_the_verdicts_record_keeps_complete_arms_only(tmp_path):
    from began_lite.chapters import verdicts

    arms = list(verdicts.VERDICTS)
    done = {"complete": True, "rule": "all 10 classes covered", "runs": [{"seed": 5, "passes": True}]}
    for arm, result in zip(arms, (done, {**done, "complete": False})):  # the third arm: no folder at all
        folder = tmp_path / verdicts._slug(arm)
        folder.mkdir()
        (folder / "verdict.json").write_text(json.dumps(result))
    record = verdicts.verdicts_record(tmp_path)
    assert list(record["arms"]) == arms[:1] and record["not_run"] == arms[1:]
    assert record["arms"][arms[0]]["result"] == done and record["arms"][arms[0]]["command"].endswith(
        "--out runs/" + verdicts._slug(arms[0]))


def test_the_stored_showcase_run_is_the_showcase_record_and_its_generator():
    trainer, report = bl.load_showcase_run()
    record = stored_result("showcase")
    assert trainer.step == record["steps"] == len(trainer.history["k"]) and report["cached"]
    assert trainer.config.to_dict() == record["config"]
    assert {k: report[k] for k in record["final"] if k != "seconds"} == \
        {k: v for k, v in record["final"].items() if k != "seconds"}
    seed0 = next(r for r in stored_result("gamma-sweep")["runs"] if r["arm"] == "gamma=1.0" and r["seed"] == 0)
    assert float(trainer.k) == seed0["final"]["k"]  # the gamma sweep's seed 0 is the same run
    G = bl.load_showcase()  # showcase.pt: the sampling generator alone
    for name, tensor in G.state_dict().items():
        assert torch.equal(tensor, trainer.sampler.state_dict()[name]), name


def test_the_verdicts_runner_runs_arms_side_by_side_with_one_thread_each(tmp_path, monkeypatch, capsys):
    from began_lite.chapters import verdicts

    arms = {"a": {"seeds": [5], "train_args": "", "chosen_on_these_seeds": False},
            "b": {"seeds": [6], "train_args": "--shift 2", "chosen_on_these_seeds": False},
            "c": {"seeds": [7], "train_args": "", "chosen_on_these_seeds": True}}
    monkeypatch.setattr(verdicts, "VERDICTS", arms)
    (tmp_path / "runs" / "a").mkdir(parents=True)  # complete: skipped
    (tmp_path / "runs" / "a" / "verdict.json").write_text(json.dumps({"complete": True, "rule": "r"}))
    (tmp_path / "runs" / "c").mkdir()  # interrupted: set aside, run again
    (tmp_path / "runs" / "c" / "verdict.json").write_text(json.dumps({"complete": False, "rule": "r"}))
    started = []

    class FakeProcess:
        def __init__(self, cmd, env):
            started.append((cmd, env["OMP_NUM_THREADS"]))
            out = Path(cmd[cmd.index("--out") + 1])
            out.mkdir()
            (out / "verdict.json").write_text(json.dumps({"complete": True, "rule": "r"}))

        def poll(self):
            return 0

        def wait(self):
            return 0

    monkeypatch.setattr(verdicts.subprocess, "Popen", FakeProcess)
    assert verdicts.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path), "--jobs", "2"]) == 0
    assert [cmd[cmd.index("--out") + 1].rsplit("/", 1)[1] for cmd, _ in started] == ["b", "c"]
    assert {threads for _, threads in started} == {"1"}
    assert len(list((tmp_path / "runs").glob("c.interrupted-*"))) == 1
    record = json.loads((tmp_path / "verdicts.json").read_text())
    assert list(record["arms"]) == ["a", "b", "c"] and record["not_run"] == []
    with pytest.raises(SystemExit) as bad:
        verdicts.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path), "--jobs", "0"])
    assert bad.value.code == 2 and "--jobs must be an integer in [1, 64], got 0" in capsys.readouterr().err
