"""The book's sliders (began_lite.sliders): fixed ids, the right precomputed values, bad input refused.

Each check reads the figure back from the HTML a chapter would show (the JSON the page's script
gets), so what is tested is what a reader's browser draws. The browser itself (each slider moved
in Chromium, offline) is tests/browser/test_book_browser.py.
"""
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

import began_lite as bl

S = bl.sliders


def spec_of(slider) -> dict:
    """The figure, frames and slider sizes as the page's script receives them."""
    html = slider._repr_html_()
    start = html.index("var spec = ") + len("var spec = ")
    return json.loads(html[start:html.index(";\n  function draw()")].replace("<\\/", "</"))


def frame_at(spec: dict, *index) -> dict:
    return spec["frames"][int(np.ravel_multi_index(index, spec["shape"]))]


def applied(spec: dict, frame: dict) -> dict:
    """The figure after the page applied ``frame`` (what Plotly.update does)."""
    data = [dict(t) for t in spec["data"]]
    for attr, values in frame["data"].items():
        for t, v in zip(frame["traces"], values):
            data[t][attr] = v
    return {"data": data, "layout": {**spec["layout"], **frame["layout"]}}


@pytest.fixture(scope="module")
def record(sweep_record):
    return sweep_record()


@pytest.fixture(scope="module")
def sliders(record):
    return {"w2": S.gaussian_w2(), "controller": S.controller(), "sweep": S.gamma_sweep(record),
            "run": S.training_run(record)}


def test_html_has_fixed_ids_and_is_the_same_every_time(sliders, record):
    ids = {"w2": "began-slider-gaussian-w2", "controller": "began-slider-controller",
           "sweep": "began-slider-gamma-sweep", "run": "began-slider-run-gamma-1-0-seed-0"}
    again = {"w2": S.gaussian_w2(), "controller": S.controller(), "sweep": S.gamma_sweep(record),
             "run": S.training_run(record)}
    for key, slider in sliders.items():
        html = slider._repr_html_()
        assert f'<div class="began-slider" id="{ids[key]}"' in html and f'"id":"{ids[key]}"' in html
        assert html == again[key]._repr_html_(), key  # nothing random: nbval compares it
        assert "http" not in html.replace("data:image/png", ""), key  # nothing to fetch
    assert repr(sliders["w2"]) == "Slider 'gaussian-w2': 130 frames over m₂ (13 values) x σ₂ (10 values)"
    assert repr(sliders["controller"]) == "Slider 'controller': 28 frames over λk (7 values) x γ (4 values)"


def test_figures_are_valid_plotly(sliders):
    """plotly.js ignores a misspelt attribute silently; plotly's Python schema refuses it."""
    go = pytest.importorskip("plotly.graph_objects")
    for slider in sliders.values():
        spec = spec_of(slider)
        for frame in (spec["frames"][0], spec["frames"][-1]):
            go.Figure(applied(spec, frame))


