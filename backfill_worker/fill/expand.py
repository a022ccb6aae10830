"""Backfill expansion: a copied HLS playlist or DASH manifest queues fills for its tree.

When a copy creates an object that is a manifest (by its extension, else by the
Content-Type S3 keeps for it), the worker reads it back from the bucket — what viewers
will be served, and only once the copy has succeeded — parses it with the shared rules
(``shared/manifests.py``) and queues one ordinary v1 fill per referenced object on
``EDGEFILL_BACKFILL_QUEUE_URL``. Recursion needs nothing more: a media playlist queued
by its master is copied in turn, and expands to its segments then.

Depth (issue 19): each fill carries its ``depth`` below the first manifest. A playlist's
fill carries the manifest's depth + 1 (and, for a media playlist's ``IMPORT``, the
multivariant playlist's ``variables``); init sections' and segments' fills carry 2, the
depth at which nothing is read: only manifests referenced as playlists expand, at most two
levels below the manifest a viewer missed. Absolute URIs count on the viewer hosts
(``EDGEFILL_VIEWER_HOSTS`` and the message's ``host``) and on the full origin under its
path (``EDGEFILL_ORIGIN_URL``).

Cost and flood control: messages go out 10 to a SendMessageBatch call (fewer when the
bodies pass 256 KiB), so a 1,000-segment playlist costs about 100 calls. Expansion runs
once per copy that created the object, never on a skip (exists, leased, appeared), so
viewers asking for a playlist again and again queue its tree once. At most
``EDGEFILL_EXPAND_MAX`` objects are queued per manifest; past that the parse stops and
the stop is logged and counted (``ExpansionTruncated``).

Memory bound: the manifest is read back up to ``MAX_MANIFEST_BYTES`` (8 MiB; a larger one
is not expanded), gzip-stored ones inflate to the same bound, and the queued bodies
(at most ``EDGEFILL_EXPAND_MAX`` of about 200 bytes) are built before the first send.

What is not queued: keys, other hosts, ``data:`` URIs, live manifests (see the parser),
URIs the key rules refuse, paths ``EDGEFILL_INCLUDE``/``EDGEFILL_EXCLUDE`` filter out, and
the manifest itself. A failure here (S3 read, SQS send) is logged and counted but does
not fail the record: the copy is done, and a retry would skip it as existing; objects
not queued are still filled on demand, by viewers' failovers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.config import BackfillConfig
from shared.keys import ObjectKey
from shared.manifests import (
    MAX_MANIFEST_BYTES,
    Manifest,
    OurHosts,
    expands_at,
    inflate_manifest,
    manifest_format,
    parse_manifest,
)
from shared.messages import BackfillMessage, MessageError, format_time, to_json
from shared.object_store import ObjectStore, StoreError
from shared.queues import send_messages

# SQS takes 1 MiB per SendMessageBatch, but fills are tiny: 256 KiB a call keeps each
# call small and, with 10 entries, is never the limit for ordinary URIs.
MAX_SEND_BYTES: Final = 256 * 1024
IGNORED_QUOTED: Final = 10


@dataclass
class Expansion:
    """What one manifest led to."""

    key: str
    format: str | None = None
    expanded: bool = False
    reason: str | None = None
    playlists: int = 0
    inits: int = 0
    segments: int = 0
    queued: int = 0
    filtered: int = 0
    failed: int = 0
    send_calls: int = 0
    truncated: bool = False
    ignored: dict[str, int] = field(default_factory=dict)
    depth: int = 0
    skipped_tags: list[dict[str, object]] = field(default_factory=list)

    def as_log(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "format": self.format,
            "depth": self.depth,
            "playlists": self.playlists,
            "inits": self.inits,
            "segments": self.segments,
            "queued": self.queued,
            "filtered": self.filtered,
            "failed": self.failed,
            "sendCalls": self.send_calls,
            "truncated": self.truncated,
            "ignored": self.ignored,
            "reason": self.reason,
        }
        if self.skipped_tags:
            out["skippedTags"] = self.skipped_tags
        return out


@dataclass
class PlaylistExpander:
    """Reads a copied manifest back and queues fills for what it references."""

    config: BackfillConfig
    store: ObjectStore
    sqs: Any
    logger: Logger
    metrics: Metrics

    def expand(self, message: BackfillMessage, key: ObjectKey) -> Expansion | None:
        """Queue fills for the manifest just copied to ``key``; None when it is no manifest.
        Never raises: a failure is logged and counted (the copy itself stands)."""
        expansion = Expansion(key.key, depth=message.depth)
        try:
            manifest = self._read_and_parse(message, key, expansion)
        except StoreError as error:
            expansion.reason = f"reading the manifest back failed: {error}"
            manifest = None
        if expansion.format is None:
            return None
        if manifest is None or not manifest.expanded:
            expansion.reason = expansion.reason or (manifest.reason if manifest else None)
            self.logger.info("manifest not expanded", extra=expansion.as_log())
            self.metrics.add_metric(name="ManifestsNotExpanded", unit=MetricUnit.Count, value=1)
            return expansion
        expansion.expanded = True
        self._queue(message, key, manifest, expansion)
        return expansion

    def _read_and_parse(
        self, message: BackfillMessage, key: ObjectKey, expansion: Expansion
    ) -> Manifest | None:
        kind = manifest_format(message.uri)
        if kind is None:  # no telling extension: the Content-Type S3 keeps may say
            kind = manifest_format(message.uri, self.store.content_type(key.key))
        expansion.format = kind
        if kind is None:
            return None
        if not expands_at(message.depth):
            expansion.reason = (
                f"at depth {message.depth} below the first manifest: not read (depth budget)"
            )
            return None
        stored = self.store.read_object(key.key, MAX_MANIFEST_BYTES + 1)
        if stored is None:
            expansion.reason = "the manifest is no longer in the bucket"
            return None
        if not stored.complete:
            expansion.reason = (
                f"manifest is {stored.size} bytes; the most parsed is {MAX_MANIFEST_BYTES}"
            )
            return None
        body = inflate_manifest(stored.body, stored.content_encoding, "stored")
        if isinstance(body, str):
            expansion.reason = body
            return None
        return parse_manifest(
            message.uri,
            body,
            stored.content_type,
            our_hosts(self.config, message.host),
            max_objects=self.config.expand_max,
            key_prefix=self.config.key_prefix,
            query=message.query,
            variables=message.variables,
        )

    def _queue(
        self, message: BackfillMessage, key: ObjectKey, manifest: Manifest, expansion: Expansion
    ) -> None:
        expansion.playlists = manifest.count("playlist")
        expansion.inits = manifest.count("init")
        expansion.segments = manifest.count("segment")
        expansion.truncated = manifest.truncated
        expansion.ignored = dict(manifest.ignored_reasons)
        expansion.skipped_tags = [tag.as_log() for tag in manifest.skipped_tags]
        at = format_time(datetime.now(UTC))
        bodies = []
        for child in manifest.children(message.depth):
            reference = child.reference
            if reference.path == message.uri:
                continue  # the manifest itself is already copied
            if not self.config.accepts(unquote(reference.path)):
                expansion.filtered += 1
                continue
            try:
                fill = BackfillMessage(
                    uri=reference.path,
                    query=reference.query,
                    host=message.host,
                    distribution=message.distribution,
                    edge_region=message.edge_region,
                    at=at,
                    depth=child.depth,
                    variables=child.variables or None,
                    region=message.region,  # the segments belong in the same bucket
                )
                bodies.append(to_json(fill))
            except MessageError:  # the parser's rules keep this from happening; never raise
                expansion.failed += 1
        self._send(bodies, expansion)
        if manifest.truncated:
            self.logger.warning(
                "manifest expansion stopped at EDGEFILL_EXPAND_MAX"
                if (manifest.reason or "").startswith("stopped at the object cap")
                else "manifest expansion stopped at a budget",
                extra={"key": key.key, "max": self.config.expand_max, "reason": manifest.reason},
            )
            self.metrics.add_metric(name="ExpansionTruncated", unit=MetricUnit.Count, value=1)
        level = self.logger.error if expansion.failed else self.logger.info
        extra = expansion.as_log()
        extra["ignoredExamples"] = [
            {"uri": i.uri, "reason": i.reason} for i in manifest.ignored[:IGNORED_QUOTED]
        ]
        level("manifest expanded", extra=extra)
        self.metrics.add_metric(name="ManifestsExpanded", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(
            name="ExpandedObjectsQueued", unit=MetricUnit.Count, value=expansion.queued
        )
        if expansion.failed:
            self.metrics.add_metric(
                name="ExpandedObjectsNotQueued", unit=MetricUnit.Count, value=expansion.failed
            )

    def _send(self, bodies: list[str], expansion: Expansion) -> None:
        queue_url = self.config.backfill_queue_url
        if not bodies or queue_url is None:
            return
        # Calls of at most 10 entries and MAX_SEND_BYTES; a call that fails as a whole
        # counts its entries as failed and the next calls are still made.
        report = send_messages(
            self.sqs, queue_url, bodies, max_batch_bytes=MAX_SEND_BYTES, keep_going=True
        )
        expansion.send_calls += report.calls
        expansion.queued += report.sent
        expansion.failed += len(report.failed)
        if report.call_errors:
            expansion.reason = report.call_errors[-1]
        elif report.failed:
            expansion.reason = f"SQS refused {len(report.failed)}: {report.failed[:3]}"


def our_hosts(config: BackfillConfig, host: str | None) -> OurHosts:
    """The hosts a copied manifest may name its objects on: the message's host (the
    distribution domain the edge saw), EDGEFILL_VIEWER_HOSTS, and the full origin under
    its path (EDGEFILL_ORIGIN_URL)."""
    return OurHosts.of(host, *config.viewer_hosts, origin=config.origin_url)
