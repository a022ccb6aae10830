"""``edgefill demo`` (``make demo``): the whole pipeline, narrated, checked, on loopback.

1. Viewers at every POP ask for objects the regional bucket lacks: CloudFront fails over
   to the full origin and serves them (Miss); the edge function queues backfills.
2. The backfill worker copies each object into the bucket once, byte for byte, with no
   lease or multipart upload left behind, and queues a prewarm.
3. The prewarm worker warms every lab region for every encoding: the same requests now
   Hit everywhere.
4. An operator prewarms a launch's path list by hand (``edgefill prewarm``).
5. The full origin answers 5xx for one path: the backfill is retried, lands in the DLQ,
   the origin recovers, the operator redrives, the object arrives.
6. A premiere: one ``edgefill prewarm --expand`` of an HLS master brings the whole title
   into the bucket and every POP; a viewer's playback is all Hits (scenes/premiere.py).
7. The origin changes: ``edgefill refresh`` replaces the copy, the invalidation completes,
   the edges are warmed after it, ``edgefill check`` agrees (scenes/origin_changes.py).
8. A feature film too big for one backfill invocation arrives over several, each
   handing over to the next (``edgefill/scenes/long_copy.py``).
9. The origin withdraws two pages (a 403, a page now private): with the revalidation
   sweep running, they leave the bucket within their lifetime plus one sweep interval,
   are invalidated, every POP fails over to the origin, and ``edgefill check`` finds no
   edge serving the old version (``edgefill/scenes/takedown.py``).
10. Two regions (in the regions lab, ``edgefill/lab/regions.py``, once the single-region
    lab has stopped): viewers in Singapore, Malaysia, Germany and France; the deployed
    CloudFront Function routes each to its region's bucket; each bucket ends with exactly
    its region's objects, the one asked in both is copied into both (each copy fetched
    from the origin once) and warmed at its own region's edges (scenes/regions.py).

Every expectation is checked; the demo exits 1 if any fails and leaves nothing running.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefill.console import redirected
from edgefill.lab import catalog
from edgefill.lab.handler_logs import handler_logs
from edgefill.lab.lab import Lab, LabSettings, queue_depth
from edgefill.lab.origin import LabOrigin
from edgefill.lab.regions import RegionsLab
from edgefill.scenes.bucket import object_exists, object_sha256
from edgefill.scenes.long_copy import long_copy
from edgefill.scenes.origin_changes import origin_changes
from edgefill.scenes.premiere import premiere
from edgefill.scenes.regions import STEP as REGIONS_STEP
from edgefill.scenes.regions import regions
from edgefill.scenes.takedown import takedown
from shared.messages import ENCODINGS

# Step 1's objects: small, medium, a non-ASCII name and a 12 MiB video (multipart).
DEMO_PATHS: Final = (
    "/img/東京 tower.jpg",
    "/docs/café-menü.pdf",
    "/js/app.js",
    "/video/teaser.mp4",
)
VIEWERS_PER_POP: Final = 3
FAULT_PATH: Final = "/img/hero banner.jpg"
TIME_BUDGET_SECONDS: Final = 120


@dataclass
class Check:
    step: str
    expectation: str
    ok: bool
    detail: str = ""


@dataclass
class Checks:
    items: list[Check] = field(default_factory=list)

    def expect(self, step: str, expectation: str, ok: bool, detail: str = "") -> bool:
        self.items.append(Check(step, expectation, bool(ok), detail))
        return bool(ok)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.items if not check.ok]


# The scenes in order; ``edgefill demo --through N`` stops after scene N (each scene builds
# on the state the earlier ones left, so a prefix is the unit that can run alone).
SCENE_COUNT: Final = 10


class Demo:
    def __init__(
        self,
        console: Console,
        run_command: Callable[[list[str]], int],
        through: int = SCENE_COUNT,
    ) -> None:
        self.console = console
        self.through = through
        self.run_command = run_command  # the CLI's entry point, handed in (no import back)
        self.checks = Checks()
        self.lab = Lab(LabSettings())
        self.started = time.monotonic()

    # ---- narration helpers -------------------------------------------------------
    def say(self, text: str) -> None:
        self.console.print(f"  {text}")

    def step(self, title: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.rule(f"[bold cyan]{title}[/bold cyan] [dim]({elapsed:.1f}s)[/dim]")

    def progress(self) -> Progress:
        return Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            # sys.stdout is the handlers' log file here: the display must not take it over
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def wait_until(
        self, description: str, total: int, done: Callable[[], int], timeout: float
    ) -> bool:
        """A progress bar that follows ``done()`` up to ``total``; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.progress() as bar:
            task = bar.add_task(description, total=total)
            while True:
                current = done()
                bar.update(task, completed=min(current, total))
                if current >= total:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)

    def operator(self, argv: list[str]) -> int:
        """Run an ``edgefill`` command as an operator would; its output joins the story."""
        with redirected(self.console.file):
            return self.run_command(argv)

    # ---- the scenario ------------------------------------------------------------
    def run(self) -> int:
        self.step("Starting the lab")
        try:
            self.lab.start()
            self.describe_lab()
            catalog.seed(self.lab.origin)
            scenes: list[Callable[[], object]] = [
                self.failover_burst,
                self.backfill_once,
                self.prewarmed_hits,
                self.manual_launch_prewarm,
                self.fault_dlq_redrive,
                lambda: premiere(self),
                lambda: origin_changes(self),
                lambda: long_copy(self),
                lambda: takedown(self),
            ]
            for scene in scenes[: self.through]:
                scene()
        except Exception as error:  # noqa: BLE001 - any crash is a failed expectation
            self.checks.expect("demo", "runs to the end", False, f"{type(error).__name__}: {error}")
        finally:
            self.lab.stop()
        leftover = self.lab.leftovers()
        self.checks.expect(
            "teardown", "no lab thread, server or port left", not leftover, ", ".join(leftover)
        )
        if self.through >= SCENE_COUNT:
            self.regions_scene()
        elapsed = time.monotonic() - self.started
        self.checks.expect(
            "demo",
            f"finishes within {TIME_BUDGET_SECONDS}s",
            elapsed < TIME_BUDGET_SECONDS,
            f"{elapsed:.1f}s",
        )
        self.summary(elapsed)
        return 1 if self.checks.failed else 0

    def regions_scene(self) -> None:
        """Scene 10 needs several regional stacks: it runs in the regions lab, started
        once the single-region lab of scenes 1-9 has stopped (one lab's environment at a
        time in this process)."""
        lab = RegionsLab()
        try:
            lab.start()
            regions(self, lab)
        except Exception as error:  # noqa: BLE001 - any crash is a failed expectation
            self.checks.expect(
                REGIONS_STEP, "runs to the end", False, f"{type(error).__name__}: {error}"
            )
        finally:
            lab.stop()
        leftover = lab.leftovers()
        self.checks.expect(
            "teardown",
            "no regions-lab thread, process, server or port left",
            not leftover,
            ", ".join(leftover),
        )

    def describe_lab(self) -> None:
        info = self.lab.describe()
        self.say(
            f"S3 + SQS (moto): {info['moto']}   full origin: {info['origin']}   DNS: {info['dns']}"
        )
        pops = ", ".join(f"{p['code']} ({p['region']}) {p['address']}" for p in info["pops"])
        self.say(f"POPs on port {info['edge_port']}: {pops}")

    def failover_burst(self) -> None:
        step = "1 failover"
        self.step("1. Viewers at every POP ask for objects the bucket does not have")
        lab = self.lab
        jobs = [
            (code, path) for path in DEMO_PATHS for code in lab.pops for _ in range(VIEWERS_PER_POP)
        ]
        results: list[tuple[str, str, Any]] = []
        with self.progress() as bar, concurrent.futures.ThreadPoolExecutor(24) as pool:
            task = bar.add_task(f"{len(jobs)} concurrent viewers", total=len(jobs))
            futures = {
                pool.submit(lab.viewer_get, code, LabOrigin.uri(path)): (code, path)
                for code, path in jobs
            }
            for future in concurrent.futures.as_completed(futures):
                code, path = futures[future]
                results.append((code, path, future.result()))
                bar.advance(task)
        wrong = [
            f"{code} {path}: {r.status}"
            for code, path, r in results
            if r.status != 200
            or not r.complete
            or hashlib.sha256(r.body).hexdigest() != lab.origin.sha256(path)
        ]
        self.checks.expect(
            step, "every viewer got the full origin's bytes (200)", not wrong, "; ".join(wrong[:3])
        )
        misses = sum(1 for _, _, r in results if r.x_cache.startswith("Miss"))
        failovers = sum(pop.stats.failovers for pop in lab.pops.values())
        self.say(
            f"{misses} misses went to the origin group, {failovers} failed over to the full origin"
        )
        self.checks.expect(
            step,
            "one failover per object per POP (concurrent misses collapsed)",
            failovers == len(DEMO_PATHS) * len(lab.pops),
            f"{failovers} failovers",
        )

    def backfill_once(self) -> None:
        step = "2 backfill"
        self.step("2. The backfill worker copies each object into the bucket, once")
        lab = self.lab
        assert lab.aws is not None
        s3 = lab.aws.client("s3")
        stored = self.wait_until(
            "objects in the bucket",
            len(DEMO_PATHS),
            lambda: sum(
                object_exists(s3, lab.settings.bucket, path.lstrip("/")) for path in DEMO_PATHS
            ),
            timeout=40,
        )
        self.checks.expect(step, "every missing object reached the bucket", stored)
        lab.wait_idle(timeout=40)
        for path in DEMO_PATHS:
            key = path.lstrip("/")
            digest = object_sha256(s3, lab.settings.bucket, key)
            self.checks.expect(
                step, f"{path} is byte-identical in S3", digest == lab.origin.sha256(path)
            )
            whole, ranged, overlap = catalog.worker_copies(lab.origin, path)
            self.checks.expect(
                step,
                f"{path} copied from the full origin once",
                whole + ranged >= 1 and not overlap,
                f"{whole} whole + {ranged} ranged GET(s)",
            )
        leases = s3.list_objects_v2(Bucket=lab.settings.bucket, Prefix="_edgefill/leases/").get(
            "KeyCount", 0
        )
        uploads = s3.list_multipart_uploads(Bucket=lab.settings.bucket).get("Uploads", [])
        self.checks.expect(
            step, "no lease left under _edgefill/leases/", leases == 0, f"{leases} objects"
        )
        self.checks.expect(
            step, "no multipart upload left open", not uploads, f"{len(uploads)} open"
        )
        poller = lab.pollers["backfill"].stats
        self.say(
            f"backfill worker: {poller.invocations} invocations, {poller.records} records, "
            f"{poller.deleted} deleted"
        )

    def prewarmed_hits(self) -> None:
        step = "3 prewarm"
        self.step("3. The prewarm worker warms every region; the same requests now hit")
        lab = self.lab
        host = lab.settings.viewer_host
        variants = [
            (code, path, enc) for code in lab.pops for path in DEMO_PATHS for enc in ENCODINGS
        ]

        def cached() -> int:
            return sum(
                lab.pops[code].cached(host, LabOrigin.uri(path), enc)
                for code, path, enc in variants
            )

        warmed = self.wait_until("variants cached at the POPs", len(variants), cached, timeout=40)
        self.checks.expect(
            step,
            "every POP holds every encoding of every object",
            warmed,
            f"{cached()}/{len(variants)}",
        )
        misses = []
        for code, path, enc in variants:
            response = lab.viewer_get(code, LabOrigin.uri(path), enc)
            if not response.hit:
                misses.append(f"{code} {path} {enc}: {response.x_cache}")
        self.checks.expect(
            step, f"all {len(variants)} viewer requests are Hits", not misses, "; ".join(misses[:3])
        )
        stats = lab.pollers["prewarm"].stats
        self.say(f"prewarm worker: {stats.invocations} invocations for {stats.records} messages")

    def manual_launch_prewarm(self) -> None:
        step = "4 launch"
        self.step("4. An operator prewarms a launch's path list by hand")
        lab = self.lab
        assert lab.aws is not None
        paths = catalog.launch_paths(lab.origin)
        targets = ["NRT20-P2", "eu-central-1"]
        with tempfile.TemporaryDirectory() as scratch:
            paths_file = Path(scratch) / "launch.txt"
            paths_file.write_text("# launch day\n" + "\n".join(paths) + "\n", encoding="utf-8")
            argv = [
                "prewarm",
                "--paths-file",
                str(paths_file),
                "--targets",
                ",".join(targets),
                "--encodings",
                "br+gzip,gzip",
                "--paths-per-message",
                "5",
                "--endpoint-url",
                lab.aws.endpoint_url,
                "--prewarm-queue-url",
                lab.aws.queue("PrewarmQueue").url,
            ]
            self.say("$ edgefill " + " ".join(a if " " not in a else repr(a) for a in argv))
            code = self.operator(argv)
        self.checks.expect(step, "edgefill prewarm sent the messages", code == 0, f"exit {code}")
        host = lab.settings.viewer_host
        wanted = [
            (pop, p, e)
            for pop in ("NRT20-P2", "FRA56-P1")
            for p in paths
            for e in ("br+gzip", "gzip")
        ]
        warmed = self.wait_until(
            "launch variants cached",
            len(wanted),
            lambda: sum(lab.pops[pop].cached(host, LabOrigin.uri(p), e) for pop, p, e in wanted),
            timeout=40,
        )
        self.checks.expect(step, "the targeted POPs hold the launch pages", warmed)
        lab.wait_idle(timeout=40)
        # The launch pages were missing from the bucket too: warming them failed over at
        # the POPs, so the edge function queued their backfills, like any viewer miss.
        assert lab.aws is not None
        s3 = lab.aws.client("s3")
        backfilled = sum(object_exists(s3, lab.settings.bucket, path.lstrip("/")) for path in paths)
        self.say(f"warming missing pages failed over, so {backfilled} of them were backfilled too")
        self.checks.expect(
            step,
            "the launch pages were backfilled by the failovers the warm caused",
            backfilled == len(paths),
            f"{backfilled}/{len(paths)}",
        )

    def fault_dlq_redrive(self) -> None:
        step = "5 fault"
        self.step("5. The full origin fails (503): retries, DLQ, then a redrive")
        lab = self.lab
        assert lab.aws is not None
        sqs = lab.aws.client("sqs")
        queue, dlq = lab.aws.queue("BackfillQueue"), lab.aws.queue("BackfillDLQ")
        lab.origin.fault(FAULT_PATH, status=503)
        response = lab.viewer_get("FRA56-P1", LabOrigin.uri(FAULT_PATH))
        self.checks.expect(
            step,
            "the viewer sees the origin's 503, not cached",
            response.status == 503,
            response.x_cache,
        )
        limit = queue.max_receive_count or 5
        self.say(
            f"the backfill fails and is retried every {queue.visibility_timeout}s (the lab's "
            f"visibility timeout); after {limit} receives SQS moves it to the DLQ"
        )
        landed = self.wait_until(
            "backfill in the DLQ", 1, lambda: queue_depth(sqs, dlq.url), timeout=60
        )
        receives = max(lab.pollers["backfill"].stats.receive_counts.values(), default=0)
        self.checks.expect(
            step,
            f"the failing backfill was tried {limit} times, then moved to the DLQ",
            landed and receives == limit,
            f"received {receives} times",
        )
        lab.origin.clear_fault(FAULT_PATH)
        self.say("the origin recovers; the operator redrives the DLQ:")
        argv = [
            "redrive",
            "--queue",
            "backfill",
            "--endpoint-url",
            lab.aws.endpoint_url,
            "--backfill-queue-url",
            queue.url,
            "--backfill-dlq-url",
            dlq.url,
        ]
        self.say("$ edgefill " + " ".join(argv))
        code = self.operator(argv)
        self.checks.expect(
            step, "edgefill redrive moved the message back", code == 0, f"exit {code}"
        )
        s3 = lab.aws.client("s3")
        arrived = self.wait_until(
            "object in the bucket",
            1,
            lambda: int(object_exists(s3, lab.settings.bucket, FAULT_PATH.lstrip("/"))),
            timeout=30,
        )
        self.checks.expect(step, "after the redrive the object is in the bucket", arrived)
        digest = object_sha256(s3, lab.settings.bucket, FAULT_PATH.lstrip("/")) if arrived else ""
        self.checks.expect(step, "and byte-identical", digest == lab.origin.sha256(FAULT_PATH))
        lab.wait_idle(timeout=30)
        self.checks.expect(step, "the DLQ is empty", queue_depth(sqs, dlq.url) == 0)

    def summary(self, elapsed: float) -> None:
        table = Table(title=f"edgefill demo — {len(self.checks.items)} checks in {elapsed:.1f}s")
        table.add_column("step")
        table.add_column("expectation")
        table.add_column("result", justify="center")
        table.add_column("detail", overflow="fold")
        for check in self.checks.items:
            mark = "[green]✓[/green]" if check.ok else "[red]✗[/red]"
            table.add_row(check.step, check.expectation, mark, check.detail)
        self.console.print(table)
        if self.checks.failed:
            self.console.print(
                f"[red bold]{len(self.checks.failed)} expectation(s) failed[/red bold]"
            )
        else:
            self.console.print("[green bold]every expectation met[/green bold]")


def run_demo(
    operator: Callable[[list[str]], int],
    verbose: bool = False,
    as_json: bool = False,
    through: int = SCENE_COUNT,
) -> int:
    """Run the demo; 0 when every expectation holds. ``operator`` runs an ``edgefill``
    command line (the CLI's ``main``, handed in by the ``demo`` command).

    The handlers log JSON lines to stdout, as in Lambda; the demo sends them (and what the
    servers print on stderr) to a log file it names at the end, so the narration stays
    readable, in a terminal as in a pipe (``edgefill/lab/handler_logs.py``); ``verbose``
    leaves them on screen. ``as_json``: the narration goes to stderr and stdout gets the
    checks as JSON."""
    console = Console(file=sys.stderr if as_json else sys.stdout, highlight=False)
    with handler_logs("edgefill-demo", verbose) as log_path:
        demo = Demo(console, operator, through)
        code = demo.run()
    if log_path is not None:
        console.print(f"handler logs (JSON lines, as CloudWatch would hold them): {log_path}")
    if as_json:
        checks = [asdict(check) for check in demo.checks.items]
        print(json.dumps({"ok": code == 0, "checks": checks}, indent=2))
    return code
