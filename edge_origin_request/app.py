"""Lambda@Edge origin-request handler: turns origin-group failovers into backfill messages.

Fail open: whatever happens, the request CloudFront passed in goes back out (without the
``x-edgefill-*`` origin headers on the marked origin), so the viewer is never hurt.
"""

from __future__ import annotations

from typing import Any

from edge_origin_request.backfill_queue import QueueSender, prepare
from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.log_lines import log_error
from edge_origin_request.recently_queued import RecentlyQueued

# Built once per container: the SQS clients, the pause after a failed send and the memory
# of recently queued objects all live as long as the container.
_REPORTER = FailoverReporter(sender=QueueSender(), recently_queued=RecentlyQueued())
# The us-east-1 SQS client, built during init while Lambda gives the full CPU.
prepare()


def handler(event: Any, context: Any) -> dict[str, Any] | None:
    request = cloudfront_request(event)
    if request is None:
        log_error("event", "has no Records[0].cf.request; nothing to pass through")
        return None
    try:
        handle_origin_request(event, request, _REPORTER)
    except Exception as error:  # last resort: a bug here must not become a 502 for a viewer
        log_error("unexpected", f"{type(error).__name__}: {error}")
    return request
