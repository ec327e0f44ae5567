"""Generate JSON Schemas for every message into schemas/json/.

``python -m schemas.export`` rewrites them; ``--check`` exits 1 when a file
is stale (CI runs it, so a model change without regenerated schemas fails).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.deadletter import DeadLetter
from schemas.detections import Detection
from schemas.events import Event, EventBatch
from schemas.killswitch import Heartbeat, KillSwitchCommand

MODELS: dict[str, type[BaseModel]] = {
    "event": Event,
    "event_batch": EventBatch,
    "dead_letter": DeadLetter,
    "detection": Detection,
    "alert": Alert,
    "killswitch_command": KillSwitchCommand,
    "heartbeat": Heartbeat,
}
JSON_DIR = Path(__file__).parent / "json"


def render() -> dict[str, str]:
    out = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://overseer.dev/schemas/{name}.json"
        out[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for filename, text in render().items():
        path = JSON_DIR / filename
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(filename)
            if not check:
                path.write_text(text)
    if check and stale:
        print(f"stale JSON Schemas in schemas/json: {', '.join(stale)} — run `make schemas`", file=sys.stderr)
        return 1
    print(("checked " if check else "wrote ") + f"{len(MODELS)} schemas in {JSON_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
