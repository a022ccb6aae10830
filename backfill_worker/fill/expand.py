"""Backfill expansion: a copied HLS playlist or DASH manifest queues fills for its tree.

When a copy creates an object that is a manifest (by its extension, else by the
Content-Type S3 keeps for it), the worker reads it back from the bucket — what viewers
will be served, and only once the copy has succeeded — parses it with the shared rules
(``shared/manifests.py``) and queues one ordinary v1 fill per referenced object on
``EDGEFILL_BACKFILL_QUEUE_URL``. Recursion needs nothing more: a media playlist queued
by its master is copied in turn, and expands to its segments then.

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
    inflate_manifest,
    manifest_format,
    parse_manifest,
)
from shared.messages import BackfillMessage, format_time, to_json
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

    def as_log(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "format": self.format,
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
        expansion = Expansion(key.key)
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
            message.host,
            max_objects=self.config.expand_max,
            key_prefix=self.config.key_prefix,
        )

    def _queue(
        self, message: BackfillMessage, key: ObjectKey, manifest: Manifest, expansion: Expansion
    ) -> None:
        expansion.playlists = manifest.count("playlist")
        expansion.inits = manifest.count("init")
        expansion.segments = manifest.count("segment")
        expansion.truncated = manifest.truncated
        expansion.ignored = dict(manifest.ignored_reasons)
        at = format_time(datetime.now(UTC))
        bodies = []
        for reference in manifest.references:
            if reference.path == message.uri:
                continue  # the manifest itself is already copied
            if not self.config.accepts(unquote(reference.path)):
                expansion.filtered += 1
                continue
            fill = BackfillMessage(
                uri=reference.path,
                query=reference.query,
                host=message.host,
                distribution=message.distribution,
                edge_region=message.edge_region,
                at=at,
            )
            bodies.append(to_json(fill))
        self._send(bodies, expansion)
        if manifest.truncated:
            self.logger.warning(
                "manifest expansion stopped at EDGEFILL_EXPAND_MAX",
                extra={"key": key.key, "max": self.config.expand_max},
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
