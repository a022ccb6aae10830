"""What the operator commands build, without AWS: paths, messages, queue URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefill.cli import build_parser
from edgefill.operations import (
    BODY_BUDGET,
    OperatorError,
    QueueUrls,
    as_uri,
    backfill_bodies,
    merge_queue_urls,
    prewarm_bodies,
    read_paths,
    split_list,
)
from shared.messages import parse_backfill, parse_prewarm


@pytest.mark.parametrize(
    ("typed", "uri"),
    [
        ("/img/a b.jpg", "/img/a%20b.jpg"),
        ("/img/a%20b.jpg", "/img/a%20b.jpg"),  # already encoded: kept
        ("/東京.png", "/%E6%9D%B1%E4%BA%AC.png"),
        ("/search?q=a b", "/search?q=a%20b"),
    ],
)
def test_paths_typed_by_a_person_become_cloudfront_uris(typed: str, uri: str) -> None:
    assert as_uri("arg", typed) == uri


def test_a_raw_plus_is_warmed_as_the_viewer_asks_but_never_copied() -> None:
    # Given a path with a raw "+" (S3 would read it as a space, the origin as a plus)
    # When it is warmed, Then it is sent as typed: CloudFront caches exactly that URI
    assert as_uri("arg", "/a+b.jpg") == "/a+b.jpg"
    # When it is to be copied, Then it is refused with the canonical spelling to use
    with pytest.raises(OperatorError, match="%2B"):
        as_uri("arg", "/a+b.jpg", copied=True)
    assert as_uri("arg", "/a%2Bb.jpg", copied=True) == "/a%2Bb.jpg"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("img.jpg", "must start with '/'"),
        ("/a/../b", "traversal"),
        ("/a\r\nb", "control"),
        ("/_edgefill/leases/x", "reserved"),
    ],
)
def test_bad_paths_are_refused_naming_where_they_came_from(typed: str, problem: str) -> None:
    with pytest.raises(OperatorError, match=problem) as error:
        as_uri("list.txt:3", typed)
    assert "list.txt:3" in str(error.value)


def test_prewarm_paths_are_chunked_by_count_and_by_body_size() -> None:
    # Given 250 paths and 100 paths a message
    paths = [("arg", f"/p/{i}") for i in range(250)]
    bodies = prewarm_bodies(paths, ["us-east-1"], None, None, paths_per_message=100)
    assert [len(parse_prewarm(b).paths) for b in bodies] == [100, 100, 50]
    # Given paths so long that 1000 of them would pass 250 KiB
    long_paths = [("arg", "/" + "x" * 1000 + f"/{i}") for i in range(400)]
    bodies = prewarm_bodies(long_paths, None, None, None, paths_per_message=1000)
    assert len(bodies) > 1 and all(len(b) <= BODY_BUDGET for b in bodies)
    assert sum(len(parse_prewarm(b).paths) for b in bodies) == 400


def test_prewarm_options_are_validated_with_the_message_rules() -> None:
    with pytest.raises(OperatorError, match="--targets"):
        prewarm_bodies([("arg", "/a")], ["mars-1"], None, None)
    with pytest.raises(OperatorError, match="--host"):
        prewarm_bodies([("arg", "/a")], None, None, "bad host!")


def test_backfill_bodies_keep_the_query_apart() -> None:
    (body,) = backfill_bodies([("arg", "/a.jpg?v=1")], "cdn.example.com")
    message = parse_backfill(body)
    assert (message.uri, message.query, message.host) == ("/a.jpg", "v=1", "cdn.example.com")
    assert message.at is not None


def test_read_paths_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    listing = tmp_path / "paths.txt"
    listing.write_text("# comment\n\n/a\n  /b  \n", encoding="utf-8")
    assert read_paths(["/c"], str(listing)) == [
        ("argument 1", "/c"),
        (f"{listing}:3", "/a"),
        (f"{listing}:4", "/b"),
    ]
    with pytest.raises(OperatorError, match="no paths"):
        read_paths([], None)


def test_lists_and_queue_urls() -> None:
    assert split_list(["a,b", " c "]) == ["a", "b", "c"]
    assert split_list(None) is None
    merged = merge_queue_urls(
        QueueUrls(backfill="from-stack", prewarm="p"), QueueUrls(backfill="flag")
    )
    assert (merged.backfill, merged.prewarm) == ("flag", "p")
    with pytest.raises(OperatorError, match="--backfill-dlq-url"):
        QueueUrls().require("backfill-dlq")


def test_every_command_is_wired() -> None:
    parser = build_parser()
    for argv in (
        ["prewarm", "/a"],
        ["backfill", "/a"],
        ["status"],
        ["redrive"],
        ["warm", "/a"],
        ["lab", "up"],
        ["demo"],
    ):
        assert callable(parser.parse_args(argv).run)


def test_sessions_of_one_command_share_botocore_s_data_loader() -> None:
    from edgefill.operations import aws_session

    # Given two sessions a command across regions makes
    east, west = aws_session("us-east-1"), aws_session("eu-west-1")
    # Then they read botocore's models once, through one loader, each with its own region
    loader = east._session.get_component("data_loader")
    assert west._session.get_component("data_loader") is loader
    assert (east.region_name, west.region_name) == ("us-east-1", "eu-west-1")


def test_a_profile_with_its_own_data_path_keeps_its_own_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgefill.operations import aws_session

    config = tmp_path / "config"
    config.write_text(
        f"[profile models]\nregion = us-east-1\ndata_path = {tmp_path}\n"
        "aws_access_key_id = lab\naws_secret_access_key = lab\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    shared = aws_session("us-east-1")._session.get_component("data_loader")
    own = aws_session(None, profile="models")._session.get_component("data_loader")
    assert own is not shared and str(tmp_path) in own.search_paths


def test_a_missing_profile_is_still_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefill.operations import OperatorError, aws_session

    with pytest.raises(OperatorError, match="--profile: no profile 'nope'"):
        aws_session("us-east-1", profile="nope")
