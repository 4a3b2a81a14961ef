"""Joining an export's part files on S3 (moto): the file is the parts in order, large parts are copied by
S3 and not read, and the parts are gone afterwards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from selfservice.exports import CHUNK_BYTES, MIN_PART_BYTES, ExportFiles, file_key

EXPORT = "e" * 32


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        yield client


def lines(label: str, size: int) -> bytes:
    line = f'{{"profileId":"{label}"}}\n'.encode()
    return line * (size // len(line) + 1)


def test_large_parts_are_copied_short_ones_joined_and_the_order_kept(s3: Any) -> None:
    files = ExportFiles(s3, "exports")
    parts = {
        (0, 0): lines("a", CHUNK_BYTES),  # full
        (0, 1): lines("b", 100_000),  # a shard's short last part ...
        (1, 0): lines("c", CHUNK_BYTES),  # ... then a full one: both read, joined into one part
        (1, 1): lines("d", CHUNK_BYTES),  # copied again
        (2, 0): lines("e", 2_000),
        (3, 0): lines("f", 3_000),  # the short ones at the end: the last part may be small
    }
    for (shard, sequence), body in parts.items():
        files.put_part(EXPORT, shard, sequence, body)
    calls: Counter[str] = Counter()
    s3.meta.events.register("after-call.s3", lambda model, **_: calls.update([model.name]))

    combined = files.combine(EXPORT)

    expected = b"".join(parts.values())
    assert s3.get_object(Bucket="exports", Key=file_key(EXPORT))["Body"].read() == expected
    assert combined.size == len(expected)
    assert calls["UploadPartCopy"] == 2, "the full parts that start a part are copied by S3"
    assert combined.bytes_read == len(parts[0, 1]) + len(parts[1, 0]) + len(parts[2, 0]) + len(parts[3, 0])
    assert [item["Key"] for item in s3.list_objects_v2(Bucket="exports")["Contents"]] == [file_key(EXPORT)]


def test_a_small_export_is_one_object_and_an_empty_one_an_empty_file(s3: Any) -> None:
    files = ExportFiles(s3, "exports")
    files.put_part(EXPORT, 5, 0, b'{"profileId":"x"}\n')
    assert files.combine(EXPORT).size < MIN_PART_BYTES
    assert s3.get_object(Bucket="exports", Key=file_key(EXPORT))["Body"].read() == b'{"profileId":"x"}\n'
    other = "f" * 32
    assert files.combine(other).size == 0
    assert s3.get_object(Bucket="exports", Key=file_key(other))["Body"].read() == b""
