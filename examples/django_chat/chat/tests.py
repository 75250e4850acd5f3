"""The chat's answers to hubbub's hooks, posted and signed as the hub posts them.

    python manage.py test chat

No hub is needed: the requests are signed with `hubbub.sign_hook`, the hub's own code, and
the one call Django makes to the hub (presence, for room.members) is replaced. The whole
flow with a real hub and real browsers is tests/django_chat/chat.test.mjs.
"""

import json
import time
from unittest import mock

import hubbub
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, TestCase

from .models import Room


def hook(path, body, secret=None, headers=None):
    """POSTs `body` to a hook receiver, signed as the hub signs it."""
    raw = json.dumps(body).encode()
    now = int(time.time())
    signature = hubbub.sign_hook(secret or settings.HUBBUB["HOOK_SECRET"], now, raw)
    return Client().post(
        path,
        raw,
        content_type="application/json",
        headers={"X-Hubbub-Timestamp": str(now), "X-Hubbub-Signature": signature, **(headers or {})},
    )


class ChatHooks(TestCase):
    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.staff = User.objects.create_user("staff", password="staff", is_staff=True)
        cls.guest = User.objects.create_user("guest", password="guest")
        cls.lobby = Room.objects.create(title="Lobby")
        cls.lounge = Room.objects.create(title="Staff lounge", staff_only=True)

    def session_cookie(self, user):
        """The Cookie header a logged-in browser sends with its WebSocket upgrade."""
        client = Client()
        client.force_login(user)
        return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    def connect(self, cookie=None):
        headers = {"cookie": cookie} if cookie else {}
        answer = hook("/hubbub/connect", {"client": "c1", "ip": "127.0.0.1", "headers": headers})
        self.assertEqual(answer.status_code, 200)
        return answer.json()

    def subscribe(self, user, channel):
        body = {"client": "c1", "user": str(user.pk) if user else None, "channel": channel}
        answer = hook("/hubbub/subscribe", {**body, "clients_in_channel": [], "clients_count": 0})
        self.assertEqual(answer.status_code, 200)
        return answer.json()

    def rpc(self, user, method, data):
        body = {"client": "c1", "user": str(user.pk) if user else None, "method": method, "data": data}
        answer = hook("/hubbub/rpc", body)
        self.assertEqual(answer.status_code, 200)
        return answer.json()

    def test_the_page_carries_no_token(self):
        client = Client()
        client.force_login(self.guest)
        page = client.get("/")
        self.assertEqual(page.status_code, 200)
        self.assertEqual(page.context["hubbub"], {"url": settings.HUBBUB_WEBSOCKET_URL})
        # Nothing like a token (a JWT starts with the base64 of '{"'), only the CSRF one.
        self.assertNotIn(b"eyJ", page.content)

    def test_the_session_cookie_identifies_the_connection(self):
        answer = self.connect(self.session_cookie(self.guest))
        self.assertEqual(answer["user"], str(self.guest.pk))
        self.assertEqual(answer["info"], {"username": "guest", "is_staff": False})
        self.assertEqual(answer["read"], ["room:*"])
        self.assertEqual(answer["write"], [])
        self.assertGreater(answer["expires_in"], 0)

        staff = self.connect(self.session_cookie(self.staff))
        self.assertEqual(staff["user"], str(self.staff.pk))
        self.assertEqual(staff["read"], ["room:*", "staff:room:*"])

    def test_no_session_is_anonymous(self):
        self.assertEqual(self.connect(), {})
        self.assertEqual(self.connect(f"{settings.SESSION_COOKIE_NAME}=not-a-session"), {})

    def test_everyone_logged_in_joins_a_public_room(self):
        for user in (self.guest, self.staff):
            self.assertEqual(self.subscribe(user, self.lobby.channel), {"allow": True})

    def test_the_staff_room_is_refused_to_non_staff_with_the_reason(self):
        self.assertEqual(self.lounge.channel, f"staff:room:{self.lounge.pk}")
        self.assertEqual(
            self.subscribe(self.guest, self.lounge.channel),
            {"allow": False, "reason": "Staff lounge is for staff only"},
        )
        self.assertEqual(self.subscribe(self.staff, self.lounge.channel), {"allow": True})

    def test_anonymous_connections_join_nothing(self):
        answer = self.subscribe(None, self.lobby.channel)
        self.assertFalse(answer["allow"])
        self.assertRegex(answer["reason"], "^log in first")

    def test_a_channel_that_is_not_a_room_is_refused(self):
        for channel in (
            f"room:{self.lounge.pk}",  # the staff room under the public prefix
            f"staff:room:{self.lobby.pk}",  # and the other way round
            "room:999",
            "room:lobby",
        ):
            with self.subTest(channel=channel):
                self.assertEqual(
                    self.subscribe(self.staff, channel), {"allow": False, "reason": "no such room"}
                )

    def test_room_members_from_the_hubs_presence(self):
        present = {
            "channel": self.lobby.channel,
            "clients": [
                {"client": "a", "user": str(self.staff.pk), "info": {"username": "staff"}},
                {"client": "b", "user": str(self.guest.pk), "info": {"username": "guest"}},
                {"client": "c", "user": str(self.guest.pk), "info": {"username": "guest"}},
            ],
        }
        with mock.patch("chat.hubbub_hooks.publisher") as publisher:
            publisher.return_value.presence.return_value = present
            answer = self.rpc(self.guest, "room.members", {"room": self.lobby.pk})
        publisher.return_value.presence.assert_called_once_with(self.lobby.channel)
        self.assertEqual(answer, {"data": {"room": self.lobby.pk, "members": ["guest", "staff"]}})

    def test_room_members_is_refused_where_the_room_is(self):
        with mock.patch("chat.hubbub_hooks.publisher") as publisher:
            cases = [
                (self.guest, {"room": self.lounge.pk}, "ACCESS_DENIED", "Staff lounge is for staff only"),
                (None, {"room": self.lobby.pk}, "ACCESS_DENIED", None),
                (self.staff, {"room": 999}, "NOT_FOUND", "no such room"),
                (self.staff, {"room": str(self.lobby.pk)}, "NOT_FOUND", "no such room"),
                (self.staff, None, "NOT_FOUND", "no such room"),
            ]
            for user, data, code, reason in cases:
                with self.subTest(user=user, data=data):
                    error = self.rpc(user, "room.members", data)["error"]
                    self.assertEqual(error["code"], code)
                    if reason:
                        self.assertEqual(error["reason"], reason)
            # Nothing about a room is asked of the hub for someone who may not see it.
            publisher.return_value.presence.assert_not_called()

    def test_an_unknown_method(self):
        error = self.rpc(self.staff, "room.delete", {"room": self.lobby.pk})["error"]
        self.assertEqual(error["code"], "METHOD_NOT_FOUND")

    def test_a_request_not_signed_with_the_shared_secret_is_refused(self):
        body = {"client": "c1", "user": str(self.staff.pk), "channel": self.lounge.channel}
        with self.assertLogs("hubbub", "WARNING") as logs:
            answer = hook("/hubbub/subscribe", body, secret="not-the-secret")
        self.assertIn("bad signature", logs.output[0])
        self.assertEqual(answer.status_code, 403)
        self.assertEqual(answer.json()["err"], "ACCESS_DENIED")
