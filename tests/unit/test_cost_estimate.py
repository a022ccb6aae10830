"""Estimate arithmetic against known sizes, the price table and its overrides, and the caps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edgefill.cost_estimate import estimate
from edgefill.operations import OperatorError
from edgefill.pricing import BUILT_IN, GEOGRAPHIES, load_prices, merge_prices
from edgefill.spend_caps import cap_problems
from edgefill.target_geography import geography_of

GiB = 1024**3
MiB = 1024**2


def test_the_built_in_table_is_dated_sourced_and_complete() -> None:
    assert BUILT_IN.as_of == "2026-11-30"
    for page in ("cloudfront/pricing", "lambda/pricing", "sqs/pricing"):
        assert f"https://aws.amazon.com/{page}/" in BUILT_IN.source
    assert set(BUILT_IN.transfer_per_gb) == set(GEOGRAPHIES) == set(BUILT_IN.https_per_10k)
    assert BUILT_IN.transfer_per_gb["us"] == 0.085 and BUILT_IN.https_per_10k["us"] == 0.01


@pytest.mark.parametrize(
    ("target", "geography", "known"),
    [
        ("us-east-1", "us", True),
        ("ca-central-1", "us", True),
        ("eu-central-1", "eu", True),
        ("ap-northeast-1", "jp", True),
        ("ap-southeast-2", "au", True),
        ("ap-south-1", "in", True),
        ("ap-southeast-1", "ap", True),
        ("sa-east-1", "sa", True),
        ("me-central-1", "za-me", True),
        ("NRT20-P2", "jp", True),
        ("FRA56-P1", "eu", True),
        ("GRU3-C1", "sa", True),
        ("ZZZ9-P1", "ap", False),  # unknown airport: the dearest geography
        ("xx-moon-1", "ap", False),
    ],
)
def test_each_target_bills_in_its_geography(target: str, geography: str, known: bool) -> None:
    assert geography_of(target, BUILT_IN.transfer_per_gb) == (geography, known)


def test_estimate_of_known_sizes_is_size_times_targets_times_encodings() -> None:
    # Given 1 GiB and 512 MiB objects, one of unknown size, two targets and two encodings
    sizes = [GiB, 512 * MiB, None]
    result = estimate(sizes, ["us-east-1", "NRT20-P2"], ["gzip", "identity"], BUILT_IN)
    # Then bytes are the upper bound: stored sizes × targets × encodings
    assert result.paths == 3 and result.unknown_sizes == 1
    assert result.warms == 3 * 2 * 2
    assert result.bytes == (GiB + 512 * MiB) * 2 * 2
    us, jp = result.by_target["us-east-1"], result.by_target["NRT20-P2"]
    assert (us.warms, us.bytes) == (6, 3 * GiB)
    # And dollars are transfer (per GiB) + HTTPS requests (per 10 000) + Lambda@Edge
    edge = 0.60 / 1e6 + 0.00005001 * 128 / 1024 * 0.01
    assert us.usd == pytest.approx(3 * 0.085 + 6 * 0.0100 / 10_000 + 6 * edge, rel=1e-12)
    assert jp.usd == pytest.approx(3 * 0.114 + 6 * 0.0120 / 10_000 + 6 * edge, rel=1e-12)
    assert result.usd == pytest.approx(us.usd + jp.usd, rel=1e-12)
    assert result.workers_usd == 0.0  # a local warm: no queue, no worker


def test_duplicates_count_once() -> None:
    result = estimate([MiB], ["us-east-1", "us-east-1"], ["gzip", "gzip", "br"], BUILT_IN)
    assert result.warms == 2 and result.bytes == 2 * MiB
    assert list(result.by_target) == ["us-east-1"]


def test_through_the_queue_the_worker_and_sqs_are_priced() -> None:
    # Given one 100 MiB path warmed at one target in one encoding, in two messages of
    # 1 KiB and 130 KiB (three 64 KiB chunks)
    result = estimate([100 * MiB], ["eu-west-1"], ["br"], BUILT_IN, [1024, 130 * 1024])
    # Then SQS bills 3 requests per chunk, Lambda per message and per GB-second
    sqs = 3 * (1 + 3) * 0.40 / 1e6
    seconds = 100 * MiB / (50 * MiB) + 1 * 0.05
    lambda_usd = 2 * 0.20 / 1e6 + 0.5 * seconds * 0.0000166667
    assert result.parts["sqs"] == pytest.approx(sqs)
    assert result.parts["lambda"] == pytest.approx(lambda_usd)
    assert result.workers_usd == pytest.approx(sqs + lambda_usd)
    assert result.usd == pytest.approx(result.by_target["eu-west-1"].usd + sqs + lambda_usd)


def test_json_has_exactly_the_documented_shape() -> None:
    result = estimate([10, None], ["us-east-1"], ["gzip"], BUILT_IN)
    document = result.as_json()
    assert set(document) == {
        "paths",
        "warms",
        "bytes",
        "unknownSizes",
        "usd",
        "byTarget",
        "prices",
    }
    assert document["prices"] == {"asOf": BUILT_IN.as_of, "source": BUILT_IN.source}
    assert document["byTarget"]["us-east-1"]["warms"] == 2
    assert json.loads(json.dumps(document)) == document


def test_no_paths_cost_nothing() -> None:
    result = estimate([], ["us-east-1"], ["gzip"], BUILT_IN)
    assert (result.warms, result.bytes, result.usd) == (0, 0, 0.0)


# ---------------------------------------------------------------- price overrides
def test_a_prices_file_replaces_figures_and_states_its_date(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(
        json.dumps(
            {
                "asOf": "2027-01-01",
                "source": "our contract",
                "cloudfront": {"dataTransferOutPerGB": {"us": 0.02}},
                "sqs": {"requestsPerMillion": 0},
            }
        ),
        encoding="utf-8",
    )
    prices = load_prices(str(file))
    assert (prices.as_of, prices.source) == ("2027-01-01", "our contract")
    assert prices.transfer_per_gb["us"] == 0.02 and prices.transfer_per_gb["eu"] == 0.085
    assert prices.sqs_per_million == 0.0 and prices.lambda_per_million == 0.20
    result = estimate([GiB], ["us-east-1"], ["gzip"], prices)
    assert result.as_json()["prices"] == {"asOf": "2027-01-01", "source": "our contract"}
    assert result.parts["transfer"] == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"source": "x"}, "'asOf'"),
        ({"asOf": "2027", "source": " "}, "'source'"),
        ({"asOf": "d", "source": "s", "cloudfront": {"dataTransferOutPerGB": {"mars": 1}}}, "mars"),
        ({"asOf": "d", "source": "s", "sqs": {"requestsPerMillion": -1}}, "negative"),
        ({"asOf": "d", "source": "s", "lambda": {"perGBSecond": "cheap"}}, "must be a number"),
        ({"asOf": "d", "source": "s", "lambda": {"perGBSecond": math.inf}}, "must be a number"),
        ({"asOf": "d", "source": "s", "lambda": {"perGBSecond": True}}, "must be a number"),
        ({"asOf": "d", "source": "s", "lambda": {"discount": 1}}, "lambda.discount"),
        ({"asOf": "d", "source": "s", "s3": {}}, "unknown key 's3'"),
        ({"asOf": "d", "source": "s", "assumptions": {"magic": 1}}, "assumptions.magic"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_prices_document_is_refused_naming_the_key(document: object, problem: str) -> None:
    with pytest.raises(OperatorError, match=problem):
        merge_prices(BUILT_IN, document, where="--prices p.json")


def test_an_unreadable_prices_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="--prices"):
        load_prices(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(OperatorError, match="not JSON"):
        load_prices(str(bad))


# ---------------------------------------------------------------- caps
def test_caps_refuse_what_is_over_or_unproven() -> None:
    result = estimate([GiB], ["us-east-1"], ["gzip"], BUILT_IN)
    assert cap_problems(result, None, None) == []
    assert cap_problems(result, GiB, 1.0) == []
    [over_bytes] = cap_problems(result, GiB - 1, None)
    assert "over --max-bytes" in over_bytes
    [over_usd] = cap_problems(result, None, 0.01)
    assert "over --max-usd" in over_usd
    unknown = estimate([GiB, None], ["us-east-1"], ["gzip"], BUILT_IN)
    [unproven] = cap_problems(unknown, 10 * GiB, None)
    assert "no known size" in unproven
