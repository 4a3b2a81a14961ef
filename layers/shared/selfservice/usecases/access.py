"""Access without passwords: links that carry a signed token, a fresh link by email, signing out everywhere."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from selfservice.domain.errors import NotFound
from selfservice.domain.models import LedgerEntry, LedgerKind, Profile, Source, address_hash
from selfservice.mail import SendOutcome
from selfservice.tokens import LIFETIMES, InvalidToken, Purpose
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)


def link(adapters: Adapters, profile: Profile, purpose: Purpose, path: str, *, request: str | None = None) -> str:
    """An absolute link to ``path`` carrying a token for ``profile`` and ``purpose`` (and ``request``)."""
    token = adapters.signer().issue(profile.id, profile.token_version, purpose, request=request)
    return f"{adapters.settings.public_base_url.rstrip('/')}{path}?token={token}"


def check_token_version(profile: Profile, token_version: int) -> None:
    """ "Sign out on all devices" bumped the profile's token version: older links and sessions end."""
    if profile.token_version != token_version:
        raise InvalidToken("revoked")


def open_link(adapters: Adapters, token: str) -> Profile:
    """The profile a manage link is for (raises InvalidToken/ExpiredToken/NotFound)."""
    profile_id, token_version = adapters.signer().verify(token, Purpose.MANAGE)
    profile = adapters.repository.get(profile_id)
    check_token_version(profile, token_version)
    return profile


def signed_in_profile(adapters: Adapters, profile_id: str, token_version: int) -> Profile:
    """The profile of a session (one GetItem); InvalidToken when it was signed out everywhere meanwhile."""
    try:
        profile = adapters.repository.get(profile_id)
    except NotFound:
        raise InvalidToken("gone") from None
    check_token_version(profile, token_version)
    return profile


def send_self_service_link(adapters: Adapters, profile_id: str, source: Source) -> SendOutcome:
    """Email the customer a link to their pages (transactional: sent even without newsletter consent)."""
    profile = adapters.repository.get(profile_id)
    email = adapters.renderer.render(
        "self_service_link",
        profile.locale,
        marketing=False,
        link=link(adapters, profile, Purpose.MANAGE, "/link"),
        valid_days=LIFETIMES[Purpose.MANAGE].days,
        first_name=profile.value_of("first_name") or "",
        recipient=profile.email,
        company=adapters.settings.company_name,
    )
    outcome = adapters.mailer.send(profile, email, source, now=adapters.clock())
    logger.info("self-service link sent", extra={"profile_id": profile_id, "message_id": outcome.message_id})
    return outcome


def send_new_link(adapters: Adapters, email: str) -> str:
    """ "Email me a new link", after the page has answered (:mod:`~selfservice.usecases.address_requests`):
    a link to a known address that is not on the suppression list (a bounced, complaining or erased
    address gets nothing). Returns what happened, for the log and metrics."""
    profile = adapters.repository.find_by_email(email)
    if profile is None:
        return "unknown_address"
    if adapters.repository.is_suppressed(address_hash(email)):
        logger.info("new link for a suppressed address not sent", extra={"profile_id": profile.id})
        return "suppressed"
    send_self_service_link(adapters, profile.id, Source.PAGE)
    return "sent"


def sign_out_everywhere(adapters: Adapters, current: Profile, source: Source) -> Profile:
    """Bump the token version: every older link and session stops working."""
    now = adapters.clock()
    updated = current.model_copy(
        update={"token_version": current.token_version + 1, "version": current.version + 1, "updated_at": now}
    )
    entry = LedgerEntry(profile_id=current.id, at=now, kind=LedgerKind.SIGNED_OUT_EVERYWHERE, source=source)
    adapters.repository.save(updated, current.version, [entry])
    return updated
