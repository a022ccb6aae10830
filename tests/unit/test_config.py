"""Worker configuration: validated once, every error names its variable."""

from __future__ import annotations

import ipaddress

import pytest

from shared.config import (
    DEFAULT_MAX_OBJECT_BYTES,
    BackfillConfig,
    ConfigError,
    PrewarmConfig,
)
from shared.messages import ENCODINGS

BACKFILL_ENV = {
    "EDGEFILL_BUCKET": "edgefill-origin-tokyo",
    "EDGEFILL_ORIGIN_URL": "https://origin.example.com",
}
PREWARM_ENV = {"EDGEFILL_DISTRIBUTION_DOMAIN": "d111111abcdef8.cloudfront.net"}


def backfill_error(**changes: str) -> ConfigError:
    env = {**BACKFILL_ENV, **changes}
    with pytest.raises(ConfigError) as caught:
        BackfillConfig.from_env({k: v for k, v in env.items() if v is not None})
    return caught.value


def prewarm_error(**changes: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        PrewarmConfig.from_env({**PREWARM_ENV, **changes})
    return caught.value


# ---------------------------------------------------------------- backfill


def test_backfill_defaults_from_the_two_required_variables() -> None:
    config = BackfillConfig.from_env(BACKFILL_ENV)
    assert config == BackfillConfig(
        bucket="edgefill-origin-tokyo", origin_url="https://origin.example.com"
    )
    assert config.max_object_bytes == DEFAULT_MAX_OBJECT_BYTES
    assert (config.query, config.key_prefix, config.bucket_region) == ("ignore", "", None)
    assert config.origin_host == "origin.example.com"


def test_backfill_reads_every_variable() -> None:
    # Given every documented variable, with stray spaces and a trailing slash
    env = {
        "EDGEFILL_BUCKET": "edgefill-origin-tokyo",
        "EDGEFILL_BUCKET_REGION": " ap-northeast-1 ",
        "EDGEFILL_ORIGIN_URL": "http://origin.example.com:8080/assets/",
        "EDGEFILL_PREWARM_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/prewarm",
        "EDGEFILL_KEY_PREFIX": "/media/",
        "EDGEFILL_MAX_OBJECT_BYTES": "1048576",
        "EDGEFILL_INCLUDE": "/img/*, *.css ,",
        "EDGEFILL_EXCLUDE": "/img/private/*",
        "EDGEFILL_QUERY": "forward",
    }
    # When read
    config = BackfillConfig.from_env(env)
    # Then each is normalized into the typed model
    assert config.bucket_region == "ap-northeast-1"
    assert config.origin_url == "http://origin.example.com:8080/assets"
    assert config.origin_host == "origin.example.com:8080"
    assert config.prewarm_queue_url == env["EDGEFILL_PREWARM_QUEUE_URL"]
    assert config.key_prefix == "media/"
    assert config.max_object_bytes == 1048576
    assert config.include == ("/img/*", "*.css")
    assert config.exclude == ("/img/private/*",)
    assert config.query == "forward"


def test_the_invalidation_window_defaults_to_a_minute() -> None:
    env = {"EDGEFILL_BUCKET": "b-1", "EDGEFILL_ORIGIN_URL": "https://o.example"}
    assert BackfillConfig.from_env(env).invalidation_window == 60
    env["EDGEFILL_INVALIDATION_WINDOW"] = "5"
    assert BackfillConfig.from_env(env).invalidation_window == 5


def test_include_and_exclude_globs_with_exclude_winning() -> None:
    config = BackfillConfig(
        bucket="b-1",
        origin_url="https://o.example",
        include=("/img/*", "*.css"),
        exclude=("/img/private/*",),
    )
    assert config.accepts("/img/a b.jpg")
    assert config.accepts("/site/main.css")
    assert not config.accepts("/img/private/a.jpg")
    assert not config.accepts("/video/a.mp4")
    assert BackfillConfig(bucket="b-1", origin_url="https://o.example").accepts("/anything")


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        pytest.param({"EDGEFILL_BUCKET": None}, "EDGEFILL_BUCKET", id="bucket-missing"),
        pytest.param({"EDGEFILL_BUCKET": "  "}, "EDGEFILL_BUCKET", id="bucket-blank"),
        pytest.param({"EDGEFILL_BUCKET": "My_Bucket"}, "EDGEFILL_BUCKET", id="bucket-invalid"),
        pytest.param({"EDGEFILL_BUCKET": "ab"}, "EDGEFILL_BUCKET", id="bucket-too-short"),
        pytest.param({"EDGEFILL_BUCKET": "s3://bucket"}, "EDGEFILL_BUCKET", id="bucket-uri"),
        pytest.param(
            {"EDGEFILL_BUCKET_REGION": "Tokyo"}, "EDGEFILL_BUCKET_REGION", id="region-invalid"
        ),
        pytest.param({"EDGEFILL_ORIGIN_URL": None}, "EDGEFILL_ORIGIN_URL", id="origin-missing"),
        pytest.param(
            {"EDGEFILL_ORIGIN_URL": "origin.example.com"}, "EDGEFILL_ORIGIN_URL", id="no-scheme"
        ),
        pytest.param(
            {"EDGEFILL_ORIGIN_URL": "ftp://origin.example.com"}, "EDGEFILL_ORIGIN_URL", id="ftp"
        ),
        pytest.param({"EDGEFILL_ORIGIN_URL": "https://"}, "EDGEFILL_ORIGIN_URL", id="no-host"),
        pytest.param(
            {"EDGEFILL_ORIGIN_URL": "https://o.example/?token=1"},
            "EDGEFILL_ORIGIN_URL",
            id="origin-query",
        ),
        pytest.param(
            {"EDGEFILL_ORIGIN_URL": "https://o.example/#x"}, "EDGEFILL_ORIGIN_URL", id="fragment"
        ),
        pytest.param(
            {"EDGEFILL_ORIGIN_URL": "https://user:pw@o.example"},
            "EDGEFILL_ORIGIN_URL",
            id="credentials",
        ),
        pytest.param(
            {"EDGEFILL_ORIGIN_URL": "https://o.example:99999"}, "EDGEFILL_ORIGIN_URL", id="port"
        ),
        pytest.param(
            {"EDGEFILL_PREWARM_QUEUE_URL": "prewarm"},
            "EDGEFILL_PREWARM_QUEUE_URL",
            id="queue-not-url",
        ),
        pytest.param(
            {"EDGEFILL_KEY_PREFIX": "a/../b"}, "EDGEFILL_KEY_PREFIX", id="prefix-traversal"
        ),
        pytest.param(
            {"EDGEFILL_KEY_PREFIX": "_edgefill/x"}, "EDGEFILL_KEY_PREFIX", id="prefix-reserved"
        ),
        pytest.param({"EDGEFILL_KEY_PREFIX": "a\nb"}, "EDGEFILL_KEY_PREFIX", id="prefix-newline"),
        pytest.param(
            {"EDGEFILL_MAX_OBJECT_BYTES": "10GB"}, "EDGEFILL_MAX_OBJECT_BYTES", id="max-unit"
        ),
        pytest.param({"EDGEFILL_MAX_OBJECT_BYTES": "0"}, "EDGEFILL_MAX_OBJECT_BYTES", id="max-0"),
        # 10,000 parts of S3's largest part (5 GiB) are the most one multipart upload holds
        pytest.param(
            {"EDGEFILL_MAX_OBJECT_BYTES": str(10_000 * 5 * 1024**3 + 1)},
            "EDGEFILL_MAX_OBJECT_BYTES",
            id="max-past-10000-parts-of-5-gib",
        ),
        pytest.param(
            {"EDGEFILL_MAX_OBJECT_BYTES": "-5"}, "EDGEFILL_MAX_OBJECT_BYTES", id="max-negative"
        ),
        pytest.param({"EDGEFILL_QUERY": "sometimes"}, "EDGEFILL_QUERY", id="query-mode"),
        # An SQS delay (the reminder of a batching window) is at most 900 s
        pytest.param(
            {"EDGEFILL_INVALIDATION_WINDOW": "901"}, "EDGEFILL_INVALIDATION_WINDOW", id="window"
        ),
        pytest.param(
            {"EDGEFILL_INVALIDATION_WINDOW": "0"}, "EDGEFILL_INVALIDATION_WINDOW", id="window-0"
        ),
    ],
)
def test_backfill_errors_name_the_variable(changes: dict[str, str], variable: str) -> None:
    error = backfill_error(**changes)
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")


