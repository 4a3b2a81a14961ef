"""Error messages of the pages: full sentences that name the field, in the page's language.

The domain's reasons (:class:`~selfservice.domain.errors.InvalidInput`) are short English phrases
the JSON API returns as they are ("has an invalid format"). A page shows a sentence of its own for
each, with the field's label as the customer sees it: next to the field and in the error summary
at the top, where the field is not in view.
"""

from __future__ import annotations

from collections.abc import Callable

from selfservice.catalog import Catalog
from selfservice.domain.errors import InvalidInput

Translate = Callable[[str], str]


def N_(text: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return text


REQUIRED = N_("Please fill in “{field}”.")
CHECK_ENTRY = N_("Please check this entry.")

# The page's sentence for each domain reason; {field} is the label of the field (or the name of
# the topic or service) the reason is about, other placeholders are the reason's own.
SENTENCES: dict[str, str] = {
    "this is not a valid email address": N_("Please enter a valid email address, like name@example.com."),
    "unknown choice {choice}": N_("Please choose one of the options for “{field}”."),
    "must be a text value": N_("Please enter text in “{field}”."),
    "at most {max} characters": N_("“{field}” can be at most {max} characters long."),
    "must be a date like 1990-04-23": N_("Please enter a complete date in “{field}”."),
    "must be a date between 1900 and today": N_("“{field}” must be a date between 1900 and today."),
    "must be a phone number in international form, like +49 151 23456789": N_(
        "Please enter “{field}” in international form, like +49 151 23456789."
    ),
    "has an invalid format": N_("“{field}” is not in the expected format. Please check your entry."),
    "must not be empty (send null to clear it)": REQUIRED,
    "unknown field": N_("“{field}” cannot be changed here."),
    "choose at least one topic": N_("Please choose at least one topic."),
    "unknown topic": N_("Please choose topics from the list."),
    "topic is not offered": N_("Please choose topics from the list."),
    "unknown frequency {frequency}": N_("Please choose how often you would like to hear from us."),
    "choose at least one channel": N_("Please choose at least one channel for “{field}”."),
    "{channel} is not offered for this topic": N_("Please choose one of the offered channels for “{field}”."),
    "must be in the future": N_("Please choose a pause that ends in the future."),
    "a pause lasts at most one year": N_("A pause can last at most one year."),
    "unknown service": N_("This service is not offered. Please choose from the list."),
    "unknown option {option}": N_("Please choose an option for “{field}” from the list."),
    "SMS needs a mobile number": N_(
        "SMS for “{field}” needs your mobile number. Please add it under Personal data first."
    ),
    "this service needs your {needed}": N_("“{field}” needs your “{needed}”. Please add it under Personal data first."),
    "a topic can be switched on only after the customer has confirmed a subscription by email": N_(
        "To receive “{field}”, please subscribe again: we will send you an email to confirm it."
    ),
    # Customer service's replies (the request API); a page never sends these.
    "must not be empty": REQUIRED,
    "a request can be moved to in_progress or closed": N_("Please choose “in progress” or “closed”."),
    "send a status, a reply or both": N_("Please choose a status or write a reply."),
    # The consent-proof check (the JSON API); a page never sends it.
    "is not an IPv4 or IPv6 address": N_("Please enter an IPv4 or IPv6 address."),
}


def field_label(path: str, catalog: Catalog | None, language: str, translate: Translate) -> str:
    """What the customer calls the thing at ``path`` (a field, topic or service), or ""."""
    section, _dot, key = path.partition(".")
    if path == "email":
        return translate("Email address")
    if catalog is None:
        return ""
    if section == "fields" and (spec := catalog.field(key)):
        return spec.label.get(language)
    if section == "services" and (service := catalog.service(key)):
        return service.name.get(language)
    if path.startswith(("preferences.channels.", "preferences.topics.")):
        topic = catalog.topic(path.rsplit(".", 1)[1])
        return topic.name.get(language) if topic else ""
    return ""


def sentence(
    error: InvalidInput, translate: Translate, catalog: Catalog | None = None, language: str = "en", label: str = ""
) -> str:
    """The page's full sentence for ``error``, naming its field (``label``, else found in ``catalog``)."""
    label = label or field_label(error.field, catalog, language, translate)
    template = SENTENCES.get(error.reason)
    if template is None or ("{field}" in template and not label):
        return translate(CHECK_ENTRY)
    params = {key: str(value) for key, value in error.params.items()}
    if "needed" in params and catalog is not None and (needed := catalog.field(params["needed"])):
        params["needed"] = needed.label.get(language)
    return translate(template).format(field=label, **params)


def required(label: str, translate: Translate) -> str:
    return translate(REQUIRED).format(field=label)


def error_key(path: str) -> str:
    """The form control a domain error belongs to (its id on the page)."""
    section, _dot, key = path.partition(".")
    if section in ("fields", "services"):
        return key
    if path.startswith("preferences.channels."):
        return f"channel-{path.rsplit('.', 1)[1]}"
    if path == "preferences.paused_until":
        return "pause_weeks"
    if path.startswith("preferences.topics."):
        return "topics"
    return "frequency" if section == "preferences" else path
