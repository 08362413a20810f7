"""The shape of the program (../shared/STYLE.md): one module owns each arrow. Only nncli/kernels
import numba, only nncli/cli.py imports typer, only nncli/report.py draws with rich, only
nncli/plots.py imports matplotlib, and only nncli/data.py calls pandas' CSV reader."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nncli"
OWNERS = {  # imported module -> the files allowed to import it
    "numba": lambda rel: rel.startswith("kernels/"),
    "typer": lambda rel: rel == "cli.py",
    "click": lambda rel: rel == "cli.py",
    "rich": lambda rel: rel == "report.py",
    "matplotlib": lambda rel: rel == "plots.py",
    "torch": lambda rel: False,
}


def imported(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_library_is_imported_only_by_its_owner(path):
    rel = str(path.relative_to(PACKAGE))
    tree = ast.parse(path.read_text())
    wrong = [m for m in imported(tree) if m in OWNERS and not OWNERS[m](rel)]
    assert not wrong, f"{rel} imports {wrong}"
    if rel != "data.py":
        assert "read_csv" not in path.read_text(), f"{rel} reads CSV files; only nncli/data.py may"
