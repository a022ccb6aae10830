"""Sending one backfill message to SQS from the viewer's path, within a hard time budget.

The edge artifact ships without ``shared/aws.py`` (it pulls in settings made for the
regional workers: five retries, 60 s reads), so the edge keeps its own client factory
here, tuned for a function that must never hold a viewer's request for long.

Budget (``SEND_DEADLINE_SECONDS``): botocore retries nothing itself (its backoff sleeps up
to a second at random); ``QueueSender`` tries again once, only for errors worth another
try and only when a whole second attempt fits in the deadline. An SQS endpoint that
accepts and never answers costs two read timeouts (~1.0 s); one that refuses costs two
refused connects (milliseconds).

Region: the template creates the backfill queue in us-east-1 (with the edge function),
so the container builds that client during init (``prepare``), while Lambda still gives
the full CPU, rather than on the first failover at the CPU share of 128 MB. A queue URL
whose host names no region (a VPC endpoint, a custom domain) is sent to through
us-east-1 as well, logged once per URL: never through the replica's own ``AWS_REGION``,
which is wherever the viewer happened to be.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from edge_origin_request.log_lines import log_error
from shared.queues import InvalidQueueUrl, region_in_queue_url

# Where the template creates the backfill queue (Lambda@Edge stacks live in us-east-1).
QUEUE_HOME_REGION: Final = "us-east-1"

# TCP connect and TLS handshake (urllib3 applies the connect timeout to both): a few round
# trips from the farthest edge to the queue's region.
CONNECT_TIMEOUT_SECONDS: Final = 0.3
# SendMessage answers in tens of milliseconds; waiting longer only holds the viewer.
READ_TIMEOUT_SECONDS: Final = 0.5
# Time the sender may spend on one message, first attempt and retry included; the handler
# must return within 1.5 s even when SQS hangs.
SEND_DEADLINE_SECONDS: Final = 1.4
# After a failed send the queue is left alone this long (a negative cache): a hanging or
# throttling SQS would otherwise cost every failover in the container a full deadline.
# The next miss of the same object after the pause sends again (failures are never
# remembered as queued), so a pause loses at most a few seconds of signals.
SICK_QUEUE_PAUSE_SECONDS: Final = 5.0
# Queue URLs come from the distribution's configuration: a handful at most. The bound
# only guards against a configuration that keeps changing in a long-lived container.
MAX_SICK_QUEUES: Final = 64

_CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"total_max_attempts": 1},
    tcp_keepalive=True,
    # One request at a time per container; a spare connection covers a retry after a
    # connection the pool has not noticed is dead.
    max_pool_connections=2,
)
# One botocore session per container, made with the first client (about 10 ms that the
# pass-through path never pays): clients created from it share its loaded service model
# and resolved credentials, so a second region's client costs milliseconds.
_SESSION: list[botocore.session.Session] = []
# (region, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL) -> client. Bounded by the number of AWS
# regions the configured queue URLs name; the endpoint variables are part of the key
# because botocore reads them when it builds a client (the lab and tests set them).
_CLIENTS: dict[tuple[str, str | None, str | None], Any] = {}

# Queue URLs whose region fell back to QUEUE_HOME_REGION, logged once each; bounded
# like the sick queues (a handful of URLs in a distribution's configuration).
_FALLBACK_LOGGED: set[str] = set()

_THROTTLING_CODES: Final = frozenset(
    {"RequestThrottled", "ThrottlingException", "Throttling", "KmsThrottled"}
)


class SendFailed(Exception):
    """A backfill message that did not reach its queue; ``problem`` names the step."""

    def __init__(self, problem: str, reason: str) -> None:
        super().__init__(f"{problem}: {reason}")
        self.problem = problem
        self.reason = reason


def sqs_client(region: str) -> Any:
    """The container's SQS client for ``region``, created on first use."""
    key = (region, os.environ.get("AWS_ENDPOINT_URL_SQS"), os.environ.get("AWS_ENDPOINT_URL"))
    client = _CLIENTS.get(key)
    if client is None:
        if not _SESSION:
            _SESSION.append(botocore.session.Session())
        client = _SESSION[0].create_client("sqs", region_name=region, config=_CLIENT_CONFIG)
        _CLIENTS[key] = client
    return client


