"""The corpus: real manifests from packagers and players name exactly their expected
objects (tests/fixtures/manifests/SOURCES.md: where each comes from, its licence)."""

from __future__ import annotations

import pytest

from shared.keys import ObjectKey
from shared.manifests import parse_manifest
from tests.manifest_corpus import CORPUS, CorpusCase, corpus_cases

CASES = corpus_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_corpus_manifest_names_its_expected_objects(case: CorpusCase) -> None:
    manifest = parse_manifest(
        case.uri, case.path.read_bytes(), None, case.our_hosts(), variables=case.variables
    )
    if case.not_expanded is not None:
        assert not manifest.expanded and (manifest.reason or "").startswith(case.not_expanded)
        return
    assert manifest.expanded, manifest.reason
    assert not manifest.truncated
    assert [(r.kind, r.uri) for r in manifest.references] == case.objects
    for reference in manifest.references:
        ObjectKey.from_uri(reference.path)  # every object is a key of the bucket


def test_the_corpus_is_real_manifests_each_with_its_source_and_licence() -> None:
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    assert len(CASES) >= 30
    assert {case.path.suffix for case in CASES} == {".m3u8", ".mpd"}
    prefixes = ("shaka-packager-", "shaka-player-", "m3u8-", "hlsjs-", "dashjs-")
    for case in CASES:
        stem = case.path.stem
        prefix = next(p for p in prefixes if stem.startswith(p))
        # Listed in SOURCES.md by its name or, in a group of one source, by its suffix
        assert f"{stem}." in sources or f"`-{stem[len(prefix) :]}`" in sources, case.name
    licences = {path.name for path in (CORPUS / "licenses").iterdir()}
    assert all(name in sources for name in licences)