def test_w2_frames_carry_the_closed_form(sliders):
    spec = spec_of(sliders["w2"])
    means, spreads = np.arange(-2.0, 4.01, 0.5), np.arange(0.25, 2.51, 0.25)
    assert spec["shape"] == [len(means), len(spreads)]
    for i, j in [(0, 0), (3, 7), (8, 1), (12, 9)]:
        m2, s2 = means[i], spreads[j]
        frame = frame_at(spec, i, j)
        mean_term, spread_term = frame["data"]["y"][1]
        w2 = bl.gaussian_w2(0.0, 1.0, m2, s2**2)  # N(0, 1) against N(m2, s2^2), computed here
        assert math.isclose(math.sqrt(mean_term + spread_term), w2, rel_tol=1e-3, abs_tol=1e-3)
        assert math.isclose(mean_term, m2**2, rel_tol=1e-3, abs_tol=1e-6)
        assert f"= {w2:.2f} between" in frame["layout"]["title"]["text"]
        x, y = frame["data"]["x"][0], frame["data"]["y"][0]  # the second density: its peak at m2
        assert math.isclose(x[len(x) // 2], m2, abs_tol=1e-9)
        assert math.isclose(y[len(y) // 2], 1 / (s2 * math.sqrt(2 * math.pi)), rel_tol=1e-3)
    # the static figure is the starting frame (m2 = 2, s2 = 0.5), and the sliders say so
    start = applied(spec, frame_at(spec, 8, 1))
    assert spec["data"] == start["data"] and spec["layout"]["title"] == start["layout"]["title"]
    assert [s["active"] for s in spec["layout"]["sliders"]] == [8, 1]


def test_controller_frames_are_the_simulation(sliders):
    spec = spec_of(sliders["controller"])
    lambda_ks, gammas = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), (0.3, 0.5, 0.7, 1.0)
    for i, j in [(0, 0), (3, 1), (6, 3)]:
        sim = bl.simulate_controller(gammas[j], lambda_ks[i], 1500, push=0.003)
        fake, target, k, k_star = frame_at(spec, i, j)["data"]["y"]
        np.testing.assert_allclose(fake, sim["loss_fake"][::5], rtol=1e-3, atol=1e-9)
        np.testing.assert_allclose(k, sim["k"][::5], rtol=1e-3, atol=1e-9)
        assert target == [pytest.approx(0.1 * gammas[j])] * 2
        assert k_star == [pytest.approx(min(sim["k_star"], 1.0), rel=1e-3)] * 2
    # the gain that rings and the one that never settles are told apart in the title
    assert "settles (within 5 %) from step" in frame_at(spec, 3, 1)["layout"]["title"]["text"]
    assert "not settled in 1500 steps" in frame_at(spec, 6, 1)["layout"]["title"]["text"]


def test_sweep_frames_show_each_arm_and_step(sliders, record):
    spec = spec_of(sliders["sweep"])
    assert spec["shape"] == [2, 4]  # gamma in (0.5, 1.0), four scored steps
    firsts = [r for r in record["runs"] if r["seed"] == 0]
    for a, s in [(0, 0), (1, 2), (1, 3)]:
        frame, point = frame_at(spec, a, s), firsts[a]["trajectory"][s]
        assert frame["layout"]["images"][0]["source"] == "data:image/png;base64," + point["grid_png"]
        assert [m["x0"] for m in frame["layout"]["shapes"]] == [point["step"]] * 2
        assert f"step {point['step']}: Fréchet {point['frechet']:.0f}" in frame["layout"]["title"]["text"]
        opacity = frame["data"]["opacity"]  # k_t and M_global of all four runs; the arm's two in full
        assert opacity == [1.0 if r["config"]["gamma"] == firsts[a]["config"]["gamma"] else 0.25
                           for r in record["runs"]] * 2
    stored = [r["curves"][key] for key in ("k", "m_global") for r in record["runs"]]
    assert len(spec["data"]) == len(stored)  # k_t of each run, then M_global of each run, as stored
    for trace, values in zip(spec["data"], stored):
        np.testing.assert_allclose(trace["y"], values, rtol=1e-3)


def test_training_run_is_one_run(sliders, record):
    spec = spec_of(sliders["run"])
    run = next(r for r in record["runs"] if r["arm"] == "gamma=1.0" and r["seed"] == 0)
    assert spec["shape"] == [4] and len(spec["data"]) == 2
    assert [f["layout"]["images"][0]["source"][len("data:image/png;base64,"):] for f in spec["frames"]] == \
        [p["grid_png"] for p in run["trajectory"]]
    np.testing.assert_allclose(spec["data"][0]["y"], run["curves"]["k"], rtol=1e-3)
    np.testing.assert_allclose(spec["data"][1]["y"], run["curves"]["m_global"], rtol=1e-3)


def _without(record: dict, key: str, where: str) -> dict:
    rec = json.loads(json.dumps(record))
    for run in rec["runs"]:
        for part in (run["trajectory"] if where == "trajectory" else [run[where]]):
            part.pop(key, None)
    return rec


@pytest.mark.parametrize("build, match", [
    (lambda r: S.gaussian_w2(spreads=[0.0, 1.0]), "spreads must be a non-empty list of finite numbers > 0"),
    (lambda r: S.gaussian_w2(means=[]), "means must be a non-empty list"),
    (lambda r: S.gaussian_w2(s1=-1.0), "s1 must be"),
    (lambda r: S.gaussian_w2(start_m2=0.3), r"start_m2 must be one of the grid's values"),
    (lambda r: S.controller(gammas=[0.5, float("nan")]), "gammas must be"),
    (lambda r: S.controller(every=0), r"every must be an integer in \[1, 1500\]"),
    (lambda r: S.controller(steps=2.5), "steps must be an integer"),
    (lambda r: S.gamma_sweep({"runs": []}), "record must be a stored record"),
    (lambda r: S.gamma_sweep([r]), "record must be a stored record"),
    (lambda r: S.training_run(r, arm="gamma=0.3"), r"arm must be one of \['gamma=0.5', 'gamma=1.0'\]"),
    (lambda r: S.training_run(r, seed=7), r"seed must be one of \[0, 1\]"),
    (lambda r: S.training_run(r, seed=1), "does not store .*grid_png"),
    (lambda r: S.gamma_sweep(_without(r, "grid_png", "trajectory")), "remake the record"),
    (lambda r: S.gamma_sweep(_without(r, "m_global", "curves")), "has no curves"),
])
def test_bad_input_is_refused(record, build, match):
    with pytest.raises(ValueError, match=match):
        build(record)


def test_arms_scored_at_different_steps_are_refused(sweep_record):
    record = sweep_record()
    for point in record["runs"][0]["trajectory"]:
        point["step"] += 1
    with pytest.raises(ValueError, match="scored at different steps"):
        S.gamma_sweep(record)


def test_a_diverged_run_is_left_out_of_the_curves(sweep_record):
    record = sweep_record()
    record["runs"][1] = {**record["runs"][1], "final": {"diverged": "loss is NaN"}, "trajectory": [], "curves": {}}
    assert len(spec_of(S.gamma_sweep(record))["data"]) == 2 * 3


def test_check_offline_wants_plotly_exactly_where_a_slider_is(tmp_path):
    """book/check_offline.py: Plotly from _static on a page with a slider, on no other page."""
    path = Path(__file__).resolve().parents[1] / "book" / "check_offline.py"
    spec = importlib.util.spec_from_file_location("check_offline", path)
    check_offline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_offline)
    (tmp_path / "_static" / "plotly").mkdir(parents=True)
    (tmp_path / "_static" / "plotly" / "plotly.min.js").write_text("")
    load = '<script src="_static/plotly/plotly.min.js"></script>'
    slider = '<div class="began-slider" id="began-slider-x"></div>'
    pages = {"good.html": load + slider, "plain.html": "<p>text</p>", "missing.html": slider,
             "extra.html": load, "twice.html": load + load + slider}
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<html><head></head><body>{body}</body></html>")
    plotly_problems = sorted(p.split(":")[0] for p in check_offline.check(tmp_path) if "Plotly" in p)
    assert plotly_problems == ["extra.html", "missing.html", "twice.html"]


def test_the_stored_sweep_builds():
    """The record the chapters show, once it stores sample grids (the re-run of the gamma sweep)."""
    record = bl.stored_result("gamma-sweep")
    if not all("grid_png" in p for p in record["runs"][0]["trajectory"]) or "curves" not in record["runs"][0]:
        pytest.skip("data/results/gamma-sweep.json predates the sample grids; the re-run stores them")
    sweep, run = spec_of(S.gamma_sweep()), spec_of(S.training_run())
    assert sweep["shape"] == [len(record["arms"]), len(record["runs"][0]["trajectory"])]
    assert run["shape"] == sweep["shape"][1:]
