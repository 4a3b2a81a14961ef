"""What each page shows: plain dictionaries built from the profile, the catalog and the language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from selfservice.accessibility import Results, conformance
from selfservice.catalog import Catalog, FieldSpec
from selfservice.domain.consent import receiving_topics
from selfservice.domain.models import CustomerRequest, LedgerEntry, LedgerKind, Profile, SubscriptionStatus
from selfservice.domain.proof import ConsentProof
from selfservice.domain.review import completeness, missing_required_fields, stale_fields
from selfservice.domain.sms import SmsChallenge, sms_state, sms_topics
from selfservice.formats import format_date
from selfservice.web.forms import FormData

Translate = Callable[[str], str]


def N_(text: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return text


# The pages of a signed-in customer, in menu order (tests and the page bench visit all of them).
SIGNED_IN_PAGES = (
    "/",
    "/profile",
    "/communication",
    "/services",
    "/requests",
    "/history",
    "/privacy",
    "/privacy/delete",
    "/review",
)

STATUS_LABELS = {
    SubscriptionStatus.SUBSCRIBED: N_("subscribed"),
    SubscriptionStatus.PENDING: N_("waiting for your confirmation"),
    SubscriptionStatus.UNSUBSCRIBED: N_("unsubscribed"),
    SubscriptionStatus.NOT_SUBSCRIBED: N_("not subscribed"),
}
REQUEST_STATUS = {"open": N_("received"), "in_progress": N_("in progress"), "closed": N_("closed")}
LEDGER_TITLES = {
    LedgerKind.PROFILE_CREATED: N_("Profile created"),
    LedgerKind.PROFILE_CHANGED: N_("Data changed"),
    LedgerKind.CONSENT_GIVEN: N_("Consent given"),
    LedgerKind.CONSENT_WITHDRAWN: N_("Consent withdrawn"),
    LedgerKind.REVIEW_REQUESTED: N_("Asked to review your data"),
    LedgerKind.REVIEW_CONFIRMED: N_("You confirmed your data"),
    LedgerKind.REQUEST_SUBMITTED: N_("Request sent"),
    LedgerKind.REQUEST_UPDATED: N_("Customer service worked on your request"),
    LedgerKind.SIGNED_OUT_EVERYWHERE: N_("Signed out on all devices"),
    LedgerKind.EMAIL_SKIPPED: N_("Email not sent"),
    LedgerKind.ADDRESS_SUPPRESSED: N_("Address blocked for newsletters (undeliverable or complaint)"),
    LedgerKind.SMS_CODE_SENT: N_("Code sent by SMS"),
}
# Who or what made a change, as the history says it after the title ("Data changed (by you on this page)").
SOURCES = {
    "api": N_("by the shop or customer service"),
    "page": N_("by you on this page"),
    "one-click": N_("by one-click unsubscribe in your email program"),
    "confirmation-link": N_("with the link in the confirmation email"),
    "customer-service": N_("by customer service"),
    "shop": N_("by the shop"),
    "system": N_("automatically"),
    "import": N_("taken over with the consent you had given us before"),
    "sms-keyword": N_("by your reply to our SMS"),
}
# The answers of the unsubscribe page's "Would you tell us why?" (the same texts as its options).
UNSUBSCRIBE_REASONS = {
    "too_many": N_("Too many emails"),
    "not_relevant": N_("Not relevant for me"),
    "never_signed_up": N_("I never signed up"),
    "other": N_("Something else"),
}
# Why a newsletter was not sent (``selfservice.domain.review.why_not_marketing``).
SKIP_REASONS = {
    "suppressed": N_("the address cannot receive newsletters (undeliverable or complaint)"),
    "unconfirmed": N_("the subscription was not confirmed yet"),
    "not_subscribed": N_("no newsletter subscribed"),
    "paused": N_("newsletters paused"),
}


def display_value(spec: FieldSpec, value: Any, language: str) -> str:
    """A stored value as the customer reads it: choice labels, dates in the language's form."""
    if value is None or value == "":
        return ""
    if spec.type == "date":
        try:
            return format_date(str(value), language)
        except ValueError:
            return str(value)
    if spec.type in ("choice", "multi_choice"):
        labels = {choice.id: choice.label.get(language) for choice in spec.choices}
        values = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(str(v), str(v)) for v in values)
    return str(value)


