"""A wildcard alias (``*.example.com``, valid in CloudFront) does not stop prewarming
(issue 19): it flows from ``Aliases`` into ``EDGEFILL_ALLOWED_HOSTS``, which used to refuse
it as a host name, so every record failed. It now matches as a wildcard: one label,
leftmost only, in the worker and in the CLI's host check; hostile forms are refused."""

from __future__ import annotations

import re

import pytest

from edgefill.commands.doctor import viewer_host
from edgefill.doctor.facts import Facts
from edgefill.operations import OperatorError
from edgefill.prewarm_hosts import check_prewarm_host, stack_allowed_hosts
from edgefill.stack import StackInfo
from prewarm_worker.allowed_hosts import allowed_hosts, check_host, host_allowed
from shared.config import ConfigError, PrewarmConfig
from shared.messages import MessageError, is_host_pattern
from tests.unit.test_template import Template, sam

__all__ = ["sam"]  # fixture of test_template

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/1a2b3c4d-0000-4000-8000-00000000abcd"
# (The stack's prewarm environment with a wildcard alias is valid: test_template_bounded.py,
# test_the_aliases_become_hosts_a_prewarm_message_may_name.)
HOSTILE_PATTERNS = [
    "*.*.example.com",  # two wildcards
    "*example.com",  # part of a label
    "a.*.example.com",  # not leftmost
    "*.com",  # a whole top-level domain
    "*",
    "*.",
    "**.example.com",
    "example.*",
    "*.example.com.*",
    "*.-bad.example.com",
]


def config(allowed: str) -> PrewarmConfig:
    return PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": "d111abc.cloudfront.net",
            "EDGEFILL_VIEWER_HOST": "cdn.example.com",
            "EDGEFILL_ALLOWED_HOSTS": allowed,
        }
    )


# ---- the worker's configuration ----------------------------------------------------------
def test_a_wildcard_alias_is_a_valid_allowed_host() -> None:
    # Given the aliases CloudFront accepts, one a wildcard
    # When the worker reads them, then the configuration is valid (it used to be refused)
    assert config("*.Example.com,cdn.example.com").allowed_hosts == (
        "*.example.com",
        "cdn.example.com",
    )


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS)
def test_a_hostile_wildcard_is_refused_naming_the_variable(pattern: str) -> None:
    assert not is_host_pattern(pattern)
    with pytest.raises(ConfigError) as refused:
        config(pattern)
    assert refused.value.variable == "EDGEFILL_ALLOWED_HOSTS"


# ---- matching, as CloudFront's certificate covers it ---------------------------------------
@pytest.mark.parametrize(
    "host", ["img.example.com", "IMG.Example.COM", "img.example.com:8443", "img.example.com."]
)
def test_one_label_under_a_wildcard_is_allowed(host: str) -> None:
    check_host(host, allowed_hosts(config("*.example.com")))


@pytest.mark.parametrize(
    "host",
    [
        "example.com",  # the wildcard's own domain is not under it
        "a.b.example.com",  # one label only (a certificate's * covers one)
        "*.example.com",  # a message naming the pattern itself
        "x*.example.com",
        "imgexample.com",
        "img.example.com.evil.net",
        "evil-example.com",
        "img.example.org",
    ],
)
def test_anything_else_is_not_a_host_of_the_distribution(host: str) -> None:
    allowed = allowed_hosts(config("*.example.com"))
    assert not host_allowed(host, allowed)
    with pytest.raises(MessageError) as refused:
        check_host(host, allowed)
    assert refused.value.field == "host"


def test_a_deeper_name_is_allowed_by_its_own_wildcard_or_by_name() -> None:
    allowed = allowed_hosts(config("*.example.com,*.b.example.com,c.d.example.com"))
    assert host_allowed("a.b.example.com", allowed) and host_allowed("c.d.example.com", allowed)
    assert not host_allowed("x.d.example.com", allowed)


# ---- the stack and the CLI ------------------------------------------------------------------
@pytest.mark.parametrize("aliases", ["*.example.com", "cdn.example.com,*.img.example.co.uk"])
def test_the_aliases_parameter_takes_wildcard_aliases(sam: Template, aliases: str) -> None:
    assert re.fullmatch(sam["Parameters"]["Aliases"]["AllowedPattern"], aliases)


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS)
def test_the_aliases_parameter_refuses_hostile_wildcards_at_deploy(
    sam: Template, pattern: str
) -> None:
    allowed = sam["Parameters"]["Aliases"]["AllowedPattern"]
    assert not re.fullmatch(allowed, pattern)
    assert not re.fullmatch(allowed, f"cdn.example.com,{pattern}")


def test_the_cli_checks_a_host_against_a_wildcard_alias_as_the_worker_does() -> None:
    stack = StackInfo(
        "edgefill",
        "CREATE_COMPLETE",
        {"PrewarmAllowedHosts": "d111.cloudfront.net,cdn.example.com,*.example.com"},
    )
    allowed = stack_allowed_hosts(stack)
    check_prewarm_host("img.example.com", allowed, "edgefill")
    for host in ("a.b.example.com", "example.com"):
        with pytest.raises(OperatorError, match="is not a host of stack"):
            check_prewarm_host(host, allowed, "edgefill")


def test_the_doctors_canary_skips_a_wildcard_alias() -> None:
    stack = StackInfo("edgefill", "CREATE_COMPLETE", {"DistributionDomain": "d111.cloudfront.net"})
    config = {
        "Aliases": {"Quantity": 2, "Items": ["*.example.com", "cdn.example.com"]},
        "ViewerCertificate": {"ACMCertificateArn": CERT},
    }
    assert viewer_host(Facts(stack, "E2QWRUHAPOMQZL", config)) == "cdn.example.com"
    config["Aliases"] = {"Quantity": 1, "Items": ["*.example.com"]}
    assert viewer_host(Facts(stack, "E2QWRUHAPOMQZL", config)) == "d111.cloudfront.net"
