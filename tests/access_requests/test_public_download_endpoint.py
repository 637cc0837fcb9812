"""Download links name the S3 endpoint as the customer's browser reaches it.

In the container stack the portal writes to `http://s3:9000`, a name only the containers resolve;
AWS_S3_PUBLIC_ENDPOINT_URL is the address published to browsers, and the link is signed for it.
Here the moto server on 127.0.0.1 plays S3, and `localhost` on the same port plays its public name.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.test import Client
from django.urls import reverse

from access_requests.storage import presigned_download_url
from customers.models import Customer
from tests.access_requests.portal_fixtures import (
    alice_client,
    make_ready_request,
    s3_exports,
    small_zip,
)

__all__ = ["alice_client", "s3_exports"]


def public_name_of(endpoint: str) -> str:
    return endpoint.replace("127.0.0.1", "localhost")


def test_the_link_names_the_public_endpoint_and_the_file_downloads_there(
    alice: Customer, alice_client: Client, s3_exports: str, s3_endpoint: str, settings: Any
) -> None:
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = public_name_of(s3_endpoint)
    access_request = make_ready_request(alice)

    response = alice_client.get(reverse("access_requests:download", kwargs={"request_id": access_request.pk}))

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == public_name_of(s3_endpoint)
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert int(query["X-Amz-Expires"]) <= 300
    # SigV4 signs the host: the link was made for the public one, not rewritten afterwards.
    assert "host" in query["X-Amz-SignedHeaders"].split(";")
    assert query["response-cache-control"] == "no-store"
    with urllib.request.urlopen(response["Location"]) as fetched:  # noqa: S310 - the local moto server
        assert fetched.headers["Content-Disposition"].startswith("attachment;")
        assert fetched.headers["Cache-Control"] == "no-store"
        assert fetched.read() == small_zip()


def test_without_a_public_endpoint_the_link_names_the_one_the_portal_writes_to(
    alice: Customer, s3_exports: str, s3_endpoint: str, settings: Any
) -> None:
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = None
    access_request = make_ready_request(alice)

    url = presigned_download_url(access_request.export_name, filename="copy.zip")

    assert url is not None
    assert url.startswith(f"{s3_endpoint}/{s3_exports}/")


def test_a_link_never_lasts_longer_than_five_minutes(
    alice: Customer, s3_exports: str, s3_endpoint: str, settings: Any
) -> None:
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = public_name_of(s3_endpoint)
    access_request = make_ready_request(alice)

    url = presigned_download_url(access_request.export_name, filename="copy.zip", expires_in=3600)

    assert url is not None
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["300"]
