"""The flags that say where a deployment is (stack, region, endpoint, queue URLs), shared
by every command that talks to AWS, and the one function that turns them into clients."""

from __future__ import annotations

import argparse
from typing import Any

from edgefill import operations
from edgefill.operations import OperatorError, QueueUrls
from shared.queues import region_from_queue_url


def parent() -> argparse.ArgumentParser:
    """A parent parser holding the deployment flags (``parents=[parent()]``)."""
    aws = argparse.ArgumentParser(add_help=False)
    group = aws.add_argument_group("where the queues are")
    group.add_argument("--stack", help="CloudFormation stack whose outputs name the queues")
    group.add_argument("--region", help="AWS region (default: AWS_REGION / profile)")
    group.add_argument("--endpoint-url", help="AWS endpoint, e.g. the lab's moto server")
    group.add_argument("--backfill-queue-url", dest="backfill")
    group.add_argument("--prewarm-queue-url", dest="prewarm")
    group.add_argument("--backfill-dlq-url", dest="backfill_dlq")
    group.add_argument("--prewarm-dlq-url", dest="prewarm_dlq")
    return aws


def resolve_queues(args: argparse.Namespace) -> tuple[Any, Any, QueueUrls]:
    """(session, sqs client, queue URLs) for the command's flags."""
    region = args.region
    flags = QueueUrls(args.backfill, args.prewarm, args.backfill_dlq, args.prewarm_dlq)
    if region is None:
        for url in (flags.backfill, flags.prewarm, flags.backfill_dlq, flags.prewarm_dlq):
            if url:
                try:
                    region = region_from_queue_url(url)
                except ValueError as error:
                    raise OperatorError(str(error)) from None
                break
    session = operations.aws_session(region)
    from_stack = None
    if args.stack:
        cloudformation = operations.make_client(session, "cloudformation", args.endpoint_url)
        from_stack = operations.stack_queue_urls(cloudformation, args.stack)
    urls = operations.merge_queue_urls(from_stack, flags)
    return session, operations.make_client(session, "sqs", args.endpoint_url), urls