def subscription_state(profile: Profile) -> dict[str, Any]:
    """What the pages say about the subscription: a confirmed one without topics receives nothing."""
    status = profile.status
    if status == SubscriptionStatus.SUBSCRIBED and not receiving_topics(profile):
        status = SubscriptionStatus.NOT_SUBSCRIBED
    return {"subscription": status, "receiving": status == SubscriptionStatus.SUBSCRIBED, "email": profile.email}


def overview(profile: Profile, catalog: Catalog, language: str, now: dt.datetime, _: Translate) -> dict[str, Any]:
    labels = {spec.id: spec.label.get(language) for spec in catalog.fields}
    frequency = catalog.frequency(profile.preferences.frequency)
    complete = completeness(profile, catalog)
    stale = stale_fields(profile, catalog, now)
    required_missing = missing_required_fields(profile, catalog)
    state = subscription_state(profile)
    status = state["subscription"]
    receiving = set(receiving_topics(profile))
    return {
        "first_name": profile.value_of("first_name") or "",
        "percent": complete.percent,
        "missing": [labels[f] for f in complete.missing],
        "stale": [labels[f] for f in stale],
        "focus": ",".join([*complete.missing, *stale]),
        "required_missing": [labels[f] for f in required_missing],
        "missing_link": "/profile?focus=" + ",".join(required_missing),
        **state,
        "status_label": _(STATUS_LABELS[status]),
        "paused_until": profile.preferences.paused_until if profile.preferences.is_paused(now) else None,
        "subscribed": [t.name.get(language) for t in catalog.visible_topics() if t.id in receiving],
        "frequency": frequency.label.get(language) if frequency else profile.preferences.frequency,
        "version": profile.version,
    }


def personal_data(
    profile: Profile,
    catalog: Catalog,
    language: str,
    now: dt.datetime,
    form: FormData | None = None,
    focus: list[str] | None = None,
) -> dict[str, Any]:
    """Fields in catalog order, those named in ``focus`` (e.g. from a review email) first."""
    stale = set(stale_fields(profile, catalog, now))
    fields = []
    for spec in catalog.fields:
        stored = profile.fields.get(spec.id)
        stored_value: Any = stored.value if stored else ([] if spec.type == "multi_choice" else "")
        value = stored_value
        if form is not None:
            value = form.get(spec.id, []) if spec.type == "multi_choice" else (form.get(spec.id) or [""])[0]
        fields.append(
            {
                "id": spec.id,
                "type": spec.type,
                "label": spec.label.get(language),
                "required": spec.required,
                "max_length": spec.max_length,
                "value": value,
                "stale": spec.id in stale,
                "confirmed_at": stored.confirmed_at if stored else None,
                # Shown next to what the customer typed when it differs from what is stored.
                "stored": display_value(spec, stored_value or None, language) if value != stored_value else None,
                "choices": [{"id": c.id, "label": c.label.get(language)} for c in spec.choices],
            }
        )
    wanted = [f for f in (focus or []) if catalog.field(f)]
    fields.sort(key=lambda field: wanted.index(field["id"]) if field["id"] in wanted else len(wanted))
    address_change = catalog.request_type("address_change")
    return {
        "fields": fields,
        "email": profile.email,
        "version": profile.version,
        "missing": [labels_by_id(catalog, language)[f] for f in missing_required_fields(profile, catalog)],
        "address_change": address_change.label.get(language) if address_change else "",
    }


