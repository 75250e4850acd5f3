"""What each user's connection may read and write on hubbub, besides joining rooms.

Settings point at this function (`HUBBUB["PERMISSIONS"]`); the connect hook's answer
(`hubbub.django`, from the session cookie) carries these patterns to the hub.

Joining a room is not decided here: the rooms' namespaces have `subscribe_hook = true`, so
the hub asks Django (chat/hubbub_hooks.py) about every subscription to them. The hub still
checks these patterns for what a connection reads about a channel without subscribing to
it, a room's history and presence: staff-only rooms live under `staff:room:`, which only
staff may read, so a non-staff user cannot read them that way either.

Browsers never write: every message goes through the `send` view, which checks the user
and the room, then publishes.
"""

PUBLIC_ROOMS = "room:*"
STAFF_ROOMS = "staff:room:*"


def channel_permissions(user):
    read = [PUBLIC_ROOMS]
    if user.is_staff:
        read.append(STAFF_ROOMS)
    return {"read": read, "write": []}
