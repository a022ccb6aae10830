"""The lab with two regions or more: an edge stack and one regional stack per region.

    with RegionsLab() as lab:
        lab.put("/img/a.jpg", b"...")                        # on every region's origin copy
        lab.viewer_get("SIN2-P1", "/img/a.jpg", country="SG")  # Miss: ap-southeast-1's group
        lab.wait_idle()                                     # copied into that bucket, warmed

What it holds, named as the regions contract names the deployed resources:

- one moto server (a child process) holding, per region R, the bucket
  ``<Name>-<account>-<R>`` and the queues ``<Name>-backfill``, ``<Name>-backfill-dlq``,
  ``<Name>-prewarm``, ``<Name>-prewarm-dlq`` created in R (moto keeps each region's queues
  apart by the region a request is signed for); a region declared ``bucket=False`` stands
  for a regional stack whose bucket is gone;
- per region, the full origin as that region reaches it (a ``LabOrigin`` holding the same
  objects, so each region's origin fetches are counted apart), and that region's workers
  (backfill, prewarm, and on request the sweep) in their own process
  (``edgefill/lab/region_workers.py``), configured as its regional stack configures them;
- the distribution's origins ``bucket-<R>`` and ``full-<R>``, the latter with the custom
  headers ``x-edgefill-queue`` (R's backfill queue URL, in AWS's form: the edge sends
  through the region that URL names) and ``x-edgefill-region``;
- POPs that run the distribution's **CloudFront Function**, the deployed file
  ``edge_viewer_request/select_origin.js`` rendered by ``shared.edge_routing.render``, in
  Node.js (``edgefill/lab/viewer_function.py``), fed the viewer-request event CloudFront
  builds with ``cloudfront-viewer-country``; the origin group it returns decides the bucket
  a miss tries first and the origin copy it fails over to, where the real origin-request
  function then runs as in the single-region lab;
- viewers with countries: a viewer of country C connects from C's loopback address
  (``COUNTRY_ADDRESSES``), which the lab's geolocation maps back to C, as CloudFront maps
  a viewer's IP address; each region's workers connect from their region's address.

The default ``Lab`` stays single-region: the existing scenes check one bucket's story, and
the CLI tests drive it. This lab runs beside it (other addresses, its own moto), and the
demo's "regions" scene runs in it.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import importlib.util
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import boto3
import requests
from botocore.config import Config

from edgefill.lab.aws import LAB_CREDENTIALS, LAB_VISIBILITY_TIMEOUT, MotoProcess
from edgefill.lab.children import end_child
from edgefill.lab.dns import LabDNSServer
from edgefill.lab.invalidations import create_lab_distribution
from edgefill.lab.lab import (
    DISTRIBUTION_DOMAIN,
    LAB_BACKFILL_DEADLINE_SCALE,
    LAB_HANDOVER_SECONDS,
    LAB_INVALIDATION_WINDOW,
    LAB_RETRY_DELAY,
    LAB_SWEEP_SECONDS,
    VIEWER_HOST,
    LabError,
    ViewerResponse,
    _clear_container_caches,
    default_template,
    lab_threads,
    queue_depth,
    still_listening,
)
from edgefill.lab.origin import LabOrigin
from edgefill.lab.pop import Distribution, Pop, PopSite, start_pops
from edgefill.lab.stacks import LabStacks, register_stacks
from edgefill.lab.template_spec import TemplateError, TemplateSpec
from edgefill.lab.tls import LabCA
from edgefill.lab.viewer_function import ViewerFunction, choose_group
from shared.edge_routing import parse_routes, render
from shared.messages import ACCEPT_ENCODING, ENCODINGS

# moto's account: bucket names and queue URLs carry it, as the deployed ones carry yours.
LAB_ACCOUNT: Final = "123456789012"
# The edge's Lambda@Edge replicas run in the lab's process; their region is this one.
EDGE_REGION: Final = "us-east-1"
FUNCTION_FILE: Final = Path("edge_viewer_request") / "select_origin.js"
FAILOVER_CODES: Final = (403, 404, 500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """One regional stack: its region, the viewer countries routed to it, whether its
    bucket exists (False: a regional stack whose bucket was deleted)."""

    region: str
    countries: tuple[str, ...]
    bucket: bool = True


DEFAULT_REGIONS: Final = (
    RegionSpec("ap-southeast-1", ("SG", "MY")),
    RegionSpec("eu-central-1", ("DE", "FR")),
)
# POPs on their own loopback addresses (the single-region lab's are 127.0.0.11-14).
DEFAULT_REGION_SITES: Final = (
    PopSite("SIN2-P1", "ap-southeast-1", "127.0.0.21"),
    PopSite("FRA56-P1", "eu-central-1", "127.0.0.22"),
    PopSite("IAD89-P3", "us-east-1", "127.0.0.23"),
)
DEFAULT_REGION_SUBNETS: Final = {
    "ap-southeast-1": "192.0.2.128/26",
    "eu-central-1": "192.0.2.192/26",
    "us-east-1": "198.51.100.0/24",
}
# The lab's IP geolocation: a viewer of a country connects from its address (127.0.100+
# is free on every Linux loopback). US is no region's country: the default region's.
COUNTRY_ADDRESSES: Final = {
    "SG": "127.0.100.1",
    "MY": "127.0.101.1",
    "DE": "127.0.102.1",
    "FR": "127.0.103.1",
    "US": "127.0.104.1",
    "JP": "127.0.105.1",
}
# Region i's workers connect from 127.0.(110+i).1, geolocated to the region's first country.
_WORKER_NET: Final = 110


def bucket_name(name: str, region: str, account: str = LAB_ACCOUNT) -> str:
    """The regional bucket's name, as the regional stack creates it."""
    return f"{name}-{account}-{region}"


