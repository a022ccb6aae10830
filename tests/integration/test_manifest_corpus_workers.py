"""Both expansions over the whole corpus: the backfill worker's (a copied manifest queues
fills) and the prewarm worker's (a manifest warmed at a real HTTPS edge sends on what it
references) give the same objects for every manifest, and those are the expected ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backfill_worker.fill.expand import PlaylistExpander
from prewarm_worker.engine import WarmContext, WarmPlan
from prewarm_worker.expand import warm_expanding
from shared.config import BackfillConfig
from shared.edge_http2 import Http2EdgeClient
from shared.edns import EdgeResolver
from shared.keys import ObjectKey
from shared.messages import BackfillMessage
from shared.object_store import StoredObject
from tests.integration.prewarm_edges import VIEWER, Lab, lab, lab_servers
from tests.manifest_corpus import CorpusCase, corpus_cases

__all__ = ["lab", "lab_servers"]  # fixtures

CASES = corpus_cases()
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/edgefill-backfill"
# A full origin no corpus manifest names, for the manifests without an @origin.
ORIGIN = "https://origin.example.net"


class Bucket:
    """The copy of one manifest, as the bucket serves it back."""

    def __init__(self, case: CorpusCase) -> None:
        self.body = case.path.read_bytes()
        self.type = case.content_type

    def content_type(self, key: str) -> str | None:
        return self.type

    def read_object(self, key: str, max_bytes: int) -> StoredObject:
        return StoredObject(self.body[:max_bytes], len(self.body), self.type)


class Queue:
    """SendMessageBatch, remembering every body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.bodies += [json.loads(entry["MessageBody"]) for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


class Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def backfill_objects(case: CorpusCase) -> set[str]:
    config = BackfillConfig.from_env(
        {
            "EDGEFILL_BUCKET": "edgefill-regional",
            "EDGEFILL_ORIGIN_URL": case.origin or ORIGIN,
            "EDGEFILL_BACKFILL_QUEUE_URL": QUEUE,
            "EDGEFILL_EXPAND_PLAYLISTS": "true",
            "EDGEFILL_VIEWER_HOSTS": ",".join(case.hosts[1:]),
        }
    )
    path, _, query = case.uri.partition("?")
    message = BackfillMessage(
        uri=path,
        query=query,
        host=case.hosts[0],  # the distribution domain the edge puts in the message
        variables=tuple(case.variables.items()) if case.variables else None,
    )
    queue = Queue()
    expander = PlaylistExpander(config, Bucket(case), queue, Quiet(), Quiet())  # type: ignore[arg-type]
    expander.expand(message, ObjectKey.from_uri(path))
    return {m["uri"] + (f"?{m['query']}" if m.get("query") else "") for m in queue.bodies}


def prewarm_objects(lab: Lab, case: CorpusCase) -> set[str]:
    for edge in lab.edges.values():
        edge.documents[case.uri] = (case.path.read_bytes(), case.content_type)
    env = {"EDGEFILL_ALLOWED_HOSTS": ",".join(case.hosts[1:])}
    if case.origin:
        env["EDGEFILL_ORIGIN_URL"] = case.origin
    config = lab.config(**env)
    client = Http2EdgeClient(port=lab.port)
    try:
        context = WarmContext(
            config, EdgeResolver(config.resolver_host, config.resolver_port), client
        )
        plan = WarmPlan((case.uri,), ("us-east-1",), ("identity",), VIEWER)
        # No room for a second round: everything the manifest names goes on in follow-ups
        outcome = warm_expanding(plan, context, task_budget=0)
    finally:
        client.close()
    return {path for message in outcome.followups for path in message.paths}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_both_expansions_give_the_same_objects_for_every_corpus_manifest(
    lab: Lab, case: CorpusCase
) -> None:
    # The manifest itself is copied or warmed already: neither sends it on
    expected = {uri for _, uri in case.objects} - {case.uri, case.uri.partition("?")[0]}
    assert case.hosts[0] == VIEWER
    backfill = backfill_objects(case)
    prewarm = prewarm_objects(lab, case)
    assert backfill == prewarm
    assert backfill == expected
