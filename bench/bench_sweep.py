"""Benchmark: requests one sweep run makes, against the naive sweep, as the bucket grows.

A counting in-memory bucket stands in for S3 (moto would need minutes to hold 100 000
objects, and the figure measured is a count of requests, which a fake counts exactly).
It keeps keys in S3's order and pages listings by 1 000 with StartAfter, as S3 does.

For each bucket size (default 10 000, 100 000 and 1 000 000 copies), 100 copies are due:
- **sweep**: the real ``sweep`` over the due index (``backfill_worker/freshness/due_index.py``);
- **naive** (baseline, measured in the same run): list every key of the bucket and HEAD
  each copy to read its ``fetched-at`` and lifetime, then send the due ones.

Targets (exit status 1 when one is missed), for 100 000 copies with 100 due:
- sweep requests ≤ 2 × due + 20 (one GET and, since issue 19, one PUT per due entry: the
  entry standing for its refresh; plus a few listings, batches and deletes);
- sweep requests the same (± 2) at every bucket size: the cost follows the due copies.

Run: .venv/bin/python bench/bench_sweep.py [--sizes 10000,100000,1000000] [--due 100]
"""

from __future__ import annotations

import argparse
import bisect
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backfill_worker.freshness.due_index import DueIndex  # noqa: E402
from backfill_worker.freshness.lifetime import FETCHED_AT, is_due, lifetime  # noqa: E402
from backfill_worker.freshness.sweep import RefreshQueue, sweep  # noqa: E402
from shared.messages import format_time  # noqa: E402
from shared.object_store import ListedKey, StoredCopy  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


