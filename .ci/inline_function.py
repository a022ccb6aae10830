"""Copy edge_viewer_request/select_origin.js into template.yaml (``make function``).

The edge stack deploys the viewer-request function's code inline (an Fn::Sub body of
AWS::CloudFront::Function, which takes no file), so the template holds a generated copy
between the ``# BEGIN select_origin.js`` and ``# END select_origin.js`` comments;
tests/unit/test_template_regions.py fails when the copy and the file differ. With
``--check`` it only says whether they do (exit 1), changing nothing.

Standard library only: it runs with the system Python before any virtualenv exists.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "edge_viewer_request" / "select_origin.js"
TEMPLATE = ROOT / "template.yaml"
# The block scalar between the markers; its content is indented by INDENT.
_BLOCK = re.compile(
    r"(?P<head>^(?P<margin> *)# BEGIN select_origin\.js\n(?P=margin)- \|\n)"
    r"(?P<body>.*?)"
    r"(?P<tail>^(?P=margin)# END select_origin\.js$)",
    re.MULTILINE | re.DOTALL,
)


def inlined(template: str, code: str) -> str:
    """``template`` with the block between the markers replaced by ``code``."""
    match = _BLOCK.search(template)
    if match is None:
        raise SystemExit(f"{TEMPLATE.name}: no '# BEGIN select_origin.js' / '# END' block")
    indent = match["margin"] + "  "
    if "\t" in code or any(line != line.rstrip() for line in code.splitlines()):
        raise SystemExit(f"{SOURCE.name}: tabs or trailing spaces change in a YAML block")
    body = "".join(indent + line + "\n" if line else "\n" for line in code.splitlines())
    return template[: match.start("body")] + body + template[match.end("body") :]


def main(argv: list[str]) -> int:
    template = TEMPLATE.read_text(encoding="utf-8")
    updated = inlined(template, SOURCE.read_text(encoding="utf-8"))
    if "--check" in argv:
        if updated != template:
            print(f"{TEMPLATE.name}: its function differs from {SOURCE.name}; run make function")
            return 1
        return 0
    if updated != template:
        TEMPLATE.write_text(updated, encoding="utf-8")
        print(f"{TEMPLATE.name}: function code updated from {SOURCE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
