"""`make serve`: DELETE /v1/contacts/{contactId} reaches the erase function (unsigned locally,
as the other IAM routes), and collection drops the erased contact's later events."""

from __future__ import annotations

import pytest

from local.serve_client import WEB_KEY, LocalServer

pytestmark = pytest.mark.slow


def test_a_contact_is_erased_through_the_local_api(server: LocalServer, uid: str) -> None:
    user, email = f"u-{uid}", f"jo-{uid}@acme-{uid}.com"
    answer = server.request("POST", "/v1/identify", basic_user=WEB_KEY,
                            body={"userId": user, "traits": {"email": email, "name": "Jo Serve"}})
    assert answer.status == 200, answer.body
    server.drain()
    assert server.contact(user)["email"] == email

    erased = server.request("DELETE", f"/v1/contacts/{email.replace('@', '%40')}")

    assert erased.status == 202, erased.body
    body = erased.json()
    assert body["status"] == "done" and body["erased"]["contact"] == 2  # hers and her email's
    assert server.request("GET", f"/v1/contacts/{user}").status == 404
    later = server.request("POST", "/v1/track", basic_user=WEB_KEY, body={"userId": user, "event": "Demo Requested"})
    assert later.status == 200 and later.json()["dropped"][0]["reason"] == "erased"
    assert server.request("DELETE", f"/v1/contacts/{user}").json()["erased"]["contact"] == 0
    assert server.request("DELETE", f"/v1/contacts/nobody-{uid}").status == 404