# ---------------------------------------------------------------- prewarm


def test_prewarm_defaults() -> None:
    config = PrewarmConfig.from_env(PREWARM_ENV)
    assert config.distribution_domain == "d111111abcdef8.cloudfront.net"
    assert config.viewer_host == config.distribution_domain
    assert config.targets == ()
    assert config.encodings == ENCODINGS
    assert (config.protocol, config.port) == ("https", 443)
    assert (config.resolver_host, config.resolver_port) == ("8.8.8.8", 53)
    assert config.region_subnets == ()
    assert config.prewarm_queue_url is None


def test_prewarm_reads_every_variable() -> None:
    config = PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": "D111.CloudFront.net",
            "EDGEFILL_VIEWER_HOST": "cdn.example.com",
            "EDGEFILL_TARGETS": "eu-west-3, NRT20-P2",
            "EDGEFILL_ENCODINGS": "gzip,identity",
            "EDGEFILL_PROTOCOL": "http",
            "EDGEFILL_RESOLVER": "127.0.0.1:5353",
            "EDGEFILL_REGION_SUBNETS": '{"eu-west-3": "15.236.0.0/24"}',
            "EDGEFILL_EDGE_PORT": "8443",
            "EDGEFILL_PREWARM_QUEUE_URL": "http://127.0.0.1:5000/123456789012/prewarm",
        }
    )
    assert config.distribution_domain == "d111.cloudfront.net"
    assert config.viewer_host == "cdn.example.com"
    assert config.targets == ("eu-west-3", "NRT20-P2")
    assert config.encodings == ("gzip", "identity")
    assert config.protocol == "http"
    assert (config.resolver_host, config.resolver_port) == ("127.0.0.1", 5353)
    assert config.region_subnets == (("eu-west-3", ipaddress.ip_network("15.236.0.0/24")),)
    assert config.port == 8443
    assert config.prewarm_queue_url == "http://127.0.0.1:5000/123456789012/prewarm"


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [("[::1]:5353", "::1", 5353), ("2001:4860:4860::8888", "2001:4860:4860::8888", 53)],
)
def test_ipv6_resolvers(raw: str, host: str, port: int) -> None:
    config = PrewarmConfig.from_env({**PREWARM_ENV, "EDGEFILL_RESOLVER": raw})
    assert (config.resolver_host, config.resolver_port) == (host, port)


