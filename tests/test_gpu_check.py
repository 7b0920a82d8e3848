"""The GPU check, in its CPU form: every stage runs (or is skipped for want of CUDA) and is
recorded, so that the one run on a GPU cannot be broken by a typo.

The CPU form runs each command in this process (runner.run_here), in seconds; the GPU form
itself is `python -m began_lite.perf.gpu_check --out DIR` on a machine with CUDA, each command in
a process of its own (runner.run_command, tested here on small commands); no test pretends to be it.
"""
import contextlib
import io
import json
import re
import sys

import pytest
import torch

from began_lite.perf import gpu_check
from began_lite.perf.gpu_check import STAGES, _bench_rows, check, format_summary
from began_lite.perf.runner import RESULT, run_command, run_here

FILES = {"gpu_check.json", "versions.log", "bench.log", "bench.json", "train.log", "history.csv", "samples.png",
         "torchrun.log"}


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = gpu_check.main(["--out", out, "--cpu"])
    return rc, printed.getvalue(), out, json.loads((out / "gpu_check.json").read_text())


def test_cpu_form_runs_every_stage(cpu_run):
    rc, printed, out, summary = cpu_run
    assert rc == 0, printed[-3000:] + json.dumps(summary["stages"], indent=1)[-3000:]
    assert summary["mode"] == "cpu" and list(summary["stages"]) == list(STAGES)
    assert summary["command"] == f"python -m began_lite.perf.gpu_check --out {out} --cpu"
    for name, rec in summary["stages"].items():
        assert rec["status"] in ("ok", "skipped"), (name, rec)
        assert isinstance(rec["seconds"], (int, float)) and rec["seconds"] >= 0
        if rec["status"] == "skipped":
            assert rec["error"], name  # a skipped stage says why
    for name in ("versions", "bench", "train", "torchrun"):
        assert summary["stages"][name]["status"] == "ok", name
    # The stages that need CUDA are skipped on the CPU, and say so.
    assert [c["status"] for c in summary["stages"]["compile"]["result"]] == ["skipped"] * 4
    nccl, train = summary["stages"]["torchrun"]["result"]
    assert nccl["status"] == "skipped" and "CUDA" in nccl["error"]
    assert train["status"] == "ok" and train["steps"] == 3 and train["checks"]["checkpoint_written"]
    assert summary["wall_s"] > 0 and summary["budget_s"] > 0
    # The table printed last names every stage.
    for name in STAGES:
        assert re.search(rf"^{name} +(ok|skipped)", printed, re.M), name


def test_cpu_form_files(cpu_run):
    """At most 8 files, no folders, plain names: what the device tool brings back."""
    _, _, out, summary = cpu_run
    names = {p.name for p in out.iterdir()}
    assert names == FILES == set(summary["files"])
    assert all(p.is_file() and re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in out.iterdir())
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss_real", "loss_fake", "k", "m_global", "step"} <= set(header)


def test_cpu_form_results(cpu_run):
    _, _, out, summary = cpu_run
    versions = summary["stages"]["versions"]["result"]
    assert versions["torch"] == torch.__version__ and versions["peak_float32_gflops"] > 0
    train = summary["stages"]["train"]["result"]
    assert train["steps"] > 0 and train["channels"].startswith("3") and "lfw_subset" in train["data"]
    assert train["checks"]["losses_finite"] and train["checks"]["k_moving"]
    # M_global is judged from 500 steps on: the CPU form's few dozen say nothing about it.
    assert "m_global_falling" not in train["checks"] or train["steps"] >= 500
    rows = summary["bench"]
    assert {r["impl"] for r in rows} == {"ours", "float32", "plain"}
    assert all(r["steps_per_s"] > 0 for r in rows)
    assert [r["ratio_to_plain"] for r in rows if r["impl"] == "plain"] == [1.0]
    assert [[r["impl"] for r in run["rows"]] for run in json.loads((out / "bench.json").read_text())["runs"]] == \
        [["float32", "ours", "plain"]]  # on the CPU one bench process (on the GPU one per variant)


def test_a_hang_a_crash_and_a_failed_check_are_recorded(tmp_path):
    log = tmp_path / "x.log"
    hang = run_command([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], log, 1)
    assert hang["status"] == "timeout" and "limit of 1 s" in hang["error"] and "started" in hang["error"]
    crash = run_command([sys.executable, "-c", "print('before'); raise ValueError('the cause')"], log, 30)
    assert crash["status"] == "failed" and crash["error"].startswith("exit code 1: ValueError: the cause\n")
    assert "before" in crash["error"] and "Traceback" in crash["error"]  # and the last lines
    said = RESULT + json.dumps({"checks": {"fine": True, "k_moving": False}})
    check_failed = run_command([sys.executable, "-c", f"print({said!r})"], log, 30)
    assert check_failed["status"] == "failed" and check_failed["error"] == "check(s) failed: k_moving"
    fine = run_command([sys.executable, "-c", f"print({said.replace('false', 'true')!r})"], log, 30)
    assert fine["status"] == "ok" and fine["result"] == {"checks": {"fine": True, "k_moving": True}}
    assert log.read_text().count("$ ") == 4  # every command is written to the log before its output


