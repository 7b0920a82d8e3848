r"""Sliders that work in the static HTML book: Plotly figures over precomputed or stored results.

Every slider goes through one helper, :func:`_slider`: a base figure, one or two sliders, and one
*frame* per combination of their positions (row-major, the last slider fastest):
``{"traces": [i, ...], "data": {attr: [value per trace]}, "layout": {key: value}}``, applied by
``Plotly.update`` when a slider moves. Plotly's own sliders each step through one list of frames;
two parameters (a mean *and* a spread) need their product: the inline JavaScript below.

A :class:`Slider` displays as HTML: a ``<div>`` with a fixed id (``began-slider-NAME``), the figure
as JSON and that script, numbers to four significant digits (the same HTML on every machine: nbval
compares it). The page must load ``plotly.min.js``: the book does where a slider is (``book/_ext``).
"""
from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np

__all__ = ["Slider", "gaussian_w2", "controller", "gamma_sweep", "training_run"]

COLUMN_PX = 730  # the book's text column: figures are laid out for this width
_AXIS_PX, _SLIDER_PX = 60, 85  # below the plots: their axis titles, then each slider (label, rail, ticks)
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
_FALLBACK = "This slider is drawn by plotly.min.js, which the built book loads (make book); here it is not."
_SCRIPT = """(function () {
  var spec = %s;
  function draw() {  // once, when Plotly is there; then each slider move applies its frame
    var gd = document.getElementById(spec.id);
    if (!gd || !window.Plotly || gd.getAttribute("data-drawn")) { return; }
    gd.setAttribute("data-drawn", "1"); gd.textContent = "";
    Plotly.newPlot(gd, spec.data, spec.layout, spec.config).then(function () {
      gd.on("plotly_sliderchange", function () {
        var i = 0;
        gd.layout.sliders.forEach(function (s, n) { i = i * spec.shape[n] + s.active; });
        Plotly.update(gd, spec.frames[i].data, spec.frames[i].layout, spec.frames[i].traces);
      });
    });
  }
  if (window.Plotly) { draw(); } else { window.addEventListener("load", draw); }
})();"""


