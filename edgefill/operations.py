"""What the operator commands do, without the command line: find the stack's queues,
build validated messages, read queue depths, move DLQ messages back.

Every function takes its boto3 clients as arguments, so the CLI can point them at real
AWS or at the lab (``--endpoint-url``) and tests can point them at moto.

Every CLI start imports this module (``OperatorError``, ``split_list``): the message and
key rules, the worker's task cap and botocore's errors are imported by the functions that
use them (issue 23: ``edgefill --help`` loads none of them).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from edgefill.aws_regions import UnknownRegion, check_region, region_from
from edgefill.json_keys import camel_case
from shared import aws

if TYPE_CHECKING:
    import boto3

# Stack outputs naming the queues (a regional stack's), by the role the CLI gives them.
STACK_OUTPUTS: Final = {
    "backfill": "BackfillQueueUrl",
    "prewarm": "PrewarmQueueUrl",
    "backfill-dlq": "BackfillDLQUrl",
    "prewarm-dlq": "PrewarmDLQUrl",
}
# Paths per prewarm message when the operator does not say: small enough that one slow
# message does not hold a thousand warms hostage, large enough to keep SQS calls few.
DEFAULT_PATHS_PER_MESSAGE: Final = 100
# Keep bodies under SQS's historical 256 KiB default so queues created without the
# 1 MiB MaximumMessageSize still take them.
BODY_BUDGET: Final = 250 * 1024
# What stays unescaped when a path typed by an operator is percent-encoded for CloudFront.
_SAFE_IN_URI: Final = "/-._~!$&'()*+,;=:@%?"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class OperatorError(Exception):
    """A problem the operator must fix (bad input, missing credentials, unknown stack)."""


@dataclass(frozen=True, slots=True)
class QueueUrls:
    """The queue URLs a command may use; ``None`` when neither a flag nor the stack gave one."""

    backfill: str | None = None
    prewarm: str | None = None
    backfill_dlq: str | None = None
    prewarm_dlq: str | None = None

    def require(self, role: str) -> str:
        url = getattr(self, role.replace("-", "_"))
        if not url:
            flag = f"--{role}-queue-url" if not role.endswith("dlq") else f"--{role}-url"
            raise OperatorError(f"no {role} queue URL: pass --stack NAME or {flag}")
        return str(url)


def aws_session(
    region: str | None,
    need_credentials: bool = True,
    *,
    profile: str | None = None,
    fallback_region: str | None = None,
) -> boto3.session.Session:
    """A boto3 session as the AWS CLI v2 would make it: ``profile`` (else ``AWS_PROFILE``),
    the region from ``region`` (``--region``), ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the
    profile, then ``fallback_region``; the region checked against botocore's partitions.
    A clear ``OperatorError`` (exit 2) for a missing profile, an unknown region or no
    credentials to sign with."""
    import boto3  # here, not at import: a command that never calls AWS never loads it
    from botocore.exceptions import ProfileNotFound

    region, source = region_from(region, os.environ)
    try:
        if region is not None:
            check_region(region)
        session = boto3.session.Session(
            profile_name=profile, region_name=region, botocore_session=aws.core_session(profile)
        )
        if session.region_name is None and fallback_region is not None:
            session = boto3.session.Session(
                profile_name=profile,
                region_name=fallback_region,
                botocore_session=aws.core_session(profile),
            )
        elif region is None and session.region_name is not None:
            source = f"the region of profile {session.profile_name!r}"
            check_region(session.region_name)
        credentials = session.get_credentials() if need_credentials else None
    except UnknownRegion as error:
        raise OperatorError(f"{source}: {error}") from None
    except ProfileNotFound:
        named = "--profile" if profile else "AWS_PROFILE"
        raise OperatorError(
            f"{named}: no profile {profile or os.environ.get('AWS_PROFILE')!r} in the AWS "
            "config files (~/.aws/config, ~/.aws/credentials; `aws configure list-profiles`)"
        ) from None
    if need_credentials and credentials is None:
        raise OperatorError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(for the lab, use the variables `edgefill lab up` prints)"
        )
    if session.region_name is None:
        raise OperatorError(
            "no AWS region: pass --region, set AWS_REGION, or give the profile a region"
        )
    return session


def make_client(session: boto3.session.Session, service: str, endpoint_url: str | None) -> Any:
    from botocore.config import Config

    return session.client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
    )


def merge_queue_urls(from_stack: QueueUrls | None, flags: QueueUrls) -> QueueUrls:
    """Explicit flags win over the stack's outputs."""
    base = from_stack or QueueUrls()
    return QueueUrls(
        backfill=flags.backfill or base.backfill,
        prewarm=flags.prewarm or base.prewarm,
        backfill_dlq=flags.backfill_dlq or base.backfill_dlq,
        prewarm_dlq=flags.prewarm_dlq or base.prewarm_dlq,
    )


