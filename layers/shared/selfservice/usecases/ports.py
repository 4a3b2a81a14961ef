"""What every use case works with: settings, catalog and the adapters (storage, mail, bus, tokens, clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from selfservice.catalog import Catalog
from selfservice.events import EventPublisher
from selfservice.mail import EmailRenderer, Mailer
from selfservice.settings import Settings
from selfservice.storage import ProfileRepository
from selfservice.tokens import TokenSigner


@dataclass
class Adapters:
    """The ports of the use cases; built by :mod:`selfservice.bootstrap`, replaced part by part in tests."""

    settings: Settings
    catalog: Catalog
    repository: ProfileRepository
    mailer: Mailer
    renderer: EmailRenderer
    publisher: EventPublisher
    signer: Callable[[], TokenSigner]
    clock: Callable[[], dt.datetime] = field(default=partial(dt.datetime.now, dt.UTC))
