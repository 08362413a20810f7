"""Strict YAML reading: a tree of raw nodes that remember their line, typed later by the schema.

PyYAML's own constructor guesses types from the text (YAML 1.1: `1e-3` is a string, `no` is
False) and silently keeps the last of duplicate keys. Here the text is kept as written and the
schema in nncli.config decides what a value means, so `lr: 1e-3` is a number and `target: no` a
string. Duplicate keys, tags (such as python objects), anchors merged with `<<`, and empty
documents are errors that name the line.
"""

from dataclasses import dataclass, field

import yaml

from nncli.errors import ConfigError


@dataclass
class Scalar:
    text: str
    plain: bool  # written without quotes, so `null`, numbers and booleans may be meant
    line: int | None


@dataclass
class Seq:
    items: list
    line: int | None


@dataclass
class Map:
    items: dict = field(default_factory=dict)  # key -> node
    lines: dict = field(default_factory=dict)  # key -> line of the key
    line: int | None = None


_ALLOWED_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map",
}


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else source


def _convert(node, source: str):
    line = node.start_mark.line + 1 if node.start_mark is not None else None
    if node.tag not in _ALLOWED_TAGS:
        raise ConfigError(f"{_where(source, line)}: the tag {node.tag!r} is not allowed in an nncli config")
    if isinstance(node, yaml.ScalarNode):
        return Scalar(node.value, node.style is None, line)
    if isinstance(node, yaml.SequenceNode):
        return Seq([_convert(item, source) for item in node.value], line)
    out = Map(line=line)
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(f"{_where(source, key_line)}: a key must be a plain name")
        key = key_node.value
        if key == "<<":
            raise ConfigError(f"{_where(source, key_line)}: YAML merge keys (<<) are not supported")
        if key in out.items:
            raise ConfigError(
                f"{_where(source, key_line)}: duplicate key '{key}' (first at line {out.lines[key]})"
            )
        out.items[key] = _convert(value_node, source)
        out.lines[key] = key_line
    return out


def parse(text: str, source: str):
    """Parse one YAML document into raw nodes; `source` names it in errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.composer.ComposerError as exc:
        raise ConfigError(f"{source}: {exc.problem} (only one YAML document is allowed)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if node is None:
        return None
    return _convert(node, source)
