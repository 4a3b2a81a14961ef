"""Audience export steps (state machine ``audience_export``).

``plan``: the index shards the Distributed Map reads in parallel; ``shard``: one invocation over one
shard (from its cursor), its audience written as one part file; ``combine``: the parts joined into
the export's JSON Lines file, the export marked succeeded with its count; ``fail``: marked failed.
"""

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from selfservice.bootstrap import wiring
from selfservice.domain.audience import AUDIENCE_SHARD_COUNT
from selfservice.observability import new_tracer
from selfservice.usecases import audience

logger = Logger()
tracer = new_tracer()
metrics = Metrics()

ExportId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class _Step(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Plan(_Step):
    step: Literal["plan"]
    exportId: ExportId


class Shard(_Step):
    step: Literal["shard"]
    exportId: ExportId
    topic: str = Field(min_length=1, max_length=64)
    channel: Literal["email", "sms"]
    at: AwareDatetime
    shard: int = Field(ge=0, lt=AUDIENCE_SHARD_COUNT)
    cursor: dict[str, str] | None = None
    sequence: int = Field(default=0, ge=0)
    count: int = Field(default=0, ge=0)
    read: int = Field(default=0, ge=0)


class Combine(_Step):
    step: Literal["combine"]
    exportId: ExportId
    shards: list[dict[str, Any]]


class Fail(_Step):
    step: Literal["fail"]
    exportId: ExportId


STEPS: TypeAdapter[Plan | Shard | Combine | Fail] = TypeAdapter(
    Annotated[Plan | Shard | Combine | Fail, Field(discriminator="step")]
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = STEPS.validate_python(event)
    parts = wiring()
    if isinstance(step, Plan):
        return {"shards": list(range(AUDIENCE_SHARD_COUNT))}
    if isinstance(step, Shard):
        query = audience.AudienceQuery(step.topic, step.channel, step.at)
        done = audience.export_shard(
            parts.adapters,
            parts.export_files,
            step.exportId,
            query,
            step.shard,
            step.cursor,
            step.sequence,
            lambda: context.get_remaining_time_in_millis() / 1000,
        )
        return {
            "cursor": done["cursor"],
            "sequence": done["sequence"],
            "count": step.count + done["count"],
            "read": step.read + done["read"],
        }
    if isinstance(step, Combine):
        count = sum(int(shard.get("count", 0)) for shard in step.shards)
        read = sum(int(shard.get("read", 0)) for shard in step.shards)
        result = audience.combine_export(
            parts.adapters, parts.export_files, parts.audience_exports, step.exportId, count
        )
        metrics.add_metric(name="AudienceExportProfilesRead", unit=MetricUnit.Count, value=read)
        metrics.add_metric(name="AudienceExportProfilesKept", unit=MetricUnit.Count, value=count)
        return {**result, "read": read}
    audience.fail_export(parts.adapters, parts.audience_exports, step.exportId)
    metrics.add_metric(name="AudienceExportFailed", unit=MetricUnit.Count, value=1)
    return {"status": "failed"}
