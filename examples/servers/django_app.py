"""A tiny one-file Django app for gunicorn (gunicorn.conf.py): a preloaded
heap (demo_heap.py) and /work?n=N answering a checksum."""
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="pyhuge-demo-not-secret",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=["django.contrib.contenttypes"],
    DATABASES={},
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

import demo_heap  # noqa: E402


def work(request):
    return HttpResponse(demo_heap.answer(int(request.GET.get("n", "0"))),
                        content_type="application/json")


def index(request):
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [path("work", work), path("", index)]
application = get_wsgi_application()
