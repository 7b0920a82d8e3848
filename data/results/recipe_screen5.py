"""The five-seed recipe screen behind recipe-verdicts.json's "screen_5_seeds" arms (issue 16).

    python data/results/recipe_screen5.py ARM STEPS '{"field": value, ...}' [--seeds 0 1 2 3 4] [--every N]
        [--shift S] [--cutout C] [--lr-d-mult M]

trains, one after another on one thread, a digit BEGAN per seed with the quick profile as it was
before the shift and the weight average became its defaults (experiments.BEFORE_SHIFT: shift 0, no
average) plus the given TrainConfig overrides (so '{"shift": 3, "ema": 0.999}' is today's profile,
with the package's shift), and every N steps (default 1000) scores 1000 samples (z seed 12345;
the weight average of G when the overrides set ema, else G itself) with the evaluator of
`python -m began_lite evaluate`; a point passes by `verdict`'s rule. One JSON line per seed is
appended to OUT/ARM.jsonl (OUT: --out, default runs/screen5) and one line printed.

Three options are this script's own, tried before (or instead of) adding them to the package:
--shift S and --cutout C pass every image D sees, real and generated, through T: a random
shift of up to S pixels per axis (border -1) and a (2C-1)-pixel square set to -1 at a random
place (Zhao et al. 2020's "translation" and "cutout"), with offsets from torch's global
generator. The package's TrainConfig.shift (began_lite.augment.RandomShift) is the same shift
with a generator of its own, so its runs are other draws of the same recipe; `verdict` runs
use the package's. --lr-d-mult multiplies D's learning rate (a two-time-scale rule).
"""
import argparse, json, os, time, sys
import torch
from began_lite import TrainConfig, Trainer
from began_lite.experiments import BEFORE_SHIFT, _digits, score_digits
from began_lite.verdict import seed_passes
p = argparse.ArgumentParser()
p.add_argument("arm"); p.add_argument("steps", type=int); p.add_argument("overrides")
p.add_argument("--seeds", type=int, nargs="+", default=[0,1,2,3,4]); p.add_argument("--every", type=int, default=1000); p.add_argument("--out", default="runs/screen5")
p.add_argument("--lr-d-mult", type=float, default=1.0); p.add_argument("--lr-g-mult", type=float, default=1.0); p.add_argument("--shift", type=int, default=0); p.add_argument("--cutout", type=int, default=0); p.add_argument("--real-only", action="store_true")
a = p.parse_args()
torch.set_num_threads(1)
ov = json.loads(a.overrides)
if "adam_betas" in ov: ov["adam_betas"] = tuple(ov["adam_betas"])
os.makedirs(a.out, exist_ok=True)
out = os.path.join(a.out, f"{a.arm}.jsonl")
for s in a.seeds:
    cfg = TrainConfig.for_profile("quick", steps=a.steps, seed=s, **{**BEFORE_SHIFT, **ov})
    tr = Trainer(cfg, _digits(cfg.image_size))
    for g in tr.opt_d.param_groups: g["lr"] *= a.lr_d_mult
    if a.shift or a.cutout:
        import types
        obj = tr.objective; d0, g0 = obj.d_loss, obj.g_loss
        def T(x, sh=a.shift, co=a.cutout):
            B, C, H, W = x.shape
            if sh:
                xp = torch.nn.functional.pad(x, (sh, sh, sh, sh), value=-1.0)
                dy = torch.randint(0, 2 * sh + 1, (B,)); dx = torch.randint(0, 2 * sh + 1, (B,))
                rows = torch.arange(H)[None] + dy[:, None]; cols = torch.arange(W)[None] + dx[:, None]
                x = xp[torch.arange(B)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
            if co:
                cy = torch.randint(0, H, (B,)); cx = torch.randint(0, W, (B,))
                yy = torch.arange(H)[None, :, None]; xx = torch.arange(W)[None, None, :]
                keep = ~(((yy - cy[:, None, None]).abs() < co) & ((xx - cx[:, None, None]).abs() < co))
                x = torch.where(keep[:, None], x, torch.full_like(x, -1.0))
            return x
        if a.real_only:
            obj.d_loss = lambda D, real, fake: d0(D, T(real), fake)
        else:
            obj.d_loss = lambda D, real, fake: d0(D, T(real), T(fake))
            obj.g_loss = lambda D, fake: g0(D, T(fake))
    for g in tr.opt_g.param_groups: g["lr"] *= a.lr_g_mult
    t0 = time.time(); traj = []
    while tr.step < a.steps:
        tr.train(min(a.every, a.steps - tr.step), progress=False)
        r = score_digits(tr.sample(1000, seed=12345)); r["passes"] = seed_passes(r)
        traj.append({"step": tr.step, "k": float(tr.history["k"][-100:].mean()), **{k: r[k] for k in ("classes_covered","max_share","frechet","kl_from_uniform","passes","counts")}})
    rec = {"arm": a.arm, "seed": s, "steps": a.steps, "overrides": ov, "lr_d_mult": a.lr_d_mult, "lr_g_mult": a.lr_g_mult, "shift": a.shift, "cutout": a.cutout, "real_only": a.real_only, "wall": time.time()-t0, "traj": traj}
    with open(out, "a") as f: f.write(json.dumps(rec) + "\n")
    print(a.arm, s, f"{rec['wall']:.0f}s", " | ".join(f"{t['step']}: {t['classes_covered']}c {t['max_share']:.2f} F{t['frechet']:.0f} k{t['k']:.2f}{' P' if t['passes'] else ''}" for t in traj), flush=True)
