import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST
from hubbub.django import publish_on_commit

from .models import Room

MAX_MESSAGE_LENGTH = 2000


@login_required
def index(request):
    """The chat page: every room, and where the hub is. No token: the browser sends its
    session cookie with the WebSocket upgrade, and the hub asks Django who that is (the
    connect hook, answered by `hubbub.django.urls`).

    Staff-only rooms are listed for everyone, as in any chat: a non-staff user who tries
    one is refused by the hub, which asks Django (chat/hubbub_hooks.py).
    """
    return render(
        request,
        "chat/index.html",
        {"rooms": Room.objects.all(), "hubbub": {"url": settings.HUBBUB_WEBSOCKET_URL}},
    )


@login_required
@require_POST
def send(request, room_id):
    """Posts a message to a room: checks the user may use the room, then publishes it to
    the room's channel once the transaction commits."""
    room = get_object_or_404(Room, pk=room_id)
    if not room.allows(request.user):
        return JsonResponse(
            {"error": "ACCESS_DENIED", "reason": "this room is for staff only"}, status=403
        )
    try:
        text = str(json.loads(request.body)["text"]).strip()
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "INVALID_PAYLOAD", "reason": "expected {\"text\": ...}"}, status=400)
    if not text or len(text) > MAX_MESSAGE_LENGTH:
        return JsonResponse(
            {"error": "INVALID_PAYLOAD", "reason": f"1 to {MAX_MESSAGE_LENGTH} characters"},
            status=400,
        )
    with transaction.atomic():
        # Anything the app stores about the message would be saved here; the publication
        # leaves only if that commits.
        publish_on_commit(
            room.channel,
            {"room": room.pk, "user": request.user.get_username(), "text": text},
            event="chat",
        )
    return JsonResponse({"sent": room.channel})
