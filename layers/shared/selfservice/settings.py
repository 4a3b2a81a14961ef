"""Runtime settings, read from the environment when first asked for — never at import time."""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfservice.catalog import Catalog, cached_catalog

# Locally (tests, the local stack) the content lives in the repository's templates/ folder;
# on Lambda the content layer is extracted to /opt and CONTENT_DIR says so.
_REPOSITORY_CONTENT = Path(__file__).resolve().parents[3] / "templates"

# Used only when no SSM parameter is configured (local stack and tests); never on AWS.
DEVELOPMENT_TOKEN_SECRET = "local-development-only-not-a-secret"  # noqa: S105

MAX_REVIEW_BATCH_SIZE = 1000
"""The most profiles one review sender invocation accepts; ``ReviewBatchSize``'s MaxValue in template.yaml."""


class RateLimit(BaseModel):
    """At most ``attempts`` in any ``window`` (a sliding window: in every span of that length)."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(ge=1, le=100)
    window: dt.timedelta


class FormLimits(BaseModel):
    """How often one form may be used for one address and from one client (IPv6: its /64 network)."""

    model_config = ConfigDict(frozen=True)

    per_address: tuple[RateLimit, ...]
    per_client: tuple[RateLimit, ...]


class RateLimits(BaseModel):
    """The limits of the two forms anyone can fill in with an address, all in one place.

    ``/subscribe`` mails a confirmation and ``/new-link`` a link to whatever address is typed in: per
    address the limits keep an inbox from being flooded, per client they keep one client from mailing
    many strangers or probing many addresses. An attempt over a limit gets the same answer as any
    other, and nothing is sent.
    """

    model_config = ConfigDict(frozen=True)

    subscribe: FormLimits = FormLimits(
        per_address=(
            RateLimit(attempts=1, window=dt.timedelta(minutes=10)),
            RateLimit(attempts=3, window=dt.timedelta(days=1)),
        ),
        per_client=(RateLimit(attempts=10, window=dt.timedelta(hours=1)),),
    )
    new_link: FormLimits = FormLimits(
        per_address=(RateLimit(attempts=3, window=dt.timedelta(hours=1)),),
        per_client=(RateLimit(attempts=10, window=dt.timedelta(hours=1)),),
    )
    accessibility: FormLimits = FormLimits(
        per_address=(),
        per_client=(RateLimit(attempts=5, window=dt.timedelta(hours=1)),),
    )
    """The accessibility statement's feedback form without signing in (it mails the service mailbox)."""
    sms_code: FormLimits = FormLimits(
        per_address=(
            RateLimit(attempts=5, window=dt.timedelta(hours=1)),
            RateLimit(attempts=10, window=dt.timedelta(days=1)),
        ),
        per_client=(
            RateLimit(attempts=10, window=dt.timedelta(hours=1)),
            RateLimit(attempts=30, window=dt.timedelta(days=1)),
        ),
    )
    """SMS codes sent, per mobile number and per client: every SMS costs money, and a form that texts
    any number is what SMS pumping fraud looks for. (The JSON API counts per number only: its callers
    are the shop and customer service, signed with IAM.)"""
    sms_check: FormLimits = FormLimits(
        per_address=(RateLimit(attempts=25, window=dt.timedelta(hours=1)),),
        per_client=(RateLimit(attempts=30, window=dt.timedelta(hours=1)),),
    )
    """Codes entered, per mobile number and per client (each code also takes only the catalog's
    ``sms.code_attempts`` wrong entries): a million codes cannot be tried."""


class Settings(BaseModel):
    """Each field from the environment variable of its name in any case (``TABLE_NAME``), else its
    default; values given to the constructor win over the environment.

    (What pydantic-settings does for these plain fields, without importing it: a cold start saves
    its import.)
    """

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    def __init__(self, **values: Any) -> None:
        environment = {name.lower(): value for name, value in os.environ.items()}
        from_environment = {name: environment[name] for name in type(self).model_fields if name in environment}
        super().__init__(**{**from_environment, **values})

    stage: str = "local"
    table_name: str = "selfservice-local"
    event_bus_name: str = "selfservice-local"
    company_name: str = "Example Shop"
    sender_address: str = "service@example.com"
    service_mailbox: str = "customer-service@example.com"
    ses_configuration_set: str = "selfservice-local"
    public_base_url: str = "http://127.0.0.1:3000"
    token_secret_parameter: str = ""
    review_shard_count: int = Field(default=16, ge=1, le=64)
    review_batch_size: int = Field(default=500, ge=1, le=MAX_REVIEW_BATCH_SIZE)
    """The most profiles one page hands to one invocation of the review sender (the run may make
    pages smaller, so a slow SES rate still sends a page well within the sender's timeout)."""
    review_event_delay_hours: int | None = Field(default=None, ge=0)
    """Hours between a purchase/closed request and its review email; None: the catalog's value."""
    ses_max_send_rate: float = Field(default=14, gt=0)
    """The account's SES sending quota in emails per second; bounds the campaign's concurrency."""
    address_request_function: str = ""
    """The function that answers /subscribe and /new-link by email after the page has answered."""
    import_bucket: str = ""
    """S3 bucket of import jobs: the uploaded JSON Lines files, their batch plans and reports."""
    import_job_state_machine: str = ""
    """ARN of the state machine that imports an uploaded file batch by batch."""
    review_dead_letter_queue_url: str = ""
    """SQS queue that keeps malformed review events (empty: they are only logged)."""
    audience_export_state_machine_arn: str = ""
    """The state machine that writes an audience export (the API starts it)."""
    audience_export_bucket: str = ""
    """The S3 bucket of audience export files."""
    audience_export_link_seconds: int = Field(default=900, ge=60, le=43200)
    """How long the presigned link to an export file works."""
    powertools_metrics_namespace: str = "SelfService"
    """CloudWatch namespace of the metrics (Powertools reads the same variable)."""
    sms_sender_id: str = Field(default="", max_length=11)
    """Alphanumeric sender ID shown on the customer's phone (where the country allows one); empty: none."""
    sms_origination_number: str = Field(default="", pattern=r"^$|^\+[1-9][0-9]{4,14}$")
    """The number SMS are sent from (E.164) and which takes STOP replies; empty: AWS picks one."""
    content_dir: Path = _REPOSITORY_CONTENT
    max_body_bytes: int = Field(default=16_384, ge=1024)
    max_import_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """The body of ``POST /api/imports`` (1,000 rows); Lambda takes at most 6 MB per invocation."""
    rate_limits: RateLimits = RateLimits()

    @property
    def catalog_path(self) -> Path:
        return self.content_dir / "catalog.yaml"

    @property
    def catalog(self) -> Catalog:
        return cached_catalog(self.catalog_path)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process (cached: environment variables do not change in a Lambda)."""
    return Settings()
