"""Application services: the use cases the handlers call, wired to storage, mail, tokens and the bus.

Handlers stay thin: they parse the request, call one method here and map the result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from selfservice import aws
from selfservice.catalog import Catalog
from selfservice.domain.changes import (
    MAX_EMAIL_LENGTH,
    FieldsInput,
    PreferencesPatch,
    ProfilePatch,
    ServicesInput,
    apply_patch,
    checked_email,
    default_preferences,
    describe,
)
from selfservice.domain.errors import AlreadyExists, InvalidInput, NotFound, VersionConflict
from selfservice.domain.models import (
    CustomerRequest,
    Language,
    LedgerEntry,
    LedgerKind,
    Profile,
    RequestType,
    Source,
    SubscriptionStatus,
    address_hash,
)
from selfservice.domain.review import next_review_at
from selfservice.events import EventPublisher
from selfservice.mail import EmailRenderer, Mailer, SendOutcome
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET, Settings
from selfservice.storage import ProfileRepository
from selfservice.subscriptions import CONFIRMATION_WINDOW, SubscriptionUseCases
from selfservice.tokens import LIFETIMES, Purpose, TokenSigner

logger = Logger(child=True)


class NewProfile(BaseModel):
    """Create a profile: only the email is required; the rest is optional initial data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Annotated[str, StringConstraints(min_length=3, max_length=MAX_EMAIL_LENGTH)]
    locale: Language = "de"
    fields: FieldsInput | None = Field(default=None, max_length=64)
    preferences: PreferencesPatch | None = None
    services: ServicesInput | None = Field(default=None, max_length=64)
    subscribe: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None = Field(
        default=None,
        max_length=32,
        description="Topics the customer asked for: the profile stays pending until they confirm the email.",
    )


def load_token_secrets(settings: Settings) -> list[str]:
    """Signing secrets, newest last: from SSM on AWS (cached 5 min), the development default locally."""
    if not settings.token_secret_parameter:
        return [DEVELOPMENT_TOKEN_SECRET]
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(settings.token_secret_parameter, decrypt=True, max_age=300)
    return [secret.strip() for secret in str(value).split(",") if secret.strip()]


