"""Parse one rule file into :class:`RawItem` values that remember where they came from.

PyYAML's composer gives every node a start mark; we keep the mark of each
item, of each of its keys' values, and of nested values (``window.field``,
``steps.1.condition``), so every later diagnostic can point at
``path:line:col``. For string scalars we also keep an *offset map*, so an error
at character 17 of a folded multi-line condition points at the right line and
column of the file, not at the start of the scalar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rules.errors import Diagnostics, did_you_mean
from rules.items import Location, RawItem

KINDS = ("list", "macro", "rule", "detector", "policy", "required_engine_version")
OffsetMap = Callable[[int], Location]


@dataclass
class ParsedFile:
    """The items of one file plus offset maps of its string scalars (keyed by start location)."""

    items: list[RawItem] = field(default_factory=list)
    offset_maps: dict[Location, tuple[str, OffsetMap]] = field(default_factory=dict)


def mark_location(path: str, mark: yaml.Mark) -> Location:
    return Location(path, mark.line + 1, mark.column + 1)


def parse_text(path: str, text: str, diags: Diagnostics) -> ParsedFile:
    """Items of one file; YAML and shape errors go to ``diags``."""
    diags.add_source(path, text)
    out = ParsedFile()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = mark_location(path, mark) if mark else Location(path, 1, 1)
        diags.error(loc, "OVR100", f"YAML syntax error: {exc.problem or exc}",
                    f"{exc.context}" if exc.context else "check indentation and quoting")
        return out
    except yaml.YAMLError as exc:
        diags.error(Location(path, 1, 1), "OVR100", f"YAML error: {exc}")
        return out
    except RecursionError:
        diags.error(Location(path, 1, 1), "OVR100", "YAML nested too deeply to be a rule file",
                    "rule files are lists of flat items; look for runaway brackets or indentation")
        return out
    if root is None:
        return out
    if not isinstance(root, SequenceNode):
        diags.error(mark_location(path, root.start_mark), "OVR101",
                    "a rule file must be a YAML list of items",
                    "start each item with '- rule: <id>', '- list: <name>' or '- macro: <name>'")
        return out
    lines = text.splitlines()
    for node in root.value:
        item = _item(path, node, lines, diags, out)
        if item is not None:
            out.items.append(item)
    return out


def _item(path: str, node: Node, lines: list[str], diags: Diagnostics, out: ParsedFile) -> RawItem | None:
    loc = mark_location(path, node.start_mark)
    if not isinstance(node, MappingNode) or not node.value:
        diags.error(loc, "OVR101", "each item must be a mapping whose first key is its kind",
                    "e.g. '- rule: my_rule_id'")
        return None
    kind_node, name_node = node.value[0]
    kind = kind_node.value if isinstance(kind_node, ScalarNode) else None
    if kind not in KINDS:
        diags.error(mark_location(path, kind_node.start_mark), "OVR102", f"unknown item kind {kind!r}",
                    did_you_mean(str(kind), KINDS) or f"the first key must be one of {', '.join(KINDS)}")
        return None
    if not isinstance(name_node, ScalarNode) or name_node.value in ("", None):
        diags.error(mark_location(path, name_node.start_mark), "OVR105", f"the {kind} name must be a string")
        return None
    body: dict[str, Any] = {}
    key_locations: dict[str, Location] = {}
    for key_node, value_node in node.value[1:]:
        key = key_node.value if isinstance(key_node, ScalarNode) else str(key_node)
        if key in body:
            diags.error(mark_location(path, key_node.start_mark), "OVR107",
                        f"key {key!r} appears twice in {kind} {name_node.value!r}")
        body[key] = SafeConstructor().construct_document(value_node)
        _record(path, key, value_node, key_locations, lines, out)
        key_locations[f"{key}:key"] = mark_location(path, key_node.start_mark)
    name = str(SafeConstructor().construct_document(name_node))
    return RawItem(kind=kind, name=name, body=body, location=mark_location(path, name_node.start_mark),
                   key_locations=key_locations)


def _record(path: str, key: str, node: Node, locs: dict[str, Location], lines: list[str],
            out: ParsedFile, depth: int = 0) -> None:
    """Remember where ``key``'s value starts, recursively for nested values."""
    loc = mark_location(path, node.start_mark)
    locs[key] = loc
    if isinstance(node, ScalarNode) and node.tag.endswith(":str"):
        out.offset_maps[loc] = (node.value, _offset_map(path, node, lines))
    if depth >= 4:
        return
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode):
                _record(path, f"{key}.{k.value}", v, locs, lines, out, depth + 1)
                locs.setdefault(f"{key}.{k.value}:key", mark_location(path, k.start_mark))
    elif isinstance(node, SequenceNode):
        for i, v in enumerate(node.value):
            _record(path, f"{key}.{i}", v, locs, lines, out, depth + 1)


def _offset_map(path: str, node: ScalarNode, lines: list[str]) -> OffsetMap:
    """Map a character offset in the scalar's value to its line:col in the file."""
    value = node.value
    start, end = node.start_mark, node.end_mark
    block = node.style in ("|", ">")
    anchors: list[tuple[int, int, int]] = []
    cursor = 0
    first = start.line + 1 if block else start.line
    for idx in range(first, min(end.line, len(lines) - 1) + 1):
        seg_start = 0
        if idx == start.line and not block:
            seg_start = start.column + (1 if node.style in ('"', "'") else 0)
        seg = lines[idx][seg_start:]
        stripped = seg.lstrip()
        if not stripped:
            continue
        probe = stripped[:12].rstrip()
        while probe and value.find(probe, cursor) < 0:
            probe = probe[:-1]
        if not probe:
            continue
        pos = value.find(probe, cursor)
        anchors.append((pos, idx + 1, seg_start + len(seg) - len(stripped) + 1))
        cursor = pos + 1
    default = mark_location(path, start)

    def locate(offset: int) -> Location:
        best = None
        for anchor in anchors:
            if anchor[0] <= offset:
                best = anchor
            else:
                break
        if best is None:
            return default
        return Location(path, best[1], best[2] + offset - best[0])

    return locate
