"""Views that publish the way a Django app would."""

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from djangoproject.shop.models import Order
from django.shortcuts import render

from hubbub.django import (
    async_publisher,
    async_stream_position,
    connection_token,
    publish_on_commit,
    stream_position,
)

# The orders board's channel: its namespace keeps history, so a page can recover from a
# position (the tests' hub has [[namespaces]] pattern = "room:*").
BOARD = "room:board"


class OutOfStock(Exception):
    pass


@require_POST
def create_order(request):
    """Creates an order and tells the "orders" channel, once the order is committed."""
    item = request.POST["item"]
    try:
        with transaction.atomic():
            order = Order.objects.create(item=item)
            publish_on_commit("orders", {"id": order.pk, "item": item}, event="created")
            if item == "unobtainium":
                raise OutOfStock(item)  # rolls the order back, and its publication
    except OutOfStock:
        return JsonResponse({"created": False}, status=409)
    return JsonResponse({"created": True, "id": order.pk})


@require_GET
@login_required
def hubbub_token(request):
    """The token the browser connects to the hub with."""
    return JsonResponse({"token": connection_token(request.user)})


async def announce(request):
    """An async view publishing with the shared AsyncPublisher."""
    answer = await async_publisher().publish("announcements", {"text": request.GET["text"]})
    return JsonResponse(answer)


def add_to_board(item):
    """Creates an order and tells the board, once the order is committed."""
    with transaction.atomic():
        order = Order.objects.create(item=item)
        publish_on_commit(BOARD, {"id": order.pk, "item": item}, event="created")
    return order


@require_GET
def board(request):
    """The board page: the orders as they are, and the position of the board's stream.

    The position is read first: whatever is committed after it is published after it too
    (publish_on_commit publishes after the commit), so the page, subscribing since the
    position, receives every order the state below does not show (and perhaps one it does).
    """
    position = stream_position(BOARD)
    orders = [{"id": o.pk, "item": o.item} for o in Order.objects.order_by("pk")]
    return render(
        request,
        "shop/board.html",
        {"board": {"channel": BOARD, "position": position, "orders": orders}},
    )


async def board_position(request):
    """The board's position, from an async view."""
    return JsonResponse(await async_stream_position(BOARD))
