"""What the demo and its scenes read back from the lab's bucket: whether a key is there,
the SHA-256 of its bytes (to compare with the lab origin's), and the operator's
``edgefill check`` of paths against the bucket's copies."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgefill.scenes.stage import Stage

# Bodies are hashed a chunk at a time: a scene's film is hundreds of MiB.
CHUNK_BYTES = 1024 * 1024


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """True when HeadObject finds ``key``; any error answer counts as absent."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def object_sha256(s3: Any, bucket: str, key: str) -> str:
    """The hex SHA-256 of ``key``'s bytes, streamed; "" when it cannot be read (missing),
    which never equals a real digest."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.ClientError:
        return ""
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def check_against_bucket(demo: Stage, paths: list[str]) -> int:
    """Run ``edgefill check`` for ``paths`` at every lab region, against the lab bucket's
    copies, as an operator would (the command joins the narration); its exit code."""
    lab = demo.lab
    assert lab.aws is not None
    argv = [
        "check",
        *paths,
        "--targets",
        ",".join(sorted({pop.site.region for pop in lab.pops.values()})),
        "--bucket",
        lab.settings.bucket,
        "--endpoint-url",
        lab.aws.endpoint_url,
    ]
    demo.say("$ edgefill " + " ".join(argv))
    return demo.operator(argv)
