"""Links in emails: signed, scoped to one purpose, expiring, and still valid during key rotation."""

import pytest
from itsdangerous.timed import TimestampSigner

from selfservice.tokens import ExpiredToken, InvalidToken, Purpose, TokenSigner


def test_token_round_trip_gives_profile_and_version():
    signer = TokenSigner(["secret-1"])
    token = signer.issue("a" * 32, 4, Purpose.MANAGE)
    assert signer.verify(token, Purpose.MANAGE) == ("a" * 32, 4)


def test_token_for_another_purpose_is_refused():
    signer = TokenSigner(["secret-1"])
    token = signer.issue("a" * 32, 0, Purpose.UNSUBSCRIBE)
    with pytest.raises(InvalidToken):
        signer.verify(token, Purpose.MANAGE)


def test_tampered_token_is_refused():
    signer = TokenSigner(["secret-1"])
    token = signer.issue("a" * 32, 0, Purpose.MANAGE)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with pytest.raises(InvalidToken):
        signer.verify(forged, Purpose.MANAGE)
    with pytest.raises(InvalidToken):
        TokenSigner(["other-secret"]).verify(token, Purpose.MANAGE)


def test_expired_token_is_refused(monkeypatch):
    signer = TokenSigner(["secret-1"])
    token = signer.issue("a" * 32, 0, Purpose.CONFIRM)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 10**10)
    with pytest.raises(ExpiredToken):
        signer.verify(token, Purpose.CONFIRM)


def test_previous_key_still_verifies_during_rotation_and_new_tokens_use_the_newest():
    old = TokenSigner(["old"]).issue("a" * 32, 0, Purpose.MANAGE)
    rotating = TokenSigner(["old", "new"])
    assert rotating.verify(old, Purpose.MANAGE)[0] == "a" * 32
    fresh = rotating.issue("a" * 32, 0, Purpose.MANAGE)
    assert TokenSigner(["new"]).verify(fresh, Purpose.MANAGE)[0] == "a" * 32


def test_empty_secret_is_rejected():
    with pytest.raises(ValueError, match="secret"):
        TokenSigner([""])


def test_a_confirmation_can_name_the_request_it_confirms():
    signer = TokenSigner(["secret-1"])
    plain = signer.issue("a" * 32, 2, Purpose.CONFIRM)
    assert signer.claims(plain, Purpose.CONFIRM) == ("a" * 32, 2, None)
    bound = signer.issue("a" * 32, 2, Purpose.CONFIRM, request="r" * 32)
    assert signer.claims(bound, Purpose.CONFIRM).request == "r" * 32
    assert signer.verify(bound, Purpose.CONFIRM) == ("a" * 32, 2)


@pytest.mark.parametrize("token", ["é", "\ud800.x.y", "", "a.b.c"])
def test_a_token_that_is_no_link_text_is_refused(token):
    with pytest.raises(InvalidToken):
        TokenSigner(["secret-1"]).verify(token, Purpose.MANAGE)
