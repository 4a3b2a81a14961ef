"""The forms anyone can fill in with an address, answered by email after the page has answered.

``/subscribe`` and ``/new-link`` tell the customer "if this address is ours, an email is on its
way" at once, for every address alike: the page only checks the form, counts the limits and hands
an :class:`~selfservice.usecases.ports.AddressRequest` over. Here, in another invocation, it is
decided what the address gets, and the email sent. What the page does, and how long it takes,
therefore never depends on whether the address is known.
"""

from __future__ import annotations

from selfservice.usecases import access, subscription
from selfservice.usecases.ports import Adapters, AddressRequest


def handle(adapters: Adapters, request: AddressRequest) -> str:
    """Answer ``request`` by email if the address is to get one; returns what happened."""
    if request.kind == "new_link":
        return access.send_new_link(adapters, request.email)
    return subscription.subscribe(adapters, request)