# ---- paths and messages -------------------------------------------------------------
def read_paths(arguments: Sequence[str], paths_file: str | None) -> list[tuple[str, str]]:
    """(where, path) pairs from the command line and a file (one path a line, ``#``
    comments and blank lines skipped; ``-`` is standard input; a UTF-8 byte order mark,
    as some Windows editors write, is ignored); ``where`` names the source for error
    messages."""
    paths = [(f"argument {index + 1}", path) for index, path in enumerate(arguments)]
    if paths_file is not None:
        name = "standard input" if paths_file == "-" else paths_file
        try:
            if paths_file == "-":
                text = sys.stdin.buffer.read().decode("utf-8-sig")
            else:
                with open(paths_file, encoding="utf-8-sig") as handle:
                    text = handle.read()
        except FileNotFoundError:
            raise OperatorError(
                f"--paths-file: {paths_file!r} does not exist (a file of paths, one a line, "
                "or - for standard input)"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise OperatorError(f"--paths-file: cannot read {name} as UTF-8: {error}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                paths.append((f"{name}:{number}", stripped))
    if not paths:
        raise OperatorError("no paths given: pass PATH arguments or --paths-file FILE")
    return paths


def as_uri(where: str, path: str, *, copied: bool = False) -> str:
    """A path as CloudFront passes it: percent-encoded (spaces and non-ASCII characters
    typed by an operator are encoded; existing ``%XX`` escapes are kept).

    Every path obeys the key rules a backfill applies (no traversal, no reserved prefix).
    A path to be ``copied`` into the bucket must also be its key's canonical URI (a raw
    ``+`` or an escaped ``/`` reads differently at S3 and at the origin); a path only
    warmed is sent as the viewer would ask for it."""
    from shared.keys import InvalidKey, NonCanonicalUri, ObjectKey

    if not path.startswith("/"):
        raise OperatorError(f"{where}: path {path[:80]!r} must start with '/'")
    if _CONTROL.search(path):
        raise OperatorError(f"{where}: path {path[:80]!r} holds a control character (NUL, CR, LF)")
    uri = quote(path, safe=_SAFE_IN_URI)
    try:
        ObjectKey.from_uri(uri.partition("?")[0])
    except NonCanonicalUri as error:
        if copied:
            raise OperatorError(
                f"{where}: path {path[:80]!r} is not copied: {error} (write '+' as %2B)"
            ) from None
    except InvalidKey as error:
        raise OperatorError(f"{where}: path {path[:80]!r}: {error}") from None
    return uri


def prewarm_bodies(
    paths: Sequence[tuple[str, str]],
    targets: Sequence[str] | None,
    encodings: Sequence[str] | None,
    host: str | None,
    paths_per_message: int = DEFAULT_PATHS_PER_MESSAGE,
    expand: bool = False,
) -> list[str]:
    """Validated prewarm message bodies, ``paths_per_message`` paths (and ≤ 250 KiB) each;
    ``expand`` asks the worker to warm what playlists and manifests reference too.

    Each message also stays within the worker's task cap (paths × targets × encodings ≤
    ``MAX_TASKS_PER_MESSAGE``). Without ``targets`` the worker's default applies, which
    this machine does not know: the CLI then counts the most a message may name (200),
    and the default four encodings without ``encodings``.
    """
    from prewarm_worker.task_cap import MAX_TASKS_PER_MESSAGE
    from prewarm_worker.task_cap import paths_per_message as cap_paths
    from shared.messages import (
        ENCODINGS,
        MAX_PATHS,
        MAX_TARGETS,
        MessageError,
        PrewarmMessage,
        to_json,
    )

    if not 1 <= paths_per_message <= MAX_PATHS:
        raise OperatorError(f"--paths-per-message must be 1 to {MAX_PATHS}")
    target_count = len(targets) if targets else MAX_TARGETS
    encoding_count = len(encodings) if encodings else len(ENCODINGS)
    fitting = cap_paths(target_count, encoding_count)
    if fitting == 0:
        flag = "--encodings" if encoding_count > target_count else "--targets"
        raise OperatorError(
            f"{flag}: {target_count} targets × {encoding_count} encodings exceed the "
            f"{MAX_TASKS_PER_MESSAGE} tasks a message may ask for, even for one path"
        )
    paths_per_message = min(paths_per_message, fitting)
    uris: list[str] = []
    for where, path in paths:
        uri = as_uri(where, path)
        try:  # validates the path alone, so the error names the line it came from
            PrewarmMessage(paths=(uri,))
        except MessageError as error:
            raise OperatorError(f"{where}: path {path[:80]!r}: {error.reason}") from None
        uris.append(uri)
    chunks: list[list[str]] = [[]]
    size = 0
    for uri in uris:
        if len(chunks[-1]) >= paths_per_message or size + len(uri) + 3 > BODY_BUDGET - 1024:
            chunks.append([])
            size = 0
        chunks[-1].append(uri)
        size += len(uri) + 3
    try:
        return [
            to_json(
                PrewarmMessage(
                    paths=tuple(chunk),
                    targets=tuple(targets) if targets else None,
                    encodings=tuple(encodings) if encodings else None,
                    host=host,
                    source="manual",
                    expand=expand,
                )
            )
            for chunk in chunks
        ]
    except MessageError as error:
        option = {"targets": "--targets", "encodings": "--encodings", "host": "--host"}
        name = option.get(error.field.split("[")[0], error.field)
        raise OperatorError(f"{name}: {error.reason}") from None


def backfill_bodies(paths: Sequence[tuple[str, str]], host: str | None) -> list[str]:
    """One validated backfill message body per path (its query, if any, kept apart)."""
    from shared.messages import BackfillMessage, MessageError, format_time, to_json

    bodies = []
    now = format_time(datetime.now(UTC))
    for where, path in paths:
        uri, _, query = as_uri(where, path, copied=True).partition("?")
        try:
            body = to_json(BackfillMessage(uri=uri, query=query, host=host, at=now))
        except MessageError as error:
            raise OperatorError(f"{where}: path {path[:80]!r}: {error}") from None
        bodies.append(body)
    return bodies


def split_list(values: Iterable[str] | None) -> list[str] | None:
    """``--targets a,b --targets c`` → ``[a, b, c]``; None when not given."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


# ---- status -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueueDepth:
    role: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None  # None: CloudWatch had no datapoint

    def as_json(self) -> dict[str, Any]:
        """``status --json``'s row (camelCase, as every command's JSON)."""
        return dict(camel_case(asdict(self)))


def queue_depth(sqs: Any, cloudwatch: Any | None, role: str, url: str) -> QueueDepth:
    """Depths from the queue's attributes; the oldest message's age from CloudWatch
    (``ApproximateAgeOfOldestMessage``): SQS itself offers no way to read it without
    receiving, and receiving would count towards the redrive to the DLQ."""
    from botocore.exceptions import ClientError

    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise OperatorError(f"{role} queue {url}: {message}") from None
    age = None
    if cloudwatch is not None:
        age = _oldest_age(cloudwatch, url.rstrip("/").rsplit("/", 1)[-1])
    return QueueDepth(
        role=role,
        url=url,
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        oldest_age_seconds=age,
    )


def _oldest_age(cloudwatch: Any, queue_name: str) -> float | None:
    from botocore.exceptions import BotoCoreError, ClientError

    now = datetime.now(UTC)
    try:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name}],
            StartTime=now - timedelta(minutes=15),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
    except (ClientError, BotoCoreError):
        return None
    if not points:
        return None
    latest = max(points, key=lambda point: point["Timestamp"])
    return float(latest["Maximum"])


# ---- redrive ------------------------------------------------------------------------
# Messages read to count a DLQ's reasons: 100 ReceiveMessage calls at most. Beyond, the
# counts are of a sample (SQS hands out messages in no particular order).
REASONS_SAMPLE: Final = 1000
# How long the messages read stay hidden if the command dies before handing them back.
_PEEK_VISIBILITY: Final = 30


@dataclass(frozen=True, slots=True)
class DeadLetterReasons:
    """What a DLQ holds, by ``edgefill-refusal`` reason (``NO_REASON`` for messages the
    redrive policy moved after failing every receive)."""

    dlq_url: str
    counts: Counter[str]
    read: int  # messages read (at most REASONS_SAMPLE)
    approximate: int  # ApproximateNumberOfMessages before reading

    @property
    def sampled(self) -> bool:
        return self.read < self.approximate


def dead_letter_reasons(sqs: Any, dlq_url: str, sample: int = REASONS_SAMPLE) -> DeadLetterReasons:
    """Count the DLQ's messages by reason without moving or deleting any (``peek``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.dead_letters import REASON_ATTRIBUTE, refusal_reasons

    try:
        approximate = int(
            sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"].get("ApproximateNumberOfMessages", 0)
        )
        seen = peek(sqs, dlq_url, sample, attributes=(REASON_ATTRIBUTE,))
    except (ClientError, BotoCoreError) as error:
        raise OperatorError(f"reading the DLQ {dlq_url}: {error}") from None
    return DeadLetterReasons(dlq_url, refusal_reasons(seen), len(seen), approximate)


def peek(
    sqs: Any, queue_url: str, sample: int, attributes: Sequence[str] = ("All",)
) -> list[dict[str, Any]]:
    """Up to ``sample`` messages of the queue, each once, with the message ``attributes``
    named, left on the queue.

    SQS cannot list a queue: its messages are received (hidden for a moment, which on a DLQ
    counts toward nothing) and handed back at once (visibility 0), so a move task started
    next finds every one. Only for a DLQ or a queue nothing consumes: a consumer would
    take a received message's place in the count."""
    seen: dict[str, dict[str, Any]] = {}
    receipts: list[str] = []
    try:
        while len(seen) < sample:
            got = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=_PEEK_VISIBILITY,
                MessageAttributeNames=list(attributes),
            ).get("Messages", [])
            if not got:
                break
            receipts.extend(message["ReceiptHandle"] for message in got)
            seen.update({message["MessageId"]: message for message in got})
    finally:
        _hand_back(sqs, queue_url, receipts)
    return list(seen.values())


