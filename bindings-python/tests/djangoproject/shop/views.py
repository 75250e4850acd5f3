"""Views that publish the way a Django app would."""

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from djangoproject.shop.models import Order
from hubbub.django import async_publisher, connection_token, publish_on_commit


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
