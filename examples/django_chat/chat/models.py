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

        Staff-only rooms live under `staff:` and public rooms under `room:`. Who joins a
        room is Django's decision either way (the subscribe hook, chat/hubbub_hooks.py);
        the prefix keeps a staff room's history and presence out of the read patterns
        every user has (`room:*`; staff also have `staff:room:*`, chat/permissions.py).
        """
        if self.staff_only:
            return f"staff:room:{self.pk}"
        return f"room:{self.pk}"

    def allows(self, user) -> bool:
        """Whether `user` may use this room: join it (the subscribe hook) and post to it."""
        return user.is_authenticated and user.is_active and (user.is_staff or not self.staff_only)
