"""The record of what the chapters' asserts saw under each set of CPU kernels (began_lite.chapters.kernels)."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from began_lite.chapters import kernels


def _cell(source, outputs=()):
    return {"cell_type": "code", "source": source, "outputs": list(outputs), "metadata": {}}


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def test_assert_cells_are_the_cells_that_assert_with_their_output_and_error():
    notebook = {"cells": [
        _cell("x = 1\n# assert x == 2 is only a comment", [_stream("ignored\n")]),
        {"cell_type": "markdown", "source": "assert nothing", "metadata": {}},
        _cell("print(x)\nassert x == 1", [_stream("1\n")]),
        _cell("assert x == 2, x", [{"output_type": "error", "ename": "AssertionError", "evalue": "1",
                                     "traceback": []}]),
    ]}
    cells = kernels.assert_cells(notebook)
    assert [c["cell"] for c in cells] == [2, 3]
    assert cells[0] == {"cell": 2, "passed": True, "error": None, "output": "1\n", "seconds": None}
    assert not cells[1]["passed"] and cells[1]["error"] == "AssertionError: 1"


def test_the_table_shows_failures_and_only_the_outputs_that_differ():
    def record(name, second, passed=True):
        return {"name": name, "capability": "AVX2", "chapters": {"01.ipynb": {"seconds": 3, "cells": [
            {"cell": 1, "passed": True, "output": "same\n"},
            {"cell": 4, "passed": passed, "output": f"ratio {second}\n"}]}}}
    text = kernels.table([record("native", "0.51"), record("foreign", "0.53", passed=False)])
    assert "| 01.ipynb | 3 s, passed | 3 s, failed [4] |" in text
    assert "cell 4" in text and "cell 1" not in text
    assert "-ratio 0.51" in text and "+ratio 0.53" in text


def test_a_set_runs_the_chapters_under_its_variables(tmp_path):
    chapter = tmp_path / "01_probe.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.environ['PROBE'], os.environ['OMP_NUM_THREADS'])\n"
                                          "assert os.environ['PROBE'] == 'on'")]
    nbformat.write(nb, chapter)
    record = kernels.run_set("probe", {"PROBE": "on"}, [chapter], jobs=1, out=tmp_path / "sets")
    stored = json.loads((tmp_path / "sets" / "probe.json").read_text())
    assert stored == record and stored["env"] == {"PROBE": "on"}
    [cell] = stored["chapters"]["01_probe.ipynb"]["cells"]
    assert cell["passed"] and cell["output"] == "on 1\n"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        kernels.run_set("x", {}, [], jobs=0)
    with pytest.raises(SystemExit):
        kernels.main(["run", "--name", "x", "ATEN_CPU_CAPABILITY"])


def test_running_some_chapters_again_keeps_the_others(tmp_path):
    chapters = []
    for name, value in (("01_a", 1), ("02_b", 2)):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"print({value})\nassert True")]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        chapters.append(tmp_path / f"{name}.ipynb")
    out = tmp_path / "sets"
    kernels.run_set("s", {}, chapters, jobs=2, out=out)
    again = kernels.run_set("s", {}, chapters[1:], jobs=1, out=out)
    assert sorted(again["chapters"]) == ["01_a.ipynb", "02_b.ipynb"]
    with pytest.raises(ValueError, match="name this set otherwise"):
        kernels.run_set("s", {"MKL_CBWR": "AVX2"}, chapters[1:], jobs=1, out=out)


def test_settings_after_chapters_are_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        kernels.main(["run", "--name", "x", "--chapters", str(tmp_path / "a.ipynb"), "MKL_CBWR=AVX2"])
    assert "--chapters takes notebook files" in capsys.readouterr().err


def test_the_set_ci_runs_on_an_avx2_machine_is_a_stored_record_where_every_chapter_passed():
    """`make nbval-foreign` on an AVX2 machine (ours and CI's) runs a set whose asserts are on record."""
    line = re.search(r'AVX2\) foreign="([^"]+)"', (kernels.ROOT / "Makefile").read_text())
    assert line, "the Makefile's nbval-foreign names no set for AVX2 machines"
    env = dict(pair.split("=", 1) for pair in line.group(1).split())
    records = [json.loads(p.read_text()) for p in sorted(kernels.OUT.glob("*.json"))]
    matching = [r for r in records if r["env"] == env]
    assert matching, f"no record in {kernels.OUT} ran the chapters under {env}"
    chapters = sorted(p.name for p in (kernels.ROOT / "book").glob("0*.ipynb"))
    assert sorted(matching[0]["chapters"]) == chapters
    failed = [(name, c["cell"]) for name, ch in matching[0]["chapters"].items() for c in ch["cells"] if not c["passed"]]
    assert not failed, failed
