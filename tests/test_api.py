"""The API the book cites: every name a chapter imports from began_lite is public.

minGPT's lesson: once a book cites a package, its API freezes. So the chapters may use only
names in ``began_lite.__all__`` (``bl.name``, ``from began_lite.module import name``), or a
name of a public module's own ``__all__`` (``bl.plotting.show_images``).
"""
import ast
import inspect
import json
from pathlib import Path

import pytest

import began_lite as bl

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9]*.ipynb"))


def imported_names(source: str):
    """(how, name) for every use of the package in one cell: from-imports and bl.x(.y) chains."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "began_lite":
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "bl":
            yield "bl", node.attr
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
              and isinstance(node.value.value, ast.Name) and node.value.value.id == "bl"):
            yield f"bl.{node.value.attr}", node.attr


def cells(nb: Path):
    for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            # IPython magics are not Python
            yield i, "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))


def is_public(how: str, name: str) -> bool:
    if how in ("bl", "began_lite"):
        return name in bl.__all__
    if how.startswith("bl."):  # bl.module.name: a public module and a name of its own __all__
        owner = how.split(".", 1)[1]  # or bl.Class.method: a public class and one of its attributes
        if owner not in bl.__all__:
            return False
        obj = getattr(bl, owner)
        return name in getattr(obj, "__all__", ()) if inspect.ismodule(obj) else hasattr(obj, name)
    # from began_lite.module import name: the same object as the public one
    import importlib

    return name in bl.__all__ and getattr(importlib.import_module(how), name) is getattr(bl, name)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapters_import_only_public_names(nb):
    private = [(i, how, name) for i, src in cells(nb) for how, name in imported_names(src) if not is_public(how, name)]
    assert not private, f"{nb.name} uses names that are not public (cell, module, name): {private}"


def test_the_check_sees_a_private_import():
    # The test above must be able to fail: a private helper and an unexported name are caught.
    src = "from began_lite.train import _check_training_data\nimport began_lite as bl\nbl.convergence_measure(1, 2, 0.5)"
    found = list(imported_names(src))
    assert ("began_lite.train", "_check_training_data") in found and ("bl", "convergence_measure") in found
    assert not any(is_public(how, name) for how, name in found)


def test_every_public_name_resolves_and_is_used():
    for name in bl.__all__:
        value = getattr(bl, name)  # a lazy name mapped to the wrong module raises here
        if callable(value) or inspect.ismodule(value):
            assert inspect.getdoc(value), f"{name} has no docstring"
    used = {name for nb in NOTEBOOKS for _, src in cells(nb) for _, name in imported_names(src)}
    core = {"gan_step", "Trainer", "TrainConfig", "TrainingDiverged", "EquilibriumController", "began_losses",
            "Generator"}  # the API the README and chapter 4 describe, used through the helpers
    unused = sorted(set(bl.__all__) - used - core)
    assert not unused, f"public names no chapter uses: {unused}"