class Slider:
    """A Plotly figure with sliders over precomputed frames; displays as HTML (no kernel needed)."""

    def __init__(self, name: str, figure: dict, frames: list[dict], axes: list[tuple[str, list[str]]]):
        self.name, self.figure, self.frames, self.axes = name, figure, frames, axes
        self.div_id = f"began-slider-{name}"

    def spec(self) -> dict:
        """What the page's script receives: the figure, the frames and the sliders' sizes."""
        return {"id": self.div_id, **self.figure, "frames": self.frames, "shape": [len(v) for _, v in self.axes],
                "config": {"displayModeBar": False, "responsive": True}}

    def _repr_html_(self) -> str:
        code = json.dumps(self.spec(), separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
        height = self.figure["layout"]["height"]
        # sample grids are shown larger than drawn: keep their pixels sharp (nearest neighbour)
        return (f'<style>#{self.div_id} image {{image-rendering: pixelated;}}</style>\n'
                f'<div class="began-slider" id="{self.div_id}" style="width:100%;max-width:{COLUMN_PX}px;'
                f'min-height:{height}px">{_FALLBACK}</div>\n<script>\n{_SCRIPT % code}\n</script>')

    def __repr__(self) -> str:
        over = " x ".join(f"{re.sub('<[^>]+>', '', label)} ({len(values)} values)" for label, values in self.axes)
        return f"Slider {self.name!r}: {len(self.frames)} frames over {over}"


def _r(values) -> list | float:
    """Four significant digits (the same text on every machine), as JSON-ready floats."""
    if np.ndim(values) == 0:
        return float(f"{float(values):.4g}")
    return [float(f"{float(v):.4g}") for v in np.ravel(values)]


def _slider(name: str, *, data: list, layout: dict, axes: list, frame, start: tuple, plot_px: int) -> Slider:
    """The one helper: frames for every combination of positions, the figure shown at ``start``.

    ``axes``: ``[(label, [value label, ...]), ...]``, one per slider; ``frame(i, j, ...)`` returns
    the frame at those positions; ``plot_px``: the plots' height. The base figure gets the frame
    at ``start`` applied, so that the static HTML shows what the sliders say.
    """
    shape = [len(values) for _, values in axes]
    frames = [frame(*index) for index in itertools.product(*map(range, shape))]
    first = frames[int(np.ravel_multi_index(start, shape))]
    data = [dict(trace) for trace in data]
    for attr, values in first["data"].items():
        for t, value in zip(first["traces"], values):
            data[t][attr] = value
    margin = {"l": 55, "r": 15, "t": 80, "b": _AXIS_PX + _SLIDER_PX * len(axes)}  # title and legend above
    sliders = [{"active": a, "len": 1.0, "x": 0.0, "y": -(_AXIS_PX + _SLIDER_PX * n) / plot_px,
                "yanchor": "top", "pad": {"t": 0, "b": 0},
                "currentvalue": {"prefix": f"{label} = ", "font": {"size": 13}},
                "steps": [{"label": v, "method": "skip", "args": [None]} for v in values]}
               for n, ((label, values), a) in enumerate(zip(axes, start))]
    layout = {"height": plot_px + margin["t"] + margin["b"], "margin": margin, "font": {"size": 12},
              "legend": {"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"}, "plot_bgcolor": "white",
              "paper_bgcolor": "white", **layout, **first["layout"], "sliders": sliders}
    return Slider(name, {"data": data, "layout": layout}, frames, axes)


def _title(text: str) -> dict:
    return {"text": text, "font": {"size": 14}, "x": 0.0, "xref": "paper", "xanchor": "left"}


def _axis(title: str, domain, **kw) -> dict:
    return {"title": {"text": title}, "domain": list(domain), "gridcolor": "#e5e5e5", "zeroline": False,
            "linecolor": "#444", "showline": True, **kw}


def _grid(values, name: str, *, positive: bool = False) -> list[float]:
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        a = np.array([])
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or (positive and np.any(a <= 0)):
        raise ValueError(f"{name} must be a non-empty list of finite numbers{' > 0' if positive else ''}, "
                         f"got {values!r}")
    return [float(v) for v in a]


def _at(grid: list[float], value, name: str) -> int:
    hits = [i for i, v in enumerate(grid) if isinstance(value, (int, float)) and math.isclose(v, value, abs_tol=1e-9)]
    if not hits:
        raise ValueError(f"{name} must be one of the grid's values {grid}, got {value!r}")
    return hits[0]


def gaussian_w2(*, m1: float = 0.0, s1: float = 1.0, means=tuple(np.arange(-2.0, 4.01, 0.5)),
                spreads=tuple(np.arange(0.25, 2.51, 0.25)), start_m2: float = 2.0, start_s2: float = 0.5) -> Slider:
    r""":math:`W_2` between :math:`N(m_1, \sigma_1^2)` (fixed) and :math:`N(m_2, \sigma_2^2)`: a
    slider for :math:`m_2` and one for :math:`\sigma_2` (every pair of the two grids precomputed).

    In 1-D :math:`W_2^2 = (m_1 - m_2)^2 + (\sigma_1 - \sigma_2)^2` depends only on the differences, so
    moving the second Gaussian shows every case. Left: both densities; right: the two terms of W2^2.
    """
    from .wasserstein import gaussian_w2_terms

    means, spreads = _grid(means, "means"), _grid(spreads, "spreads", positive=True)
    (m1,), (s1,) = _grid([m1], "m1"), _grid([s1], "s1", positive=True)
    start = _at(means, start_m2, "start_m2"), _at(spreads, start_s2, "start_s2")
    u = np.linspace(-4, 4, 41)  # each density on its own +-4 sigma: smooth at every spread
    pdf = np.exp(-u**2 / 2) / math.sqrt(2 * math.pi)
    terms_max = max(max((m1 - m) ** 2 for m in means), max((s1 - s) ** 2 for s in spreads))

    def frame(i, j):
        m2, s2 = means[i], spreads[j]
        t = gaussian_w2_terms(m1, s1**2, m2, s2**2)
        title = (f"W<sub>2</sub> = √({t.mean:.2f} + {t.covariance:.2f}) = {t.distance:.2f} between "
                 f"N({m1:g}, {s1:g}²) and N({m2:g}, {s2:g}²)")
        return {"traces": [1, 2], "layout": {"title": _title(title)},
                "data": {"x": [_r(m2 + s2 * u), ["(m₁−m₂)²", "(σ₁−σ₂)²"]], "y": [_r(pdf / s2), _r(t)]}}

    line = {"type": "scatter", "mode": "lines"}
    data = [{**line, "name": f"N({m1:g}, {s1:g}²)", "x": _r(m1 + s1 * u), "y": _r(pdf / s1),
             "line": {"color": COLOURS[0], "width": 2}},
            {**line, "name": "N(m₂, σ₂²)", "line": {"color": COLOURS[1], "width": 2}},
            {"type": "bar", "xaxis": "x2", "yaxis": "y2", "showlegend": False, "marker": {"color": COLOURS[2:4]}}]
    layout = dict(xaxis=_axis("value x", (0, 0.62), range=[min(means[0], m1) - 3 * s1, max(means[-1], m1) + 3 * s1]),
                  yaxis=_axis("density", (0, 1), range=[0, _r(1.05 * pdf.max() / min(spreads + [s1]))]),
                  xaxis2=_axis("", (0.75, 1), anchor="y2"),
                  yaxis2=_axis("contribution to W<sub>2</sub>²", (0, 1), anchor="x2", range=[0, _r(1.05 * terms_max)]))
    axes = [("m₂", [f"{m:g}" for m in means]), ("σ₂", [f"{s:g}" for s in spreads])]
    return _slider("gaussian-w2", data=data, layout=layout, axes=axes, frame=frame, start=start, plot_px=210)


def controller(*, lambda_ks=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), gammas=(0.3, 0.5, 0.7, 1.0),
               steps: int = 1500, every: int = 5, loss_real: float = 0.1, push: float = 0.003,
               noise: float = 0.0, start_lambda_k: float = 0.3, start_gamma: float = 0.5) -> Slider:
    r""":func:`began_lite.equilibrium.simulate_controller` over :math:`\lambda_k` and :math:`\gamma`.

    Left: :math:`\mathcal{L}(G)` and its target :math:`\gamma \mathcal{L}(x)`; right: :math:`k_t`
    and its balance point :math:`k^*`; every ``every``-th step of each simulation (one per pair).
    """
    from .equilibrium import simulate_controller

    lambda_ks, gammas = _grid(lambda_ks, "lambda_ks", positive=True), _grid(gammas, "gammas", positive=True)
    for name, v, hi in (("steps", steps, 10**6), ("every", every, steps)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"{name} must be an integer in [1, {hi}], got {v!r}")
    start = _at(lambda_ks, start_lambda_k, "start_lambda_k"), _at(gammas, start_gamma, "start_gamma")
    sims = {(i, j): simulate_controller(g, lk, steps, loss_real=loss_real, push=push, noise=noise)
            for i, lk in enumerate(lambda_ks) for j, g in enumerate(gammas)}

    def frame(i, j):
        r, target = sims[i, j], gammas[j] * loss_real
        outside = np.nonzero(np.abs(r["loss_fake"] - target) > 0.05 * target)[0]  # the steps off by over 5 %
        when = 0 if outside.size == 0 else int(outside[-1]) + 1
        found = f"settles (within 5 %) from step {when}" if when < steps else f"not settled in {steps} steps"
        return {"traces": [0, 1, 2, 3], "layout": {"title": _title(f"λ<sub>k</sub> = {lambda_ks[i]:g}, "
                                                                   f"γ = {gammas[j]:g}: L(G) {found}")},
                "data": {"y": [_r(r["loss_fake"][::every]), _r([target] * 2), _r(r["k"][::every]),
                               _r([min(r["k_star"], 1.0)] * 2)]}}

    line, t = {"type": "scatter", "mode": "lines"}, np.arange(0, steps, every).tolist()
    data = [{**line, "name": "L(G)", "x": t, "line": {"color": COLOURS[0]}},
            {**line, "name": "target γ L(x)", "x": [0, steps], "line": {"color": "black", "dash": "dash"}},
            {**line, "name": "k<sub>t</sub>", "x": t, "xaxis": "x2", "yaxis": "y2", "line": {"color": COLOURS[1]}},
            {**line, "name": "k* (balance)", "x": [0, steps], "xaxis": "x2", "yaxis": "y2",
             "line": {"color": COLOURS[3], "dash": "dot"}}]
    top = 1.05 * max(r["loss_fake"].max() for r in sims.values())
    layout = dict(xaxis=_axis("step", (0, 0.45)), yaxis=_axis("L(G)", (0, 1), range=[0, _r(top)]),
                  xaxis2=_axis("step", (0.57, 1), anchor="y2"),
                  yaxis2=_axis("k<sub>t</sub>", (0, 1), anchor="x2", range=[0, 1.02]))
    axes = [("λ<sub>k</sub>", [f"{v:g}" for v in lambda_ks]), ("γ", [f"{v:g}" for v in gammas])]
    return _slider("controller", data=data, layout=layout, axes=axes, frame=frame, start=start, plot_px=210)


