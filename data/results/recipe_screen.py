"""The recipe screen behind data/results/recipe-verdicts.json's "screen" arms (issue 16).

    python data/results/recipe_screen.py ARM SEED STEPS '{"field": value, ...}' [--every N] [--out DIR]

trains one digit BEGAN with the quick profile as it was before the shift became its default
(experiments.BEFORE_SHIFT) plus the given overrides on one thread, and every
N steps (default 500) scores 1000 samples of G itself ("raw") and of a warmed-up weight average
of G ("ema", decay min(0.999, (1+t)/(10+t)); keeping it changes no trained weight) with the
evaluator of `python -m began_lite evaluate` (fixed z, seed 12345, as chapter runs are scored).
It writes OUT/ARM-sSEED.json and prints one line. The screen is quicker than `verdict` (one
process, no checkpoint), and it scores G at several points of one run.
"""
import argparse
import json
import os
import time

import torch

from began_lite import TrainConfig, Trainer
from began_lite.experiments import BEFORE_SHIFT, _digits, provenance, score_digits

p = argparse.ArgumentParser()
p.add_argument("arm"), p.add_argument("seed", type=int), p.add_argument("steps", type=int)
p.add_argument("overrides", help="JSON object of TrainConfig fields")
p.add_argument("--every", type=int, default=500), p.add_argument("--out", default="runs/screen")
a = p.parse_args()
torch.set_num_threads(1)
ov = json.loads(a.overrides)
if "adam_betas" in ov:
    ov["adam_betas"] = tuple(ov["adam_betas"])
ov = {**BEFORE_SHIFT, "ema": 0.999, **ov}
cfg = TrainConfig.for_profile("quick", steps=a.steps, seed=a.seed, **ov)
tr = Trainer(cfg, _digits(cfg.image_size))
start, traj = time.time(), []
while tr.step < a.steps:
    tr.train(min(a.every, a.steps - tr.step), progress=False)
    point = {"step": tr.step, "ema": score_digits(tr.sample(1000, seed=12345))}
    G_ema, tr.G_ema = tr.G_ema, None  # G itself
    point["raw"] = score_digits(tr.sample(1000, seed=12345))
    tr.G_ema = G_ema
    point["k"] = float(tr.history["k"][-a.every:].mean())
    traj.append(point)
record = {"arm": a.arm, "seed": a.seed, "steps": a.steps, "overrides": ov, "config": cfg.to_dict(),
          "wall_seconds": time.time() - start, "trajectory": traj, "provenance": provenance()}
os.makedirs(a.out, exist_ok=True)
with open(os.path.join(a.out, f"{a.arm}-s{a.seed}.json"), "w") as f:
    json.dump(record, f)
show = lambda r: f"{r['classes_covered']}c {r['max_share']:.2f} F{r['frechet']:.0f}"
print(f"{a.arm} seed {a.seed} {record['wall_seconds']:.0f} s  " +
      " | ".join(f"{q['step']}: G {show(q['raw'])}, average {show(q['ema'])}" for q in traj), flush=True)