CHILD = """
import json, sys, time
print({result!r} + json.dumps({{"argv": sys.argv[1:], "checks": {{"fine": True}}}}))
time.sleep(float(sys.argv[2]))
if sys.argv[1] == "crash":
    raise ValueError("the cause")
sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else None)
"""


def test_in_process_commands_are_recorded_alike(tmp_path, monkeypatch):
    """run_here runs a `python -m` line in this process and records it as run_command would: its
    arguments, its RESULT line, its exit code, its exception with traceback, its time past the limit;
    under torchrun's launcher, the one worker's module."""
    (tmp_path / "gpu_check_child.py").write_text(CHILD.format(result=RESULT))
    monkeypatch.syspath_prepend(str(tmp_path))
    log, me = tmp_path / "x.log", [sys.executable, "-m", "gpu_check_child"]
    fine = run_here(me + ["ok", 0], log, 30)
    assert fine["status"] == "ok" and fine["result"] == {"argv": ["ok", "0"], "checks": {"fine": True}}
    assert run_here(me + [3, 0], log, 30)["error"].startswith("exit code 3")
    crash = run_here(me + ["crash", 0], log, 30)
    assert crash["status"] == "failed" and crash["error"].startswith("exit code 1: ValueError: the cause\n")
    assert "Traceback" in crash["error"]
    slow = run_here(me + ["ok", 0.3], log, 0.1)
    assert slow["status"] == "timeout" and "past its limit of 0 s" in slow["error"]
    launched = run_here([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                         "-m", "gpu_check_child", "ok", 0], log, 30)
    assert launched["status"] == "ok" and launched["result"]["argv"] == ["ok", "0"]
    assert log.read_text().count("$ ") == 5 and sys.argv[0] != "gpu_check_child"  # sys.argv given back
    with pytest.raises(ValueError, match="^env"):
        run_here(me + ["ok", 0], log, 30, {"NCCL_DEBUG": "INFO"})


def test_a_spent_budget_skips_the_next_stages(tmp_path):
    summary = check(tmp_path / "out", cpu=True, budget=0, only=("versions", "train"))
    for name in ("versions", "train"):
        rec = summary["stages"][name]
        assert rec["status"] == "skipped" and "budget" in rec["error"]
    assert "versions" in format_summary(summary)


def test_bench_ratios_come_from_the_same_run():
    row = lambda impl, sps: {"impl": impl, "image_size": 64, "batch_size": 16, "steps_per_s": sps}  # noqa: E731
    runs = [{"rows": [row("ours", 30.0), row("plain", 10.0)]}, {"rows": [row("compile", 40.0), row("plain", 20.0)]}]
    rows = _bench_rows(runs)
    assert [(r["impl"], r["ratio_to_plain"]) for r in rows] == [("plain", 1.0), ("ours", 3.0), ("compile", 2.0)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="here the command would run the GPU check")
def test_without_cuda_the_gpu_form_refuses(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == 2
    assert "--cpu" in capsys.readouterr().err


def test_the_gpu_form_commands_parse(tmp_path):
    """The GPU form's command lines (which only a GPU runs) are accepted by the parsers they meet:
    `began_lite`'s, bench's variant names, torchrun's and gpu_check's own."""
    from torch.distributed.run import get_args_parser

    from began_lite.cli import build_parser as _parser
    from began_lite.perf.bench import VARIANTS

    me = [sys.executable, "-m", "began_lite.perf.gpu_check", "--out", tmp_path]
    plan = gpu_check._commands(False, me, tmp_path)
    assert all(c is not None for cmds in plan.values() for c in cmds)  # nothing skipped on the GPU
    assert [len(plan[name]) for name in STAGES] == [1, 2, 1, 2, 4]
    for name, cmds in plan.items():
        for argv, log, env in cmds:
            argv = [str(a) for a in argv]
            assert argv[0] == sys.executable and re.fullmatch(r"[a-z]+\.log", log)
            if argv[2] == "torch.distributed.run":  # torchrun's own options, then the module and its arguments
                launcher = get_args_parser().parse_args(argv[3:])
                assert launcher.standalone and launcher.nproc_per_node == "1" and launcher.module
                argv = [sys.executable, "-m"] + [launcher.training_script] + launcher.training_script_args
            if argv[2] == "began_lite":
                args = _parser().parse_args(argv[3:])
                assert args.command in ("bench", "train")
                if args.command == "bench":
                    assert args.device == "cuda" and set(args.variants) <= set(VARIANTS) and args.filters == 128
            else:
                assert argv[2] == "began_lite.perf.gpu_check"
                assert argv[argv.index("--stage") + 1] in ("versions", "train", "nccl")
    sizes = {(tuple(a.sizes), tuple(a.batches)) for a in
             (_parser().parse_args([str(x) for x in argv[3:]]) for argv, _, _ in plan["compile"])}
    assert sizes == {((s,), (b,)) for s, b in gpu_check.GRID}  # one compile process per size and batch