def communication(
    profile: Profile,
    catalog: Catalog,
    language: str,
    now: dt.datetime,
    form: FormData | None = None,
    sms_code: SmsChallenge | None = None,
) -> dict[str, Any]:
    prefs = profile.preferences
    chosen_topics = set(form.get("topic", [])) if form is not None else None
    topics = []
    for topic in catalog.visible_topics():
        on = topic.id in chosen_topics if chosen_topics is not None else bool(prefs.topics.get(topic.id))
        picked = form.get(f"channel-{topic.id}", []) if form is not None else prefs.channels_for(topic.id)
        expected = catalog.frequency(topic.expected_frequency)
        topics.append(
            {
                "id": topic.id,
                "name": topic.name.get(language),
                "description": topic.description.get(language),
                "cadence": expected.cadence.get(language) if expected else "",
                "on": on,
                "channels": [
                    {
                        "id": channel_id,
                        "label": next(c.label.get(language) for c in catalog.channels if c.id == channel_id),
                        "on": channel_id in picked,
                    }
                    for channel_id in topic.channels
                ],
            }
        )
    current = (form.get("frequency") or [prefs.frequency])[0] if form is not None else prefs.frequency
    return {
        "topics": topics,
        "frequencies": [
            {"id": f.id, "label": f.label.get(language), "on": f.id == current} for f in catalog.frequencies
        ],
        "paused_until": prefs.paused_until if prefs.is_paused(now) else None,
        "version": profile.version,
        "consent_text": catalog.current_consent(now.date()).text.get(language),
        "sms": sms_view(profile, catalog, language, now, sms_code),
        **subscription_state(profile),
    }


def sms_view(
    profile: Profile, catalog: Catalog, language: str, now: dt.datetime, code: SmsChallenge | None
) -> dict[str, Any]:
    """The SMS double opt-in on the communication page: pending (a code to enter, or to ask for) or active."""
    state = sms_state(profile)
    names = [t.name.get(language) for topic_id in sms_topics(profile) if (t := catalog.topic(topic_id))]
    return {
        "state": state,
        "phone": profile.phone or "",
        "topics": ", ".join(names),
        "code_sent": code is not None,
        "code_expires_at": code.expires_at if code is not None else None,
        "wording": catalog.sms.current_consent(now.date()).text.get(language) if catalog.sms else "",
    }


def services(profile: Profile, catalog: Catalog, language: str) -> dict[str, Any]:
    shown = []
    for service in catalog.services:
        booking = profile.services.get(service.id)
        shown.append(
            {
                "id": service.id,
                "name": service.name.get(language),
                "description": service.description.get(language),
                "booked": booking is not None,
                "booked_at": booking.booked_at if booking else None,
                "options": [
                    {"id": o.id, "label": o.label.get(language), "on": bool(booking and booking.option == o.id)}
                    for o in service.options
                ],
            }
        )
    return {"services": shown, "version": profile.version}


def request_type_label(catalog: Catalog, type_id: str, language: str) -> str:
    spec = catalog.request_type(type_id)
    return spec.label.get(language) if spec else type_id


def requests(
    found: list[CustomerRequest], catalog: Catalog, language: str, _: Translate, form: FormData | None = None
) -> dict[str, Any]:
    return {
        "request_types": [(spec.id, spec.label.get(language)) for spec in catalog.request_types],
        "requests": [
            {
                "created_at": r.created_at,
                "type_label": request_type_label(catalog, r.type.value, language),
                "message": r.message,
                "status_label": _(REQUEST_STATUS[r.status.value]),
                "replies": [{"at": reply.at, "text": reply.text} for reply in r.replies],
            }
            for r in found
        ],
        "form": {"type": (form or {}).get("type", [""])[0], "message": (form or {}).get("message", [""])[0]},
    }


