"""What every use case works with: settings, catalog and the adapters (storage, mail, SMS, tokens,
hand-off, clock), and what crosses the hand-off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from selfservice.catalog import Catalog
from selfservice.domain.models import Language
from selfservice.mail import EmailRenderer, Mailer
from selfservice.settings import Settings
from selfservice.storage import ProfileRepository
from selfservice.texting import SmsSender
from selfservice.tokens import TokenSigner


class AddressRequest(BaseModel):
    """What ``/subscribe`` or ``/new-link`` asked for, handed from the page to the worker that answers
    it by email (:mod:`selfservice.usecases.address_requests`).

    ``email`` has passed the domain's check, ``topics`` the catalog's; ``base_url`` is where the
    page's links point (the domain the customer is on). No raw IP address or user agent: the consent
    evidence travels as its salted hash.
    """

    # Built at the first hand-off (most page requests make none).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["subscribe", "new_link"]
    email: str = Field(min_length=3, max_length=320)
    base_url: str = Field(pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    requested_at: dt.datetime
    topics: tuple[str, ...] = ()
    locale: Language = "de"
    evidence: dict[str, str] = Field(default_factory=dict)


class HandOff(Protocol):
    """Runs an :class:`AddressRequest` after the page has answered, in another invocation."""

    def submit(self, request: AddressRequest) -> None: ...


@dataclass
class Adapters:
    """The ports of the use cases; built by :mod:`selfservice.bootstrap`, replaced part by part in tests."""

    settings: Settings
    catalog: Catalog
    repository: ProfileRepository
    mailer: Mailer
    renderer: EmailRenderer
    signer: Callable[[], TokenSigner]
    handoff: HandOff
    sms: SmsSender
    clock: Callable[[], dt.datetime] = field(default=partial(dt.datetime.now, dt.UTC))
