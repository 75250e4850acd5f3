from django.contrib import admin

from .models import Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("title", "staff_only", "channel")
    list_filter = ("staff_only",)
    search_fields = ("title",)
