"""The config schema, and turning a YAML file plus `--set` overrides into a resolved config.

A resolved config is a plain nested dict with every key filled in (defaults included). The
schema is declared once, in SCHEMA; validation, defaults, `nncli init`'s starter config and the
docs read it. Errors name the key path and the YAML line, with a "did you mean" for typos.
"""

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from nncli.errors import ConfigError
from nncli.yamlnodes import Map, Scalar, Seq, parse

_INT = re.compile(r"[-+]?[0-9]+")
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_NULL = {"null", "~", ""}


@dataclass(frozen=True)
class Opt:
    """One leaf of the schema. `kind` picks the reader; `check` may add a further test.

    check(value) returns the value to keep (it may rewrite it, say, to a canonical spelling) or
    raises ValueError with the reason; for list kinds it is called on each item.
    """

    kind: str  # int | float | bool | str | choice | column | columns | strings | any
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    nullable: bool = False
    check: Callable | None = None


class Ctx:
    """Where a value came from, for error messages."""

    def __init__(self, source: str, overridden=()):
        self.source = source
        self.overridden = tuple(overridden)  # key paths set on the command line

    def fail(self, path: str, line: int | None, message: str):
        if line is not None:
            where = f"{self.source}:{line}"
        elif any(path == k or path.startswith((k + ".", k + "[")) for k in self.overridden):
            where = "command line"
        else:
            where = self.source
        raise ConfigError(f"{where}: {path}: {message}")


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _is_null(node) -> bool:
    return node is None or (isinstance(node, Scalar) and node.plain and node.text in _NULL)


def _expect_scalar(node, ctx, path, what):
    if not isinstance(node, Scalar):
        kind = "a list" if isinstance(node, Seq) else "a mapping"
        ctx.fail(path, getattr(node, "line", None), f"expected {what}, got {kind}")
    return node


def read_value(opt: Opt, node, ctx: Ctx, path: str):
    """Type one raw node by its schema entry."""
    line = getattr(node, "line", None)
    if _is_null(node):
        if opt.nullable:
            return None
        ctx.fail(path, line, f"a value is required ({opt.help})")
    if opt.kind == "any":
        return to_python(node)
    if opt.kind in ("columns", "strings"):
        if not isinstance(node, Seq):
            node = Seq([node], line)
        item = Opt("column" if opt.kind == "columns" else "str", None, opt.help, check=opt.check)
        return [read_value(item, child, ctx, f"{path}[{i}]") for i, child in enumerate(node.items)]
    node = _expect_scalar(node, ctx, path, f"a {opt.kind}")
    value = _read_scalar(opt, node, ctx, path, line)
    if opt.check is not None:
        try:
            value = opt.check(value)
        except ValueError as exc:
            ctx.fail(path, line, str(exc))
    return value


def _read_scalar(opt: Opt, node: Scalar, ctx: Ctx, path: str, line):
    text = node.text
    if opt.kind == "str":
        return text
    if opt.kind == "column":  # a column name, or a 0-based index (negative from the end)
        return int(text) if node.plain and _INT.fullmatch(text) else text
    if opt.kind == "choice":
        if text not in opt.choices:
            ctx.fail(path, line, f"'{text}' is not one of {', '.join(map(str, opt.choices))}"
                     f"{suggest(text, opt.choices)}")
        return text
    if opt.kind == "bool":
        low = text.lower()
        if node.plain and low in _TRUE | _FALSE:
            return low in _TRUE
        ctx.fail(path, line, f"expected true or false, got '{text}'")
    if opt.kind == "int":
        if not (node.plain and _INT.fullmatch(text)):
            ctx.fail(path, line, f"expected a whole number, got '{text}'")
        value = int(text)
    else:  # float: YAML 1.1 reads 1e-3 as a string; here any finite number written plainly counts
        try:
            value = float(text) if node.plain else None
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            ctx.fail(path, line, f"expected a number, got '{text}'")
    _check_range(opt, value, ctx, path, line)
    return value


def _check_range(opt: Opt, value, ctx, path, line):
    too_low = opt.lo is not None and (value <= opt.lo if opt.lo_open else value < opt.lo)
    too_high = opt.hi is not None and (value >= opt.hi if opt.hi_open else value > opt.hi)
    if too_low or too_high:
        lo = "" if opt.lo is None else f"{'>' if opt.lo_open else '>='} {opt.lo}"
        hi = "" if opt.hi is None else f"{'<' if opt.hi_open else '<='} {opt.hi}"
        ctx.fail(path, line, f"{value} is out of range (must be {' and '.join(x for x in (lo, hi) if x)})")


def to_python(node):
    """Raw node to plain Python with YAML-ish scalar typing (for free-form values)."""
    if isinstance(node, Map):
        return {k: to_python(v) for k, v in node.items.items()}
    if isinstance(node, Seq):
        return [to_python(v) for v in node.items]
    if node is None or _is_null(node):
        return None
    if not node.plain:
        return node.text
    for conv in (int, float):
        try:
            return conv(node.text)
        except ValueError:
            pass
    low = node.text.lower()
    return low in _TRUE if low in _TRUE | _FALSE else node.text


