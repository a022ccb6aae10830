"""One naming style for every command's ``--json``: camelCase, as the message schema
(issue 22). Keys that are data (a target, a path, a reason) are not field names and may
hold anything but an underscore-joined lower-case word."""

from __future__ import annotations

import re
from typing import Any

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def snake_case_keys(document: Any) -> list[str]:
    """Every key of ``document`` (at any depth) written in snake_case."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(key, str) and _SNAKE.fullmatch(key):
                found.append(key)
            found += snake_case_keys(value)
    elif isinstance(document, list):
        for item in document:
            found += snake_case_keys(item)
    return found
