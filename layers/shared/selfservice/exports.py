"""Audience export files in S3: parts written by the shard workers, combined into one JSON Lines file.

Layout under the export bucket: ``exports/<id>/parts/<shard>/<sequence>.jsonl`` (one object per
worker invocation, in the order of the paged API) and ``exports/<id>.jsonl`` (the file). The bucket's
lifecycle rule removes both after a day or two; the link to the file is a presigned GET.

Combining never reads the whole file through one function: parts of at least 5 MiB (the workers cut
them at 8 MiB) are copied by S3 itself (UploadPartCopy); only the short parts (a shard's last one,
or one a worker cut early), and a part that follows one of them, are read and joined until they make
a part. So the bytes a combine reads are bounded by the number of shards (about 16 MiB each), not
by the number of profiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's smallest multipart part (all but the last)."""
CHUNK_BYTES = 8 * 1024 * 1024
"""Where a shard worker cuts a part (so every part but a shard's last can be copied, not read)."""


def part_key(export_id: str, shard_number: int, sequence: int) -> str:
    return f"exports/{export_id}/parts/{shard_number:02d}/{sequence:06d}.jsonl"


def file_key(export_id: str) -> str:
    return f"exports/{export_id}.jsonl"


@dataclass
class Combined:
    key: str
    size: int
    bytes_read: int
    """What the combine itself read (short parts only); the rest was copied inside S3."""


class ExportFiles:
    """The export bucket (an S3 client and the bucket's name)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put_part(self, export_id: str, shard_number: int, sequence: int, body: bytes) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=part_key(export_id, shard_number, sequence),
            Body=body,
            ContentType="application/x-ndjson",
        )

    def _parts(self, export_id: str) -> list[tuple[str, int]]:
        parts: list[tuple[str, int]] = []
        arguments: dict[str, Any] = {"Bucket": self._bucket, "Prefix": f"exports/{export_id}/parts/"}
        while True:
            response = self._s3.list_objects_v2(**arguments)
            parts += [(str(item["Key"]), int(item["Size"])) for item in response.get("Contents", [])]
            if not response.get("IsTruncated"):
                return sorted(parts)  # shard, then sequence: the order of the paged API
            arguments["ContinuationToken"] = response["NextContinuationToken"]

    def _read(self, key: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def combine(self, export_id: str) -> Combined:
        """Join the parts, in order, into ``exports/<id>.jsonl``; delete the parts."""
        parts = [(key, size) for key, size in self._parts(export_id) if size > 0]
        target = file_key(export_id)
        total = sum(size for _key, size in parts)
        if total < MIN_PART_BYTES:  # small: one object (also the empty file of an empty audience)
            body = b"".join(self._read(key) for key, _size in parts)
            self._s3.put_object(Bucket=self._bucket, Key=target, Body=body, ContentType="application/x-ndjson")
            self._delete([key for key, _size in parts])
            return Combined(target, len(body), len(body))
        upload = self._s3.create_multipart_upload(Bucket=self._bucket, Key=target, ContentType="application/x-ndjson")
        upload_id = upload["UploadId"]
        done: list[dict[str, Any]] = []
        buffer, read = bytearray(), 0
        try:
            for key, size in parts:
                if not buffer and size >= MIN_PART_BYTES:
                    copied = self._s3.upload_part_copy(
                        Bucket=self._bucket,
                        Key=target,
                        UploadId=upload_id,
                        PartNumber=len(done) + 1,
                        CopySource={"Bucket": self._bucket, "Key": key},
                    )
                    done.append({"PartNumber": len(done) + 1, "ETag": copied["CopyPartResult"]["ETag"]})
                    continue
                chunk = self._read(key)
                read += len(chunk)
                buffer += chunk
                if len(buffer) >= MIN_PART_BYTES:
                    done.append(self._upload(target, upload_id, len(done) + 1, bytes(buffer)))
                    buffer.clear()
            if buffer:
                done.append(self._upload(target, upload_id, len(done) + 1, bytes(buffer)))
            self._s3.complete_multipart_upload(
                Bucket=self._bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except Exception:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=target, UploadId=upload_id)
            raise
        self._delete([key for key, _size in parts])
        return Combined(target, total, read)

    def _upload(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        answer = self._s3.upload_part(Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            if batch:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})

    def link(self, key: str, seconds: int) -> str:
        """A presigned GET of the file, valid for ``seconds``."""
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
            )
        )
