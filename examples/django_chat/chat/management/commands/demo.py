from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from chat.models import Room

USERS = [
    # username, password, is_staff
    ("staff", "staff", True),
    ("guest", "guest", False),
]

ROOMS = [
    # title, staff_only
    ("Lobby", False),
    ("Random", False),
    ("Staff lounge", True),
]


class Command(BaseCommand):
    help = (
        "Creates the demo users (staff/staff, a staff member who may also use the admin, "
        "and guest/guest) and rooms (Lobby, Random, and the staff-only Staff lounge). "
        "Running it again resets their passwords and flags and creates nothing twice."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        for username, password, is_staff in USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = is_staff
            user.is_superuser = is_staff
            user.set_password(password)
            user.save()
            self.stdout.write(f"user {username}/{password}{' (staff)' if is_staff else ''}")
        for title, staff_only in ROOMS:
            room, _ = Room.objects.update_or_create(title=title, defaults={"staff_only": staff_only})
            self.stdout.write(f"room {room.title!r} on channel {room.channel}")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