class CountingBucket:
    """The revalidation calls of ``ObjectStore`` on an in-memory bucket, each one counted."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self._sorted: list[str] = []
        self._dirty = False
        self.requests: Counter[str] = Counter()

    def load(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        """Set up the bucket (not counted)."""
        self.objects[key] = body
        if metadata is not None:
            self.metadata[key] = metadata
        self._dirty = True

    def _keys(self) -> list[str]:
        if self._dirty:
            self._sorted = sorted(self.objects)
            self._dirty = False
        return self._sorted

    def put_small(self, key: str, body: bytes) -> None:
        self.requests["PutObject"] += 1
        self.load(key, body)

    def get_small(self, key: str, limit: int = 65536) -> bytes | None:
        self.requests["GetObject"] += 1
        body = self.objects.get(key)
        return None if body is None else body[:limit]

    def head(self, key: str) -> StoredCopy | None:
        self.requests["HeadObject"] += 1
        if key not in self.objects:
            return None
        return StoredCopy(etag='"x"', metadata=self.metadata.get(key, {}))

    def delete_keys(self, keys: list[str]) -> list[str]:
        ordered = self._keys()
        for start in range(0, len(keys), 1000):
            self.requests["DeleteObjects"] += 1
            for key in keys[start : start + 1000]:
                if self.objects.pop(key, None) is not None:
                    del ordered[bisect.bisect_left(ordered, key)]
        return []

    def list_page(
        self, prefix: str, start_after: str | None = None, max_keys: int = 1000
    ) -> tuple[list[ListedKey], bool]:
        self.requests["ListObjectsV2"] += 1
        ordered = self._keys()
        first = bisect.bisect_right(ordered, max(prefix, start_after or ""))
        page: list[ListedKey] = []
        position = first
        while position < len(ordered) and len(page) < max_keys:
            key = ordered[position]
            if not key.startswith(prefix):
                break
            page.append(ListedKey(key, len(self.objects[key])))
            position += 1
        more = position < len(ordered) and ordered[position].startswith(prefix)
        return page, more


class CountingSqs:
    def __init__(self, requests: Counter[str]) -> None:
        self.requests = requests
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.requests["SendMessageBatch"] += 1
        self.bodies.extend(entry["MessageBody"] for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


class QuietLog:
    def info(self, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, *args: Any, **kwargs: Any) -> None: ...
    def error(self, *args: Any, **kwargs: Any) -> None: ...


def build(copies: int, due: int, with_index: bool = True) -> CountingBucket:
    """A bucket of ``copies`` copies (each with fetched-at) and their due entries; ``due``
    of them are due at NOW, the rest over the next 30 days."""
    bucket = CountingBucket()
    index = DueIndex(bucket)  # type: ignore[arg-type]
    for n in range(copies):
        key = f"assets/{n:07d}.js"
        is_due_now = n % (copies // due) == 0 and n // (copies // due) < due
        fetched = NOW - timedelta(days=2) if is_due_now else NOW - timedelta(seconds=n % 3600)
        seconds = 3600 if is_due_now else 86_400 + n % (29 * 86_400)
        bucket.load(
            key,
            b"",
            {FETCHED_AT: format_time(fetched), "cache-control": f"max-age={seconds}"},
        )
        if with_index:
            index.record(key, fetched, None, seconds)
    bucket.requests.clear()
    return bucket


def naive_sweep(bucket: CountingBucket, sqs: CountingSqs) -> int:
    """The baseline: list the whole bucket, HEAD every copy, send the due ones."""
    due: list[str] = []
    start_after = None
    while True:
        page, more = bucket.list_page("", start_after)
        for item in page:
            if item.key.startswith("_edgefill/"):
                continue
            copy = bucket.head(item.key)
            if copy is None:
                continue
            meta = bucket.metadata.get(item.key, {})
            fetched = datetime.fromisoformat(meta[FETCHED_AT].replace("Z", "+00:00"))
            if is_due(NOW, fetched, None, lifetime(meta.get("cache-control"), None, fetched)):
                due.append(item.key)
        if not more:
            break
        start_after = page[-1].key
    for start in range(0, len(due), 10):
        sqs.send_message_batch(
            QueueUrl="q",
            Entries=[
                {"Id": str(i), "MessageBody": k} for i, k in enumerate(due[start : start + 10])
            ],
        )
    return len(due)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--due", type=int, default=100)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"{'copies':>9} {'due':>4} | {'sweep req':>9} {'sweep s':>8} |", end=" ")
    print(f"{'naive req':>9} {'naive s':>8} | ratio")
    results: dict[int, int] = {}
    for size in sizes:
        bucket = build(size, args.due)
        sqs = CountingSqs(bucket.requests)
        started = time.perf_counter()
        report = sweep(DueIndex(bucket), RefreshQueue(sqs, "q", ""), NOW, lambda: 900.0, QuietLog())  # type: ignore[arg-type]
        sweep_seconds = time.perf_counter() - started
        sweep_requests = sum(bucket.requests.values())
        detail = dict(bucket.requests)
        assert report.sent == args.due, report
        # The baseline on the same copies, without an index.
        baseline = build(size, args.due, with_index=False)
        base_sqs = CountingSqs(baseline.requests)
        started = time.perf_counter()
        found = naive_sweep(baseline, base_sqs)
        naive_seconds = time.perf_counter() - started
        naive_requests = sum(baseline.requests.values())
        assert found == args.due, found
        results[size] = sweep_requests
        print(
            f"{size:>9} {args.due:>4} | {sweep_requests:>9} {sweep_seconds:>8.3f} | "
            f"{naive_requests:>9} {naive_seconds:>8.3f} | {naive_requests / sweep_requests:>6.0f} ×"
            f"   sweep: {detail}"
        )
    ok = True
    reference = results.get(100_000, next(iter(results.values())))
    if reference > 2 * args.due + 20:
        target = 2 * args.due + 20
        print(f"MISSED: sweep made {reference} requests for {args.due} due (target ≤ {target})")
        ok = False
    if max(results.values()) - min(results.values()) > 2:
        print(f"MISSED: sweep requests vary with bucket size: {results}")
        ok = False
    print("every target met" if ok else "some target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