def queue_url(name: str, region: str, queue: str, account: str = LAB_ACCOUNT) -> str:
    """A queue's URL in AWS's form (``!Ref`` of the queue in the regional stack)."""
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}-{queue}"


def routes_text(regions: tuple[RegionSpec, ...]) -> str:
    """The ``Routes`` string of the edge stack: ``region:CC,CC;region:CC``."""
    return ";".join(f"{r.region}:{','.join(r.countries)}" for r in regions if r.countries)


@dataclass
class RegionsLabSettings:
    """What the regions lab looks like; the defaults are the demo's scene's."""

    regions: tuple[RegionSpec, ...] = DEFAULT_REGIONS
    default_region: str = ""  # "": the first region (DefaultRegion's default)
    sites: tuple[PopSite, ...] = DEFAULT_REGION_SITES
    subnets: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_REGION_SUBNETS))
    name: str = "edgefill"
    distribution_domain: str = DISTRIBUTION_DOMAIN
    viewer_host: str = VIEWER_HOST
    template: Path | None = None  # template.yaml; the regional one is found beside it
    function_code: str | None = None  # rendered code instead of the checkout's file
    pollers: bool = True  # False: queues fill, nothing consumes them (routing tests)
    encodings: tuple[str, ...] = ENCODINGS
    visibility_timeout: int = LAB_VISIBILITY_TIMEOUT
    log_path: Path | None = None  # the workers' log lines; None: a file in the lab's directory


@dataclass
class LabRegion:
    """One region of a running regions lab."""

    spec: RegionSpec
    bucket: str
    origin: LabOrigin
    queues: dict[str, str]  # backfill, backfill-dlq, prewarm, prewarm-dlq -> AWS-form URL
    source_address: str
    workers: RegionWorkers | None = None

    @property
    def region(self) -> str:
        return self.spec.region

    def copies(self, path: str) -> int:
        """Body GETs of ``path`` at this region's origin made by its workers (a POP's
        failover carries ``X-Amz-Cf-Id``; a worker's fetch does not)."""
        return sum(
            1
            for seen in self.origin.counts(path).requests
            if seen.method == "GET" and seen.status in (200, 206) and not seen.header("x-amz-cf-id")
        )

    def failovers(self, path: str) -> int:
        """Requests for ``path`` that POPs failed over to this region's origin with."""
        return sum(1 for seen in self.origin.counts(path).requests if seen.header("x-amz-cf-id"))


