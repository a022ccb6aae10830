"""Integrity without false alarms: an ETag is the body's MD5 only when S3 says so;
Content-MD5 is always checked."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from backfill_worker.transfer.integrity import ExpectedMD5, expected_md5s
from backfill_worker.transfer.storable import Refusal

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
S3 = {"Server": "AmazonS3"}


def expected(headers: dict[str, str]) -> tuple[ExpectedMD5, ...] | Refusal:
    return expected_md5s(CaseInsensitiveDict(headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"ETag": f'"{MD5}"', **S3},
        {"ETag": f'"{MD5.upper()}"', **S3},
        {"ETag": f'"{MD5}"', "x-amz-request-id": "4442587FB7D0A2F9"},
        {"ETag": f'"{MD5}"', "Server": " amazons3 ", "x-amz-server-side-encryption": "AES256"},
    ],
)
def test_an_s3_etag_is_the_bodys_md5(headers: dict[str, str]) -> None:
    assert expected(headers) == (ExpectedMD5("ETag", MD5),)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"ETag": f'"{MD5}"'}, id="not-s3"),
        pytest.param({"ETag": f'"{MD5}"', "Server": "nginx"}, id="nginx"),
        pytest.param({"ETag": f'"{MD5}"', "Server": "AmazonS3-ish"}, id="lookalike-server"),
        pytest.param({"ETag": f'W/"{MD5}"', **S3}, id="weak"),
        pytest.param({"ETag": f'"{MD5}-3"', **S3}, id="multipart"),
        pytest.param({"ETag": MD5, **S3}, id="unquoted"),
        pytest.param(
            {"ETag": f'"{MD5}"', "x-amz-server-side-encryption": "aws:kms", **S3}, id="sse-kms"
        ),
        pytest.param(
            {"ETag": f'"{MD5}"', "x-amz-server-side-encryption": "aws:kms:dsse", **S3},
            id="dsse-kms",
        ),
        pytest.param(
            {
                "ETag": f'"{MD5}"',
                "x-amz-server-side-encryption-customer-algorithm": "AES256",
                **S3,
            },
            id="sse-c",
        ),
        pytest.param({}, id="nothing"),
    ],
)
def test_any_other_etag_is_opaque(headers: dict[str, str]) -> None:
    assert expected(headers) == ()


@pytest.mark.parametrize(
    "value",
    ["1B2M2Y8AsgTpgAmY7PhCfg==", "d41d8cd98f00b204e9800998ecf8427e", " 1B2M2Y8AsgTpgAmY7PhCfg== "],
)
def test_content_md5_is_always_checked_from_any_origin(value: str) -> None:
    assert expected({"Content-MD5": value, "ETag": f'"{MD5}"'}) == (
        ExpectedMD5("Content-MD5", "d41d8cd98f00b204e9800998ecf8427e"),
    )


def test_content_md5_and_an_s3_etag_are_both_checked() -> None:
    assert expected({"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "ETag": f'"{MD5}"', **S3}) == (
        ExpectedMD5("Content-MD5", "d41d8cd98f00b204e9800998ecf8427e"),
        ExpectedMD5("ETag", MD5),
    )


@pytest.mark.parametrize("value", ["not base64!", "AAAA", "", "１B2M2Y8AsgTpgAmY7PhCfg=="])
def test_an_unreadable_content_md5_is_a_bad_header(value: str) -> None:
    verdict = expected({"Content-MD5": value})
    assert isinstance(verdict, Refusal)
    assert (verdict.reason, verdict.directive) == ("bad_header", "Content-MD5")
