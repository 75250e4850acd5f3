from django.db import models


class Room(models.Model):
    """A chat room. Its messages go out on one hubbub channel; nothing is stored."""

    title = models.CharField(max_length=255)
    staff_only = models.BooleanField(
        default=False, help_text="Only staff users may join this room and post to it."
    )

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def channel(self) -> str:
        """The room's hubbub channel.

        Staff-only rooms live under `staff:` and public rooms under `room:`, so the
        pattern every user's token carries (`room:*`) can never match a staff-only room;
        only staff tokens also carry `staff:*` (see chat/permissions.py).
        """
        if self.staff_only:
            return f"staff:room:{self.pk}"
        return f"room:{self.pk}"

    def allows(self, user) -> bool:
        """Whether `user` may use this room (the same rule the hub applies to tokens)."""
        return user.is_authenticated and user.is_active and (user.is_staff or not self.staff_only)
