from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Room",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=255)),
                (
                    "staff_only",
                    models.BooleanField(
                        default=False, help_text="Only staff users may join this room and post to it."
                    ),
                ),
            ],
            options={"ordering": ["title"]},
        ),
    ]
