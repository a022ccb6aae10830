"""Issue 22's small things: sizes with units, human sizes, the targets × encodings grid,
targets checked where typed."""

from __future__ import annotations

import io
from collections import Counter
from types import SimpleNamespace

import pytest
from rich.console import Console

from edgefill.edge_grid import FAILED, HIT, INCONSISTENT, MISS, EdgeGrid, check_grid
from edgefill.operations import OperatorError
from edgefill.sizes import human_size, parse_size
from edgefill.targets import check_targets, worker_regions


@pytest.mark.parametrize(
    ("typed", "size"),
    [
        ("20000000", 20_000_000),
        ("50GB", 50 * 10**9),
        ("50 gb", 50 * 10**9),
        ("1.5TiB", int(1.5 * 2**40)),
        ("750MB", 750 * 10**6),
        ("2KiB", 2048),
        ("1kB", 1000),
        ("0", 0),
        ("3B", 3),
    ],
)
def test_sizes_are_typed_in_bytes_or_with_a_decimal_or_binary_unit(typed: str, size: int) -> None:
    assert parse_size(typed) == size


@pytest.mark.parametrize("typed", ["", "50XB", "-1", "1.5", "GB", "1e9", "5 G B", "½GB"])
def test_anything_else_is_refused_naming_the_accepted_form(typed: str) -> None:
    with pytest.raises(ValueError, match=r"50GB, 1\.5TiB"):
        parse_size(typed)


def test_human_sizes_in_tables() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 1536 * 1024, 5 * 2**40)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "5.0 TiB",
    ]


# ---- the grid -----------------------------------------------------------------------------
def render(grid: EdgeGrid, width: int = 80) -> str:
    console = Console(width=width, color_system=None, record=True, file=io.StringIO())
    console.print(grid.table("grid"))
    console.print(grid.legend(), markup=False)
    return console.export_text()


def test_the_grid_fits_80_columns_and_means_nothing_by_colour_alone() -> None:
    # Given the widest lab case: four targets, four encodings, every state
    grid = EdgeGrid.of(
        ["ap-northeast-1", "eu-central-1", "NRT20-P2", "us-east-1"],
        ["br+gzip", "gzip", "br", "identity"],
    )
    for target in grid.targets:
        for encoding in grid.encodings:
            grid.add(target, encoding, HIT)
    grid.cells[("eu-central-1", "br")] = Counter({INCONSISTENT: 1})
    grid.cells[("NRT20-P2", "identity")] = Counter({FAILED: 1})
    grid.cells[("us-east-1", "gzip")] = Counter({MISS: 1})
    text = render(grid)
    # Then every line fits, and each cell says its state in a word, beside a symbol
    assert max(len(line) for line in text.splitlines()) <= 80
    for word in ("✓ hit", "≠ inconsistent", "✗ failed", "↓ miss"):
        assert word in text
    assert "✗ failed  ≠ inconsistent  ↓ miss  ✓ hit" in text  # the legend, worst first


def test_a_cell_over_several_paths_counts_each_state_worst_first() -> None:
    grid = EdgeGrid.of(["us-east-1"], ["gzip"])
    for state, times in ((HIT, 10), (FAILED, 2), (MISS, 1)):
        for _ in range(times):
            grid.add("us-east-1", "gzip", state)
    assert "✗2 ↓1 ✓10" in render(grid)
    assert "(a number counts paths)" in grid.legend()


def test_checks_grid_marks_the_answers_a_verdict_names_as_differing() -> None:
    answer = SimpleNamespace
    verdict = SimpleNamespace(
        differing=['eu-central-1 br (FRA56-P1): 200 "v1"'],
        edges=[
            answer(target="eu-central-1", encoding="br", failed=False, x_cache="Hit"),
            answer(target="eu-central-1", encoding="gzip", failed=False, x_cache="Miss"),
            answer(target="us-east-1", encoding="br", failed=True, x_cache=None),
        ],
    )
    grid = check_grid([verdict], ["eu-central-1", "us-east-1"], ["br", "gzip"])
    assert grid.cells[("eu-central-1", "br")] == Counter({INCONSISTENT: 1})
    assert grid.cells[("eu-central-1", "gzip")] == Counter({MISS: 1})
    assert grid.cells[("us-east-1", "br")] == Counter({FAILED: 1})


# ---- targets ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("ap-northeast-9", "no client subnet is known for this region"),
        ("ap-northeast-9", "did you mean ap-northeast-1?"),
        ("us-esat-1", "did you mean us-east-1?"),
        ("nrt20p2", "did you mean NRT20-P2?"),
        ("nrt20-p2", "did you mean NRT20-P2?"),
        ("mars", "neither a region with a known client subnet (us-east-1) nor a POP code"),
    ],
)
def test_a_target_the_worker_could_not_resolve_is_refused_where_typed(
    typed: str, said: str
) -> None:
    with pytest.raises(OperatorError, match=r"^--targets: ") as refused:
        check_targets(["us-east-1", typed], worker_regions())
    assert said in str(refused.value)


def test_regions_added_to_the_subnet_table_are_targets() -> None:
    check_targets(["NRT20-P2", "us-east-1"], worker_regions())
    regions = worker_regions('{"ap-northeast-9": "192.0.2.0/24"}')
    check_targets(["ap-northeast-9"], regions)