def _hand_back(sqs: Any, queue_url: str, receipts: list[str]) -> None:
    """Make received messages visible again at once (ChangeMessageVisibilityBatch)."""
    for start in range(0, len(receipts), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
            for index, receipt in enumerate(receipts[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


@dataclass(frozen=True, slots=True)
class RedriveResult:
    dlq_url: str
    destination_url: str
    method: str  # "move-task" or "receive-send-delete (lab fallback)"
    task_handle: str | None = None
    moved: int | None = None


def queue_arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def redrive(
    sqs: Any,
    dlq_url: str,
    destination_url: str,
    lab_fallback: bool,
    log: Callable[[str], None] = lambda _: None,
) -> RedriveResult:
    """Move the DLQ's messages back to ``destination_url`` with an SQS message move task.

    ``lab_fallback`` (only with ``--endpoint-url``): when the endpoint does not implement
    StartMessageMoveTask (moto does not), move them by receive → send → delete instead."""
    from botocore.exceptions import ClientError

    source, destination = queue_arn(sqs, dlq_url), queue_arn(sqs, destination_url)
    try:
        handle = sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)[
            "TaskHandle"
        ]
        return RedriveResult(dlq_url, destination_url, "move-task", task_handle=handle)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "")
        unsupported = status in (500, 501) or code in ("InvalidAction", "UnsupportedOperation")
        if not (lab_fallback and unsupported):
            message = error.response.get("Error", {}).get("Message", str(error))
            raise OperatorError(f"StartMessageMoveTask failed: {code}: {message}") from None
    log(
        "this endpoint does not implement StartMessageMoveTask (moto does not); "
        "moving messages by receive, send and delete instead — real AWS always uses the task"
    )
    moved = _move_by_hand(sqs, dlq_url, destination_url)
    return RedriveResult(
        dlq_url, destination_url, "receive-send-delete (lab fallback)", moved=moved
    )


def _move_by_hand(sqs: Any, source_url: str, destination_url: str) -> int:
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=30,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        entries = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=destination_url, Entries=entries)
        done = {item["Id"] for item in sent.get("Successful", [])}
        # Only what reached the destination leaves the DLQ: nothing is lost on a failure.
        receipts = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
            if str(index) in done
        ]
        if receipts:
            sqs.delete_message_batch(QueueUrl=source_url, Entries=receipts)
        moved += len(receipts)
        if len(done) < len(messages):
            raise OperatorError(
                f"{len(messages) - len(done)} messages could not be sent back; they stay in the DLQ"
            )


def wait_for_move_task(sqs: Any, dlq_url: str, timeout: float = 300.0) -> dict[str, Any]:
    """Poll ListMessageMoveTasks until the latest task on the DLQ is no longer RUNNING."""
    source = queue_arn(sqs, dlq_url)
    deadline = time.monotonic() + timeout
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=1).get("Results", [])
        if tasks and tasks[0].get("Status") != "RUNNING":
            return dict(tasks[0])
        if time.monotonic() > deadline:
            raise OperatorError(f"the move task is still running after {timeout:.0f}s")
        time.sleep(2)