def read_section(schema: dict, node, ctx: Ctx, path: str) -> dict:
    """Read a mapping against a dict schema (Opt leaves, dict sub-sections or reader functions)."""
    if _is_null(node):
        node = Map()
    if not isinstance(node, Map):
        ctx.fail(path or "config", getattr(node, "line", None), "expected a mapping of keys")
    for key in node.items:
        if key not in schema:
            where = f"{path}.{key}" if path else key
            ctx.fail(where, node.lines.get(key), f"unknown key '{key}'{suggest(key, schema)}"
                     f" (allowed: {', '.join(schema)})")
    out = {}
    for key, spec in schema.items():
        child = node.items.get(key)
        child_path = f"{path}.{key}" if path else key
        if isinstance(spec, Opt):
            if child is None and spec.default is None and not spec.nullable:
                ctx.fail(child_path, node.line, f"missing required key '{key}' ({spec.help})")
            out[key] = spec.default if child is None else read_value(spec, child, ctx, child_path)
        elif isinstance(spec, dict):
            out[key] = read_section(spec, child, ctx, child_path)
        else:
            out[key] = spec(child, ctx, child_path)
    return out


def read_named(registry: dict, kind: str, default_name: str | None, aliases=None) -> Callable:
    """Reader for `x: name` or `x: {name: ..., <params>}`, params validated against the registry.

    registry maps name -> dict of parameter name -> default. Returns {"name": ..., **params}.
    """
    aliases = aliases or {}

    def reader(node, ctx: Ctx, path: str):
        if _is_null(node):
            if default_name is None:
                return None
            node = Scalar(default_name, True, None)
        if isinstance(node, Scalar):
            node = Map({"name": node}, {"name": node.line}, node.line)
        if not isinstance(node, Map):
            ctx.fail(path, getattr(node, "line", None), f"expected a {kind} name or a mapping with 'name'")
        if "name" not in node.items:  # `optimizer: {lr: 0.01}` or `--lr 0.01` alone: the default one
            if default_name is None:
                ctx.fail(path, node.line, f"expected a {kind} name or a mapping with 'name'")
            node.items["name"] = Scalar(default_name, True, None)
        name = read_value(Opt("str", None, kind), node.items["name"], ctx, f"{path}.name")
        name = aliases.get(name, name)
        if name not in registry:
            ctx.fail(f"{path}.name", node.lines.get("name"),
                     f"unknown {kind} '{name}'{suggest(name, registry)} (known: {', '.join(registry)})")
        params = registry[name]
        out = {"name": name}
        for key in node.items:
            if key == "name":
                continue
            if key not in params:
                allowed = ", ".join(params) or "none"
                ctx.fail(f"{path}.{key}", node.lines.get(key),
                         f"{kind} '{name}' has no parameter '{key}'{suggest(key, params)} (its parameters: {allowed})")
        for key, default in params.items():
            opt = Opt("bool" if isinstance(default, bool) else "float", default, f"{kind} parameter")
            child = node.items.get(key)
            out[key] = default if child is None else read_value(opt, child, ctx, f"{path}.{key}")
        return out

    return reader


def read_list(item_schema: dict, default: list) -> Callable:
    def reader(node, ctx: Ctx, path: str):
        if node is None:
            node = None if default is None else Seq([_raw(v) for v in default], None)
        if _is_null(node):
            return []
        if not isinstance(node, Seq):
            ctx.fail(path, getattr(node, "line", None), "expected a list")
        return [read_section(item_schema, item, ctx, f"{path}[{i}]") for i, item in enumerate(node.items)]

    return reader


def _raw(value):
    """Plain Python value to raw nodes (for defaults and --set values)."""
    if isinstance(value, dict):
        return Map({k: _raw(v) for k, v in value.items()}, {k: None for k in value})
    if isinstance(value, list):
        return Seq([_raw(v) for v in value], None)
    if value is None:
        return Scalar("null", True, None)
    if isinstance(value, bool):
        return Scalar("true" if value else "false", True, None)
    return Scalar(str(value), not isinstance(value, str), None)


def load(path: str | Path | None, overrides: list[str] = (), build_schema=None) -> dict:
    """Read a config file (or the defaults when path is None), apply `key.path=value` overrides."""
    from nncli.schema import SCHEMA

    schema = build_schema or SCHEMA
    if path is None:
        raw, source = Map(), "defaults"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such config file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: not a UTF-8 text file") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
        raw = parse(text, source)
        if raw is None:
            raise ConfigError(f"{source}: the config is empty (run `nncli init DATA` for a starter config)")
    for item in overrides:
        raw = _apply_override(raw, item)
    return read_section(schema, raw, Ctx(source, [o.partition("=")[0].strip() for o in overrides]), "")


def _apply_override(raw, item: str):
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key.path=value, e.g. train.optimizer.lr=0.01")
    value_node = parse(value, f"--set {key}") if value.strip() else Scalar("", True, None)
    if value_node is None:
        value_node = Scalar("", True, None)
    _strip_lines(value_node)
    if not isinstance(raw, Map):
        raw = Map()
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.items.get(part)
        if isinstance(child, Scalar) and not _is_null(child):
            child = Map({"name": child}, {"name": child.line})  # `optimizer: adam` + --set optimizer.lr
        if not isinstance(child, Map):
            child = Map()
        node.items[part] = child
        node.lines.setdefault(part, None)
        node = child
    node.items[parts[-1]] = value_node
    node.lines[parts[-1]] = None
    return raw


def _strip_lines(node):
    """Override values have no line in the config file."""
    node.line = None
    if isinstance(node, Map):
        node.lines = {k: None for k in node.lines}
        for child in node.items.values():
            _strip_lines(child)
    elif isinstance(node, Seq):
        for child in node.items:
            _strip_lines(child)
