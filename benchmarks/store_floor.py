"""The storage floor: CPU per event that ClickHouse spends storing the bench's events, against the ceiling.

The measurement lives in `streams.bench.store_floor` (``overseer bench`` runs it too); see its
docstring and docs/performance.md, "The storage floor". Run::

    .venv/bin/python benchmarks/store_floor.py
    .venv/bin/python benchmarks/store_floor.py --ceiling-eps 435713 --json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.bench.store_floor import main

if __name__ == "__main__":
    main()
