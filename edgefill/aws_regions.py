"""AWS region codes as the AWS CLI v2 takes them, checked before any call.

Where the region comes from, first found wins: ``--region``, ``AWS_REGION``,
``AWS_DEFAULT_REGION``, then the ``region`` of the profile (``--profile`` or
``AWS_PROFILE``) in ``~/.aws/config``. (boto3 alone reads only the last two: a user who
exports ``AWS_REGION``, as the AWS CLI and the lab's printout say, would otherwise meet
``no AWS region``.)

A code is checked against the regions of botocore's partitions (``partitions.json``, every
partition: aws, aws-cn, aws-us-gov, the ISO ones…), so a mistyped region is refused with a
"did you mean" before a call goes to a host that does not exist. A region newer than the
installed botocore is refused too, naming the botocore version to upgrade.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from edgefill.did_you_mean import closest


class UnknownRegion(ValueError):
    """A region code no partition knows; the message says which, and a close one."""


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region of every partition botocore knows (``*-global`` pseudo-regions aside)."""
    import botocore.session  # here: botocore costs ~0.2 s of imports, paid on first check

    loader = botocore.session.get_session().get_component("data_loader")
    partitions = loader.load_data("partitions")["partitions"]
    return frozenset(
        region
        for partition in partitions
        for region in partition.get("regions", {})
        if not region.endswith("-global")
    )


def check_region(code: str) -> str:
    """``code`` when it is a known region; ``UnknownRegion`` (with a close match) if not."""
    if code in known_regions():
        return code
    import botocore

    close = closest(code, known_regions())
    hint = f"did you mean {close}? " if close else ""
    raise UnknownRegion(
        f"{code!r} is not an AWS region ({hint}a code such as us-east-1; "
        f"botocore {botocore.__version__} knows {len(known_regions())} regions)"
    )


def region_from(flag: str | None, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(the region, where it came from) as the AWS CLI v2 reads them; (None, "") when
    neither the flag nor the environment names one (the profile may)."""
    if flag:
        return flag, "--region"
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(variable):
            return environ[variable], variable
    return None, ""
