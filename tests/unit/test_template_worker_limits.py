"""Template rules behind the backfill worker's limits (issue 19): the size limit a
deployment may set fits in one multipart upload."""

from __future__ import annotations

import re

from shared.config import MAX_OBJECT_BYTES
from tests.unit.test_template import Template, cfn, sam

__all__ = ["cfn", "sam"]  # fixtures of test_template


def test_max_object_bytes_is_refused_past_what_ten_thousand_parts_hold(sam: Template) -> None:
    # Given the MaxObjectBytes parameter's pattern
    pattern = re.compile(sam["Parameters"]["MaxObjectBytes"]["AllowedPattern"])
    # Then the worker's largest limit passes it, and a value of 15 digits does not (the
    # worker would refuse it at the first invocation: ConfigError, every record retried)
    assert pattern.fullmatch(str(MAX_OBJECT_BYTES))
    assert not pattern.fullmatch("1" + "0" * 14)
