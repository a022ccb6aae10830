"""One spelling for the field names of every command's ``--json``: camelCase, as the
message schema spells them (``inFlight``, ``unknownSizes``). Python names its fields in
snake_case; ``camel_case`` turns a document's keys into the published form."""

from __future__ import annotations

import re
from typing import Any, Final

_UNDERSCORE: Final = re.compile(r"_([a-z0-9])")


def camel_case(document: Any) -> Any:
    """``document`` with every key ``in_flight`` written ``inFlight``, at any depth."""
    if isinstance(document, dict):
        return {
            _UNDERSCORE.sub(lambda m: m.group(1).upper(), str(key)): camel_case(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [camel_case(item) for item in document]
    return document
