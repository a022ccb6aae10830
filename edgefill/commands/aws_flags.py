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
from edgefill.deployment import Deployment, read_deployment
from edgefill.operations import OperatorError, QueueUrls
from edgefill.stack import StackInfo


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
        help="AWS region of the API calls (default: AWS_REGION, AWS_DEFAULT_REGION, profile); "
        "with --stack, the region whose regional stack to use (default: every region)",
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


def cloudformation_in(args: argparse.Namespace) -> Any:
    """region → a CloudFormation client there (the edge stack's is us-east-1's), each
    made once."""
    made: dict[str, Any] = {}

    def client_in(region: str) -> Any:
        if region not in made:
            made[region] = client(args, session(args, region), "cloudformation")
        return made[region]

    return client_in


def deployment(args: argparse.Namespace) -> Deployment:
    """The deployment ``--stack`` names (read once per command)."""
    found = getattr(args, "_deployment", None)
    if found is None:
        found = read_deployment(cloudformation_in(args), args.stack, args.endpoint_url)
        args._deployment = found
    return found


def regions(args: argparse.Namespace) -> list[tuple[str, StackInfo]]:
    """(region, view) of each region the command works in: ``--region R``, else every
    region of the deployment (``--stack``)."""
    found = deployment(args)
    return [(region, found.view(region)) for region in found.selected(args.region)]


def regional_queues(args: argparse.Namespace) -> list[tuple[str | None, Any, Any, QueueUrls]]:
    """(region, session, sqs client, queue URLs) of each region the command works in:
    with ``--stack``, each selected regional stack's (explicit queue flags win, for one
    region only); without, the flags' (region None)."""
    flags = QueueUrls(args.backfill, args.prewarm, args.backfill_dlq, args.prewarm_dlq)
    if not args.stack:
        aws, sqs, urls = _flag_queues(args, flags)
        return [(None, aws, sqs, urls)]
    views = regions(args)
    given = [name for name, url in zip(_QUEUE_FLAGS, _urls(flags), strict=True) if url]
    if given and len(views) > 1:
        raise OperatorError(
            f"{given[0]} names one region's queue, and stack {args.stack!r} has "
            f"{len(views)} regions ({', '.join(r for r, _ in views)}): add --region R"
        )
    found: list[tuple[str | None, Any, Any, QueueUrls]] = []
    for region, view in views:
        from_stack = QueueUrls(*(view.output(o) for o in operations.STACK_OUTPUTS.values()))
        aws = session(args, region)
        found.append(
            (region, aws, client(args, aws, "sqs"), operations.merge_queue_urls(from_stack, flags))
        )
    return found


def keyed_by_region(args: argparse.Namespace) -> bool:
    """Whether the command's output is grouped by region: ``--stack`` names an edge stack
    (a stack from before the split, or queue flags alone, print as they did)."""
    return bool(args.stack) and not deployment(args).single_stack


def resolve_queues(args: argparse.Namespace) -> tuple[Any, Any, QueueUrls]:
    """(session, sqs client, queue URLs) of a command of one region; with a deployment of
    several regions, ``--region`` chooses."""
    found = regional_queues(args)
    if len(found) > 1:
        listed = ", ".join(str(region) for region, *_ in found)
        raise OperatorError(
            f"stack {args.stack!r} has {len(found)} regions ({listed}): add --region R"
        )
    _, aws, sqs, urls = found[0]
    return aws, sqs, urls


_QUEUE_FLAGS = (
    "--backfill-queue-url",
    "--prewarm-queue-url",
    "--backfill-dlq-url",
    "--prewarm-dlq-url",
)


def _urls(urls: QueueUrls) -> tuple[str | None, ...]:
    return (urls.backfill, urls.prewarm, urls.backfill_dlq, urls.prewarm_dlq)


def _flag_queues(args: argparse.Namespace, flags: QueueUrls) -> tuple[Any, Any, QueueUrls]:
    from shared.queues import region_in_queue_url

    # A queue URL names its region (sqs.REGION.amazonaws.com); the flag still wins, and
    # a URL that names none (the lab's) leaves it to the environment and the profile.
    try:
        named = [region_in_queue_url(url) for url in _urls(flags) if url]
    except ValueError as error:
        raise OperatorError(str(error)) from None
    aws = session(args, args.region or next((r for r in named if r), None))
    return aws, client(args, aws, "sqs"), flags
