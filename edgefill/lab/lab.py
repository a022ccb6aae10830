"""The whole edgefill system on one machine: moto, the full origin, POPs, DNS, pollers.

    with Lab() as lab:
        lab.origin.put("/img/a.jpg", b"...")
        lab.viewer_get("NRT20-P2", "/img/a.jpg")      # Miss, failover, backfill queued
        lab.wait_idle()                               # backfill copied, prewarm done

Everything listens on loopback (127.0.0.0/8) and nothing leaves the machine: the lab runs
offline and inside a network namespace with only ``lo`` up. The real handlers run in
this process: the edge function inside each POP, the two workers behind pollers that
emulate Lambda's SQS event source. They read their configuration from the environment,
as in Lambda, so ``start`` sets the ``EDGEFILL_*`` variables (and AWS endpoint, fake
credentials and the lab CA bundle) and ``stop`` puts the previous values back. The
workers' per-container caches are cleared on both, so each lab starts "cold".

One lab per process at a time: moto's state and the environment are per process.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from edgefill.lab.aws import LAB_CREDENTIALS, LAB_REGION, LAB_VISIBILITY_TIMEOUT, LabAws
from edgefill.lab.dns import LabDNSServer
from edgefill.lab.invalidations import (
    DEFAULT_DELAY_SECONDS,
    LabInvalidations,
    create_lab_distribution,
)
from edgefill.lab.origin import LabOrigin
from edgefill.lab.pollers import QueuePoller
from edgefill.lab.pop import Distribution, Pop, PopSite, start_pops
from edgefill.lab.stacks import LabStacks, register_stacks
from edgefill.lab.sweep_schedule import SweepSchedule
from edgefill.lab.template_spec import TemplateError, TemplateSpec
from edgefill.lab.tls import LabCA
from edgefill.lab.viewer_function import ViewerFunction, choose_group
from shared.edge_routing import function_code, render
from shared.messages import ACCEPT_ENCODING, ENCODINGS

DISTRIBUTION_DOMAIN: Final = "d111111abcdef8.cloudfront.net"
VIEWER_HOST: Final = "cdn.edgefill.test"
DISTRIBUTION_ID: Final = "E2EDGEFILLLAB"
# The lab's stacks (edgefill/lab/stacks.py), named as a deployment's defaults (Name=edgefill).
EDGE_STACK: Final = "edgefill"
REGIONAL_STACK: Final = "edgefill-regional"
MOTO_ACCOUNT: Final = "123456789012"  # moto's default account
# The lab's POPs: one per region, each on its own loopback address. The client subnets
# are documentation networks (RFC 5737) so nothing here looks like a real AWS range.
DEFAULT_SITES: Final = (
    PopSite("NRT20-P2", "ap-northeast-1", "127.0.0.11"),
    PopSite("FRA56-P1", "eu-central-1", "127.0.0.12"),
    PopSite("IAD89-P3", "us-east-1", "127.0.0.13"),
    PopSite("GRU3-P1", "sa-east-1", "127.0.0.14"),
)
DEFAULT_SUBNETS: Final = {
    "ap-northeast-1": "192.0.2.0/26",
    "eu-central-1": "192.0.2.64/26",
    "us-east-1": "198.51.100.0/24",
    "sa-east-1": "203.0.113.0/24",
}
# The lab waits this long for a prewarm retry (EDGEFILL_RETRY_DELAY): seconds, not 30.
LAB_RETRY_DELAY: Final = 1
# The backfill function's 900 s deadline runs 100 times faster in the lab (9 s), and its
# handover comes 3 s before the end instead of 60 s: a copy longer than one invocation
# (the demo's feature film) arrives over several within the demo.
LAB_BACKFILL_DEADLINE_SCALE: Final = 0.01
LAB_HANDOVER_SECONDS: Final = 3
# The revalidation sweep's period in the lab (the template's is 15 minutes), once a scene
# starts it (``start_sweep``); it looks that far ahead, as the template's does, and the
# least interval between two revalidations is a second, so that lifetimes of a few
# seconds show what a day's would.
LAB_SWEEP_SECONDS: Final = 2
# Replaced paths wait a second, not a minute, for one invalidation to take them all.
LAB_INVALIDATION_WINDOW: Final = 1
# Environment variables the lab sets for the handlers; all restored by stop().
_AWS_ENV: Final = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_CLOUDFRONT",
    "AWS_PROFILE",
)
# Module name prefixes whose cached factories (lru_cache) hold clients and configuration.
_CACHED_PACKAGES: Final = ("shared", "backfill_worker", "prewarm_worker", "edge_origin_request")


class LabError(RuntimeError):
    """The lab cannot start (a missing template, a port that will not bind, a handler
    that does not import); the message says what."""


def default_template() -> Path:
    """``template.yaml`` of the checkout this package runs from, else of the working dir."""
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (candidate / "template.yaml").is_file():
            return candidate / "template.yaml"
    raise LabError(
        "template.yaml not found next to the edgefill package or in the current directory"
    )


@dataclass
class ViewerResponse:
    """What a viewer got from a POP."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # the body matched Content-Length

    @property
    def x_cache(self) -> str:
        return self.headers.get("x-cache", "")

    @property
    def hit(self) -> bool:
        return self.x_cache.startswith("Hit")


