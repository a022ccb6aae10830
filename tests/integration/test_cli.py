"""The operator CLI against moto in server mode: messages, status, redrive, stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgefill.cli import main
from shared.messages import parse_backfill, parse_prewarm
from tests.json_keys import snake_case_keys

# These tests create stacks in moto, whose first CreateStack imports every moto backend
# (about 3 s of CPU): they share one xdist worker, and its moto server, to pay that once.
pytestmark = pytest.mark.xdist_group("cloudformation")

STACK_TEMPLATE = {
    "Resources": {
        "BackfillDLQ": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "bf-dlq"}},
        "PrewarmDLQ": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "pw-dlq"}},
        "BackfillQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "bf"}},
        "PrewarmQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "pw"}},
    },
    "Outputs": {
        "BackfillQueueUrl": {"Value": {"Ref": "BackfillQueue"}},
        "PrewarmQueueUrl": {"Value": {"Ref": "PrewarmQueue"}},
        "BackfillDLQUrl": {"Value": {"Ref": "BackfillDLQ"}},
        "PrewarmDLQUrl": {"Value": {"Ref": "PrewarmDLQ"}},
    },
}


@pytest.fixture
def stack(moto: str, sqs: Any) -> dict[str, str]:
    import boto3

    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto)
    cloudformation.create_stack(StackName="edgefill", TemplateBody=json.dumps(STACK_TEMPLATE))
    return {
        name: sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for name in ("bf", "pw", "bf-dlq", "pw-dlq")
    }


def receive_all(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(m["Body"] for m in messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def test_prewarm_from_a_paths_file_sends_chunked_valid_messages(
    moto: str, sqs: Any, stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 25 paths in a file (with a comment, a blank line and a non-ASCII name)
    paths_file = tmp_path / "launch.txt"
    lines = ["# launch", ""] + [f"/launch/{i}.jpg" for i in range(24)] + ["/docs/café menu.pdf"]
    paths_file.write_text("\n".join(lines), encoding="utf-8")
    # When the operator queues them 10 paths a message for two targets and two encodings
    code = main(
        [
            "prewarm",
            "--paths-file",
            str(paths_file),
            "--paths-per-message",
            "10",
            "--targets",
            "us-east-1,NRT20-P2",
            "--encodings",
            "gzip",
            "--encodings",
            "identity",
            "--stack",
            "edgefill",
            "--endpoint-url",
            moto,
        ]
    )
    # Then three valid prewarm messages hold every path, percent-encoded, once
    assert code == 0
    messages = [parse_prewarm(body) for body in receive_all(sqs, stack["pw"])]
    assert sorted(len(m.paths) for m in messages) == [5, 10, 10]
    every_path = sorted(p for m in messages for p in m.paths)
    assert "/docs/caf%C3%A9%20menu.pdf" in every_path and len(every_path) == 25
    assert {m.targets for m in messages} == {("us-east-1", "NRT20-P2")}
    assert {m.encodings for m in messages} == {("gzip", "identity")}
    assert {m.source for m in messages} == {"manual"}
    assert "25" in capsys.readouterr().out


def test_backfill_with_an_explicit_queue_url(moto: str, sqs: Any, stack: dict[str, str]) -> None:
    code = main(
        [
            "backfill",
            "/a.jpg",
            "/b.jpg?v=2",
            "--host",
            "cdn.example.com",
            "--backfill-queue-url",
            stack["bf"],
            "--endpoint-url",
            moto,
        ]
    )
    assert code == 0
    messages = sorted(
        (parse_backfill(b) for b in receive_all(sqs, stack["bf"])), key=lambda m: m.uri
    )
    assert [(m.uri, m.query, m.host) for m in messages] == [
        ("/a.jpg", "", "cdn.example.com"),
        ("/b.jpg", "v=2", "cdn.example.com"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["prewarm", "relative.jpg", "--dry-run"],
            "argument 1: path 'relative.jpg' must start with '/'",
        ),
        (["prewarm", "/a", "--targets", "mars-1", "--dry-run"], "--targets"),
        (["prewarm", "/a", "--encodings", "zstd", "--dry-run"], "unknown encoding 'zstd'"),
        (["prewarm", "--dry-run"], "no paths given"),
        (["prewarm", "--paths-file", "/nonexistent/list.txt", "--dry-run"], "does not exist"),
        (["prewarm", "/a/../b", "--dry-run"], "traversal"),
        (["backfill", "/_edgefill/leases/x", "--dry-run"], "reserved"),
        (["backfill", "/a\x00b", "--dry-run"], "control character"),
        (["prewarm", "/a", "--paths-per-message", "0", "--dry-run"], "--paths-per-message"),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_sent(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err and "edgefill: error:" in captured.err


def test_unknown_stack_and_missing_queue_are_named(
    moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--stack", "nope", "--endpoint-url", moto]) == 2
    assert "stack 'nope' not found" in capsys.readouterr().err
    assert main(["prewarm", "/a", "--endpoint-url", moto]) == 2
    assert "no prewarm queue URL" in capsys.readouterr().err


def test_missing_credentials_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    code = main(
        [
            "prewarm",
            "/a",
            "--prewarm-queue-url",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        ]
    )
    assert code == 2
    assert "no AWS credentials found" in capsys.readouterr().err


def test_status_shows_each_queue_depth(
    moto: str, sqs: Any, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        sqs.send_message(QueueUrl=stack["bf-dlq"], MessageBody="{}")
    assert main(["status", "--stack", "edgefill", "--endpoint-url", moto, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert snake_case_keys(document) == []  # inFlight, oldestAgeSeconds (issue 22)
    depths = {d["role"]: d for d in document}
    assert depths["backfill-dlq"]["visible"] == 3 and depths["backfill"]["visible"] == 0
    assert depths["backfill"]["inFlight"] == 0 and "oldestAgeSeconds" in depths["backfill"]
    assert set(depths) == {"backfill", "backfill-dlq", "prewarm", "prewarm-dlq"}
    assert main(["status", "--stack", "edgefill", "--endpoint-url", moto]) == 0
    assert "backfill-dlq" in capsys.readouterr().out


def test_redrive_moves_dlq_messages_back_with_the_lab_fallback(
    moto: str, sqs: Any, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three messages in the backfill DLQ
    for index in range(3):
        sqs.send_message(QueueUrl=stack["bf-dlq"], MessageBody=f'{{"n":{index}}}')
    # When the operator redrives against moto (which lacks StartMessageMoveTask)
    code = main(["redrive", "--queue", "backfill", "--stack", "edgefill", "--endpoint-url", moto])
    captured = capsys.readouterr()
    # Then the messages are back on the queue, the DLQ is empty, and the fallback is said
    assert code == 0
    assert sorted(receive_all(sqs, stack["bf"])) == ['{"n":0}', '{"n":1}', '{"n":2}']
    assert receive_all(sqs, stack["bf-dlq"]) == []
    assert "StartMessageMoveTask" in captured.err and "3 messages moved back" in captured.out


def test_redrive_counts_the_reasons_before_moving_anything(
    moto: str, sqs: Any, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a backfill DLQ holding two refusals (the worker's reason attribute) and one
    # message the redrive policy moved after five failed receives
    reason = {"edgefill-refusal": {"DataType": "String", "StringValue": "bad_key"}}
    for body in ('{"n":0}', '{"n":1}'):
        sqs.send_message(QueueUrl=stack["bf-dlq"], MessageBody=body, MessageAttributes=reason)
    sqs.send_message(QueueUrl=stack["bf-dlq"], MessageBody='{"n":2}')
    argv = ["redrive", "--queue", "backfill", "--stack", "edgefill", "--endpoint-url", moto]
    # When the operator asks with --dry-run
    assert main([*argv, "--dry-run"]) == 0
    captured = capsys.readouterr()
    # Then the reasons are counted and nothing moved: all three are still in the DLQ, visible
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in captured.out.splitlines()
        if line.count("│") == 3
    }
    assert rows["bad_key"] == "2" and rows["(failed every receive)"] == "1"
    assert "come back refused unless their cause was fixed" in captured.err
    assert receive_all(sqs, stack["bf"]) == []
    # When the operator redrives, then the counts come first and every message moves
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.index("bad_key") < captured.out.index("3 messages moved back")
    assert sorted(receive_all(sqs, stack["bf"])) == ['{"n":0}', '{"n":1}', '{"n":2}']
    # And an empty DLQ moves nothing
    assert main(argv) == 0
    assert "the DLQ is empty, nothing to move" in capsys.readouterr().out
    # And --json says the same as one document
    assert main([*argv, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["queue"] == "backfill" and row["read"] == 0 and row["moved"] is None
    assert snake_case_keys(row) == []


def test_redrive_against_aws_uses_the_move_task(mocker: Any) -> None:
    # Given an SQS client that implements the move task (real AWS)
    from edgefill import operations

    sqs = mocker.Mock()
    sqs.get_queue_attributes.side_effect = lambda QueueUrl, AttributeNames: {
        "Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:1:" + QueueUrl.rsplit("/", 1)[1]}
    }
    sqs.start_message_move_task.return_value = {"TaskHandle": "handle-1"}
    # When redriving without the lab fallback
    result = operations.redrive(sqs, "https://q/1/dlq", "https://q/1/main", lab_fallback=False)
    # Then the task was started from the DLQ's ARN to the queue's, and nothing else was tried
    sqs.start_message_move_task.assert_called_once_with(
        SourceArn="arn:aws:sqs:us-east-1:1:dlq", DestinationArn="arn:aws:sqs:us-east-1:1:main"
    )
    assert result.method == "move-task" and result.task_handle == "handle-1"
    sqs.receive_message.assert_not_called()