@dataclass
class ProfileService(SubscriptionUseCases):
    settings: Settings
    catalog: Catalog
    repository: ProfileRepository
    mailer: Mailer
    renderer: EmailRenderer
    publisher: EventPublisher
    signer: Callable[[], TokenSigner]
    clock: Callable[[], dt.datetime] = field(default=partial(dt.datetime.now, dt.UTC))

    # --- queries ------------------------------------------------------------------------
    def get(self, profile_id: str) -> Profile:
        return self.repository.get(profile_id)

    def find(self, email: str) -> Profile:
        profile = self.repository.find_by_email(email)
        if profile is None:
            raise NotFound("email")
        return profile

    def history(self, profile_id: str, limit: int = 100) -> list[LedgerEntry]:
        self.repository.get(profile_id)
        return self.repository.history(profile_id, limit)

    # --- commands -----------------------------------------------------------------------
    def create(self, data: NewProfile, source: Source) -> Profile:
        now = self.clock()
        email = checked_email(data.email)
        if self.repository.find_by_email(email) is not None:
            raise AlreadyExists(email)
        blank = Profile(
            email=email,
            locale=data.locale,
            preferences=default_preferences(self.catalog),
            created_at=now,
            updated_at=now,
        )
        initial = ProfilePatch(fields=data.fields, preferences=data.preferences, services=data.services)
        profile, changes = apply_patch(blank, initial, self.catalog, now)
        profile.version = 1
        entry = LedgerEntry(
            profile_id=profile.id, at=now, kind=LedgerKind.PROFILE_CREATED, source=source, changes=changes
        )
        opt_in = data.subscribe is not None
        if data.subscribe is not None and self.repository.is_suppressed(address_hash(email)):
            # A hard-bounced, complaining or erased address: no confirmation email, no subscription.
            logger.info("opt-in for a suppressed address not started")
            opt_in = False
        if opt_in and data.subscribe is not None:
            topics = self._checked_topics(data.subscribe)
            profile.status = SubscriptionStatus.PENDING
            profile.pending_expires_at = now + CONFIRMATION_WINDOW
            profile.preferences.topics.update(dict.fromkeys(topics, True))
            entry.topics = topics
            entry.detail = {"consent_requested": self.catalog.current_consent(now.date()).version}
        self.repository.create(profile, [entry])
        logger.info("profile created", extra={"profile_id": profile.id, "source": source.value})
        if opt_in:
            self._send_confirmation(profile, profile.preferences.subscribed_topics())
        return profile

    def update(self, profile_id: str, patch: ProfilePatch, expected_version: int | None, source: Source) -> Profile:
        """Apply ``patch``; with ``expected_version`` a stale caller gets :class:`VersionConflict`.

        Without it the patch applies to the version just read — still conditional, so a
        concurrent write in between also gives a conflict rather than a lost update.
        """
        current = self.repository.get(profile_id)
        if expected_version is not None and expected_version != current.version:
            raise VersionConflict(expected_version, current.version)
        now = self.clock()
        updated, changes = apply_patch(current, patch, self.catalog, now)
        if not changes:
            return current
        entry = LedgerEntry(
            profile_id=profile_id, at=now, kind=LedgerKind.PROFILE_CHANGED, source=source, changes=changes
        )
        self.repository.save(updated, current.version, [entry], previous_email=current.email)
        logger.info(
            "profile changed",
            extra={"profile_id": profile_id, "fields": [c.field for c in changes], "source": source.value},
        )
        self.publisher.publish(
            "ProfileChanged",
            {"profileId": profile_id, "version": updated.version, "source": source.value, "changes": describe(changes)},
        )
        return updated

    def delete(self, profile_id: str) -> int:
        profile = self.repository.get(profile_id)
        erased = self.repository.erase(profile)
        logger.info("profile erased", extra={"profile_id": profile_id, "items": erased})
        return erased

    def send_self_service_link(self, profile_id: str, source: Source) -> SendOutcome:
        """Email the customer a link to their pages (transactional: sent even without newsletter consent)."""
        profile = self.repository.get(profile_id)
        email = self.renderer.render(
            "self_service_link",
            profile.locale,
            marketing=False,
            link=self.link(profile, Purpose.MANAGE, "/link"),
            valid_days=LIFETIMES[Purpose.MANAGE].days,
            first_name=profile.value_of("first_name") or "",
            recipient=profile.email,
            company=self.settings.company_name,
        )
        outcome = self.mailer.send(profile, email, source, now=self.clock())
        logger.info("self-service link sent", extra={"profile_id": profile_id, "message_id": outcome.message_id})
        return outcome


def export_document(
    profile: Profile, ledger: list[LedgerEntry], found: list[CustomerRequest], exported_at: dt.datetime
) -> dict[str, Any]:
    """The download of "my data": profile, requests and the whole ledger, nothing internal."""
    return {
        "exported_at": exported_at.isoformat(),
        "profile": profile.model_dump(mode="json", exclude={"token_version"}),
        "requests": [request.model_dump(mode="json") for request in found],
        "history": [entry.model_dump(mode="json") for entry in ledger],
    }


RATE_WINDOW = dt.timedelta(hours=1)
NEW_LINKS_PER_ADDRESS = 3
NEW_LINKS_PER_CLIENT = 10


