"""Audiences for sending systems: who may receive a topic on a channel at a send time, as pages or as
one JSON Lines file written by a state machine (README: Audiences)."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from selfservice import bootstrap
from selfservice.api_errors import WITH_CONTENT, documented, json_response
from selfservice.api_models import decode_cursor, encode_cursor
from selfservice.api_routes.common import INVALID, NOT_FOUND, adapters
from selfservice.domain.audience import audience_shards
from selfservice.domain.changes import DateTimeInput
from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import FieldValueType, Language
from selfservice.settings import get_settings
from selfservice.usecases import audience

router = Router()
metrics = Metrics()

TopicId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Topic id from the catalog")]
ExportId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Export id")]
Channel = Literal["email", "sms"]
SEND_TIME = "The send time (RFC 3339 with offset, like 2026-12-24T18:00:00+01:00); default: now"


class AudienceItem(BaseModel):
    profileId: str
    address: str = Field(description="The email address, or for sms the confirmed mobile number")
    locale: Language
    fields: dict[str, FieldValueType] = Field(description="The profile's field values by catalog field id")


class AudiencePage(BaseModel):
    items: list[AudienceItem]
    next: str | None = Field(
        description="Pass as ?cursor= (with the same topic, channel and at) for the rest; null when there is no "
        "more. A page may hold fewer items than limit, even none, while next is not null."
    )


class ExportRequest(BaseModel):
    """An audience export: the same inputs as the paged audience."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"topic": "news", "channel": "email", "at": "2026-12-24T18:00:00+01:00"}]},
    )

    topic: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    channel: Channel
    at: DateTimeInput | None = Field(default=None, description=SEND_TIME)


class ExportStarted(BaseModel):
    id: str


class ExportStatus(BaseModel):
    id: str
    status: Literal["running", "succeeded", "failed"]
    count: int | None = Field(default=None, description="Profiles in the file (when succeeded)")
    url: str | None = Field(default=None, description="Presigned GET of the JSON Lines file (when succeeded)")
    expiresIn: int | None = Field(default=None, description="Seconds the url works from this answer")


def _send_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return TypeAdapter(DateTimeInput).validate_python(value)
    except ValidationError:
        raise InvalidInput(
            "query.at", "must be a date and time with its offset, like 2026-12-24T18:00:00+01:00"
        ) from None


def position_of(cursor: dict[str, str] | None) -> audience.Position:
    """Shard number and key to continue after, from a cursor this API handed out (else InvalidInput)."""
    shards = audience_shards()
    if cursor is None:
        return 0, None
    shard = cursor.get("audience_shard", "")
    if shard not in shards or set(cursor) - {"audience_shard", "pk", "sk"}:
        raise InvalidInput("cursor", "is not a cursor of this list")
    if set(cursor) == {"audience_shard"}:
        return shards.index(shard), None
    if (
        set(cursor) != {"audience_shard", "pk", "sk"}
        or cursor["sk"] != "PROFILE"
        or not cursor["pk"].startswith("PROFILE#")
    ):
        raise InvalidInput("cursor", "is not a cursor of this list")
    return shards.index(shard), cursor


@router.get(
    "/api/topics/<topic>/audience",
    summary="Who may receive the topic on the channel at the send time, a page at a time",
    responses=documented(HTTPStatus.OK, "A page of the audience", NOT_FOUND, INVALID),
)
def audience_page(
    topic: TopicId,
    channel: Annotated[Channel, Query(description="email or sms")],
    at: Annotated[str | None, Query(max_length=64, description=SEND_TIME)] = None,
    cursor: Annotated[str | None, Query(max_length=2048, description="The previous page's next")] = None,
    limit: Annotated[int, Query(ge=1, le=audience.MAX_PAGE_SIZE)] = audience.PAGE_SIZE,
) -> Response[AudiencePage]:
    ports = adapters(router)
    query = audience.checked_query(ports, topic, channel, _send_time(at), "query.channel")
    items, following = audience.audience_page(ports, query, position_of(decode_cursor(cursor)), limit)
    return json_response(HTTPStatus.OK, {"items": items, "next": encode_cursor(following)})


@router.post(
    "/api/audience-exports",
    summary="Export the audience of a topic, channel and send time to a JSON Lines file (asynchronous)",
    responses=documented(
        HTTPStatus.ACCEPTED,
        "The export is running: ask GET /api/audience-exports/{id}",
        *WITH_CONTENT,
        NOT_FOUND,
        headers={"Location": {"description": "Where to ask for the export", "schema": {"type": "string"}}},
    ),
)
def start_export(body: ExportRequest) -> Response[ExportStarted]:
    ports = adapters(router)
    query = audience.checked_query(ports, body.topic, body.channel, body.at)
    wiring = bootstrap.wiring(get_settings())
    export_id = audience.start_export(ports, wiring.audience_exports, wiring.start_audience_export, query)
    metrics.add_metric(name="AudienceExportStarted", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.ACCEPTED, {"id": export_id}, {"Location": f"/api/audience-exports/{export_id}"})


@router.get(
    "/api/audience-exports/<export_id>",
    summary="An export's status; when it succeeded, its count and a time-limited link to the file",
    responses=documented(HTTPStatus.OK, "The export", NOT_FOUND, INVALID),
)
def export_status(export_id: ExportId) -> Response[ExportStatus]:
    settings = get_settings()
    wiring = bootstrap.wiring(settings)
    answer: dict[str, Any] = audience.export_status(
        wiring.audience_exports, wiring.export_files, export_id, settings.audience_export_link_seconds
    )
    return json_response(HTTPStatus.OK, answer)