def prepare() -> None:
    """Build the client for ``QUEUE_HOME_REGION`` now (container init): the first failover
    then only signs and sends. Never raises: a failure here is retried on first use."""
    try:
        sqs_client(QUEUE_HOME_REGION)
    except Exception as error:  # init must not fail the function: the send path retries
        log_error("init", f"SQS client not built: {type(error).__name__}: {error}")


def queue_region(queue_url: str) -> str:
    """The region to send to ``queue_url`` through: the one its host names, else
    ``QUEUE_HOME_REGION`` (logged once per URL). Raises ``InvalidQueueUrl``."""
    region = region_in_queue_url(queue_url)
    if region is not None:
        return region
    if queue_url not in _FALLBACK_LOGGED:
        if len(_FALLBACK_LOGGED) >= MAX_SICK_QUEUES:
            _FALLBACK_LOGGED.clear()
        _FALLBACK_LOGGED.add(queue_url)
        log_error(
            "queue-region",
            f"the queue URL names no region; sending through {QUEUE_HOME_REGION}, "
            "where the template creates the queue",
            queueUrl=queue_url,
        )
    return QUEUE_HOME_REGION


class QueueSender:
    """Sends message bodies to SQS queues within ``SEND_DEADLINE_SECONDS``."""

    def __init__(
        self,
        client_for: Callable[[str], Any] = sqs_client,
        clock: Callable[[], float] = time.monotonic,
        pause_seconds: float = SICK_QUEUE_PAUSE_SECONDS,
    ) -> None:
        self._client_for = client_for
        self._clock = clock
        self._pause = pause_seconds
        self._paused_until: dict[str, float] = {}

    def send(self, queue_url: str, body: str) -> str:
        """Send ``body``; return the SQS message id or raise ``SendFailed``."""
        started = self._clock()
        try:
            region = queue_region(queue_url)
        except InvalidQueueUrl as error:
            raise SendFailed("queue-url", str(error)) from None
        paused_until = self._paused_until.get(queue_url)
        if paused_until is not None:
            if started < paused_until:
                raise SendFailed(
                    "queue-paused",
                    f"a send to this queue failed less than {self._pause:g} s ago; not tried",
                )
            del self._paused_until[queue_url]
        try:
            return self._send_with_one_retry(region, queue_url, body, started)
        except SendFailed:
            self._pause_queue(queue_url, started)
            raise

    def _send_with_one_retry(self, region: str, queue_url: str, body: str, started: float) -> str:
        client = self._client_for(region)
        attempt = 1
        while True:
            try:
                response = client.send_message(QueueUrl=queue_url, MessageBody=body)
                return str(response.get("MessageId", ""))
            except (ClientError, BotoCoreError) as error:
                failure = _describe(error)
                if attempt == 2 or not _worth_retrying(error) or not self._retry_fits(started):
                    raise SendFailed(*failure) from None
            attempt += 1

    def _retry_fits(self, started: float) -> bool:
        worst_attempt = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
        return self._clock() - started + worst_attempt <= SEND_DEADLINE_SECONDS

    def _pause_queue(self, queue_url: str, now: float) -> None:
        if self._pause <= 0:
            return
        if len(self._paused_until) >= MAX_SICK_QUEUES:
            self._paused_until.clear()
        self._paused_until[queue_url] = now + self._pause


def _worth_retrying(error: Exception) -> bool:
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True  # refused, reset, timed out: the network, not the request
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _THROTTLING_CODES or (isinstance(status, int) and status >= 500)
    return False


def _describe(error: Exception) -> tuple[str, str]:
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "ClientError"))
        return "sqs", f"{code}: {error.response.get('Error', {}).get('Message', '')}"
    return "sqs", f"{type(error).__name__}: {error}"
