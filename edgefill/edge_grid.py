"""The picture ``warm`` and ``check`` end with: targets down, encodings across, one cell
for what each target's edge did with each encoding.

A cell holds one of five states, each a symbol and a word so that nothing rests on colour
alone (colour only repeats the symbol): ``✓ hit``, ``↓ miss`` (the edge fetched it: a warm's
miss is the warm working), ``✗ failed``, ``≠ inconsistent`` (``check``: a version other
than the reference) and ``– not run`` (a warm stopped by Ctrl-C or a cap). A cell that
covers one path shows the word; over several paths it shows each state's count of paths,
worst first (``✗2 ✓10``). With four encodings the grid fits 80 columns; ``--json`` stays
the machine form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from edgefill.console import escape, out

if TYPE_CHECKING:
    from rich.table import Table

HIT: Final = "hit"
MISS: Final = "miss"
FAILED: Final = "failed"
INCONSISTENT: Final = "inconsistent"
NOT_RUN: Final = "not run"
# Worst first: a cell's states are listed in this order.
STATES: Final = (FAILED, INCONSISTENT, NOT_RUN, MISS, HIT)
SYMBOLS: Final = {HIT: "✓", MISS: "↓", FAILED: "✗", INCONSISTENT: "≠", NOT_RUN: "–"}
_STYLES: Final = {HIT: "green", MISS: "cyan", FAILED: "red", INCONSISTENT: "yellow", NOT_RUN: "dim"}


@dataclass
class EdgeGrid:
    """Counts of paths by state, per (target, encoding), in the order first seen."""

    targets: list[str] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, targets: Iterable[str], encodings: Iterable[str]) -> EdgeGrid:
        return cls(list(dict.fromkeys(targets)), list(dict.fromkeys(encodings)))

    def add(self, target: str, encoding: str, state: str, paths: int = 1) -> None:
        if target not in self.targets:
            self.targets.append(target)
        if encoding not in self.encodings:
            self.encodings.append(encoding)
        self.cells.setdefault((target, encoding), Counter())[state] += paths

    def cell(self, target: str, encoding: str) -> str:
        """The cell's text, with rich markup (the symbols and words are ours, no input)."""
        counts = self.cells.get((target, encoding), Counter())
        present = [state for state in STATES if counts[state]]
        if not present:
            return ""
        if sum(counts.values()) == 1:
            state = present[0]
            return f"[{_STYLES[state]}]{SYMBOLS[state]} {state}[/]"
        return " ".join(f"[{_STYLES[s]}]{SYMBOLS[s]}{counts[s]}[/]" for s in present)

    def table(self, title: str) -> Table:
        from rich import box
        from rich.table import Table

        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("target")
        for encoding in self.encodings:
            table.add_column(encoding)
        for target in self.targets:
            table.add_row(escape(target), *(self.cell(target, e) for e in self.encodings))
        return table

    def legend(self) -> str:
        """The symbols in use, as one plain line."""
        used = {state for counts in self.cells.values() for state in counts if counts[state]}
        words = "  ".join(f"{SYMBOLS[s]} {s}" for s in STATES if s in used)
        several = any(sum(counts.values()) > 1 for counts in self.cells.values())
        return words + ("  (a number counts paths)" if several else "")


def warm_state(result: Any) -> str:
    """A warm task's state (``prewarm_worker.engine.TaskResult``)."""
    if not result.ok:
        return FAILED
    return HIT if result.hit else MISS


def check_grid(
    verdicts: Iterable[Any], targets: Iterable[str], encodings: Iterable[str]
) -> EdgeGrid:
    """The grid of ``check``'s verdicts (``edgefill.edge_check.PathVerdict``): an answer is
    inconsistent when its verdict names it among those that differ."""
    grid = EdgeGrid.of(targets, encodings)
    for verdict in verdicts:
        differing = tuple(verdict.differing)
        for answer in verdict.edges:
            name = f"{answer.target} {answer.encoding}"
            if answer.failed:
                state = FAILED
            elif any(line.startswith((f"{name} ", f"{name}:")) for line in differing):
                state = INCONSISTENT
            else:
                x_cache = (answer.x_cache or "").lower()
                state = HIT if x_cache.startswith("hit") else MISS
            grid.add(answer.target, answer.encoding, state)
    return grid


def print_grid(grid: EdgeGrid, title: str) -> None:
    """The grid and its legend on the CLI's stdout."""
    out.print(grid.table(title))
    out.print(grid.legend(), markup=False)