def _change_line(
    entry_field: str, before: Any, after: Any, catalog: Catalog, language: str, _: Translate
) -> str | None:
    """One change as the customer reads it: the catalog's label and values in the page's language,
    never internal paths or ids. None for what the entry's title already says."""
    section, _dot, key = entry_field.partition(".")
    old, new = ("" if before is None else str(before)), ("" if after is None else str(after))
    label = _(entry_field)
    if section == "fields" and (spec := catalog.field(key)):
        label, old, new = (
            spec.label.get(language),
            display_value(spec, before, language),
            display_value(spec, after, language),
        )
    elif entry_field.startswith("preferences.topics.") and (topic := catalog.topic(entry_field.rsplit(".", 1)[1])):
        label = topic.name.get(language)
        old, new = (
            (_("subscribed") if before else _("not subscribed")),
            (_("subscribed") if after else _("not subscribed")),
        )
    elif entry_field.startswith("preferences.channels.") and (topic := catalog.topic(entry_field.rsplit(".", 1)[1])):
        label = _("Channels for “%(topic)s”") % {"topic": topic.name.get(language)}
        names = {c.id: c.label.get(language) for c in catalog.channels}
        old, new = ", ".join(names.get(c, c) for c in before or []), ", ".join(names.get(c, c) for c in after or [])
    elif entry_field == "preferences.frequency":
        label = _("How often")
        old, new = (
            (f.label.get(language) if (f := catalog.frequency(str(before))) else old),
            (f.label.get(language) if (f := catalog.frequency(str(after))) else new),
        )
    elif entry_field == "preferences.paused_until":
        label = _("Pause until")
        old = format_date(dt.datetime.fromisoformat(old), language) if old else ""
        new = format_date(dt.datetime.fromisoformat(new), language) if new else ""
    elif section == "services" and (service := catalog.service(key)):
        label = service.name.get(language)
        old = o.label.get(language) if before and (o := service.option(before)) else _("not booked")
        new = o.label.get(language) if after and (o := service.option(after)) else _("not booked")
    elif entry_field == "status":
        label = _("Newsletter subscription")
        old, new = (_(STATUS_LABELS[SubscriptionStatus(v)]) if v in STATUS_VALUES else v for v in (old, new))
    elif entry_field == "suppressed":
        return None  # the title says it: "Address blocked for newsletters"
    elif entry_field == "verified_phone":
        label = _("Mobile number confirmed for SMS")
    elif entry_field == "email":
        label = _("Email address")
    elif entry_field == "locale":
        label = _("Language")
        old, new = (_language_name(v, language) for v in (old, new))
    return f"{label}: {old or '–'} → {new or '–'}"


STATUS_VALUES = {status.value for status in SubscriptionStatus}


def _language_name(code: str, language: str) -> str:
    """A language code as the page's language names it ("de": "Deutsch" or "German")."""
    if not code:
        return ""
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(code).get_language_name(language) or code
    except (ValueError, UnknownLocaleError):
        return code


def _detail_lines(entry: LedgerEntry, catalog: Catalog, language: str, _: Translate) -> list[str]:
    """What an entry's detail adds for the customer: the reason given, the request's type."""
    lines = []
    detail = entry.detail
    if detail.get("channel") == "sms" or entry.kind == LedgerKind.SMS_CODE_SENT:
        lines.append(_("By SMS to %(phone)s") % {"phone": detail.get("phone") or "–"})
    if entry.kind == LedgerKind.CONSENT_WITHDRAWN and detail.get("reason") in UNSUBSCRIBE_REASONS:
        reason = UNSUBSCRIBE_REASONS[detail["reason"]]
        lines.append(_("Your reason: %(reason)s") % {"reason": _(reason)})
        if detail.get("reason_text"):
            lines.append(_("Your note: %(text)s") % {"text": detail["reason_text"]})
    elif entry.kind == LedgerKind.EMAIL_SKIPPED:
        if detail.get("subject"):
            lines.append(_("Email: %(subject)s") % {"subject": detail["subject"]})
        if detail.get("reason") in SKIP_REASONS:
            why = SKIP_REASONS[detail["reason"]]
            lines.append(_("Why: %(reason)s") % {"reason": _(why)})
    elif entry.kind in (LedgerKind.REQUEST_SUBMITTED, LedgerKind.REQUEST_UPDATED) and detail.get("type"):
        lines.append(request_type_label(catalog, detail["type"], language))
        if entry.kind == LedgerKind.REQUEST_UPDATED:
            if detail.get("replied") == "yes":
                lines.append(_("A reply is on your requests page."))
            if (state := REQUEST_STATUS.get(detail.get("status", ""))) is not None:
                lines.append(_("Status: %(status)s") % {"status": _(state)})
    return lines


def _newsletter_lines(entry: LedgerEntry, catalog: Catalog, language: str, _: Translate) -> list[str]:
    """Why a reported newsletter came: on which channel, and the topic the customer chose."""
    detail = entry.detail
    channels: dict[str, str] = {channel.id: channel.label.get(language) for channel in catalog.channels}
    channel = detail.get("channel", "")
    topic = catalog.topic(detail.get("topic", ""))
    name = topic.name.get(language) if topic else detail.get("topic", "")
    return [
        _("Newsletter by %(channel)s") % {"channel": channels.get(channel, channel)},
        _("Because you chose “%(topic)s”") % {"topic": name},
    ]


