"""Derived features: numeric columns computed from others, as TensorFlow Playground's X1², X1·X2, sin X1.

`data.derive: [x1^2, x1*x2, sin(x2)]` adds one input per entry. Each form is registered once in
FORMS (how it is written, the pattern that reads it, the numpy function); config validation,
preprocessing, the docs' list and the tests read FORMS, so a new form touches only this table.
Forms do not nest: their arguments are column names of the data file.
"""

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Form:
    name: str
    syntax: str  # how it is written, with column names a, b
    pattern: re.Pattern  # matches the whole text; its groups are the column names
    render: str  # the canonical text, a format string over the column names
    fn: Callable  # column values (n,) each -> derived values (n,)
    playground: str  # the Playground's name for it


FORMS = {f.name: f for f in [
    Form("square", "a^2", re.compile(r"(.+?)\s*\^\s*2"), "{0}^2", lambda a: a * a, "X1²"),
    Form("sine", "sin(a)", re.compile(r"sin\(\s*(.+?)\s*\)"), "sin({0})", np.sin, "sin X1"),
    Form("product", "a*b", re.compile(r"(.+?)\s*\*\s*(.+)"), "{0}*{1}", lambda a, b: a * b, "X1·X2"),
]}


@dataclass(frozen=True)
class Derived:
    """One derived feature: a form applied to columns, e.g. Derived('product', ('x1', 'x2'))."""

    form: str
    columns: tuple

    @property
    def text(self) -> str:
        return FORMS[self.form].render.format(*self.columns)

    def compute(self, *values: np.ndarray) -> np.ndarray:
        """Derived values (n,) from the columns' values (n,) each, in the order of `columns`."""
        return FORMS[self.form].fn(*values)


def parse(text: str) -> Derived:
    """Read one `data.derive` entry; a ValueError says what is wrong with it."""
    stripped = str(text).strip()
    for form in FORMS.values():
        m = form.pattern.fullmatch(stripped)
        if m:
            return Derived(form.name, tuple(g.strip() for g in m.groups()))
    forms = ", ".join(f"{f.syntax} ({f.name})" for f in FORMS.values())
    raise ValueError(f"'{text}' is not a derived feature; write one of {forms}, with column names for a, b")


def canonical(text: str) -> str:
    """The entry as nncli writes it (`x1 * x2` -> `x1*x2`); a ValueError for an unknown form."""
    return parse(text).text
