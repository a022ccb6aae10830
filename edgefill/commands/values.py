"""The value types of the CLI's flags: each turns the text typed into a value or refuses
it with one line saying what is accepted.

argparse calls them while it parses (``type=``), so a bad value is exit 2 with
``edgefill COMMAND: error: argument --flag: <why>; <the accepted form>`` before any file,
network or AWS call. Values whose rule lives elsewhere stay there and are named the same
way when the command starts: the prewarm worker's variables (``--resolver``,
``--concurrency``, ``--region-subnets``…, by ``PrewarmConfig``), targets and encodings
(by the message rules), paths (by the key rules). ``tests/unit/test_cli_bad_values.py``
feeds every flag of every command a bad value.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Collection
from typing import Final, TypeVar
from urllib.parse import urlsplit

from edgefill.aws_regions import check_region
from edgefill.sizes import parse_size

STACK_NAME: Final = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
STACK_ARN: Final = re.compile(r"arn:aws[-a-z]*:cloudformation:[a-z0-9-]+:\d{12}:stack/\S+")
# S3's rules for a bucket created since 2018 (no upper case, no underscore).
BUCKET_NAME: Final = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
DISTRIBUTION_ID: Final = re.compile(r"[A-Z0-9]{5,32}")
# A profile name as ``aws configure`` writes one into ~/.aws/config.
_PROFILE: Final = re.compile(r"[\w.@+-]{1,128}")
# Two rules of the messages (shared.messages) that flags state in their help and bounds,
# restated so that building the parser does not import the message models (about 10 ms at
# every start); tests/unit/test_cli_lazy_imports.py keeps them equal to the models'.
ENCODINGS: Final = ("br+gzip", "gzip", "br", "identity")
MAX_PATHS: Final = 1000

Parse = Callable[[str], object]
T = TypeVar("T")


def _refuse(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def _integer(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


def _refusing(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as a flag type: its ``ValueError`` (which names the accepted form) becomes
    argparse's one-line refusal."""

    def flag_type(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise _refuse(str(error)) from None

    flag_type.__doc__ = parse.__doc__
    return flag_type


# ``--max-bytes``: bytes, or with a unit (edgefill/sizes.py).
size = _refusing(parse_size)
# ``--region``: a region of botocore's partitions, with a "did you mean" (UnknownRegion is
# a ValueError).
region = _refusing(check_region)


def dollars(text: str) -> float:
    """``--max-usd``: a finite amount ≥ 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise _refuse(f"{text!r} is not an amount: US dollars, a number ≥ 0 such as 25 or 2.50")
    return value


def whole(low: int, high: int | None = None, what: str = "a whole number") -> Parse:
    """A whole number from ``low`` to ``high`` (no bound when None)."""
    bounds = f"from {low} to {high}" if high is not None else f"≥ {low}"

    def parse(text: str) -> int:
        value = _integer(text)
        if value is None or value < low or (high is not None and value > high):
            raise _refuse(f"{text!r} is not {what} {bounds}")
        return value

    return parse


def one_of(values: Collection[int], what: str) -> Parse:
    """A whole number among ``values`` (``--retention-days``: CloudWatch's list)."""

    def parse(text: str) -> int:
        value = _integer(text)
        if value is None or value not in values:
            shown = ", ".join(str(v) for v in sorted(values))
            raise _refuse(f"{text!r} is not {what}: one of {shown}")
        return value

    return parse


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise _refuse(f"{text!r} is not a duration: seconds, a number > 0 such as 600")
    return value


def profile(text: str) -> str:
    """``--profile``: a profile of the AWS config files (a missing one is bad input)."""
    import botocore.session

    if not _PROFILE.fullmatch(text):
        raise _refuse(f"{text!r} is not a profile name (as in [profile NAME] of ~/.aws/config)")
    known = botocore.session.Session().available_profiles
    if text not in known:
        listed = ", ".join(sorted(known)[:8]) or "none"
        raise _refuse(
            f"no profile {text!r} in the AWS config files (~/.aws/config, "
            f"~/.aws/credentials; known: {listed})"
        )
    return text


def stack(text: str) -> str:
    """``--stack``: a CloudFormation stack name or stack ID (ARN)."""
    if STACK_NAME.fullmatch(text) or STACK_ARN.fullmatch(text):
        return text
    raise _refuse(
        f"{text!r} is not a stack name: a letter, then letters, digits and '-' "
        "(128 at most), or a stack ID (arn:aws:cloudformation:…)"
    )


def endpoint_url(text: str) -> str:
    """``--endpoint-url``: an http(s) URL with a host."""
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query:
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            pass
        else:
            return text
    raise _refuse(f"{text!r} is not an endpoint: an http(s) URL such as http://127.0.0.1:5000")


def queue_url(text: str) -> str:
    """A queue URL: ``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`` (or the lab's)."""
    parts = urlsplit(text)
    segments = [segment for segment in parts.path.split("/") if segment]
    if parts.scheme in ("http", "https") and parts.hostname and len(segments) == 2:
        return text
    raise _refuse(
        f"{text!r} is not a queue URL: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME "
        "(the stack's outputs, or `aws sqs get-queue-url`)"
    )


def bucket(text: str) -> str:
    """``--bucket``: an S3 bucket name."""
    if BUCKET_NAME.fullmatch(text) and not re.fullmatch(r"[\d.]+", text):
        return text
    raise _refuse(f"{text!r} is not a bucket name: 3 to 63 lower-case letters, digits, '.' and '-'")


def host(text: str) -> str:
    """``--host``: a DNS host name, as a message's ``host`` must be."""
    from shared.messages import is_host_name

    if is_host_name(text):
        return text
    raise _refuse(f"{text!r} is not a host name: a DNS name such as cdn.example.com, no port")


def distribution_id(text: str) -> str:
    """``--distribution-id``: CloudFront's ID (upper-case letters and digits)."""
    if DISTRIBUTION_ID.fullmatch(text):
        return text
    raise _refuse(f"{text!r} is not a distribution ID: upper-case letters and digits (E2EXAMPLE1)")


def key_prefix(text: str) -> str:
    """``--key-prefix``: a prefix as the stack's ``KeyPrefix`` takes one."""
    if text == "":  # the default (no prefix), which argparse passes here at every parse
        return text
    from shared.keys import InvalidKey, normalize_prefix

    try:
        normalize_prefix(text)
    except InvalidKey as error:
        raise _refuse(f"{error} (a key prefix such as site/ or empty)") from None
    return text


def writable_file(text: str) -> str:
    """A file to write (``--skip-sent``): its folder must exist; an existing file must be
    a readable regular file."""
    folder = os.path.dirname(os.path.abspath(text)) or "."
    if os.path.isdir(text) or not os.path.isdir(folder):
        raise _refuse(f"{text!r} is not a file that can be written: a path in an existing folder")
    return text


def readable_file(text: str) -> str:
    """A file to read (``--prices``): it must exist."""
    if not os.path.isfile(text):
        raise _refuse(f"{text!r} is not a file: the path of an existing file")
    return text


def paths_file(text: str) -> str:
    """``--paths-file``: an existing file, or ``-`` for standard input."""
    if text == "-" or os.path.isfile(text):
        return text
    raise _refuse(f"{text!r} does not exist: a file of paths, one a line, or - for standard input")


def regions_or_all(text: str) -> str:
    """``edge-logs --regions``: comma-separated regions, or ``all``."""
    if text.strip() == "all":
        return text
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise _refuse(f"{text!r} names no region: comma-separated regions, or all")
    for name in names:
        region(name)
    return text


def origin_url(text: str) -> str:
    """``--origin-url``: the full origin, ``http(s)://host[:port][/path]``."""
    from edgefill.object_sizes import check_origin_url
    from edgefill.operations import OperatorError

    try:
        check_origin_url(text)
    except OperatorError:
        raise _refuse(
            f"{text!r} is not an origin URL: http(s)://host[:port][/path], holding neither "
            "credentials nor a query or fragment"
        ) from None
    return text