def _record(record) -> dict:
    """A stored record: its name (read with :func:`~began_lite.chapters.records.stored_result`) or the dict."""
    if isinstance(record, str):
        from .chapters.records import stored_result
        record = stored_result(record)
    if not isinstance(record, dict) or not isinstance(record.get("runs"), list) or not record["runs"]:
        raise ValueError(f"record must be a stored record (a dict with a non-empty list 'runs') or its name, "
                         f"got {type(record).__name__}")
    return record


def _arm(record: dict, arm, seed) -> tuple[list[dict], dict]:
    """The arm's runs that trained to the end (a diverged run stores no curves) and the run whose
    samples are shown (``seed``, or the arm's first), which must store a grid at every scored step."""
    runs = [r for r in record["runs"] if r.get("arm") == arm]
    if not runs:
        raise ValueError(f"arm must be one of {sorted({r.get('arm') for r in record['runs']})}, got {arm!r}")
    runs = [r for r in runs if "diverged" not in r.get("final", {})]
    for r in runs:
        if not all(k in r.get("curves", {}) for k in ("step", "k", "m_global")):
            raise ValueError(f"record: the run of {arm}, seed {r.get('seed')} has no curves (step, k, m_global)")
    run = next((r for r in runs if seed is None or r.get("seed") == seed), None)
    if run is None:
        raise ValueError(f"seed must be one of {[r.get('seed') for r in runs]} (trained to the end), got {seed!r}")
    points, needed = run.get("trajectory") or [], ("step", "k", "frechet", "classes_covered", "grid_png")
    if not points or not all(k in p for p in points for k in needed):
        raise ValueError(f"record: the run of {arm}, seed {run.get('seed')} does not store {needed} at every "
                         "scored step; remake the record (data/results/README.md)")
    return runs, run


