"""Load rule files and directories, and merge items across files by name.

Files load in a deterministic order: each path argument in the order given,
a directory's ``*.yaml``/``*.yml`` files sorted by name. A later item with the
same kind and name as an earlier one must say what it wants:

- ``append: true`` extends the earlier item (lists concatenate, mappings
  merge, a ``condition`` becomes ``(earlier) later`` — so start the appended
  text with ``and`` or ``or``);
- ``override: true`` replaces the keys it gives; ``override: {key: replace|append}``
  chooses per key (Falco's syntax).

Anything else with a name already taken is a duplicate (OVR107). Every
problem is collected into one :class:`rules.errors.Diagnostics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.errors import Diagnostics, did_you_mean
from rules.items import Location, RawItem
from rules.yamlsrc import OffsetMap, ParsedFile, parse_text

ENGINE_VERSION = 1
MERGE_KEYS = ("append", "override")


@dataclass
class LoadedSet:
    """Merged items of all files, in first-definition order, plus string offset maps."""

    items: list[RawItem] = field(default_factory=list)
    offset_maps: dict[Location, tuple[str, OffsetMap]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[RawItem]:
        return [i for i in self.items if i.kind == kind]


def rule_files(paths: Iterable[Path], diags: Diagnostics) -> list[Path]:
    """Expand directories into their sorted YAML files; report paths that do not exist."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            diags.error(Location(str(path), 1, 1), "OVR110", f"no such rule file or directory: {path}")
    return files


def load_paths(paths: Iterable[Path], diags: Diagnostics) -> LoadedSet:
    sources: list[tuple[str, str]] = []
    for f in rule_files(paths, diags):
        try:
            sources.append((str(f), f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            diags.error(Location(str(f), 1, 1), "OVR110", f"cannot read {f}: {exc}")
    return load_sources(sources, diags)


def load_sources(sources: Iterable[tuple[str, str]], diags: Diagnostics) -> LoadedSet:
    """Parse and merge ``(path, text)`` pairs in order."""
    out = LoadedSet()
    index: dict[tuple[str, str], RawItem] = {}
    for path, text in sources:
        out.files.append(path)
        parsed = parse_text(path, text, diags)
        out.offset_maps.update(parsed.offset_maps)
        for item in parsed.items:
            if item.kind == "required_engine_version":
                _check_version(item, diags)
                continue
            _merge(item, index, out, parsed, diags)
    return out


def _check_version(item: RawItem, diags: Diagnostics) -> None:
    try:
        needed = int(item.name)
    except ValueError:
        diags.error(item.location, "OVR106", f"required_engine_version must be an integer, got {item.name!r}")
        return
    if needed > ENGINE_VERSION:
        diags.error(item.location, "OVR106",
                    f"this file needs rule engine version {needed}; this Overseer provides {ENGINE_VERSION}",
                    "upgrade Overseer or use an older release of the rule pack")


def _merge(item: RawItem, index: dict[tuple[str, str], RawItem], out: LoadedSet,
           parsed: ParsedFile, diags: Diagnostics) -> None:
    key = (item.kind, item.name)
    append = item.body.pop("append", False)
    override = item.body.pop("override", None)
    earlier = index.get(key)
    if not append and override is None:
        if earlier is not None:
            diags.error(item.location, "OVR107",
                        f"{item.kind} {item.name!r} is already defined at {earlier.location}",
                        "add 'override: true' to replace it or 'append: true' to extend it")
            return
        index[key] = item
        out.items.append(item)
        return
    if earlier is None:
        names = [n for (k, n) in index if k == item.kind]
        diags.error(item.location, "OVR108",
                    f"cannot {'append to' if append else 'override'} {item.kind} {item.name!r}: "
                    "no earlier definition", did_you_mean(item.name, names) or
                    "the item must be defined in an earlier file (files load in sorted order)")
        return
    modes = _modes(item, append, override, diags)
    for k, mode in modes.items():
        if k not in item.body:
            diags.error(item.where("override"), "OVR108", f"override names key {k!r} but the item does not set it")
            continue
        _apply(earlier, item, k, mode, out, diags)


def _modes(item: RawItem, append: Any, override: Any, diags: Diagnostics) -> dict[str, str]:
    if append is True:
        return dict.fromkeys(item.body, "append")
    if append not in (False, None):
        diags.error(item.where("append"), "OVR105", "append must be true or false")
        return {}
    if override is True:
        return dict.fromkeys(item.body, "replace")
    if isinstance(override, dict):
        bad = {k: v for k, v in override.items() if v not in ("replace", "append")}
        for k, v in bad.items():
            diags.error(item.where(f"override.{k}"), "OVR108",
                        f"override mode for {k!r} must be replace or append, got {v!r}")
        return {str(k): v for k, v in override.items() if k not in bad}
    diags.error(item.where("override"), "OVR105", "override must be true or a mapping {key: replace|append}")
    return {}


def _apply(earlier: RawItem, item: RawItem, key: str, mode: str, out: LoadedSet, diags: Diagnostics) -> None:
    new = item.body[key]
    if mode == "replace" or key not in earlier.body:
        earlier.body[key] = new
        for k, loc in item.key_locations.items():
            if k == key or k.startswith(key + "."):
                earlier.key_locations[k] = loc
        return
    old = earlier.body[key]
    if isinstance(old, list) and isinstance(new, list):
        earlier.body[key] = old + new
        base = len(old)
        for k, loc in item.key_locations.items():
            if k.startswith(key + "."):
                rest = k[len(key) + 1:]
                head, _, tail = rest.partition(".")
                if head.isdigit():
                    earlier.key_locations[f"{key}.{int(head) + base}" + (f".{tail}" if tail else "")] = loc
    elif isinstance(old, dict) and isinstance(new, dict):
        earlier.body[key] = {**old, **new}
    elif isinstance(old, str) and isinstance(new, str) and key == "condition":
        _append_condition(earlier, item, old, new, out)
    else:
        diags.error(item.where(key), "OVR108", f"cannot append to {key!r} of {item.kind} {item.name!r}",
                    f"only lists, mappings and conditions can be appended; use override: {{{key}: replace}}")


def _append_condition(earlier: RawItem, item: RawItem, old: str, new: str, out: LoadedSet) -> None:
    """``(old) new``, with an offset map that sends each part back to its own file."""
    old_loc, new_loc = earlier.where("condition"), item.where("condition")
    old_map = _map_for(out, old_loc, old)
    new_map = _map_for(out, new_loc, new)
    old_text = old.strip()
    combined = f"({old_text}) {new.strip()}"
    split = len(old_text) + 3

    def locate(offset: int) -> Location:
        if offset < 1:
            return old_map(0)
        if offset < split - 2:
            return old_map(offset - 1 + (len(old) - len(old.lstrip())))
        return new_map(max(offset - split, 0) + (len(new) - len(new.lstrip())))

    earlier.body["condition"] = combined
    out.offset_maps[old_loc] = (combined, locate)


def _map_for(out: LoadedSet, loc: Location, text: str) -> OffsetMap:
    found = out.offset_maps.get(loc)
    if found is not None and found[0] == text:
        return found[1]
    return lambda offset: Location(loc.path, loc.line, loc.col + offset)