@dataclass
class SelfService(ProfileService):
    """Use cases of the hosted pages, on top of the profile use cases."""

    def confirm_all(self, profile_id: str, expected_version: int, source: Source) -> Profile:
        """ "Everything is still correct": every stored field counts as confirmed now."""
        current = self.repository.get(profile_id)
        if expected_version != current.version:
            raise VersionConflict(expected_version, current.version)
        now = self.clock()
        updated = current.model_copy(deep=True)
        for value in updated.fields.values():
            value.confirmed_at = now
        updated.last_reviewed_at = now
        updated.updated_at = now
        updated.version = current.version + 1
        entry = LedgerEntry(
            profile_id=profile_id,
            at=now,
            kind=LedgerKind.REVIEW_CONFIRMED,
            source=source,
            detail={"fields": ",".join(sorted(updated.fields))},
        )
        self.repository.save(updated, current.version, [entry])
        logger.info("profile confirmed", extra={"profile_id": profile_id, "source": source.value})
        return updated

    def sign_out_everywhere(self, profile_id: str, source: Source) -> Profile:
        """Bump the token version: every older link and session stops working."""
        current = self.repository.get(profile_id)
        now = self.clock()
        updated = current.model_copy(
            update={"token_version": current.token_version + 1, "version": current.version + 1, "updated_at": now}
        )
        entry = LedgerEntry(profile_id=profile_id, at=now, kind=LedgerKind.SIGNED_OUT_EVERYWHERE, source=source)
        self.repository.save(updated, current.version, [entry])
        return updated

    def submit_request(
        self, profile_id: str, request_type: RequestType, message: str, source: Source
    ) -> CustomerRequest:
        """Store the request, put RequestSubmitted on the bus and email the service mailbox."""
        profile = self.repository.get(profile_id)
        now = self.clock()
        request = CustomerRequest(
            profile_id=profile_id, type=request_type, message=message, created_at=now, updated_at=now
        )
        entry = LedgerEntry(
            profile_id=profile_id,
            at=now,
            kind=LedgerKind.REQUEST_SUBMITTED,
            source=source,
            detail={"request_id": request.id, "type": request_type.value},
        )
        self.repository.add_request(request, entry)
        self.publisher.publish(
            "RequestSubmitted", {"requestId": request.id, "profileId": profile_id, "type": request_type.value}
        )
        language = self.catalog.default_language
        email = self.renderer.render(
            "service_request",
            language,
            marketing=False,
            request=request,
            profile=profile,
            recipient=self.settings.service_mailbox,
            company=self.settings.company_name,
        )
        self.mailer.send_internal(self.settings.service_mailbox, email, reply_to=profile.email)
        logger.info("request submitted", extra={"profile_id": profile_id, "request_id": request.id})
        return request

    def requests(self, profile_id: str) -> list[CustomerRequest]:
        return self.repository.requests(profile_id)

    def erase(self, profile_id: str) -> None:
        """Delete every item of the profile; keep the address only as a hash on the suppression list."""
        profile = self.repository.get(profile_id)
        self.repository.erase(profile)
        self.repository.suppress(address_hash(profile.email), "erased", self.clock())
        logger.info("profile erased by the customer", extra={"profile_id": profile_id})

    def request_new_link(self, address: str, client: str) -> None:
        """Send a fresh link if the address is known; the caller answers the same way either way.

        Limited per address and per client, so the form can be used neither to flood an inbox
        nor to probe many addresses.
        """
        now = self.clock()
        try:
            email = checked_email(address)
        except InvalidInput:
            return
        hashed = address_hash(email)
        client_key = hashlib.sha256(f"client:{client}".encode()).hexdigest()
        if not self.repository.count_attempt(f"client:{client_key}", NEW_LINKS_PER_CLIENT, RATE_WINDOW, now):
            logger.info("new-link request over the client limit")
            return
        if not self.repository.count_attempt(f"address:{hashed}", NEW_LINKS_PER_ADDRESS, RATE_WINDOW, now):
            logger.info("new-link request over the address limit")
            return
        profile = self.repository.find_by_email(email)
        if profile is None:
            return
        self.send_self_service_link(profile.id, Source.PAGE)


def build_service(settings: Settings, **overrides: Any) -> SelfService:
    """The composition root: real adapters for ``settings``; tests override single parts."""
    catalog = settings.catalog
    repository = ProfileRepository(
        settings.table_name,
        aws.client("dynamodb"),
        schedule=lambda profile: next_review_at(profile, catalog),
        shard_count=settings.review_shard_count,
    )
    parts: dict[str, Any] = {
        "settings": settings,
        "catalog": catalog,
        "repository": repository,
        "mailer": Mailer(
            aws.client("sesv2"),
            repository,
            settings.sender_address,
            settings.ses_configuration_set,
            settings.stage,
            suppression=repository,
        ),
        "renderer": EmailRenderer(settings.content_dir),
        "publisher": EventPublisher(
            aws.client("events"), settings.event_bus_name, settings.powertools_metrics_namespace
        ),
        "signer": lambda: TokenSigner(load_token_secrets(settings)),
    }
    parts.update(overrides)
    return SelfService(**parts)