@dataclass
class LabSettings:
    """What a lab looks like; the defaults are the demo's."""

    template: Path | None = None
    sites: tuple[PopSite, ...] = DEFAULT_SITES
    subnets: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SUBNETS))
    distribution_domain: str = DISTRIBUTION_DOMAIN
    viewer_host: str = VIEWER_HOST
    bucket: str = "edgefill-lab-origin"
    edge_port: int = 0  # 0: a free port, the same on every POP address
    visibility_timeout: int = LAB_VISIBILITY_TIMEOUT
    origin_bandwidth: int | None = None  # bytes/s per connection, None = unlimited
    origin_latency: float = 0.0
    prewarm_targets: tuple[str, ...] | None = None  # None: every lab region
    encodings: tuple[str, ...] = ENCODINGS
    pollers: bool = True  # False: queues fill but nothing consumes them (CLI tests)
    backfill_deadline_scale: float = LAB_BACKFILL_DEADLINE_SCALE  # 1.0: the template's
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Seconds the POPs take to apply a CloudFront invalidation (edgefill/lab/invalidations.py).
    invalidation_delay: float = DEFAULT_DELAY_SECONDS


class Lab:
    """Start with ``start()`` (or ``with Lab() as lab``); ``stop()`` undoes everything."""

    def __init__(
        self,
        settings: LabSettings | None = None,
        handlers: Mapping[str, Callable[[dict[str, Any], Any], Any]] | None = None,
    ) -> None:
        self.settings = settings or LabSettings()
        self._handlers = dict(handlers or {})
        self._stack = contextlib.ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self.directory: Path | None = None
        self.ca: LabCA | None = None
        self.aws: LabAws | None = None
        self.origin: LabOrigin = LabOrigin(
            bandwidth=self.settings.origin_bandwidth, latency=self.settings.origin_latency
        )
        self.dns: LabDNSServer | None = None
        self.pops: dict[str, Pop] = {}
        self.pollers: dict[str, QueuePoller] = {}
        self.sweep: SweepSchedule | None = None
        self.env: dict[str, str] = {}
        self.invalidations: LabInvalidations | None = None
        self.function: ViewerFunction | None = None
        self.distribution_id = DISTRIBUTION_ID
        self.stacks: LabStacks | None = None
        self.running = False
        self._listening: list[tuple[str, int]] = []

    # ---- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Lab:
        if self.running:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.running = True
        return self

    def _start(self) -> None:
        settings = self.settings
        try:
            spec = TemplateSpec.load(settings.template or default_template())
        except TemplateError as error:
            raise LabError(f"template.yaml: {error}") from None
        self.directory = Path(tempfile.mkdtemp(prefix="edgefill-lab-"))
        self._stack.callback(shutil.rmtree, self.directory, True)
        self.ca = LabCA(self.directory / "ca")
        self.aws = LabAws(
            spec, bucket=settings.bucket, visibility_timeout=settings.visibility_timeout
        )
        self._stack.callback(self.aws.stop)
        self.aws.start()
        self._stack.callback(self.origin.stop)
        self.origin.start()
        # The distribution lives in moto; its CloudFront endpoint applies invalidations
        # to the POPs (edgefill/lab/invalidations.py).
        self.invalidations = LabInvalidations(
            self.aws.endpoint_url, lambda: list(self.pops.values()), settings.invalidation_delay
        )
        self._stack.callback(self.invalidations.stop)
        self.invalidations.start()
        self.distribution_id = create_lab_distribution(
            self.aws.client("cloudfront"),
            f"127.0.0.1:{self.origin.port}",
            [settings.viewer_host],
        )
        edge_handler = self._handler("edge", "edge_origin_request.app")
        distribution = Distribution(
            distribution_id=self.distribution_id,
            domain=settings.distribution_domain,
            viewer_hosts=(settings.distribution_domain, settings.viewer_host),
            bucket=settings.bucket,
            bucket_region=LAB_REGION,
            origin_url=self.origin.url,
            origin_custom_headers=(("x-edgefill-queue", self.aws.queue("BackfillQueue").url),),
            failover_statuses=spec.failover_statuses,
            forward_host=spec.forwards_host,
        )
        # The edge stack's CloudFront Function runs at every POP, as deployed: with no
        # routes, every viewer goes to the one region's group, the static group.
        try:
            code = render(function_code(), "", LAB_REGION, sorted(spec.failover_statuses))
        except (OSError, ValueError) as error:
            raise LabError(f"cannot render the CloudFront Function: {error}") from None
        self.function = ViewerFunction(code)
        self._stack.callback(self.function.stop)
        self.function.start()
        pop_names = [settings.distribution_domain, settings.viewer_host]
        pop_names += [self._pop_name(site.code) for site in settings.sites]
        context = self.ca.server_context(*pop_names)
        try:
            pops = start_pops(
                list(settings.sites),
                distribution,
                context,
                self.aws.client("s3"),
                edge_handler,
                self.directory / "pops",
                port=settings.edge_port,
                origin_selector=lambda viewer: self._route(viewer, distribution),
            )
        except OSError as error:
            raise LabError(f"cannot start the POPs: {error}") from None
        for pop in pops:
            self._stack.callback(pop.stop)
            self.pops[pop.site.code] = pop
        region_address = {site.region: site.address for site in settings.sites}
        self.dns = LabDNSServer(
            settings.distribution_domain,
            subnet_answers={
                cidr: region_address[region]
                for region, cidr in settings.subnets.items()
                if region in region_address
            },
            pop_answers={site.code: site.address for site in settings.sites},
            default_address=settings.sites[0].address,
        )
        self._stack.callback(self.dns.stop)
        self.dns.start()
        self._listening = [(site.address, self.edge_port) for site in settings.sites]
        self._listening += [self.dns.address, ("127.0.0.1", self.origin.port)]
        self._listening.append(self.invalidations.address)
        moto = urlsplit(self.aws.endpoint_url)
        self._listening.append((str(moto.hostname), int(moto.port or 80)))
        self._apply_env(spec)
        self.stacks = self._register_stacks()
        if settings.pollers:
            self._start_pollers(spec)

    def _register_stacks(self) -> LabStacks:
        """The lab's edge stack and its regional stack in moto, with the lab's values as
        outputs (``edgefill --stack edgefill`` then finds everything)."""
        assert self.aws is not None
        aws, settings = self.aws, self.settings
        targets = settings.prewarm_targets or tuple(
            dict.fromkeys(site.region for site in settings.sites)
        )
        dashboard = "https://console.aws.amazon.com/cloudwatch/home?region={0}#dashboards:name={1}"
        edge = {
            "DistributionId": self.distribution_id,
            "DistributionArn": f"arn:aws:cloudfront::{MOTO_ACCOUNT}:distribution/"
            f"{self.distribution_id}",
            "DistributionDomain": settings.distribution_domain,
            "ViewerHost": settings.viewer_host,
            "Regions": LAB_REGION,
            "DefaultRegion": LAB_REGION,
            "Routes": "",
            "RegionalStackName": REGIONAL_STACK,
            "EdgeFunctionVersionArn": f"arn:aws:lambda:{LAB_REGION}:{MOTO_ACCOUNT}:function:"
            "edgefill-lab-edge:1",
            "DashboardUrl": dashboard.format(LAB_REGION, "edgefill-lab-edge"),
        }
        regional = {
            "Region": LAB_REGION,
            "BucketName": settings.bucket,
            "BucketRegion": LAB_REGION,
            "BackfillQueueUrl": aws.queue("BackfillQueue").url,
            "BackfillDLQUrl": aws.queue("BackfillDLQ").url,
            "PrewarmQueueUrl": aws.queue("PrewarmQueue").url,
            "PrewarmDLQUrl": aws.queue("PrewarmDLQ").url,
            "EdgeStackName": EDGE_STACK,
            "DashboardUrl": dashboard.format(LAB_REGION, f"edgefill-lab-{LAB_REGION}"),
        }
        origin = urlsplit(self.origin.url)
        return register_stacks(
            aws.client_in,
            edge,
            [regional],
            edge_parameters={
                "Name": EDGE_STACK,
                "FullOriginDomain": str(origin.netloc),
                "FullOriginProtocol": str(origin.scheme),
            },
            regional_parameters={
                LAB_REGION: {
                    "Name": EDGE_STACK,
                    "EdgeStackName": EDGE_STACK,
                    "PrewarmTargets": ",".join(targets),
                    "PrewarmEncodings": ",".join(settings.encodings),
                }
            },
        )

    def _route(self, viewer: dict[str, Any], static: Distribution) -> Distribution:
        """The origin group the CloudFront Function builds (the lab's one region's)."""
        assert self.function is not None
        group = choose_group(
            self.function,
            viewer,
            "",
            self.settings.distribution_domain,
            self.distribution_id,
            [LAB_REGION],
        )
        if group is None or group[2] == static.failover_statuses:
            return static
        return replace(static, failover_statuses=group[2])

    def leftovers(self) -> list[str]:
        """What is still running or listening after ``stop()`` (empty when all is gone):
        lab threads, the moto child process, a listening socket on a lab address."""
        found = [f"thread {thread.name}" for thread in lab_threads()]
        if self.aws is not None and self.aws.child_running:
            found.append("moto child process")
        found += still_listening(self._listening)
        return found

    def start_sweep(self, period: float = LAB_SWEEP_SECONDS) -> SweepSchedule:
        """Run the real revalidation sweep every ``period`` seconds until the lab stops
        (``edgefill/lab/sweep_schedule.py``); it is off until a scene asks for it."""
        if self.sweep is None:
            handler = self._handler("sweep", "backfill_worker.sweep")
            self.sweep = SweepSchedule(handler, period)
            self.sweep.start()
        return self.sweep

    def stop_sweep(self) -> None:
        """Stop the sweep (a run in progress finishes first)."""
        if self.sweep is not None:
            sweep, self.sweep = self.sweep, None
            sweep.stop()

    def stop(self) -> None:
        """Stop the sweep and the pollers first (an invocation in progress ends), then
        every server."""
        with contextlib.suppress(RuntimeError):
            self.stop_sweep()
        for poller in self.pollers.values():
            with contextlib.suppress(RuntimeError):
                poller.stop()
        self.pollers = {}
        self._stack.close()
        self._restore_env()
        self.pops = {}
        self.running = False

    # ---- pieces --------------------------------------------------------------------
    def _handler(self, name: str, module: str) -> Callable[[dict[str, Any], Any], Any]:
        if name in self._handlers:
            return self._handlers[name]
        try:
            handler = importlib.import_module(module).handler
        except (ImportError, AttributeError) as error:
            raise LabError(f"cannot import {module}.handler: {error}") from None
        return handler

    def _pop_name(self, code: str) -> str:
        label, _, rest = self.settings.distribution_domain.partition(".")
        return f"{label}.{code}.{rest}"

    def _apply_env(self, spec: TemplateSpec) -> None:
        assert self.aws is not None and self.ca is not None and self.dns is not None
        assert self.invalidations is not None
        settings = self.settings
        targets = settings.prewarm_targets or tuple(
            dict.fromkeys(site.region for site in settings.sites)
        )
        env = {
            **LAB_CREDENTIALS,
            "AWS_REGION": LAB_REGION,
            "AWS_DEFAULT_REGION": LAB_REGION,
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_CLOUDFRONT": self.invalidations.url,
            "EDGEFILL_DISTRIBUTION_ID": self.distribution_id,
            "REQUESTS_CA_BUNDLE": str(self.ca.bundle_path),
            "NO_PROXY": "127.0.0.0/8,localhost",
            "no_proxy": "127.0.0.0/8,localhost",
            "EDGEFILL_BUCKET": settings.bucket,
            "EDGEFILL_ORIGIN_URL": self.origin.url,
            "EDGEFILL_PREWARM_QUEUE_URL": self.aws.queue("PrewarmQueue").url,
            "EDGEFILL_DISTRIBUTION_DOMAIN": settings.distribution_domain,
            "EDGEFILL_VIEWER_HOST": settings.viewer_host,
            "EDGEFILL_TARGETS": ",".join(targets),
            "EDGEFILL_ENCODINGS": ",".join(settings.encodings),
            "EDGEFILL_PROTOCOL": "https",
            "EDGEFILL_RESOLVER": self.dns.resolver,
            "EDGEFILL_REGION_SUBNETS": json.dumps(dict(settings.subnets)),
            "EDGEFILL_EDGE_PORT": str(self.edge_port),
            "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",  # the lab's POPs live on 127.0.0.x
            "EDGEFILL_RETRY_DELAY": str(LAB_RETRY_DELAY),
            "EDGEFILL_REQUEST_TIMEOUT": "10",
            # Video: copied playlists queue fills for their tree, as the template's default;
            # copies longer than one (scaled) invocation hand over to continuations there.
            "EDGEFILL_BACKFILL_QUEUE_URL": self.aws.queue("BackfillQueue").url,
            "EDGEFILL_EXPAND_PLAYLISTS": "true",
            # (as the template: manifests' absolute URIs on these hosts are ours)
            "EDGEFILL_VIEWER_HOSTS": f"{settings.distribution_domain},{settings.viewer_host}",
            "EDGEFILL_HANDOVER_SECONDS": str(LAB_HANDOVER_SECONDS),
            # Freshness on the lab's time scale (start_sweep).
            "EDGEFILL_SWEEP_LOOKAHEAD": str(LAB_SWEEP_SECONDS),
            "EDGEFILL_MIN_REVALIDATE": "1",
            "EDGEFILL_INVALIDATION_WINDOW": str(LAB_INVALIDATION_WINDOW),
            "POWERTOOLS_METRICS_NAMESPACE": "edgefill-lab",
            "POWERTOOLS_SERVICE_NAME": "edgefill-lab",
            # Refusals go to each queue's DLQ at once, as the template wires them; the two
            # workers share this process's environment, hence one name per worker.
            **self._dead_letter_env(spec),
            **settings.extra_env,
        }
        for name in (*env, *_AWS_ENV):
            self._saved_env.setdefault(name, os.environ.get(name))
        for name in _AWS_ENV:
            os.environ.pop(name, None)
        os.environ.update(env)
        self.env = env
        _clear_container_caches()

    def _dead_letter_env(self, spec: TemplateSpec) -> dict[str, str]:
        """EDGEFILL_BACKFILL_DLQ_URL / EDGEFILL_PREWARM_DLQ_URL: the DLQ of each worker's
        queue, from the template's redrive policies (none for a queue without one)."""
        assert self.aws is not None
        env = {}
        for variable, queue_id in (
            ("EDGEFILL_BACKFILL_DLQ_URL", "BackfillQueue"),
            ("EDGEFILL_PREWARM_DLQ_URL", "PrewarmQueue"),
        ):
            target = spec.queues[queue_id].dead_letter_target
            if target is not None:
                env[variable] = self.aws.queue(target).url
        return env

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        _clear_container_caches()

    def _start_pollers(self, spec: TemplateSpec) -> None:
        assert self.aws is not None
        settings_scale = self.settings.backfill_deadline_scale
        for role, queue_id, module in (
            ("backfill", "BackfillQueue", "backfill_worker.app"),
            ("prewarm", "PrewarmQueue", "prewarm_worker.app"),
        ):
            handler = self._handler(role, module)
            source = spec.event_source_for(queue_id)
            queue = self.aws.queue(queue_id)
            poller = QueuePoller(
                self.aws.client("sqs"),
                queue.url,
                queue.arn,
                handler,
                function_name=f"edgefill-lab-{role}",
                batch_size=source.batch_size,
                batching_window=source.batching_window,
                # Lambda scales pollers up to MaximumConcurrency; the lab runs that many.
                concurrency=source.maximum_concurrency or 2,
                function_timeout=source.function_timeout,
                report_batch_item_failures=source.report_batch_item_failures,
                deadline_scale=settings_scale if role == "backfill" else 1.0,
                visibility_timeout=queue.visibility_timeout,
            )
            poller.start()
            self.pollers[role] = poller

    # ---- using the lab -------------------------------------------------------------
    @property
    def edge_port(self) -> int:
        return next(iter(self.pops.values())).port

    def pop(self, code: str) -> Pop:
        try:
            return self.pops[code]
        except KeyError:
            raise LabError(f"no lab POP {code!r}; the lab has {', '.join(self.pops)}") from None

    def viewer_get(
        self,
        code: str,
        uri: str,
        encoding: str = "identity",
        host: str | None = None,
        timeout: float = 30.0,
    ) -> ViewerResponse:
        """GET ``uri`` from POP ``code`` over HTTPS as a viewer whose Accept-Encoding is the
        one CloudFront normalizes to ``encoding``; the TLS certificate is verified."""
        assert self.ca is not None
        pop = self.pop(code)
        host = host or self.settings.viewer_host
        context = ssl.create_default_context(cafile=str(self.ca.bundle_path))
        raw = socket.create_connection((pop.site.address, pop.port), timeout=timeout)
        connection = http.client.HTTPSConnection(host, pop.port, timeout=timeout, context=context)
        connection.sock = context.wrap_socket(raw, server_hostname=host)
        headers = {"Host": host, "User-Agent": "edgefill-lab-viewer"}
        if ACCEPT_ENCODING[encoding] is not None:
            headers["Accept-Encoding"] = str(ACCEPT_ENCODING[encoding])
        try:
            connection.request("GET", uri, headers=headers)
            response = connection.getresponse()
            try:
                body = response.read()
                complete = True
            except http.client.IncompleteRead as error:
                body, complete = error.partial, False
            return ViewerResponse(
                response.status, {k.lower(): v for k, v in response.getheaders()}, body, complete
            )
        finally:
            connection.close()

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> None:
        """Wait until both queues are empty (nothing visible, in flight or delayed) and no
        invocation is running, twice in a row ``settle`` seconds apart."""
        assert self.aws is not None
        sqs = self.aws.client("sqs")
        urls = [self.aws.queue(q).url for q in ("BackfillQueue", "PrewarmQueue")]
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the lab was still busy after {timeout:.0f}s")
            busy = any(poller.busy for poller in self.pollers.values()) or any(
                queue_depth(sqs, url) for url in urls
            )
            quiet = 0 if busy else quiet + 1
            time.sleep(settle)

    def describe(self) -> dict[str, Any]:
        """Endpoints, for ``edgefill lab up`` and the docs."""
        assert self.aws is not None and self.dns is not None and self.ca is not None
        return {
            "moto": self.aws.endpoint_url,
            "bucket": self.settings.bucket,
            "origin": self.origin.url,
            "dns": self.dns.resolver,
            "ca_bundle": str(self.ca.bundle_path),
            "edge_port": self.edge_port,
            "distribution_domain": self.settings.distribution_domain,
            "distribution_id": self.distribution_id,
            "cloudfront": self.invalidations.url if self.invalidations else "",
            "viewer_host": self.settings.viewer_host,
            "pops": [
                {"code": p.site.code, "region": p.site.region, "address": p.site.address}
                for p in self.pops.values()
            ],
            "queues": {q.logical_id: q.url for q in self.aws.queues.values()},
            "stacks": self.stacks.names() if self.stacks else [],
        }


def queue_depth(sqs: Any, url: str) -> int:
    """Messages visible, in flight and delayed on ``url``."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _clear_container_caches() -> None:
    """Forget every cached client and configuration of the handlers (a cold start)."""
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(_CACHED_PACKAGES):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


def still_listening(addresses: Iterable[tuple[str, int]]) -> list[str]:
    """The addresses where a server still accepts connections (for the same checks).
    A connection is the probe, not a bind: after the lab closed a port, any process on
    the machine may get it as the local end of an outgoing connection, and a bind would
    then report the lab's long-closed server as still there."""
    found = []
    for host, port in addresses:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            found.append(f"a server still listening on {host}:{port}")
    return found


def lab_threads() -> list[threading.Thread]:
    """Threads the lab's pieces name (for checks that nothing is left behind)."""
    prefixes = (
        "poller-",
        "pop-",
        "lab-origin",
        "lab-dns",
        "warm",
        "lab-cloudfront",
        "lab-inval",
        "lab-sweep",
    )
    return [t for t in threading.enumerate() if t.name.startswith(prefixes)]
