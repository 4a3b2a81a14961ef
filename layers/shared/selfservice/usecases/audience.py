"""Audiences for sending systems: the paged list, and the export's shard worker and combine step.

Both read the shards of the sparse Audience index in the same order (shard 00 to 31, each in key
order) and keep a profile by the same rule (:func:`selfservice.domain.audience.exclusion`), so an
export file is exactly the paged list's items, page after page.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from selfservice.domain.audience import AUDIENCE_SHARD_COUNT, audience_item, audience_shards, exclusion
from selfservice.domain.errors import InvalidInput, NotFound
from selfservice.domain.models import ChannelId, Profile, address_hash, new_id
from selfservice.exports import CHUNK_BYTES, ExportFiles
from selfservice.storage import AudienceExportRepository
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
READS_PER_PAGE = AUDIENCE_SHARD_COUNT + 8
"""Index queries one API page may make (empty shards, many excluded profiles) before it answers with
what it has and a cursor: a page may be short, even empty, while ``next`` is not null."""
EXPORT_QUERY_SIZE = 1000


@dataclass(frozen=True)
class AudienceQuery:
    topic: str
    channel: ChannelId
    at: dt.datetime

    def as_dict(self) -> dict[str, str]:
        return {"topic": self.topic, "channel": self.channel, "at": self.at.isoformat()}


def checked_query(
    adapters: Adapters, topic_id: str, channel: ChannelId, at: dt.datetime | None, channel_field: str = "channel"
) -> AudienceQuery:
    """The query, if the catalog offers the topic (NotFound) on the channel (InvalidInput naming
    ``channel_field``, where the request said it)."""
    topic = adapters.catalog.topic(topic_id)
    if topic is None or topic.hidden:
        raise NotFound(topic_id, what="topic")
    if channel not in topic.channels:
        raise InvalidInput(channel_field, "{channel} is not offered for this topic", channel=channel)
    when = at or adapters.clock()
    return AudienceQuery(topic_id, channel, when if when.tzinfo else when.replace(tzinfo=dt.UTC))


def keep(adapters: Adapters, profiles: list[Profile], query: AudienceQuery) -> list[dict[str, Any]]:
    """The audience items of ``profiles`` (in their order): the one rule. For email, the suppression
    list is asked once per page (BatchGetItem), and only for the profiles every other rule lets in."""
    catalog = adapters.catalog
    passed = [p for p in profiles if exclusion(p, query.topic, query.channel, query.at, catalog) is None]
    if query.channel == "email" and passed:
        listed = adapters.repository.suppressed_among([address_hash(p.email) for p in passed])
        passed = [
            p
            for p in passed
            if exclusion(
                p, query.topic, query.channel, query.at, catalog, address_suppressed=address_hash(p.email) in listed
            )
            is None
        ]
    return [audience_item(profile, query.channel) for profile in passed]


Position = tuple[int, dict[str, str] | None]
"""Where a page starts: a shard number and the index key to continue after (None: the shard's start)."""


def audience_page(
    adapters: Adapters, query: AudienceQuery, start: Position = (0, None), limit: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """Up to ``limit`` audience items from ``start``, and where the rest starts (None: done), as the
    index key to continue after, or ``{"audience_shard": …}`` for the start of a shard."""
    shards = audience_shards()
    number, after = start
    items: list[dict[str, Any]] = []
    for _read in range(READS_PER_PAGE):
        profiles, last = adapters.repository.audience_page(shards[number], limit - len(items), after)
        items += keep(adapters, profiles, query)
        if last is not None:
            after = last
        elif number + 1 < len(shards):
            number, after = number + 1, None
        else:
            return items, None
        if len(items) >= limit:
            break
    return items, after if after is not None else {"audience_shard": shards[number]}


def _line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def export_shard(
    adapters: Adapters,
    files: ExportFiles,
    export_id: str,
    query: AudienceQuery,
    shard_number: int,
    after: dict[str, str] | None,
    sequence: int,
    time_left: Callable[[], float],
) -> dict[str, Any]:
    """One worker invocation over one shard: read pages of the index from ``after``, keep the audience,
    write it as part ``sequence``; stop at the shard's end, at 8 MiB, or when the invocation's time
    runs short (``time_left`` in seconds). Returns where the next invocation goes on (``cursor``
    None: the shard is done), the next sequence number and what was read and kept."""
    shard = audience_shards()[shard_number]
    body = bytearray()
    kept = read = 0
    while True:
        profiles, after = adapters.repository.audience_page(shard, EXPORT_QUERY_SIZE, after)
        read += len(profiles)
        for item in keep(adapters, profiles, query):
            body += _line(item)
            kept += 1
        if after is None or len(body) >= CHUNK_BYTES or time_left() < 60:
            break
    if body:
        files.put_part(export_id, shard_number, sequence, bytes(body))
        sequence += 1
    return {"cursor": after, "sequence": sequence, "count": kept, "read": read}


def combine_export(
    adapters: Adapters, files: ExportFiles, exports: AudienceExportRepository, export_id: str, count: int
) -> dict[str, Any]:
    """Join the parts into the file and mark the export succeeded with its count."""
    combined = files.combine(export_id)
    exports.finish(export_id, "succeeded", adapters.clock(), count, combined.key)
    logger.info("audience export done", extra={"export_id": export_id, "count": count, "bytes": combined.size})
    return {"count": count, "bytes": combined.size, "bytesReadToCombine": combined.bytes_read}


def fail_export(adapters: Adapters, exports: AudienceExportRepository, export_id: str) -> None:
    exports.finish(export_id, "failed", adapters.clock(), None, None)


def export_status(
    exports: AudienceExportRepository, files: ExportFiles, export_id: str, seconds: int
) -> dict[str, Any]:
    """``{"status", "count"?, "url"?}``: the link is made at each ask, valid for ``seconds``."""
    item = exports.get(export_id)
    if item is None:
        raise NotFound(export_id, what="export")
    answer: dict[str, Any] = {"id": export_id, "status": str(item["status"])}
    if item["status"] == "succeeded":
        answer["count"] = int(item.get("item_count", 0))
        answer["url"] = files.link(str(item["file_key"]), seconds)
        answer["expiresIn"] = seconds
    return answer


def start_export(
    adapters: Adapters,
    exports: AudienceExportRepository,
    start: Callable[[str, dict[str, Any]], None],
    query: AudienceQuery,
) -> str:
    """Record a running export and start its state machine execution (named by the export id)."""
    export_id = new_id()
    exports.create(export_id, query.as_dict(), adapters.clock())
    try:
        start(export_id, {"exportId": export_id, **query.as_dict()})
    except Exception:
        fail_export(adapters, exports, export_id)
        raise
    logger.info("audience export started", extra={"export_id": export_id, "topic": query.topic})
    return export_id