class RegionWorkers:
    """One region's worker process (``edgefill/lab/region_workers.py``)."""

    def __init__(self, config: dict[str, Any], log: IO[str]) -> None:
        self._config = config
        self._log = log
        self._child: subprocess.Popen[str] | None = None

    def start(self) -> RegionWorkers:
        child = subprocess.Popen(
            [sys.executable, "-m", "edgefill.lab.region_workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches the lab, which stops the workers first
        )
        self._child = child
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(self._config) + "\n")
        child.stdin.flush()
        if child.stdout.readline().strip() != "ready":
            self.stop()
            region = self._config["env"]["AWS_REGION"]
            raise LabError(f"the {region} workers did not start; see {self._log.name}")
        return self

    def command(self, line: str) -> str:
        child = self._child
        region = self._config["env"]["AWS_REGION"]
        if child is None or child.stdin is None or child.stdout is None or child.poll() is not None:
            raise LabError(f"the {region} workers are not running; see {self._log.name}")
        try:
            child.stdin.write(line + "\n")
            child.stdin.flush()
        except OSError as error:
            raise LabError(f"the {region} workers stopped listening: {error}") from None
        answer = child.stdout.readline().strip()
        if not answer:
            raise LabError(f"the {region} workers exited; see {self._log.name}")
        return answer

    @property
    def busy(self) -> int:
        answer = self.command("busy")
        return int(answer) if answer.isdigit() else 0

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.poll() is None

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        end_child(child, 30)
        if child.stdout is not None:
            child.stdout.close()


