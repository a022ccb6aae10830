"""Prewarm expansion (``"expand": true``): playlists and manifests also warm their tree.

Each path is warmed like any path. For each one that is an HLS playlist or a DASH
manifest (by its extension, else by the Content-Type an edge answered with), the body is
read from the first target (in the message's order) that served it completely — one more
GET, at that target's edge, of a variant just warmed (identity when the message warms it,
else gzip; identity again when it warms neither) — and parsed with the rules the backfill
uses (``shared/manifests``: no keys, no hosts but ours, no live manifests, the key
rules). What it references is warmed at the same targets and encodings, round after
round (master → media playlists → segments), so a launch warm names one master instead
of every segment.

Bounds (issue 19):
- Inside the message's task cap (``MAX_TASKS_PER_MESSAGE``, paths × targets × encodings,
  the message's own tasks included): references that do not fit, or that the invocation
  has no time left for, continue in follow-up prewarm messages (``source: "expand"``), at
  most 1,000 paths, the task cap and SQS's 1 MiB each (long signed URIs are sized by their
  bytes). Playlists still to read go in messages with ``expand: true`` and their
  ``depth`` (and ``variables``); every other reference in plain messages, only warmed.
- Only manifests referenced as playlists are read (and the message's own paths, when it
  asks to expand): a playlist that names another as a *segment* gets it warmed, never
  read, so two VOD playlists listing each other end there. Depth: a playlist is read only
  above ``MAX_EXPAND_DEPTH`` (2) levels below the first manifest, carried in follow-ups.
- Inside one message, and across the passes of ``warm_tree``, a path is warmed and read
  once (one seen set).
- Each manifest body is read up to ``MAX_MANIFEST_BYTES`` and yields at most
  ``DEFAULT_MAX_OBJECTS`` references and ``MAX_REFERENCE_BYTES`` of them (the parser's
  bounds); one manifest is held at a time.

The report counts, per manifest, what it referenced and what became of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

from prewarm_worker.engine import (
    Progress,
    TargetTotals,
    TaskResult,
    WarmContext,
    WarmPlan,
    WarmReport,
    warm,
)
from prewarm_worker.task_cap import MAX_TASKS_PER_MESSAGE, paths_per_message
from shared.config import PrewarmConfig
from shared.edge_http import EdgeClient, EdgeError
from shared.manifests import (
    MAX_MANIFEST_BYTES,
    Child,
    Manifest,
    OurHosts,
    inflate_manifest,
    manifest_format,
    parse_manifest,
)
from shared.messages import ACCEPT_ENCODING, PrewarmMessage, prewarm_messages, to_json
from shared.queues import send_and_log

# The ``source`` of follow-up messages.
EXPAND_SOURCE: Final = "expand"
NOT_READ_AT_DEPTH: Final = "playlist warmed, not read (depth budget)"
# A round is not started with less time than this left before the deadline: its
# references go to follow-up messages instead of becoming "not started" failures.
MIN_ROUND_SECONDS: Final = 5.0


@dataclass
class ManifestExpansion:
    """What one manifest referenced and what became of it."""

    path: str
    format: str | None = None
    playlists: int = 0
    inits: int = 0
    segments: int = 0
    warmed: int = 0  # referenced paths warmed in this message
    continued: int = 0  # referenced paths sent on in follow-up messages
    ignored: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    reason: str | None = None  # why it was not expanded, or the budget that truncated it
    skipped_tags: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format,
            "playlists": self.playlists,
            "inits": self.inits,
            "segments": self.segments,
            "warmed": self.warmed,
            "continued": self.continued,
        }
        if self.ignored:
            out["ignored"] = self.ignored
        if self.truncated:
            out["truncated"] = True
        if self.reason:
            out["reason"] = self.reason
        if self.skipped_tags:
            out["skippedTags"] = self.skipped_tags
        return out


@dataclass
class ExpandOutcome:
    """The merged warm report of every round, per-manifest counts and the follow-ups."""

    report: WarmReport
    manifests: dict[str, ManifestExpansion] = field(default_factory=dict)
    followups: list[PrewarmMessage] = field(default_factory=list)
    rounds: int = 0
    expanded_paths: int = 0  # referenced paths warmed in this message
    capped_paths: int = 0  # referenced paths left out by the byte cap (EDGEFILL_MAX_WARM_BYTES)

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "expandedPaths": self.expanded_paths,
            "followUpMessages": len(self.followups),
            "followUpPaths": sum(len(m.paths) for m in self.followups),
            "cappedPaths": self.capped_paths,
            "manifests": {path: m.as_dict() for path, m in self.manifests.items()},
        }


@dataclass(frozen=True, slots=True)
class _Item:
    """A path of a round: its depth below the first manifest, whether it is read for its
    references once warmed, and the variables it may import."""

    path: str
    depth: int = 0
    expands: bool = False
    variables: tuple[tuple[str, str], ...] | None = None

    @classmethod
    def of(cls, child: Child) -> _Item:
        return cls(child.reference.uri, child.depth, child.expands, child.variables or None)


def warm_expanding(
    plan: WarmPlan,
    context: WarmContext,
    progress: Progress | None = None,
    task_budget: int | None = None,
    max_bytes: int | None = None,
    *,
    expand: bool = True,
    depth: int = 0,
    variables: tuple[tuple[str, str], ...] | None = None,
    seen: set[str] | None = None,
) -> ExpandOutcome:
    """Warm ``plan``, then what its manifests reference, round after round, within
    ``task_budget`` tasks and the context's deadline; the rest becomes follow-up messages.
    The plan's paths are read when ``expand`` (at ``depth``, importing ``variables``);
    later rounds read only playlists above the depth budget. ``seen``: paths already
    warmed by earlier passes (updated). ``max_bytes`` bounds the downloads of every round
    together: once reached, no round starts and no follow-up is sent (the references left
    are counted in ``capped_paths``), as the byte cap leaves tasks out rather than sending
    them on."""
    targets = tuple(dict.fromkeys(plan.targets))
    encodings = tuple(dict.fromkeys(plan.encodings))
    per_path = max(1, len(targets) * len(encodings))
    hosts = our_hosts(context.config, plan.host)
    outcome = ExpandOutcome(WarmReport())
    seen = set() if seen is None else seen
    seen.update(plan.paths)
    budget = (MAX_TASKS_PER_MESSAGE if task_budget is None else task_budget) - plan.size
    current = [_Item(path, depth, expand, variables) for path in dict.fromkeys(plan.paths)]
    left_over: list[_Item] = []
    while current and not context.cancelled:
        outcome.rounds += 1
        if outcome.rounds > 1:
            outcome.expanded_paths += len(current)
        left = None if max_bytes is None else max_bytes - outcome.report.bytes
        if left is not None and left <= 0:
            outcome.capped_paths += len(current)
            break
        readable = {item.path for item in current if item.expands}
        tracker = _ManifestTracker(targets, encodings, readable)
        report = warm(
            WarmPlan(tuple(item.path for item in current), targets, encodings, plan.host),
            context,
            progress=_both(tracker.record, progress),
            max_bytes=left,
        )
        _merge(outcome.report, report)
        children, found_here = _read_round(current, tracker, hosts, seen, context, outcome)
        fit = max(0, budget // per_path)
        deadline = context.deadline
        if deadline is not None and deadline - time.monotonic() < MIN_ROUND_SECONDS:
            fit = 0  # no time for another round: the references go on in follow-ups
        current, overflow = children[:fit], children[fit:]
        budget -= len(current) * per_path
        kept = {item.path for item in current}
        for record, new in found_here:
            record.warmed = sum(1 for path in new if path in kept)
            record.continued = len(new) - record.warmed
        if max_bytes is not None and outcome.report.bytes >= max_bytes:
            outcome.capped_paths += len(overflow)  # the byte cap sends nothing on
        else:
            left_over += overflow
    outcome.followups = follow_up_messages(left_over, targets, encodings, plan.host)
    return outcome


def _read_round(
    current: list[_Item],
    tracker: _ManifestTracker,
    hosts: OurHosts,
    seen: set[str],
    context: WarmContext,
    outcome: ExpandOutcome,
) -> tuple[list[_Item], list[tuple[ManifestExpansion, list[str]]]]:
    """Read and parse each manifest of the round that is to be read; its children not
    seen yet (added to ``seen``), and per manifest the paths it was the first to name."""
    children: list[_Item] = []
    found_here: list[tuple[ManifestExpansion, list[str]]] = []
    for item in current:
        if not item.expands:
            continue
        found = tracker.first_ok(item.path)
        if found is None:
            if manifest_format(item.path) is not None:
                outcome.manifests[item.path] = ManifestExpansion(
                    item.path, manifest_format(item.path), reason="no target served it completely"
                )
            continue
        record, items = _expand_one(item, found, hosts, tracker.encodings, context.client)
        outcome.manifests[item.path] = record
        new = [child for child in items if child.path not in seen]
        seen.update(child.path for child in new)
        children += new
        found_here.append((record, [child.path for child in new]))
    return children, found_here


def our_hosts(config: PrewarmConfig, host: str) -> OurHosts:
    """The hosts a manifest warmed as ``host`` may name its objects on: the message's
    host, the viewer host, the distribution domain, the allowed hosts (aliases) and the
    full origin under its path (``EDGEFILL_ORIGIN_URL``, when set)."""
    return OurHosts.of(
        host,
        config.viewer_host,
        config.distribution_domain,
        *config.allowed_hosts,
        origin=config.origin_url,
    )


def warm_message(
    message: PrewarmMessage,
    plan: WarmPlan,
    context: WarmContext,
    max_bytes: int | None = None,
) -> tuple[WarmReport, ExpandOutcome | None]:
    """The warm of one message: expanding when it asks for it, else the plain engine.
    ``max_bytes`` (EDGEFILL_MAX_WARM_BYTES) bounds every round together. A follow-up of
    references only to warm (``source: "expand"`` without ``expand``) is plain too."""
    if not message.expand:
        return warm(plan, context, max_bytes=max_bytes), None
    outcome = warm_expanding(
        plan, context, max_bytes=max_bytes, depth=message.depth, variables=message.variables
    )
    return outcome.report, outcome


def warm_tree(
    plan: WarmPlan, context: WarmContext, progress: Progress | None = None
) -> ExpandOutcome:
    """``edgefill warm --expand``: the whole tree here and now. What a worker would send
    on in follow-up messages is warmed in further passes, with the same rules and one seen
    set across the passes, so the passes end (depth budget, each path once)."""
    seen: set[str] = set()
    outcome = warm_expanding(plan, context, progress=progress, seen=seen)
    pending = list(outcome.followups)
    outcome.followups = []
    while pending and not context.cancelled:
        follow_up = pending.pop(0)
        more = warm_expanding(
            WarmPlan(follow_up.paths, plan.targets, plan.encodings, plan.host),
            context,
            progress=progress,
            expand=follow_up.expand,
            depth=follow_up.depth,
            variables=follow_up.variables,
            seen=seen,
        )
        _merge(outcome.report, more.report)
        outcome.manifests.update(more.manifests)
        outcome.rounds += more.rounds
        outcome.expanded_paths += len(follow_up.paths) + more.expanded_paths
        pending += more.followups
    return outcome


def expansion_summary(outcome: ExpandOutcome | None) -> dict[str, Any]:
    """The ``expansion`` part of the summary line ({} when the message did not expand)."""
    return {} if outcome is None else {"expansion": outcome.summary()}


def send_follow_ups(
    outcome: ExpandOutcome | None,
    sqs: Any,
    queue_url: str | None,
    log: Any,
    message_id: str | None,
) -> str | None:
    """Send ``outcome.followups`` to the prewarm queue; the reason when SQS refused some
    (the message is then retried whole: nothing is lost), else None."""
    if outcome is None or not outcome.followups:
        return None
    if queue_url is None or sqs is None:
        log.warning(
            "expanded paths not continued",
            extra={
                "messageId": message_id,
                "reason": "EDGEFILL_PREWARM_QUEUE_URL is not set",
                "paths": sum(len(m.paths) for m in outcome.followups),
            },
        )
        return None
    return send_and_log(
        sqs,
        queue_url,
        [to_json(m) for m in outcome.followups],
        log,
        "prewarm message not processed",
        extra={"messageId": message_id},
        field="error",
        prefix="follow-up prewarm messages failed: ",
    )


def follow_up_messages(
    items: list[_Item],
    targets: tuple[str, ...],
    encodings: tuple[str, ...],
    host: str,
) -> list[PrewarmMessage]:
    """Messages carrying ``items`` on, at most 1,000 paths, the task cap and SQS's 1 MiB
    each: playlists still to read expanding at their depth (one message kind per depth
    and variables), every other path plainly warmed."""
    size = max(1, paths_per_message(len(targets), len(encodings)))
    groups: dict[tuple[bool, int, tuple[tuple[str, str], ...] | None], list[str]] = {}
    for item in items:
        key = (True, item.depth, item.variables) if item.expands else (False, 0, None)
        groups.setdefault(key, []).append(item.path)
    messages: list[PrewarmMessage] = []
    for (expands, depth, variables), paths in groups.items():
        messages += prewarm_messages(
            paths,
            max_paths=size,
            targets=targets,
            encodings=encodings,
            host=host,
            source=EXPAND_SOURCE,
            expand=expands,
            depth=depth,
            variables=variables,
        )
    return messages


def _expand_one(
    item: _Item,
    found: TaskResult,
    hosts: OurHosts,
    encodings: tuple[str, ...],
    client: EdgeClient,
) -> tuple[ManifestExpansion, list[_Item]]:
    path = item.path
    record = ManifestExpansion(path, manifest_format(path, found.content_type))
    body = _read_body(client, found.edge or "", hosts.base_host, path, encodings)
    if isinstance(body, str):
        record.reason = body
        return record, []
    data, content_type = body
    manifest = parse_manifest(
        path, data, content_type or found.content_type, hosts, variables=item.variables
    )
    _counted(record, manifest)
    children = manifest.children(item.depth)
    not_read = sum(1 for c in children if c.reference.kind == "playlist" and not c.expands)
    if not_read:
        record.ignored[NOT_READ_AT_DEPTH] = not_read
    return record, [_Item.of(child) for child in children]


def _counted(record: ManifestExpansion, manifest: Manifest) -> ManifestExpansion:
    record.format = manifest.format or record.format
    record.playlists = manifest.count("playlist")
    record.inits = manifest.count("init")
    record.segments = manifest.count("segment")
    record.ignored = dict(manifest.ignored_reasons)
    record.truncated = manifest.truncated
    record.skipped_tags = [tag.as_log() for tag in manifest.skipped_tags]
    if not manifest.expanded or manifest.truncated:
        record.reason = manifest.reason
    return record


def _read_body(
    client: EdgeClient, edge: str, host: str, path: str, encodings: tuple[str, ...]
) -> tuple[bytes, str | None] | str:
    """The manifest's bytes as the edge serves them, or why they could not be read."""
    # A variant this message warmed, so the read is a hit: identity, else gzip (decoded
    # here). With neither (br only), identity is asked for anyway: one more variant cached.
    encoding = "gzip" if "identity" not in encodings and "gzip" in encodings else "identity"
    try:
        response = client.get(
            edge, host, path, ACCEPT_ENCODING[encoding], keep_body=MAX_MANIFEST_BYTES + 1
        )
    except EdgeError as error:
        return f"reading the manifest at {edge} failed: {error.reason}"
    if not 200 <= response.status < 300 or not response.complete:
        return f"reading the manifest at {edge} got status {response.status}, incomplete"
    if response.bytes_read > MAX_MANIFEST_BYTES:
        return f"manifest is {response.bytes_read} bytes; the most parsed is {MAX_MANIFEST_BYTES}"
    data = inflate_manifest(response.body, response.headers.get("Content-Encoding"), "served")
    if isinstance(data, str):
        return data
    return data, response.headers.get("Content-Type")


