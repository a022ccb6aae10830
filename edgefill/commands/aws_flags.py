"""The flags that say where a deployment is and how to reach AWS, defined once for every
command that talks to AWS, and the functions that turn them into a session and clients.

- ``--profile`` and ``--region`` as in the AWS CLI v2 (``AWS_PROFILE``; ``AWS_REGION``,
  then ``AWS_DEFAULT_REGION``, then the profile's region), ``--endpoint-url`` (the lab's
  moto), ``--stack`` (the CloudFormation stack whose outputs name the rest): ``add_to``.
- The queue URLs, which win over the stack's outputs: ``parent``.

A region is checked against botocore's partitions when typed (``values.region``) and, from
the environment or a profile, when the session is made (``edgefill.aws_regions``)."""

from __future__ import annotations

import argparse
from typing import Any

from edgefill import operations
from edgefill.commands import values
from edgefill.operations import OperatorError, QueueUrls
from shared.queues import region_in_queue_url


def add_to(
    parser: Any,
    stack_help: str | None = "CloudFormation stack whose outputs name the resources",
    stack_required: bool = False,
    title: str = "where the deployment is",
) -> Any:
    """``--stack`` (unless ``stack_help`` is None), ``--profile``, ``--region`` and
    ``--endpoint-url`` in a group of ``parser``; the group, for more flags."""
    group = parser.add_argument_group(title)
    if stack_help is not None:
        group.add_argument("--stack", type=values.stack, required=stack_required, help=stack_help)
    group.add_argument(
        "--profile", type=values.profile, help="AWS profile (default: AWS_PROFILE, else default)"
    )
    group.add_argument(
        "--region",
        type=values.region,
        help="AWS region of the API calls (default: AWS_REGION, AWS_DEFAULT_REGION, profile)",
    )
    group.add_argument(
        "--endpoint-url", type=values.endpoint_url, help="AWS endpoint, e.g. the lab's moto server"
    )
    return group


def parent() -> argparse.ArgumentParser:
    """A parent parser holding the deployment flags and the queue URLs
    (``parents=[parent()]``)."""
    aws = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    group = add_to(aws, "CloudFormation stack whose outputs name the queues")
    group.add_argument("--backfill-queue-url", dest="backfill", type=values.queue_url)
    group.add_argument("--prewarm-queue-url", dest="prewarm", type=values.queue_url)
    group.add_argument("--backfill-dlq-url", dest="backfill_dlq", type=values.queue_url)
    group.add_argument("--prewarm-dlq-url", dest="prewarm_dlq", type=values.queue_url)
    return aws


def session(
    args: argparse.Namespace, region: str | None = None, fallback_region: str | None = None
) -> Any:
    """The boto3 session of the command's ``--profile`` and ``--region`` (``region``, when
    given, wins: a bucket's own region)."""
    return operations.aws_session(
        region or args.region, profile=args.profile, fallback_region=fallback_region
    )


def client(args: argparse.Namespace, session: Any, service: str) -> Any:
    """A client of ``service`` at the command's ``--endpoint-url``."""
    return operations.make_client(session, service, args.endpoint_url)


def resolve_queues(args: argparse.Namespace) -> tuple[Any, Any, QueueUrls]:
    """(session, sqs client, queue URLs) for the command's flags."""
    flags = QueueUrls(args.backfill, args.prewarm, args.backfill_dlq, args.prewarm_dlq)
    # A queue URL names its region (sqs.REGION.amazonaws.com); the flag still wins, and
    # a URL that names none (the lab's) leaves it to the environment and the profile.
    try:
        named = [
            region_in_queue_url(url)
            for url in (flags.backfill, flags.prewarm, flags.backfill_dlq, flags.prewarm_dlq)
            if url
        ]
    except ValueError as error:
        raise OperatorError(str(error)) from None
    aws = session(args, args.region or next((r for r in named if r), None))
    from_stack = None
    if args.stack:
        from_stack = operations.stack_queue_urls(client(args, aws, "cloudformation"), args.stack)
    urls = operations.merge_queue_urls(from_stack, flags)
    return aws, client(args, aws, "sqs"), urls
