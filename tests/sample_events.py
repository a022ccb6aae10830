"""Load the sample events kept as JSON under tests/events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> Any:
    """The parsed JSON of ``tests/events/<name>.json`` (a fresh copy on every call)."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