def history(entries: list[LedgerEntry], catalog: Catalog, language: str, _: Translate) -> dict[str, Any]:
    """What happened (changes, consents, requests …) and what we sent: our emails and reported newsletters."""
    changes: list[dict[str, Any]] = []
    emails: list[dict[str, Any]] = []
    for entry in entries:
        if entry.kind == LedgerKind.NEWSLETTER_SENT:
            lines = _newsletter_lines(entry, catalog, language, _)
            emails.append({"at": entry.at, "subject": entry.detail.get("subject", ""), "lines": lines})
            continue
        if "message_id" in entry.detail:  # an email sent, possibly recorded as what it stands for
            emails.append({"at": entry.at, "subject": entry.detail.get("subject", ""), "lines": []})
        if entry.kind == LedgerKind.EMAIL_SENT:
            continue
        lines = [
            line
            for c in entry.changes
            if (line := _change_line(c.field, c.before, c.after, catalog, language, _)) is not None
        ]
        if entry.consent_version:
            lines.append(_("Consent wording version %s") % entry.consent_version)
        if entry.topics:
            names = ", ".join(t.name.get(language) if (t := catalog.topic(tid)) else tid for tid in entry.topics)
            lines.append(_("Topics: %(topics)s") % {"topics": names})
        lines += _detail_lines(entry, catalog, language, _)
        changes.append(
            {
                "at": entry.at,
                "title": _(LEDGER_TITLES.get(entry.kind, entry.kind.value)),
                "source": _(SOURCES.get(entry.source.value, entry.source.value)),
                "lines": lines,
            }
        )
    return {"changes": changes, "emails": emails}


def labels_by_id(catalog: Catalog, language: str) -> dict[str, str]:
    return {spec.id: spec.label.get(language) for spec in catalog.fields}


def review(profile: Profile, catalog: Catalog, language: str) -> dict[str, Any]:
    """The review page: every value, and the required ones still missing (they come before confirming)."""
    missing = missing_required_fields(profile, catalog)
    return {
        "email": profile.email,
        "version": profile.version,
        "missing": [labels_by_id(catalog, language)[f] for f in missing],
        "missing_link": "/profile?focus=" + ",".join(missing),
        "fields": [
            {"label": spec.label.get(language), "display": display_value(spec, profile.value_of(spec.id), language)}
            for spec in catalog.fields
        ],
    }


def subscribe_topics(catalog: Catalog, language: str, chosen: set[str]) -> list[dict[str, Any]]:
    """The topics offered on the subscribe page, with the ones already ticked."""
    return [
        {"id": t.id, "name": t.name.get(language), "description": t.description.get(language), "on": t.id in chosen}
        for t in catalog.visible_topics()
    ]


def topic_names(catalog: Catalog, language: str, topic_ids: list[str]) -> list[str]:
    return [t.name.get(language) for topic_id in topic_ids if (t := catalog.topic(topic_id))]


# Through which door a consent came, as the consent proof names it for an operator, a court or a regulator.
DOORS = {
    "page": N_("the self-service pages"),
    "api": N_("the JSON API (shop or customer service)"),
    "one-click": N_("one-click unsubscribe in the email program (RFC 8058)"),
    "confirmation-link": N_("the link in the double opt-in email"),
    "customer-service": N_("customer service"),
    "shop": N_("the shop"),
    "system": N_("automatically"),
    "import": N_("an import of existing subscribers"),
}
EVIDENCE_ROLES = {
    "action": N_("the click that gave or withdrew the consent"),
    "request": N_("the form that asked for the double opt-in"),
}


