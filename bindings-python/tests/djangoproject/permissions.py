"""What each user's browser may read and write on the hub (settings.HUBBUB["PERMISSIONS"])."""


def for_user(user):
    read = [f"user:{user.pk}", "room:*"]
    if user.is_staff:
        read.append("staff:*")
    return {"read": read, "write": ["room:*"]}
