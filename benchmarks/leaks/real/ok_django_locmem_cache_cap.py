"""Django's LocMemCache (MAX_ENTRIES 300, culling) with a new key per request."""

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        USE_TZ=True,
    )
    django.setup()

from django.core.cache import cache  # noqa: E402

EXPECTED = {"leak": False}


def step(i: int) -> None:
    cache.set(f"page:{i}", b"<html>" + b"." * 400, timeout=None)
