"""The candidates behind data/results/showcase-candidates.json (the showcase's choice of budget).

    python data/results/showcase_candidates.py STEPS OUT '{"field": value, ...}'

trains the showcase's settings (``began_lite.experiments.SHOWCASE`` on the quick profile, seed 0,
one thread) plus the given overrides for STEPS steps with ``showcase_record``, scoring the
weight average every 1000 steps, and writes OUT/showcase.json (and the weights and picture) as
`python -m began_lite experiment showcase` does. The four stored candidates, each within 20 minutes,
were trained before the shift joined the quick profile (SHOWCASE was then {"ema": 0.999}); with
"shift": 0 added, as here, the commands run them again:

    python data/results/showcase_candidates.py 14000 runs/A '{"shift": 0}'
    python data/results/showcase_candidates.py 14000 runs/B '{"shift": 0, "lr_ramp_start": 7000, "lr_ramp_end": 14000}'
    python data/results/showcase_candidates.py 6000 runs/C1 '{"shift": 0, "lr_ramp_start": 2000, "lr_ramp_end": 6000}'
    python data/results/showcase_candidates.py 4000 runs/C2 '{"shift": 0, "lr_ramp_start": 1000, "lr_ramp_end": 4000}'
"""
import json
import sys
from pathlib import Path

import torch

from began_lite.checkpoint import atomic_write_bytes, save_checkpoint
from began_lite.experiments import showcase_record

torch.set_num_threads(1)
steps, out, over = int(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
record, weights, png = showcase_record(steps, seed=0, eval_every=1000, **over)
record["command"] = f"python data/results/showcase_candidates.py {steps} {out} '{json.dumps(over)}'"
save_checkpoint(weights, out / "showcase.pt")
atomic_write_bytes(out / "showcase.png", png)
atomic_write_bytes(out / "showcase.json", json.dumps(record, indent=1).encode())
for p in record["trajectory"]:
    print(p["step"], round(p["frechet"], 1), p["classes_covered"], p["max_share"], round(p["k"], 3))
