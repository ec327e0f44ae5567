"""Hot reload of the rule files: validate, then swap atomically, keeping state.

A watcher fingerprints the rule files (path, size, mtime of every ``*.yaml``
/ ``*.yml`` under the configured paths). When the fingerprint changes, the
whole set is compiled again *off the event loop*; only a set that compiles
without a single error replaces the running one. Rules whose compiled
definition is unchanged keep their window, sequence and suppression state
(`rules.engine.Engine.swap_from`); detector and policy instances are kept
when their items are unchanged and start afresh otherwise. A failing reload
leaves the old set running and is reported (the caller raises an alert).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from rules.engine import builtin_packs
from streams.pipeline.core import DetectionCore, build_core


def fingerprint(paths: list[Path]) -> str:
    """Changes whenever a rule file is added, removed or modified."""
    digest = hashlib.sha256()
    for root in paths or [builtin_packs()]:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            digest.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def items_digest(core: DetectionCore, kind: str) -> str:
    return hashlib.sha256(orjson.dumps([(i.name, i.body) for i in core.engine.items(kind)],
                                       option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


@dataclass
class ReloadResult:
    core: DetectionCore
    detectors_changed: bool
    policies_changed: bool


def compile_candidate(paths: list[Path], current: DetectionCore, *, allowed_lateness_s: float) -> ReloadResult:
    """Compile the files as they are now (raises `rules.errors.RuleLoadError` with every diagnostic)."""
    candidate = build_core(paths, allowed_lateness_s=allowed_lateness_s)
    return ReloadResult(candidate,
                        detectors_changed=items_digest(candidate, "detector") != items_digest(current, "detector"),
                        policies_changed=items_digest(candidate, "policy") != items_digest(current, "policy"))
