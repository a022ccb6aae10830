"""`edgefill refresh` and `edgefill invalidate` against moto in server mode."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from edgefill.cli import main
from shared.messages import parse_backfill
from tests.integration.test_cli import receive_all
from tests.integration.test_refresh import create_distribution
from tests.json_keys import snake_case_keys


def test_refresh_sends_refresh_messages_to_the_backfill_queue(moto: str, sqs: Any) -> None:
    queue = sqs.create_queue(QueueName="bf")["QueueUrl"]
    code = main(
        [
            "refresh",
            "/index.html",
            "/img/東京.jpg",
            "--endpoint-url",
            moto,
            "--backfill-queue-url",
            queue,
        ]
    )
    assert code == 0
    messages = [parse_backfill(body) for body in receive_all(sqs, queue)]
    assert sorted(m.uri for m in messages) == ["/img/%E6%9D%B1%E4%BA%AC.jpg", "/index.html"]
    assert {m.mode for m in messages} == {"refresh"}


@pytest.mark.parametrize(
    "argv",
    [
        ["refresh", "relative.html", "--dry-run"],
        ["refresh", "/_edgefill/due/x", "--dry-run"],
        ["refresh", "--dry-run"],
        ["invalidate", "/a*b", "--distribution-id", "E2EXAMPLE"],
        ["invalidate", "/a", "--distribution-id", "not-an-id"],
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "edgefill: error:" in capsys.readouterr().err


def test_invalidate_waits_until_completed(moto: str, capsys: pytest.CaptureFixture[str]) -> None:
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto)
    distribution = create_distribution(cloudfront)
    argv = ["invalidate", "/index.html", "/img/a b.jpg", "/img/*", "--distribution-id"]
    code = main([*argv, distribution, "--endpoint-url", moto, "--wait"])
    assert code == 0
    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    (item,) = listed["Items"]
    detail = cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])
    paths = detail["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert paths == ["/index.html", "/img/a%20b.jpg", "/img/*"]
    assert item["Id"] in capsys.readouterr().out
    # And --json reports the batch as one document
    assert main([*argv, distribution, "--endpoint-url", moto, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["distributionId"] == distribution and document["interrupted"] is False
    assert [batch["paths"] for batch in document["batches"]] == [3]
    assert document["notCreatedPaths"] == [] and snake_case_keys(document) == []


def test_invalidate_an_unknown_distribution_exits_2(moto: str) -> None:
    assert (
        main(["invalidate", "/a", "--distribution-id", "E2NOSUCH1234", "--endpoint-url", moto]) == 2
    )
