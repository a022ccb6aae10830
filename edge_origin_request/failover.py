"""What the origin-request function does with one CloudFront request.

CloudFront runs the function for every origin attempt. The primary (the regional S3
bucket) passes through untouched with no I/O. The full origin carries the origin custom
header ``x-edgefill-queue: <backfill queue URL>``: a GET or HEAD reaching it is a failover,
so the bucket lacks the object, and one backfill message goes to that queue. Every
``x-edgefill-*`` custom header is removed from a marked origin before the request is
returned, so none reaches the origin, whatever happened while sending.

A failover whose URI the backfill worker would refuse (``ObjectKey.from_uri``: the key
rules and the one-URI-one-key rule of CONTRACTS §4, under the key prefix the optional
``x-edgefill-key-prefix`` origin header names) queues nothing: it is logged as one
``backfill-skipped`` line naming the reason. The check costs a few microseconds.

Nothing here raises to the handler on bad input: each problem becomes one JSON error line
and the request goes on as it came.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from edge_origin_request.log_lines import log_error, log_queued, log_send_failed, log_skipped
from edge_origin_request.recently_queued import RecentlyQueued, object_digest
from shared.keys import InvalidKey, ObjectKey, normalize_prefix
from shared.messages import (
    BackfillMessage,
    MessageError,
    format_time,
    is_host_name,
    is_region_code,
    to_json,
)
from shared.redact import redact_query

MARKER_HEADER: Final = "x-edgefill-queue"
# Optional, next to the marker: the stack's KeyPrefix, so the key check counts the prefix
# toward S3's 1 024-byte key limit exactly as the worker does.
KEY_PREFIX_HEADER: Final = "x-edgefill-key-prefix"
# Regions (issue 20): the bucket region whose miss this origin stands for. The queue URL
# names the queue; this names the region the worker must fill, so a message that reached
# another region's queue is refused there rather than written into the wrong bucket.
REGION_HEADER: Final = "x-edgefill-region"
OWN_HEADER_PREFIX: Final = "x-edgefill-"
# Origin groups fail over only for GET, HEAD and OPTIONS; OPTIONS names no object to copy.
QUEUED_METHODS: Final = frozenset({"GET", "HEAD"})


class Sender(Protocol):
    def send(self, queue_url: str, body: str) -> str: ...


class EventShapeError(ValueError):
    """A CloudFront event that lacks what the origin-request contract promises."""

    def __init__(self, problem: str, reason: str) -> None:
        super().__init__(f"{problem}: {reason}")
        self.problem = problem
        self.reason = reason


@dataclass(slots=True)
class FailoverReporter:
    """Sends one backfill message per failover, skipping objects queued a moment ago."""

    sender: Sender
    recently_queued: RecentlyQueued

    def report(self, queue_url: str, message: BackfillMessage) -> bool:
        """Queue ``message`` unless this container queued the same object recently.

        True when a message was sent. Raises the sender's error when sending failed; the
        object is then not remembered, so the next miss sends again.
        """
        digest = object_digest(message.host, message.uri, message.query, queue_url)
        if self.recently_queued.seen(digest):
            return False
        started = time.perf_counter()
        message_id = self.sender.send(queue_url, to_json(message))
        self.recently_queued.remember(digest)
        log_queued(
            uri=message.uri,
            query=message.query,
            host=message.host,
            requestId=message.request_id,
            queue=queue_url,
            messageId=message_id,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return True


def cloudfront_request(event: Any) -> dict[str, Any] | None:
    """``Records[0].cf.request`` of a CloudFront event, or None when there is none."""
    try:
        request = event["Records"][0]["cf"]["request"]
    except (KeyError, IndexError, TypeError):
        return None
    return request if isinstance(request, dict) else None


def handle_origin_request(event: Any, request: dict[str, Any], reporter: FailoverReporter) -> None:
    """Queue a backfill when ``request`` is a failover; strip the marker; log any problem."""
    try:
        custom_headers = _origin_custom_headers(request)
        if not _is_marked(custom_headers):
            return  # the primary, or any origin edgefill does not own: no I/O at all
    except EventShapeError as error:
        log_error(error.problem, error.reason, requestId=_request_id(event))
        return
    try:
        _report_failover(event, request, custom_headers, reporter)
    finally:
        _strip_own_headers(custom_headers)


def _report_failover(
    event: Any,
    request: dict[str, Any],
    custom_headers: dict[str, Any],
    reporter: FailoverReporter,
) -> None:
    request_id = _request_id(event)
    try:
        method = request.get("method")
        if not isinstance(method, str):
            raise EventShapeError("request.method", f"must be a string, got {method!r:.40}")
        if method not in QUEUED_METHODS:
            return
        queue_url = _marker_value(custom_headers)
        prefix = _key_prefix(custom_headers)
        region = _bucket_region(custom_headers, request_id)
        message = _backfill_message(event, request, request_id, region)
        # The worker's own key check: what it would refuse is not worth a message.
        ObjectKey.from_uri(message.uri, prefix)
    except InvalidKey as error:
        log_skipped(error.reason, str(error), requestId=request_id, uri=request.get("uri"))
        return
    except EventShapeError as error:
        log_error(error.problem, error.reason, requestId=request_id)
        return
    except MessageError as error:
        uri = request.get("uri")
        log_error(f"message.{error.field}", error.reason, requestId=request_id, uri=uri)
        return
    try:
        reporter.report(queue_url, message)
    except Exception as error:  # the sender's failure; the viewer's request goes on
        problem = getattr(error, "problem", type(error).__name__)
        reason = str(getattr(error, "reason", error))
        if message.query:  # an error that quotes the message body quotes the raw query too
            reason = reason.replace(message.query, redact_query(message.query))
        log_send_failed(problem, reason, requestId=request_id, uri=message.uri, queue=queue_url)


def _origin_custom_headers(request: dict[str, Any]) -> dict[str, Any]:
    """The origin's ``customHeaders`` (the marked one if ``custom`` and ``s3`` both exist)."""
    origin = request.get("origin")
    if not isinstance(origin, dict):
        raise EventShapeError("request.origin", "is missing (not an origin-request event?)")
    found = None
    for kind in ("custom", "s3"):
        config = origin.get(kind)
        if config is None:
            continue
        if not isinstance(config, dict):
            raise EventShapeError(f"request.origin.{kind}", "must be an object")
        headers = config.get("customHeaders", {})
        if not isinstance(headers, dict):
            raise EventShapeError(f"request.origin.{kind}.customHeaders", "must be an object")
        if found is None or _is_marked(headers):
            found = headers
    if found is None:
        raise EventShapeError("request.origin", "has neither 's3' nor 'custom'")
    return found


