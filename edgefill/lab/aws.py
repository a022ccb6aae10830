"""S3 and SQS for the lab: moto in server mode, with the template's queues and a bucket.

moto's ``ThreadedMotoServer`` runs in a child process by default. In the lab's own
process it would share one GIL with dozens of viewer, POP and worker threads, and a
burst of viewers then slows SQS answers past the edge function's 0.5 s read timeout, so
failovers go unreported — an artefact of the emulation, not of the system. The child
exits when the lab closes its stdin (or dies). ``endpoint_url`` uses a moto that is
already running instead (the test suite's session server), which is then only reset.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3
import requests
from botocore.config import Config

from edgefill.lab import moto_zygote
from edgefill.lab.children import end_child
from edgefill.lab.moto_zygote import ZYGOTE_VARIABLE
from edgefill.lab.template_spec import QUEUE_IDS, TemplateSpec

LAB_REGION: Final = "us-east-1"
# The child process: moto on a free port, which it prints; it stops when stdin closes
# (the lab stopping, or dying: either way the pipe closes).
_CHILD: Final = """
import sys
from edgefill.lab import moto_server
moto_server.prepare()
try:
    server = moto_server.start(sys.argv[1])
except RuntimeError as error:
    sys.exit(str(error))
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""
# Real queues keep a message invisible for minutes (≥ 6 × the function timeout); the lab
# scales every visibility timeout down to this many seconds so that retries and the
# redrive to a DLQ (maxReceiveCount receives, as in the template) happen within a demo.
LAB_VISIBILITY_TIMEOUT: Final = 2
# Fake credentials: moto accepts any; boto3 only needs something to sign with.
LAB_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "lab",
    "AWS_SECRET_ACCESS_KEY": "lab",
    "AWS_SESSION_TOKEN": "lab",
}


class MotoProcess:
    """moto in server mode in a child process on a free port of ``host``; ``start()``
    returns the port. The child exits when ``stop()`` closes its stdin, or when this
    process dies (the pipe closes then too). Where ``EDGEFILL_LAB_MOTO_ZYGOTE`` names a
    running zygote (``moto_zygote.py``: the test suite's), the child is forked from it
    instead, with moto already loaded; it ends the same two ways."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._child: subprocess.Popen[str] | None = None
        self._forked: socket.socket | None = None  # the zygote's child, when it made one
        self._errors: Any = None

    def start(self) -> int:
        zygote = os.environ.get(ZYGOTE_VARIABLE)
        if zygote:  # the test suite's: a child forked with moto already loaded
            forked = moto_zygote.connect(zygote, self.host)
            if forked is not None:
                self._forked, self.port = forked
                return self.port
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, self.host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
            # Its own session: a Ctrl-C at the terminal reaches the lab, which then stops
            # the pollers before moto, instead of moto dying under them.
            start_new_session=True,
        )
        self._child = child
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.isdigit():
            self._errors.seek(0)
            detail = self._errors.read().decode(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"moto did not start: {detail or 'no output'}")
        self.port = int(line)
        return self.port

    @property
    def running(self) -> bool:
        if self._forked is not None:
            return moto_zygote.alive(self._forked)
        return self._child is not None and self._child.poll() is None

    def stop(self) -> None:
        forked, self._forked = self._forked, None
        if forked is not None:
            moto_zygote.release(forked)
        child, self._child = self._child, None
        if child is not None:
            end_child(child, 10)
            if child.stdout is not None:
                child.stdout.close()
        if self._errors is not None:
            self._errors.close()
            self._errors = None


@dataclass(frozen=True, slots=True)
class LabQueue:
    """A queue created in moto for one of the template's logical IDs."""

    logical_id: str
    name: str
    url: str
    arn: str
    visibility_timeout: int
    max_receive_count: int | None


class LabAws:
    """moto on a free loopback port holding the lab bucket and the template's queues."""

    def __init__(
        self,
        spec: TemplateSpec,
        bucket: str = "edgefill-lab-origin",
        name_prefix: str = "edgefill-lab",
        visibility_timeout: int = LAB_VISIBILITY_TIMEOUT,
        host: str = "127.0.0.1",
        endpoint_url: str | None = None,
    ) -> None:
        self.spec = spec
        self.bucket = bucket
        self._name_prefix = name_prefix
        self._visibility_timeout = visibility_timeout
        self._host = host
        self._given_endpoint = endpoint_url
        self._child: MotoProcess | None = None
        self.endpoint_url = ""
        self.queues: dict[str, LabQueue] = {}

    def start(self) -> None:
        if self._given_endpoint:
            self.endpoint_url = self._given_endpoint
        else:
            self._child = MotoProcess(self._host)
            self.endpoint_url = f"http://{self._host}:{self._child.start()}"
        # moto's state is per process: start from nothing even if an earlier lab ran here.
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self.client("s3").create_bucket(Bucket=self.bucket)
        self._create_queues()

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop()

    @property
    def child_running(self) -> bool:
        return self._child is not None and self._child.running

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` talking to this moto with lab credentials."""
        return self.client_in(LAB_REGION, service)

    def client_in(self, region: str, service: str = "cloudformation") -> Any:
        """A client of ``service`` in ``region`` (moto keeps each region's resources apart)."""
        if not self.endpoint_url:
            raise RuntimeError("the lab's moto server is not running")
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=LAB_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LAB_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=LAB_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=Config(max_pool_connections=32, retries={"max_attempts": 3}),
        )

    def queue(self, logical_id: str) -> LabQueue:
        return self.queues[logical_id]

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        # DLQs first: a queue's RedrivePolicy names its DLQ's ARN.
        ordered = sorted(
            QUEUE_IDS, key=lambda qid: self.spec.queues[qid].dead_letter_target is not None
        )
        for logical_id in ordered:
            queue_spec = self.spec.queues[logical_id]
            attributes = self.lab_attributes(queue_spec.attributes)
            if queue_spec.dead_letter_target is not None:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": self.queues[queue_spec.dead_letter_target].arn,
                        "maxReceiveCount": queue_spec.max_receive_count,
                    }
                )
            name = f"{self._name_prefix}-{logical_id}"
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.queues[logical_id] = LabQueue(
                logical_id=logical_id,
                name=name,
                url=url,
                arn=arn,
                visibility_timeout=int(attributes.get("VisibilityTimeout", "30")),
                max_receive_count=queue_spec.max_receive_count,
            )

    def lab_attributes(self, template_attributes: Mapping[str, str]) -> dict[str, str]:
        """The template's attributes with the visibility timeout scaled down for the lab."""
        attributes = dict(template_attributes)
        template_timeout = int(attributes.get("VisibilityTimeout", "30"))
        attributes["VisibilityTimeout"] = str(min(template_timeout, self._visibility_timeout))
        return attributes
