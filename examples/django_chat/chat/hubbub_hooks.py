"""What Django answers when hubbub asks (the `[hooks]` of hubbub.toml).

- **connect** needs nothing here: `hubbub.django` answers it from the session cookie the
  browser sent with its WebSocket upgrade (the logged-in user, their read patterns from
  chat/permissions.py, their username and staff flag as info), and anonymous (`{}`) when
  no logged-in session came with it.
- **subscribe**: joining a room asks Django, which allows the room's users and refuses
  everyone else with a reason the page shows. The hub asks for every `room:*` and
  `staff:room:*` channel (`subscribe_hook = true`) and refuses when Django cannot be
  reached, so this is the one place that decides who listens to a room.
- **rpc** `room.members`: who is in a room right now, as usernames.

chat/apps.py imports this module, which registers the functions.
"""

from django.contrib.auth import get_user_model
from hubbub.django import Deny, RpcError, on_subscribe, publisher, rpc

from .models import Room


def room_of_channel(channel):
    """The room whose channel is exactly `channel`, or None.

    Exactly: `room:3` is not staff-only room 3 (whose channel is `staff:room:3`), so a
    public-looking name cannot reach a staff room's messages.
    """
    pk = channel.rpartition(":")[2]
    room = Room.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
    return room if room is not None and room.channel == channel else None


def refusal(room, user):
    """Why `user` may not use `room`, or None when they may (the rule of Room.allows)."""
    if not user.is_authenticated:
        # The page is only served to logged-in users, so the session cookie did not reach
        # the hub (the page on another host name than the hub's), or the session ended.
        return "log in first: this connection has no Django session"
    if not room.allows(user):
        return f"{room.title} is for staff only"
    return None


@on_subscribe("room:*")
@on_subscribe("staff:room:*")
def join_room(identity, subscription):
    """Allows the room's users in; refuses anyone else, with the reason.

    No initial messages: the page reads the room's recent messages from its history (with
    their offsets, which keep them in order with the live ones and shown once).
    """
    room = room_of_channel(subscription.channel)
    if room is None:
        return Deny("no such room")
    reason = refusal(room, identity.user)
    if reason is not None:
        return Deny(reason)
    return True


@rpc("room.members")
def room_members(identity, data):
    """`{"room": id}` -> `{"room": id, "members": [usernames]}`: the users connected to the
    room now, from the hub's presence of its channel, named from the database."""
    room_id = data.get("room") if isinstance(data, dict) else None
    # An int, as the page sends it (a bool is an int to Python, but no room's id).
    valid = isinstance(room_id, int) and not isinstance(room_id, bool)
    room = Room.objects.filter(pk=room_id).first() if valid else None
    if room is None:
        raise RpcError("NOT_FOUND", "no such room")
    reason = refusal(room, identity.user)
    if reason is not None:
        raise RpcError("ACCESS_DENIED", reason)
    # The hub's HTTP API, called from inside the hook: the hub holds nothing while it waits
    # for this answer (PROTOCOL.md section 10).
    present = publisher().presence(room.channel)["clients"]
    # The hub knows users by the ids the connect hook gave (primary keys, as strings).
    user_ids = {c["user"] for c in present if str(c.get("user") or "").isdigit()}
    User = get_user_model()
    users = User._default_manager.filter(pk__in=user_ids, is_active=True)
    return {"room": room.pk, "members": sorted(user.get_username() for user in users)}
