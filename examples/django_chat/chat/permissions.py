"""What each user's browser may read and write on hubbub.

Settings point at this function (`HUBBUB["PERMISSIONS"]`); `hubbub.django.connection_token`
calls it for the logged-in user and puts the patterns in the token, and the hub enforces
them: a non-staff user who tries to join a staff-only room is refused by the hub itself
(`ACCESS_DENIED`), whatever the page does.

Browsers never write: every message goes through the `send` view, which checks the user
and the room, then publishes.
"""

PUBLIC_ROOMS = "room:*"
STAFF_ROOMS = "staff:*"


def channel_permissions(user):
    read = [PUBLIC_ROOMS]
    if user.is_staff:
        read.append(STAFF_ROOMS)
    return {"read": read, "write": []}