def test_plain_http_edges_default_to_port_80() -> None:
    assert PrewarmConfig.from_env({**PREWARM_ENV, "EDGEFILL_PROTOCOL": "http"}).port == 80


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        pytest.param(
            {"EDGEFILL_DISTRIBUTION_DOMAIN": ""}, "EDGEFILL_DISTRIBUTION_DOMAIN", id="domain-blank"
        ),
        pytest.param(
            {"EDGEFILL_DISTRIBUTION_DOMAIN": "https://d111.cloudfront.net"},
            "EDGEFILL_DISTRIBUTION_DOMAIN",
            id="domain-url",
        ),
        pytest.param(
            {"EDGEFILL_VIEWER_HOST": "cdn example.com"}, "EDGEFILL_VIEWER_HOST", id="viewer-space"
        ),
        pytest.param({"EDGEFILL_TARGETS": "us-east-1,Tokyo"}, "EDGEFILL_TARGETS", id="target"),
        pytest.param({"EDGEFILL_TARGETS": "NRT-20"}, "EDGEFILL_TARGETS", id="malformed-pop"),
        pytest.param({"EDGEFILL_ENCODINGS": "gzip,deflate"}, "EDGEFILL_ENCODINGS", id="encoding"),
        pytest.param({"EDGEFILL_PROTOCOL": "ftp"}, "EDGEFILL_PROTOCOL", id="protocol"),
        pytest.param({"EDGEFILL_RESOLVER": "dns.google"}, "EDGEFILL_RESOLVER", id="resolver-name"),
        pytest.param({"EDGEFILL_RESOLVER": "8.8.8.8:0"}, "EDGEFILL_RESOLVER", id="resolver-port"),
        pytest.param(
            {"EDGEFILL_RESOLVER": "8.8.8.8:dns"}, "EDGEFILL_RESOLVER", id="resolver-port-text"
        ),
        pytest.param(
            {"EDGEFILL_REGION_SUBNETS": "{not json"}, "EDGEFILL_REGION_SUBNETS", id="subnets-json"
        ),
        pytest.param(
            {"EDGEFILL_REGION_SUBNETS": '["10.0.0.0/8"]'},
            "EDGEFILL_REGION_SUBNETS",
            id="subnets-list",
        ),
        pytest.param(
            {"EDGEFILL_REGION_SUBNETS": '{"Paris": "15.236.0.0/24"}'},
            "EDGEFILL_REGION_SUBNETS",
            id="subnets-region",
        ),
        pytest.param(
            {"EDGEFILL_REGION_SUBNETS": '{"eu-west-3": "15.236.0.0/33"}'},
            "EDGEFILL_REGION_SUBNETS",
            id="subnets-cidr",
        ),
        pytest.param({"EDGEFILL_EDGE_PORT": "https"}, "EDGEFILL_EDGE_PORT", id="port-text"),
        pytest.param({"EDGEFILL_EDGE_PORT": "70000"}, "EDGEFILL_EDGE_PORT", id="port-range"),
        pytest.param(
            {"EDGEFILL_PREWARM_QUEUE_URL": "sqs://queue"}, "EDGEFILL_PREWARM_QUEUE_URL", id="queue"
        ),
    ],
)
def test_prewarm_errors_name_the_variable(changes: dict[str, str], variable: str) -> None:
    error = prewarm_error(**changes)
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")