def _is_marked(custom_headers: dict[str, Any]) -> bool:
    # CloudFront lowercases header map keys; a hand-written event may not.
    return MARKER_HEADER in custom_headers or any(
        isinstance(name, str) and name.lower() == MARKER_HEADER for name in custom_headers
    )


def _marker_value(custom_headers: dict[str, Any]) -> str:
    for name, entries in custom_headers.items():
        if isinstance(name, str) and name.lower() == MARKER_HEADER:
            value = _first_header_value(entries)
            if not value:
                raise EventShapeError(
                    f"origin custom header {MARKER_HEADER}",
                    "must be [{'key': ..., 'value': '<queue URL>'}] with a non-empty URL",
                )
            return value
    raise EventShapeError(f"origin custom header {MARKER_HEADER}", "is missing")


def _key_prefix(custom_headers: dict[str, Any]) -> str:
    """The ``x-edgefill-key-prefix`` value, normalized; "" when the origin has none."""
    for name, entries in custom_headers.items():
        if isinstance(name, str) and name.lower() == KEY_PREFIX_HEADER:
            value = _first_header_value(entries)
            if value is None:
                raise EventShapeError(
                    f"origin custom header {KEY_PREFIX_HEADER}",
                    "must be [{'key': ..., 'value': '<key prefix>'}]",
                )
            try:
                return normalize_prefix(value)
            except InvalidKey as error:  # the worker, configured alike, would not start
                raise EventShapeError(
                    f"origin custom header {KEY_PREFIX_HEADER}", str(error)
                ) from None
    return ""


def _bucket_region(custom_headers: dict[str, Any], request_id: str | None) -> str | None:
    """The ``x-edgefill-region`` value; None when the origin has none. A value that is not
    a region code is logged and left out: the backfill still goes to the queue the marker
    names (its worker's own region then), and the viewer is never affected."""
    for name, entries in custom_headers.items():
        if isinstance(name, str) and name.lower() == REGION_HEADER:
            value = _first_header_value(entries)
            if value is not None and is_region_code(value):
                return value
            log_error(
                f"origin custom header {REGION_HEADER}",
                f"must be [{{'key': ..., 'value': '<AWS region code>'}}], got {value!r:.40}",
                requestId=request_id,
            )
            return None
    return None


def _strip_own_headers(custom_headers: dict[str, Any]) -> None:
    for name in [n for n in custom_headers if str(n).lower().startswith(OWN_HEADER_PREFIX)]:
        del custom_headers[name]


def _first_header_value(entries: Any) -> str | None:
    """The value of CloudFront's ``[{"key": "Host", "value": "..."}]``, None if misshapen."""
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        value = entries[0].get("value")
        if isinstance(value, str):
            return value
    return None


def _backfill_message(
    event: Any, request: dict[str, Any], request_id: str | None, region: str | None = None
) -> BackfillMessage:
    uri = request.get("uri")
    if not isinstance(uri, str):
        raise EventShapeError("request.uri", f"must be a string, got {type(uri).__name__}")
    query = request.get("querystring", "")
    if not isinstance(query, str):
        raise EventShapeError(
            "request.querystring", f"must be a string, got {type(query).__name__}"
        )
    config = _config(event)
    # The viewer's host as the distribution knows it: the event's distribution domain.
    # The request's Host is the origin's own name here (CloudFront does not forward the
    # viewer's), which would make the worker read a manifest's absolute URIs on our hosts
    # as foreign (issue 21). An unreadable one costs the message its host, not the backfill.
    domain = config.get("distributionDomainName")
    host = domain.lower() if isinstance(domain, str) and is_host_name(domain) else None
    distribution = config.get("distributionId")
    return BackfillMessage(
        uri=uri,
        query=query,
        host=host,
        distribution=distribution if isinstance(distribution, str) else None,
        request_id=request_id,
        edge_region=os.environ.get("AWS_REGION") or None,
        at=format_time(datetime.now(UTC)),
        region=region,
    )


def _config(event: Any) -> dict[str, Any]:
    try:
        config = event["Records"][0]["cf"]["config"]
    except (KeyError, IndexError, TypeError):
        return {}
    return config if isinstance(config, dict) else {}


def _request_id(event: Any) -> str | None:
    request_id = _config(event).get("requestId")
    return request_id if isinstance(request_id, str) else None