def consent_proof(document: ConsentProof, catalog: Catalog, language: str, _: Translate) -> dict[str, Any]:
    """The consent-proof document (:class:`selfservice.domain.proof.ConsentProof`) with the catalog's
    names: topics, channels and doors in the page's language, timestamps in UTC as recorded."""
    channel_names: dict[str, str] = {c.id: c.label.get(language) for c in catalog.channels}
    channel_names["all"] = _("every channel")

    def topic_name(topic_id: str) -> str:
        topic = catalog.topic(topic_id)
        return f"{topic.name.get(language)} ({topic_id})" if topic else topic_id

    def door(source: str) -> str:
        return _(DOORS[source]) if source in DOORS else source

    consents = [
        {
            "record": record,
            "topics": ", ".join(topic_name(t) for t in record.topics),
            "channel": channel_names.get(record.channel, record.channel),
            "door": door(record.door),
            "request_door": door(record.request.source) if record.request else "",
            "reason": _(UNSUBSCRIBE_REASONS[record.reason]) if record.reason in UNSUBSCRIBE_REASONS else record.reason,
            "evidence": [
                {"role": _(EVIDENCE_ROLES.get(e.role, e.role)), "salt": e.salt, "hash": e.hash} for e in record.evidence
            ],
        }
        for record in document.consents
    ]
    current = [
        {
            "state": state,
            "topic": topic_name(state.topic),
            "channel": channel_names.get(state.channel, state.channel),
        }
        for state in document.current
    ]
    return {
        "proof": document,
        "status_label": _(STATUS_LABELS[SubscriptionStatus(document.status)]),
        "consents": consents,
        "current": current,
    }


# The checks the browser tests record (tests/e2e), as the accessibility statement names them.
ACCESSIBILITY_CHECKS = {
    "axe": N_("Automated check with axe-core against the rules of WCAG 2.0, 2.1 and 2.2, levels A and AA"),
    "menu_by_keyboard": N_("Every menu item can be reached with the Tab key and is in view when it has the focus"),
    "error_summary_focus": N_(
        "After a failed submit the focus is on the list of errors, and each of its links leads to its field"
    ),
    "feedback_by_keyboard": N_("The feedback form on this page can be filled in and sent with the keyboard alone"),
    "footer_link_by_keyboard": N_(
        "The link to this statement in the footer can be reached and opened with the keyboard"
    ),
}


def accessibility(
    results: Results | None, catalog: Catalog, language: str, _: Translate, form: FormData | None = None
) -> dict[str, Any]:
    """The accessibility statement: the status from the test results (:mod:`selfservice.accessibility`)
    and the catalog's known limitations, what was tested (grouped by check and page), the enforcement body."""
    info = catalog.company.accessibility
    limitations = [text.get(language) for text in info.known_limitations]
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for check in results.checks if results else ():
        group = groups.setdefault(
            (check.name, check.page),
            {
                "name": _(ACCESSIBILITY_CHECKS[check.name]) if check.name in ACCESSIBILITY_CHECKS else check.name,
                "page": check.page,
                "languages": set(),
                "viewports": set(),
                "passed": True,
                "problems": [],
            },
        )
        group["languages"].add(check.language)
        if check.viewport:
            group["viewports"].add(check.viewport)
        group["passed"] = group["passed"] and check.passed
        group["problems"] += [f"{v.rule}: {v.help}" for v in check.violations if v.wcag]
    checks = [
        {
            **group,
            "languages": ", ".join(sorted(group["languages"])),
            "viewports": ", ".join(sorted(group["viewports"])),
        }
        for _key, group in sorted(groups.items(), key=lambda item: (item[0][0] != "axe", item[0][0], item[0][1]))
    ]
    enforcement = info.enforcement
    return {
        "conformance": conformance(results, len(limitations)).value,
        "results": results,
        "checks": checks,
        "failed": [check for check in checks if not check["passed"]],
        "pages_checked": len({check["page"] for check in checks}),
        "limitations": limitations,
        "enforcement": {
            "name": enforcement.name.get(language),
            "address": enforcement.address,
            "phone": enforcement.phone,
            "email": enforcement.email,
            "url": enforcement.url,
        },
        "website_statement": company_statement(catalog, language),
        "form": {"message": (form or {}).get("message", [""])[0], "email": (form or {}).get("email", [""])[0]},
    }


def company_statement(catalog: Catalog, language: str) -> str | None:
    url = catalog.company.accessibility_statement_url
    return url.get(language) if url else None