def test_missing_distribution_domain_is_named() -> None:
    with pytest.raises(ConfigError, match="^EDGEFILL_DISTRIBUTION_DOMAIN: is required"):
        PrewarmConfig.from_env({})


# ---------------------------------------------------------------- dead-letter queues
_Q = "https://sqs.us-east-1.amazonaws.com/123456789012/"


def test_each_worker_reads_its_own_dead_letter_queue() -> None:
    # Given the two variables (one process may hold both, as the lab's does)
    env = {"EDGEFILL_BACKFILL_DLQ_URL": _Q + "b-dlq", "EDGEFILL_PREWARM_DLQ_URL": _Q + "p-dlq"}
    # Then each worker takes its own, and neither needs one
    assert BackfillConfig.from_env({**BACKFILL_ENV, **env}).dlq_url == _Q + "b-dlq"
    assert PrewarmConfig.from_env({**PREWARM_ENV, **env}).dlq_url == _Q + "p-dlq"
    assert BackfillConfig.from_env(BACKFILL_ENV).dlq_url is None
    assert PrewarmConfig.from_env(PREWARM_ENV).dlq_url is None


@pytest.mark.parametrize("url", ["ftp://x/1/q", "https://sqs.us-east-1.amazonaws.com/q", "q"])
def test_a_dead_letter_queue_must_be_a_queue_url(url: str) -> None:
    assert backfill_error(EDGEFILL_BACKFILL_DLQ_URL=url).variable == "EDGEFILL_BACKFILL_DLQ_URL"
    assert prewarm_error(EDGEFILL_PREWARM_DLQ_URL=url).variable == "EDGEFILL_PREWARM_DLQ_URL"


def test_a_dead_letter_queue_that_is_a_working_queue_is_refused() -> None:
    # A refusal sent back to the queue it came from would come back for ever
    error = backfill_error(
        EDGEFILL_BACKFILL_QUEUE_URL=_Q + "backfill", EDGEFILL_BACKFILL_DLQ_URL=_Q + "backfill"
    )
    assert error.variable == "EDGEFILL_BACKFILL_DLQ_URL" and "EDGEFILL_BACKFILL_QUEUE_URL" in str(
        error
    )
    error = prewarm_error(
        EDGEFILL_PREWARM_QUEUE_URL=_Q + "prewarm", EDGEFILL_PREWARM_DLQ_URL=_Q + "prewarm"
    )
    assert error.variable == "EDGEFILL_PREWARM_DLQ_URL"


def test_the_warm_s_http_version_is_2_unless_1_1_or_plain_http_asks_otherwise() -> None:
    assert PrewarmConfig.from_env(PREWARM_ENV).http2
    assert not PrewarmConfig.from_env({**PREWARM_ENV, "EDGEFILL_WARM_HTTP": "1.1"}).http2
    # CloudFront has no cleartext HTTP/2: plain http edges are HTTP/1.1 whatever is asked
    assert not PrewarmConfig.from_env({**PREWARM_ENV, "EDGEFILL_PROTOCOL": "http"}).http2


@pytest.mark.parametrize("value", ["3", "h2", "http/2", "1.0", "2\x00"])
def test_a_warm_http_version_other_than_2_or_1_1_is_named(value: str) -> None:
    error = prewarm_error(EDGEFILL_WARM_HTTP=value)
    assert error.variable == "EDGEFILL_WARM_HTTP" and "'2' or '1.1'" in error.reason


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EDGEFILL_WARM_STREAMS", "0"),
        ("EDGEFILL_WARM_STREAMS", "1025"),
        ("EDGEFILL_WARM_STREAMS_PER_EDGE", "-1"),
        ("EDGEFILL_WARM_STREAMS_PER_EDGE", "many"),
    ],
)
def test_stream_counts_out_of_bounds_are_named(variable: str, value: str) -> None:
    assert prewarm_error(**{variable: value}).variable == variable