class _ManifestTracker:
    """Remembers, per path that is a manifest, the targets that served it completely."""

    def __init__(
        self, targets: tuple[str, ...], encodings: tuple[str, ...], readable: set[str]
    ) -> None:
        self.order = {target: index for index, target in enumerate(targets)}
        self.encodings = encodings
        self.readable = readable  # the paths of the round that are read once warmed
        self.served: dict[str, dict[str, TaskResult]] = {}

    def record(self, result: TaskResult) -> None:
        # Called one at a time by the engine (its progress contract).
        path = result.task.path
        if not result.ok or result.edge is None or path not in self.readable:
            return
        if manifest_format(path, result.content_type) is None:
            return
        self.served.setdefault(path, {}).setdefault(result.task.target, result)

    def first_ok(self, path: str) -> TaskResult | None:
        """The result at the first target, in the message's order, that served ``path``."""
        served = self.served.get(path)
        if not served:
            return None
        return served[min(served, key=lambda target: self.order.get(target, len(self.order)))]


def _both(first: Progress, second: Progress | None) -> Progress:
    if second is None:
        return first

    def call(result: TaskResult) -> None:
        first(result)
        second(result)

    return call


def _merge(total: WarmReport, report: WarmReport) -> None:
    total.tasks += report.tasks
    for target, totals in report.targets.items():
        into = total.targets.setdefault(target, TargetTotals())
        into.edge = into.edge or totals.edge
        into.pop = totals.pop or into.pop
        into.ok += totals.ok
        into.failed += totals.failed
        into.bytes += totals.bytes
        into.hits += totals.hits
        into.misses += totals.misses
        into.pop_mismatches += totals.pop_mismatches
        into.error = into.error or totals.error
    total.failures.extend(report.failures)
    total.capped.extend(report.capped)
    total.cancelled.extend(report.cancelled)
    total.dns_queries += report.dns_queries
    total.connections += report.connections
    total.seconds += report.seconds
    if total.resolution is None:
        total.resolution = report.resolution
