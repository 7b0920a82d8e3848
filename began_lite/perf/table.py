"""The benchmark's result as text: the table ``bench`` prints, and each row's ratio to the plain step."""
from __future__ import annotations

__all__ = ["format_table", "ratio_lines", "COLUMNS"]

# (header, Row field, format) of the table's measured columns
COLUMNS = (("steps/s", "steps_per_s", "9.3f"), ("img/s", "images_per_s", "9.1f"),
           ("faults/step", "faults_per_step", "11.0f"), ("GFLOP/step", "gflop_per_step", "10.2f"),
           ("GFLOP/s", "gflop_per_s", "9.1f"), ("%peak", "peak_percent", "6.1f"), ("peak", "peak_name", ">8s"),
           ("MiB", "memory_mib", "7.0f"), ("1st s", "first_step_s", "7.2f"), ("n", "timed_steps", "4d"))


def format_table(result: dict) -> str:
    """The benchmark as a text table, with the peaks above and the ratios to the plain step below."""
    m = result["machine"]
    lines = [f"began_lite bench: torch {m['torch']}; CPU {m['cpu']} ({m['cpu_count']} cores, {m['threads']} threads); "
             f"{m.get('libc', '?')}" + (f"; GPU {m['gpu']}" if m.get("gpu") else "")]
    for dev, peaks in result["peaks"].items():
        lines.append(f"peak matmul on {dev}: " + ", ".join(f"{k} {v:,.1f} GFLOP/s" for k, v in peaks.items()))
    width = {h: len(format(0 if f[-1] != "s" else "", f)) for h, _, f in COLUMNS}
    head = f"{'device':8s} {'size':>4s} {'batch':>5s} {'impl':9s} {'malloc':8s} " + " ".join(
        f"{h:>{width[h]}s}" for h, _, _ in COLUMNS)
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        r = {**r, "peak_percent": None if r["peak_fraction"] is None else 100 * r["peak_fraction"]}
        lines.append(f"{r['device']:8s} {r['image_size']:4d} {r['batch_size']:5d} {r['impl']:9s} {r['malloc']:8s} "
                     + (r["note"] or " ".join("-".rjust(width[h]) if r[k] is None else format(r[k], f)
                                              for h, k, f in COLUMNS)))
    ratios = ratio_lines(result)
    return "\n".join(lines + ([""] + ratios if ratios else []))


def ratio_lines(result: dict) -> list[str]:
    """'ratio <impl> (<malloc>)/plain (default) steps/s at <device> <size> px batch <b>: <x>' for every
    measured row: each against the plain step with malloc as it comes, the baseline."""
    rows = [r for r in result["rows"] if not r["note"]]
    plain = {(r["device"], r["image_size"], r["batch_size"]): r for r in rows
             if r["impl"] == "plain" and r["malloc"] == "default"}
    return [f"ratio {r['impl']} ({r['malloc']})/plain (default) steps/s at {r['device']} {r['image_size']} px batch "
            f"{r['batch_size']}: {r['steps_per_s'] / p['steps_per_s']:.2f}x"
            for r in rows if (p := plain.get((r["device"], r["image_size"], r["batch_size"]))) not in (None, r)]
