"""The composition root: the one place that turns settings into wired adapters and use-case ports.

Every handler asks :func:`wiring` for what it needs. Parts are built on first use (a cold start
pays only for what its function touches) and kept for warm invocations. Tests replace single
parts with :func:`override`; :func:`reset` (between tests, which switch endpoints) forgets the
wirings and the cached boto3 clients, so the next call builds everything again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from selfservice import aws
from selfservice.catalog import Catalog
from selfservice.domain.models import Profile
from selfservice.domain.pause import pause_note_due
from selfservice.domain.review import next_review_at
from selfservice.handoff import LambdaHandOff
from selfservice.mail import EmailRenderer, Mailer
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET, Settings, get_settings
from selfservice.storage import AudienceExportRepository, CampaignRunRepository, ProfileRepository
from selfservice.texting import SmsSender, SnsSmsSender
from selfservice.tokens import Purpose, TokenSigner
from selfservice.usecases import access
from selfservice.usecases.ports import Adapters, HandOff
from selfservice.web.render import PageRenderer
from selfservice.web.session import SessionCodec

if TYPE_CHECKING:  # the review campaigns and import jobs are imported by the functions that run them
    from selfservice.campaigns import ReviewCampaigns
    from selfservice.exports import ExportFiles
    from selfservice.usecases.import_jobs import ImportJobs


def load_token_secrets(settings: Settings) -> list[str]:
    """Signing secrets, newest last: from SSM on AWS (cached 5 min), the development default locally."""
    if not settings.token_secret_parameter:
        return [DEVELOPMENT_TOKEN_SECRET]
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(settings.token_secret_parameter, decrypt=True, max_age=300)
    return [secret.strip() for secret in str(value).split(",") if secret.strip()]


class Wiring:
    """Real adapters for one set of settings, each built when first asked for."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def dynamodb(self) -> Any:
        return aws.client("dynamodb")

    @cached_property
    def catalog(self) -> Catalog:
        return self.settings.catalog

    @cached_property
    def clock(self) -> Callable[[], dt.datetime]:
        """The time every use case goes by (tests replace it with ``override(clock=…)``)."""
        return partial(dt.datetime.now, dt.UTC)

    @cached_property
    def repository(self) -> ProfileRepository:
        catalog = self.catalog
        return ProfileRepository(
            self.settings.table_name,
            self.dynamodb,
            schedule=lambda profile: next_review_at(profile, catalog),
            shard_count=self.settings.review_shard_count,
            pause_note=lambda profile: pause_note_due(profile, catalog.pause.reminder_days_before),
        )

    @cached_property
    def mailer(self) -> Mailer:
        settings = self.settings
        return Mailer(
            aws.client("sesv2"),
            self.repository,
            settings.sender_address,
            settings.ses_configuration_set,
            settings.stage,
            suppression=self.repository,
        )

    @cached_property
    def email_renderer(self) -> EmailRenderer:
        return EmailRenderer(self.settings.content_dir, self.settings.public_base_url)

    @cached_property
    def sms(self) -> SmsSender:
        settings = self.settings
        return SnsSmsSender(aws.client("sns"), settings.sms_sender_id, settings.sms_origination_number)

    @cached_property
    def handoff(self) -> HandOff:
        return LambdaHandOff(self.settings.address_request_function)

    def signer(self) -> TokenSigner:
        """Asked for on every use, so a rotated secret is picked up within the parameter cache time."""
        return TokenSigner(load_token_secrets(self.settings))

    @cached_property
    def adapters(self) -> Adapters:
        """What the use cases work with."""
        return Adapters(
            settings=self.settings,
            catalog=self.catalog,
            repository=self.repository,
            mailer=self.mailer,
            renderer=self.email_renderer,
            signer=self.signer,
            handoff=self.handoff,
            sms=self.sms,
            clock=self.clock,
        )

    def link(self, profile: Profile, purpose: Purpose, path: str) -> str:
        """A link with a token for ``profile`` (the local stack's demo profiles show theirs)."""
        return access.link(self.adapters, profile, purpose, path)

    @cached_property
    def campaigns(self) -> ReviewCampaigns:
        from selfservice.campaigns import DeadLetters, ReviewCampaigns

        return ReviewCampaigns(
            profiles=self.adapters,
            runs=CampaignRunRepository(self.settings.table_name, self.dynamodb),
            dead_letters=DeadLetters(aws.client("sqs"), self.settings.review_dead_letter_queue_url),
        )

    @cached_property
    def audience_exports(self) -> AudienceExportRepository:
        return AudienceExportRepository(self.settings.table_name, self.dynamodb)

    @cached_property
    def export_files(self) -> ExportFiles:
        from selfservice.exports import ExportFiles

        return ExportFiles(aws.client("s3"), self.settings.audience_export_bucket)

    def start_audience_export(self, export_id: str, payload: dict[str, Any]) -> None:
        """Start the export's state machine execution, named by the export id (a repeat is refused)."""
        import json

        aws.client("stepfunctions").start_execution(
            stateMachineArn=self.settings.audience_export_state_machine_arn, name=export_id, input=json.dumps(payload)
        )

    @cached_property
    def import_jobs(self) -> ImportJobs:
        from selfservice.storage import ImportJobRepository
        from selfservice.usecases.import_jobs import ImportJobs

        return ImportJobs(
            adapters=self.adapters,
            jobs=ImportJobRepository(self.settings.table_name, self.dynamodb),
            s3=aws.client("s3"),
            stepfunctions=aws.client("stepfunctions"),
            bucket=self.settings.import_bucket,
            state_machine=self.settings.import_job_state_machine,
        )

    @cached_property
    def pages(self) -> PageRenderer:
        return PageRenderer(self.settings.content_dir)

    @cached_property
    def sessions(self) -> SessionCodec:
        return SessionCodec(load_token_secrets(self.settings))


_MAX_WIRINGS = 4
"""Pages and API build links from the request's domain when PUBLIC_BASE_URL is empty (see
:mod:`selfservice.origin`), so a process may see a few settings; each keeps its own wiring."""
_wirings: OrderedDict[Settings, Wiring] = OrderedDict()
_overrides: dict[str, Any] = {}
_lock = threading.Lock()


def wiring(settings: Settings | None = None) -> Wiring:
    """The wiring for ``settings`` (default: this process's settings), built once and reused."""
    settings = settings or get_settings()
    with _lock:
        found = _wirings.get(settings)
        if found is None:
            found = Wiring(settings)
            found.__dict__.update(_overrides)
            _wirings[settings] = found
        _wirings.move_to_end(settings)
        while len(_wirings) > _MAX_WIRINGS:
            _wirings.popitem(last=False)
        return found


def reset() -> None:
    """Forget every wiring and the cached boto3 clients (tests and benches switch endpoints)."""
    with _lock:
        _wirings.clear()
    aws.reset_clients()


def adapters(settings: Settings | None = None) -> Adapters:
    """The use cases' ports for ``settings`` (default: this process's settings)."""
    return wiring(settings).adapters


@contextmanager
def override(**parts: Any) -> Iterator[None]:
    """Tests: replace parts (``repository=…``, ``campaigns=…``) of every wiring built meanwhile."""
    with _lock:
        saved = dict(_overrides)
        _overrides.update(parts)
        _wirings.clear()
    try:
        yield
    finally:
        with _lock:
            _overrides.clear()
            _overrides.update(saved)
            _wirings.clear()