class RegionsLab:
    """Start with ``start()`` (or ``with RegionsLab() as lab``); ``stop()`` undoes it all."""

    def __init__(self, settings: RegionsLabSettings | None = None) -> None:
        self.settings = settings or RegionsLabSettings()
        names = [r.region for r in self.settings.regions]
        if not names or len(set(names)) != len(names):
            raise LabError(f"the regions lab needs distinct regions, got {names}")
        self.default_region = self.settings.default_region or names[0]
        if self.default_region not in names:
            raise LabError(f"default region {self.default_region!r} is not one of {names}")
        try:
            parse_routes(routes_text(self.settings.regions), names)
        except ValueError as error:
            raise LabError(f"the lab's routes: {error}") from None
        self.regions: dict[str, LabRegion] = {}
        self.pops: dict[str, Pop] = {}
        self.function: ViewerFunction | None = None
        self.endpoint_url = ""
        self.distribution_id = ""
        self.ca: LabCA | None = None
        self.dns: LabDNSServer | None = None
        self.directory: Path | None = None
        self.log_path: Path | None = None
        self.env: dict[str, str] = {}  # what this process's origin-request function sees
        self.stacks: LabStacks | None = None
        self.running = False
        self._moto: MotoProcess | None = None
        self._stack = contextlib.ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self._groups: dict[tuple[str, str, frozenset[int]], Distribution] = {}
        self._geo = {address: country for country, address in COUNTRY_ADDRESSES.items()}
        self._listening: list[tuple[str, int]] = []
        self._threads_before: set[threading.Thread] = set()
        self._spec: TemplateSpec | None = None
        self._forward_host = False
        self._failover: frozenset[int] = frozenset(FAILOVER_CODES)

    # ---- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> RegionsLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> RegionsLab:
        if self.running:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.running = True
        return self

    def stop(self) -> None:
        """Stop every region's workers first (an invocation in progress ends), then the
        servers, the function and moto."""
        for lab_region in self.regions.values():
            if lab_region.workers is not None:
                lab_region.workers.stop()
                lab_region.workers = None
        self._stack.close()
        self._restore_env()
        self.pops = {}
        self.running = False

    def _start(self) -> None:
        settings = self.settings
        # Another lab may run in this process (the e2e tests' single-region one): only the
        # threads started from here on are this lab's.
        self._threads_before = set(lab_threads())
        template = settings.template or default_template()
        self._spec = _regional_spec(template)
        edge_spec = _load_spec(template)
        self._forward_host = edge_spec.forwards_host
        self._failover = edge_spec.failover_statuses
        self.directory = Path(tempfile.mkdtemp(prefix="edgefill-regions-lab-"))
        self._stack.callback(shutil.rmtree, self.directory, True)
        self.ca = LabCA(self.directory / "ca")
        self._moto = MotoProcess()
        self._stack.callback(self._moto.stop)
        self.endpoint_url = f"http://127.0.0.1:{self._moto.start()}"
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self._apply_env()
        for index, spec in enumerate(settings.regions):
            origin = LabOrigin()
            self._stack.callback(origin.stop)
            origin.start()
            lab_region = LabRegion(
                spec=spec,
                bucket=bucket_name(settings.name, spec.region),
                origin=origin,
                queues={
                    q: queue_url(settings.name, spec.region, q)
                    for q in ("backfill", "backfill-dlq", "prewarm", "prewarm-dlq")
                },
                source_address=f"127.0.{_WORKER_NET + index}.1",
            )
            self._create_regional_resources(lab_region)
            self.regions[spec.region] = lab_region
            self._geo[lab_region.source_address] = spec.countries[0] if spec.countries else ""
        first = self.regions[settings.regions[0].region]
        self.distribution_id = create_lab_distribution(
            self.client("cloudfront"), f"127.0.0.1:{first.origin.port}", [settings.viewer_host]
        )
        self.function = ViewerFunction(settings.function_code or self.rendered_function())
        self._stack.callback(self.function.stop)
        self.function.start()
        self._start_pops()
        self._start_dns()
        self.stacks = self._register_stacks()
        if settings.pollers:
            log = self._worker_log()
            for lab_region in self.regions.values():
                lab_region.workers = RegionWorkers(self._worker_config(lab_region), log).start()

    def _register_stacks(self) -> LabStacks:
        """The edge stack (us-east-1) and each region's ``<Name>-regional`` stack in moto,
        their outputs by the contract's names (``edgefill/lab/stacks.py``)."""
        settings = self.settings
        name = settings.name
        dashboard = "https://console.aws.amazon.com/cloudwatch/home?region={0}#dashboards:name={1}"
        edge = {
            "DistributionId": self.distribution_id,
            "DistributionArn": f"arn:aws:cloudfront::{LAB_ACCOUNT}:distribution/"
            f"{self.distribution_id}",
            "DistributionDomain": settings.distribution_domain,
            "ViewerHost": settings.viewer_host,
            "Regions": ",".join(self.regions),
            "DefaultRegion": self.default_region,
            "Routes": routes_text(settings.regions),
            "RegionalStackName": f"{name}-regional",
            "EdgeFunctionVersionArn": f"arn:aws:lambda:{EDGE_REGION}:{LAB_ACCOUNT}:function:"
            f"{name}-edge:1",
            "DashboardUrl": dashboard.format(EDGE_REGION, f"{name}-edge"),
        }
        regional = [
            {
                "Region": r.region,
                "BucketName": r.bucket,
                "BucketRegion": r.region,
                "BackfillQueueUrl": r.queues["backfill"],
                "BackfillDLQUrl": r.queues["backfill-dlq"],
                "PrewarmQueueUrl": r.queues["prewarm"],
                "PrewarmDLQUrl": r.queues["prewarm-dlq"],
                "EdgeStackName": name,
                "DashboardUrl": dashboard.format(r.region, f"{name}-{r.region}"),
            }
            for r in self.regions.values()
        ]
        try:
            return register_stacks(
                lambda region: self.client("cloudformation", region), edge, regional
            )
        except ValueError as error:
            raise LabError(f"cannot register the lab's stacks: {error}") from None

    def _worker_log(self) -> IO[str]:
        """Where the workers' log lines go: ``log_path``, else this process's stderr when it
        is a file (the demo's handler log, or a terminal with ``--verbose``), else a file
        in the lab's directory."""
        assert self.directory is not None
        if self.settings.log_path is None:
            try:
                sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):
                pass
            else:
                return sys.stderr
        self.log_path = self.settings.log_path or self.directory / "workers.log"
        return self._stack.enter_context(self.log_path.open("a", encoding="utf-8"))

    def _create_regional_resources(self, lab_region: LabRegion) -> None:
        """The regional stack's bucket and queues, in its region (DLQs first)."""
        assert self._spec is not None
        region = lab_region.region
        if lab_region.spec.bucket:
            s3 = self.client("s3", region)
            if region == "us-east-1":
                s3.create_bucket(Bucket=lab_region.bucket)
            else:
                s3.create_bucket(
                    Bucket=lab_region.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},
                )
        sqs = self.client("sqs", region)
        for logical_id, queue, dlq in (
            ("BackfillDLQ", "backfill-dlq", None),
            ("PrewarmDLQ", "prewarm-dlq", None),
            ("BackfillQueue", "backfill", "backfill-dlq"),
            ("PrewarmQueue", "prewarm", "prewarm-dlq"),
        ):
            queue_spec = self._spec.queues[logical_id]
            attributes = dict(queue_spec.attributes)
            attributes["VisibilityTimeout"] = str(self._lab_visibility(logical_id))
            if dlq is not None and queue_spec.max_receive_count is not None:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": _queue_arn(region, f"{self.settings.name}-{dlq}"),
                        "maxReceiveCount": queue_spec.max_receive_count,
                    }
                )
            sqs.create_queue(QueueName=f"{self.settings.name}-{queue}", Attributes=attributes)

    def _lab_visibility(self, logical_id: str) -> int:
        """A queue's visibility timeout in the lab: the template's, scaled down."""
        assert self._spec is not None
        template = self._spec.queues[logical_id].visibility_timeout
        return min(template, self.settings.visibility_timeout)

    def rendered_function(self) -> str:
        """The checkout's CloudFront Function rendered for this lab's routes, as the edge
        stack's ``Fn::Sub`` renders it (``shared.edge_routing.render``)."""
        path = (self.settings.template or default_template()).parent / FUNCTION_FILE
        try:
            code = path.read_text(encoding="utf-8")
        except OSError as error:
            raise LabError(f"cannot read the CloudFront Function {path}: {error}") from None
        codes = sorted(self._failover_codes())
        try:
            return render(code, routes_text(self.settings.regions), self.default_region, codes)
        except ValueError as error:
            raise LabError(f"the lab's routes: {error}") from None

    def _failover_codes(self) -> frozenset[int]:
        """The static origin group's failover codes (the edge template's)."""
        return self._failover

    def _start_pops(self) -> None:
        assert self.ca is not None and self.directory is not None
        settings = self.settings
        static = self._group(
            self.default_region_static(), self.default_region_static(), self._failover_codes()
        )
        label, _, rest = settings.distribution_domain.partition(".")
        names = [settings.distribution_domain, settings.viewer_host]
        names += [f"{label}.{site.code}.{rest}" for site in settings.sites]
        try:
            pops = start_pops(
                list(settings.sites),
                static,
                self.ca.server_context(*names),
                self.client("s3"),
                _edge_container(None),
                self.directory / "pops",
                origin_selector=self._select,
                edge_handler_for=_edge_container,
            )
        except OSError as error:
            raise LabError(f"cannot start the POPs: {error}") from None
        for pop in pops:
            self._stack.callback(pop.stop)
            self.pops[pop.site.code] = pop
        self._listening += [(site.address, pops[0].port) for site in settings.sites]

    def default_region_static(self) -> str:
        """The region of the cache behaviour's static origin group (``group-<Region1>``)."""
        return self.settings.regions[0].region

    def _start_dns(self) -> None:
        settings = self.settings
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
        self._listening.append(self.dns.address)

    # ---- routing: the CloudFront Function and the origins it names ------------------
    def _select(self, viewer: dict[str, Any]) -> Distribution:
        """The origin group the CloudFront Function picks for this viewer request."""
        assert self.function is not None
        group = choose_group(
            self.function,
            viewer,
            self._geo.get(viewer["client_ip"], ""),
            self.settings.distribution_domain,
            self.distribution_id,
            list(self.regions),
        )
        if group is None:  # the function left the static origin group in place
            static = self.default_region_static()
            return self._group(static, static, self._failover_codes())
        return self._group(*group)

    def _group(self, bucket_region: str, full_region: str, codes: frozenset[int]) -> Distribution:
        key = (bucket_region, full_region, codes)
        if key not in self._groups:
            bucket = self.regions[bucket_region]
            full = self.regions[full_region]
            self._groups[key] = Distribution(
                distribution_id=self.distribution_id,
                domain=self.settings.distribution_domain,
                viewer_hosts=(self.settings.distribution_domain, self.settings.viewer_host),
                bucket=bucket.bucket,
                bucket_region=bucket_region,
                origin_url=full.origin.url,
                origin_custom_headers=(
                    ("x-edgefill-queue", full.queues["backfill"]),
                    ("x-edgefill-region", full_region),
                ),
                failover_statuses=codes,
                forward_host=self._forward_host,
            )
        return self._groups[key]

    # ---- the environment -----------------------------------------------------------
    def _apply_env(self) -> None:
        """What the origin-request function (in this process) needs: moto, credentials."""
        env = {
            **LAB_CREDENTIALS,
            "AWS_REGION": EDGE_REGION,
            "AWS_DEFAULT_REGION": EDGE_REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "NO_PROXY": "127.0.0.0/8,localhost",
            "no_proxy": "127.0.0.0/8,localhost",
        }
        for name in (*env, "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            self._saved_env.setdefault(name, os.environ.get(name))
        for name in ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            os.environ.pop(name, None)
        os.environ.update(env)
        self.env = env
        _clear_container_caches()

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        _clear_container_caches()

    def worker_env(self, lab_region: LabRegion) -> dict[str, str]:
        """Region R's workers' environment, as its regional stack sets it."""
        assert self.ca is not None and self.dns is not None
        settings = self.settings
        region = lab_region.region
        queues = lab_region.queues
        return {
            **LAB_CREDENTIALS,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "REQUESTS_CA_BUNDLE": str(self.ca.bundle_path),
            "NO_PROXY": "127.0.0.0/8,localhost",
            "no_proxy": "127.0.0.0/8,localhost",
            "EDGEFILL_DISTRIBUTION_ID": self.distribution_id,
            "EDGEFILL_BUCKET": lab_region.bucket,
            "EDGEFILL_BUCKET_REGION": region,
            "EDGEFILL_ORIGIN_URL": lab_region.origin.url,
            "EDGEFILL_BACKFILL_QUEUE_URL": queues["backfill"],
            "EDGEFILL_BACKFILL_DLQ_URL": queues["backfill-dlq"],
            "EDGEFILL_PREWARM_QUEUE_URL": queues["prewarm"],
            "EDGEFILL_PREWARM_DLQ_URL": queues["prewarm-dlq"],
            "EDGEFILL_DISTRIBUTION_DOMAIN": settings.distribution_domain,
            "EDGEFILL_VIEWER_HOST": settings.viewer_host,
            "EDGEFILL_VIEWER_HOSTS": f"{settings.distribution_domain},{settings.viewer_host}",
            # A fill in R warms R's edges (the contract's default for a regional stack).
            "EDGEFILL_TARGETS": region,
            "EDGEFILL_ENCODINGS": ",".join(settings.encodings),
            "EDGEFILL_PROTOCOL": "https",
            "EDGEFILL_RESOLVER": self.dns.resolver,
            "EDGEFILL_REGION_SUBNETS": json.dumps(dict(settings.subnets)),
            "EDGEFILL_EDGE_PORT": str(next(iter(self.pops.values())).port),
            "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",  # the lab's POPs live on 127.0.0.x
            "EDGEFILL_RETRY_DELAY": str(LAB_RETRY_DELAY),
            "EDGEFILL_REQUEST_TIMEOUT": "10",
            "EDGEFILL_EXPAND_PLAYLISTS": "true",
            "EDGEFILL_HANDOVER_SECONDS": str(LAB_HANDOVER_SECONDS),
            "EDGEFILL_SWEEP_LOOKAHEAD": str(LAB_SWEEP_SECONDS),
            "EDGEFILL_MIN_REVALIDATE": "1",
            "EDGEFILL_INVALIDATION_WINDOW": str(LAB_INVALIDATION_WINDOW),
            "POWERTOOLS_METRICS_NAMESPACE": "edgefill-lab",
            "POWERTOOLS_SERVICE_NAME": f"edgefill-lab-{region}",
        }

    def _worker_config(self, lab_region: LabRegion) -> dict[str, Any]:
        assert self._spec is not None
        pollers = []
        for role, queue_id, module in (
            ("backfill", "BackfillQueue", "backfill_worker.app"),
            ("prewarm", "PrewarmQueue", "prewarm_worker.app"),
        ):
            source = self._spec.event_source_for(queue_id)
            name = f"{self.settings.name}-{role}"
            pollers.append(
                {
                    "module": module,
                    "queue_url": lab_region.queues[role],
                    "queue_arn": _queue_arn(lab_region.region, name),
                    "function_name": f"{name}-{lab_region.region}",
                    "batch_size": source.batch_size,
                    "batching_window": source.batching_window,
                    "concurrency": source.maximum_concurrency or 2,
                    "function_timeout": source.function_timeout,
                    "report_batch_item_failures": source.report_batch_item_failures,
                    "deadline_scale": LAB_BACKFILL_DEADLINE_SCALE if role == "backfill" else 1.0,
                    "visibility_timeout": self._lab_visibility(queue_id),
                }
            )
        return {
            "env": self.worker_env(lab_region),
            "source_address": lab_region.source_address,
            "pollers": pollers,
        }

    # ---- using the lab -------------------------------------------------------------
    def client(self, service: str, region: str = EDGE_REGION) -> Any:
        """A boto3 client for ``service`` in ``region``, talking to the lab's moto."""
        if not self.endpoint_url:
            raise LabError("the regions lab's moto server is not running")
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=LAB_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LAB_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=LAB_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=Config(max_pool_connections=32, retries={"max_attempts": 3}),
        )

    def region(self, name: str) -> LabRegion:
        try:
            return self.regions[name]
        except KeyError:
            known = ", ".join(self.regions)
            raise LabError(f"no lab region {name!r}; the lab has {known}") from None

    def put(self, path: str, body: bytes, **kwargs: Any) -> None:
        """Put ``path`` on every region's copy of the full origin."""
        for lab_region in self.regions.values():
            lab_region.origin.put(path, body, **kwargs)

    def bucket_keys(self, region: str) -> set[str]:
        """Every key in ``region``'s bucket but the workers' own (``_edgefill/``)."""
        lab_region = self.region(region)
        s3 = self.client("s3", region)
        keys: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lab_region.bucket):
            keys.update(item["Key"] for item in page.get("Contents", []))
        return {key for key in keys if not key.startswith("_edgefill/")}

    def queue_messages(
        self, region: str, queue: str = "backfill", wait_seconds: int = 0
    ) -> list[dict[str, Any]]:
        """Receive (and leave for their visibility timeout) the bodies on a region's queue."""
        sqs = self.client("sqs", region)
        answer = sqs.receive_message(
            QueueUrl=self.region(region).queues[queue],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
        )
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def use_function(self, code: str) -> None:
        """Replace the running CloudFront Function with ``code`` (already rendered), as a
        new function version published to the distribution."""
        old, self.function = self.function, ViewerFunction(code).start()
        self._stack.callback(self.function.stop)
        if old is not None:
            old.stop()

    def viewer_get(
        self,
        code: str,
        uri: str,
        country: str | None = None,
        encoding: str = "identity",
        timeout: float = 30.0,
    ) -> ViewerResponse:
        """GET ``uri`` from POP ``code`` as a viewer in ``country`` (its connection leaves
        from the country's address; None: from 127.0.0.1, a country the lab cannot tell)."""
        source = None
        if country is not None:
            if country not in COUNTRY_ADDRESSES:
                known = ", ".join(COUNTRY_ADDRESSES)
                raise LabError(f"the lab geolocates {known}, not {country!r}")
            source = (COUNTRY_ADDRESSES[country], 0)
        try:
            pop = self.pops[code]
        except KeyError:
            raise LabError(f"no lab POP {code!r}; the lab has {', '.join(self.pops)}") from None
        host = self.settings.viewer_host
        assert self.ca is not None
        context = ssl.create_default_context(cafile=str(self.ca.bundle_path))
        raw = socket.create_connection(
            (pop.site.address, pop.port), timeout=timeout, source_address=source
        )
        connection = http.client.HTTPSConnection(host, pop.port, timeout=timeout, context=context)
        connection.sock = context.wrap_socket(raw, server_hostname=host)
        headers = {"Host": host, "User-Agent": "edgefill-lab-viewer"}
        if ACCEPT_ENCODING[encoding] is not None:
            headers["Accept-Encoding"] = str(ACCEPT_ENCODING[encoding])
        try:
            connection.request("GET", uri, headers=headers)
            response = connection.getresponse()
            try:
                body, complete = response.read(), True
            except http.client.IncompleteRead as error:
                body, complete = error.partial, False
            return ViewerResponse(
                response.status, {k.lower(): v for k, v in response.getheaders()}, body, complete
            )
        finally:
            connection.close()

    def start_sweep(self, period: float = LAB_SWEEP_SECONDS) -> None:
        """Every region's revalidation sweep, every ``period`` seconds, until ``stop_sweep``."""
        for lab_region in self.regions.values():
            if lab_region.workers is not None:
                lab_region.workers.command(f"sweep {period}")

    def stop_sweep(self) -> None:
        for lab_region in self.regions.values():
            if lab_region.workers is not None:
                lab_region.workers.command("nosweep")

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> None:
        """Wait until every region's queues are empty and no invocation runs, twice in a
        row ``settle`` seconds apart."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the regions lab was still busy after {timeout:.0f}s")
            busy = False
            for lab_region in self.regions.values():
                sqs = self.client("sqs", lab_region.region)
                urls = [lab_region.queues["backfill"], lab_region.queues["prewarm"]]
                workers = lab_region.workers
                if any(queue_depth(sqs, url) for url in urls) or (workers and workers.busy):
                    busy = True
            quiet = 0 if busy else quiet + 1
            time.sleep(settle)

    def leftovers(self) -> list[str]:
        """What is still running or listening after ``stop()`` (empty when all is gone)."""
        found = [
            f"thread {thread.name}"
            for thread in lab_threads()
            if thread not in self._threads_before
        ]
        if self._moto is not None and self._moto.running:
            found.append("moto child process")
        found += [
            f"{r.region} workers" for r in self.regions.values() if r.workers and r.workers.running
        ]
        return found + still_listening(self._listening)


def _edge_container(site: PopSite | None) -> Any:
    """A fresh Lambda@Edge container for one POP: ``edge_origin_request.app`` loaded anew,
    so its memory of recently queued objects is its own. Each POP's origin requests run
    at its own regional edge cache in AWS, never in one container for every POP."""
    spec = importlib.util.find_spec("edge_origin_request.app")
    if spec is None or spec.loader is None:
        raise LabError("cannot import edge_origin_request.app")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def _queue_arn(region: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{LAB_ACCOUNT}:{name}"


def _load_spec(path: Path) -> TemplateSpec:
    try:
        return TemplateSpec.load(path)
    except TemplateError as error:
        raise LabError(f"{path.name}: {error}") from None


def _regional_spec(template: Path) -> TemplateSpec:
    """The queues and event sources of the regional stack (``regional.yaml`` beside
    ``template.yaml``; a checkout from before the split keeps them in ``template.yaml``)."""
    regional = template.parent / "regional.yaml"
    return _load_spec(regional if regional.is_file() else template)
