"""Prewarm expansion (``"expand": true``): playlists and manifests also warm their tree.

Each path is warmed like any path. For each one that is an HLS playlist or a DASH
manifest (by its extension, else by the Content-Type an edge answered with), the body is
read from the first target (in the message's order) that served it completely — one more
GET, at that target's edge, of a variant just warmed (identity when the message warms it,
else gzip; identity again when it warms neither) — and parsed with the rules the backfill
uses (``shared/manifests.py``: no keys, no other hosts, no live manifests, the key
rules). What it references is warmed at the same targets and encodings, round after
round (master → media playlists → segments), so a launch warm names one master instead
of every segment.

Bounds:
- Inside the message's task cap (``MAX_TASKS_PER_MESSAGE``, paths × targets × encodings,
  the message's own tasks included): references that do not fit, or that the invocation
  has no time left for, continue in follow-up prewarm messages (``source: "expand"``,
  ``expand: true``, at most 1,000 paths and the task cap each).
- Depth: inside one message a path is warmed and expanded once (cycles end there). A
  follow-up message expands its manifests to their inits and segments but does not follow
  the playlists they name, so no chain of follow-ups can grow without end (a valid HLS
  tree is two levels deep: a master's playlists are expanded in the first message).
- Each manifest body is read up to ``MAX_MANIFEST_BYTES`` and yields at most
  ``DEFAULT_MAX_OBJECTS`` references (the parser's bounds); one manifest is held at a time.

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
from shared.edge_http import EdgeClient, EdgeError
from shared.manifests import (
    MAX_MANIFEST_BYTES,
    Manifest,
    inflate_manifest,
    manifest_format,
    parse_manifest,
)
from shared.messages import ACCEPT_ENCODING, MAX_PATHS, PrewarmMessage, to_json
from shared.queues import send_and_log

# The ``source`` of follow-up messages; in them, playlists a manifest names are not followed.
EXPAND_SOURCE: Final = "expand"
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
    reason: str | None = None  # why it was not expanded

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


def warm_expanding(
    plan: WarmPlan,
    context: WarmContext,
    progress: Progress | None = None,
    task_budget: int | None = None,
    follow_playlists: bool = True,
    max_bytes: int | None = None,
) -> ExpandOutcome:
    """Warm ``plan``, then what its manifests reference, round after round, within
    ``task_budget`` tasks and the context's deadline; the rest becomes follow-up messages.
    ``follow_playlists`` False (a follow-up message) warms no playlist a manifest names.
    ``max_bytes`` bounds the downloads of every round together: once reached, no round
    starts and no follow-up is sent (the references left are counted in ``capped_paths``),
    as the byte cap leaves tasks out rather than sending them on."""
    targets = tuple(dict.fromkeys(plan.targets))
    encodings = tuple(dict.fromkeys(plan.encodings))
    per_path = max(1, len(targets) * len(encodings))
    outcome = ExpandOutcome(WarmReport())
    seen = set(plan.paths)
    budget = (MAX_TASKS_PER_MESSAGE if task_budget is None else task_budget) - plan.size
    current: list[str] = list(dict.fromkeys(plan.paths))
    left_over: list[str] = []
    while current:
        outcome.rounds += 1
        if outcome.rounds > 1:
            outcome.expanded_paths += len(current)
        tracker = _ManifestTracker(targets)
        left = None if max_bytes is None else max_bytes - outcome.report.bytes
        if left is not None and left <= 0:
            outcome.capped_paths += len(current)
            break
        report = warm(
            WarmPlan(tuple(current), targets, encodings, plan.host),
            context,
            progress=_both(tracker.record, progress),
            max_bytes=left,
        )
        _merge(outcome.report, report)
        children: list[str] = []
        found_here: list[tuple[ManifestExpansion, list[str]]] = []
        for path in current:
            found = tracker.first_ok(path)
            if found is None:
                if manifest_format(path) is not None:
                    outcome.manifests[path] = ManifestExpansion(
                        path, manifest_format(path), reason="no target served it completely"
                    )
                continue
            expansion = _expand_one(
                path, found, plan.host, encodings, context.client, follow_playlists
            )
            outcome.manifests[path] = expansion.record
            new = [uri for uri in expansion.references if uri not in seen]
            seen.update(new)
            children += new
            found_here.append((expansion.record, new))
        fit = max(0, budget // per_path)
        deadline = context.deadline
        if deadline is not None and deadline - time.monotonic() < MIN_ROUND_SECONDS:
            fit = 0  # no time for another round: the references go on in follow-ups
        current, overflow = children[:fit], children[fit:]
        budget -= len(current) * per_path
        kept = set(current)
        for record, new in found_here:
            record.warmed = sum(1 for uri in new if uri in kept)
            record.continued = len(new) - record.warmed
        if max_bytes is not None and outcome.report.bytes >= max_bytes:
            outcome.capped_paths += len(overflow)  # the byte cap sends nothing on
        else:
            left_over += overflow
    outcome.followups = follow_up_messages(left_over, targets, encodings, plan.host)
    return outcome


def warm_message(
    message: PrewarmMessage,
    plan: WarmPlan,
    context: WarmContext,
    max_bytes: int | None = None,
) -> tuple[WarmReport, ExpandOutcome | None]:
    """The warm of one message: expanding when it asks for it, else the plain engine.
    ``max_bytes`` (EDGEFILL_MAX_WARM_BYTES) bounds every round together."""
    if not message.expand:
        return warm(plan, context, max_bytes=max_bytes), None
    outcome = warm_expanding(
        plan,
        context,
        follow_playlists=message.source != EXPAND_SOURCE,
        max_bytes=max_bytes,
    )
    return outcome.report, outcome


def warm_tree(
    plan: WarmPlan, context: WarmContext, progress: Progress | None = None
) -> ExpandOutcome:
    """``edgefill warm --expand``: the whole tree here and now. What a worker would send
    on in follow-up messages is warmed in further passes, with the same rules (a pass of
    follow-ups follows no playlist, so the passes end)."""
    outcome = warm_expanding(plan, context, progress=progress)
    pending = list(outcome.followups)
    outcome.followups = []
    while pending:
        follow_up = pending.pop(0)
        more = warm_expanding(
            WarmPlan(follow_up.paths, plan.targets, plan.encodings, plan.host),
            context,
            progress=progress,
            follow_playlists=False,
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
    paths: list[str],
    targets: tuple[str, ...],
    encodings: tuple[str, ...],
    host: str,
) -> list[PrewarmMessage]:
    """Messages carrying ``paths`` on: expanding, at most 1,000 paths and the task cap each."""
    size = max(1, min(MAX_PATHS, paths_per_message(len(targets), len(encodings))))
    return [
        PrewarmMessage(
            paths=tuple(paths[start : start + size]),
            targets=targets,
            encodings=encodings,
            host=host,
            source=EXPAND_SOURCE,
            expand=True,
        )
        for start in range(0, len(paths), size)
    ]


@dataclass
class _Expanded:
    record: ManifestExpansion
    references: list[str]


def _expand_one(
    path: str,
    found: TaskResult,
    host: str,
    encodings: tuple[str, ...],
    client: EdgeClient,
    follow_playlists: bool,
) -> _Expanded:
    record = ManifestExpansion(path, manifest_format(path, found.content_type))
    body = _read_body(client, found.edge or "", host, path, encodings)
    if isinstance(body, str):
        record.reason = body
        return _Expanded(record, [])
    data, content_type = body
    manifest = parse_manifest(path, data, content_type or found.content_type, host)
    return _Expanded(_counted(record, manifest), _references(manifest, record, follow_playlists))


def _counted(record: ManifestExpansion, manifest: Manifest) -> ManifestExpansion:
    record.format = manifest.format or record.format
    record.playlists = manifest.count("playlist")
    record.inits = manifest.count("init")
    record.segments = manifest.count("segment")
    record.ignored = dict(manifest.ignored_reasons)
    record.truncated = manifest.truncated
    if not manifest.expanded:
        record.reason = manifest.reason
    return record


def _references(manifest: Manifest, record: ManifestExpansion, follow_playlists: bool) -> list[str]:
    uris = []
    for reference in manifest.references:
        if reference.kind == "playlist" and not follow_playlists:
            reason = "playlist not followed from a follow-up message"
            record.ignored[reason] = record.ignored.get(reason, 0) + 1
            continue
        uris.append(reference.uri)
    return uris


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

    def __init__(self, targets: tuple[str, ...]) -> None:
        self.order = {target: index for index, target in enumerate(targets)}
        self.served: dict[str, dict[str, TaskResult]] = {}

    def record(self, result: TaskResult) -> None:
        # Called one at a time by the engine (its progress contract).
        path = result.task.path
        if not result.ok or result.edge is None:
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
        into.ok += totals.ok
        into.failed += totals.failed
        into.bytes += totals.bytes
        into.hits += totals.hits
        into.misses += totals.misses
        into.pop_mismatches += totals.pop_mismatches
        into.error = into.error or totals.error
    total.failures.extend(report.failures)
    total.capped.extend(report.capped)
    total.dns_queries += report.dns_queries
    total.connections += report.connections
    total.seconds += report.seconds
    if total.resolution is None:
        total.resolution = report.resolution