def _curve_traces(curves: list[tuple[int, dict]], shown: list[dict]) -> list[dict]:
    """k_t (axes x, y) and M_global (x2, y2) of each run, coloured by arm; the run shown drawn thicker."""
    return [{"type": "scatter", "mode": "lines", "x": r["curves"]["step"], "y": _r(r["curves"][key]),
             "xaxis": f"x{axis}", "yaxis": f"y{axis}", "name": f"γ = {shown[a]['config']['gamma']:g}",
             "legendgroup": str(a), "showlegend": key == "k" and r is shown[a],
             "line": {"color": COLOURS[a % len(COLOURS)], "width": 2 if r is shown[a] else 1}}
            for key, axis in (("k", ""), ("m_global", "2")) for a, r in curves]


def _run_slider(name: str, record, arms: list[str] | None, seed, *, all_seeds: bool) -> Slider:
    """Samples at each stored step of one run per arm (left), k_t and M_global of the runs (right)."""
    record = _record(record)
    arms = arms or list(dict.fromkeys(r.get("arm") for r in record["runs"]))
    runs, shown = zip(*(_arm(record, arm, seed) for arm in arms))
    steps = [p["step"] for p in shown[0]["trajectory"]]
    if any([p["step"] for p in run["trajectory"]] != steps for run in shown):
        raise ValueError(f"record: the arms {arms} were scored at different steps; they need the same steps")
    curves = [(a, r) for a in range(len(arms)) for r in (runs[a] if all_seeds else [shown[a]])]
    axes = ([("γ", [f"{run['config']['gamma']:g}" for run in shown])] if len(arms) > 1 else []) \
        + [("step", [str(s) for s in steps])]
    image = {"xref": "paper", "yref": "paper", "x": 0, "y": 1, "sizex": 0.5, "sizey": 1, "sizing": "contain",
             "xanchor": "left", "yanchor": "top", "layer": "above"}

    def frame(*index):
        a, s = index if len(index) == 2 else (0, index[0])
        run, p = shown[a], shown[a]["trajectory"][s]
        title = (f"γ = {run['config']['gamma']:g}, seed {run['seed']}, step {p['step']}: Fréchet "
                 f"{p['frechet']:.0f}, {p['classes_covered']} of 10 classes covered, k<sub>t</sub> = {p['k']:.3f}")
        marks = [{"type": "line", "xref": x, "yref": f"{y} domain", "x0": p["step"], "x1": p["step"], "y0": 0,
                  "y1": 1, "line": {"color": "#444", "width": 1, "dash": "dot"}} for x, y in (("x", "y"), ("x2", "y2"))]
        return {"layout": {"title": _title(title), "shapes": marks,
                           "images": [{**image, "source": f"data:image/png;base64,{p['grid_png']}"}]},
                "traces": list(range(2 * len(curves))),  # the arm's runs in full colour, the others faint
                "data": {"opacity": [1.0 if c == a else 0.25 for c, _ in curves] * 2}}

    layout = dict(showlegend=len(arms) > 1, yaxis=_axis("k<sub>t</sub>", (0.56, 1), anchor="x"),
                  xaxis=_axis("", (0.62, 1), anchor="y", matches="x2", showticklabels=False),
                  xaxis2=_axis("step", (0.62, 1), anchor="y2"),
                  yaxis2=_axis("M<sub>global</sub>", (0, 0.44), anchor="x2"))
    start = (0, len(steps) - 1) if len(arms) > 1 else (len(steps) - 1,)
    return _slider(name, data=_curve_traces(curves, shown), layout=layout, axes=axes, frame=frame, start=start,
                   plot_px=340)


def gamma_sweep(record="gamma-sweep") -> Slider:
    """The gamma sweep (a record or its name): a slider for the arm (gamma), one for the stored step.

    Left: the samples of the arm's first seed at that step (the same z at every step); right: k_t
    and M_global of every run, the arm's seeds in full colour, the step marked.
    """
    return _run_slider("gamma-sweep", record, None, None, all_seeds=True)


def training_run(record="gamma-sweep", *, arm: str = "gamma=1.0", seed: int = 0) -> Slider:
    """One training run's samples at each stored step, with its k_t and M_global (by default the
    quick profile's own run: the gamma sweep's gamma = 1.0, seed 0)."""
    name = re.sub(r"[^a-z0-9]+", "-", f"run-{arm}-seed-{seed}".lower())
    return _run_slider(name, record, [arm], seed, all_seeds=False)
