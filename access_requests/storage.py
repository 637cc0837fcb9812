"""Where export files live: Django's default storage (local files, or S3 encrypted at rest).

`presigned_download_url` answers None for storage that cannot sign URLs (local files); the
download view then streams the file itself, with the same checks and headers.

The signed URL is django-storages' own (`S3Storage.url` with `parameters` and `expire`). The
customer's browser follows it, so it must name the S3 endpoint as the public reaches it, which in
the container stack is not the address the portal writes to (`http://s3:9000` inside the network):
with AWS_S3_PUBLIC_ENDPOINT_URL set, the URL is signed by a second S3Storage, configured as the
default one but for that endpoint. Signing is local (no request to S3), and SigV4 signs the host,
so the URL has to be made for the public host rather than rewritten afterwards.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import Storage, default_storage

PRESIGNED_URL_SECONDS = 300
# Every export file is stored under this directory (`exports/<request id>-<token>.zip`); the
# hourly expiry sweeps it for files no request names.
EXPORT_DIRECTORY = "exports"


def export_storage() -> Storage:
    return default_storage


def is_signed_url_storage(storage: Storage | None = None) -> bool:
    from storages.backends.s3 import S3Storage

    return isinstance(storage or export_storage(), S3Storage)


@lru_cache(maxsize=4)
def _public_signer(options: str) -> Storage:
    from storages.backends.s3 import S3Storage

    return S3Storage(**json.loads(options))


def _url_signer(storage: Storage) -> Any:
    public_endpoint = settings.AWS_S3_PUBLIC_ENDPOINT_URL
    if not public_endpoint:
        return storage
    default: Any = settings.STORAGES["default"]
    options = {**default.get("OPTIONS", {}), "endpoint_url": public_endpoint}
    # One signer per configuration (a boto3 client costs tens of milliseconds to make).
    return _public_signer(json.dumps(options, sort_keys=True))


def presigned_download_url(
    name: str, *, filename: str, expires_in: int = PRESIGNED_URL_SECONDS
) -> str | None:
    """A URL valid for `expires_in` seconds (at most 300) that makes the browser save the file as
    `filename` and never cache it; None when the storage cannot sign URLs."""
    storage = export_storage()
    if not is_signed_url_storage(storage):
        return None
    return str(
        _url_signer(storage).url(
            name,
            parameters={
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseCacheControl": "no-store",
                "ResponseContentType": "application/zip",
            },
            expire=min(expires_in, PRESIGNED_URL_SECONDS),
        )
    )


def open_export(name: str) -> IO[bytes]:
    return export_storage().open(name, "rb")


def delete_export(name: str) -> None:
    if name:
        export_storage().delete(name)
