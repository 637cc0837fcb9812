"""Where export files live: Django's default storage (local files, or S3 encrypted at rest).

`presigned_download_url` answers None for storage that cannot sign URLs (local files); the
download view then streams the file itself, with the same checks and headers.
"""

from __future__ import annotations

from typing import IO, Any

from django.core.files.storage import Storage, default_storage

PRESIGNED_URL_SECONDS = 300
# Every export file is stored under this directory (`exports/<request id>-<token>.zip`); the
# hourly expiry sweeps it for files no request names.
EXPORT_DIRECTORY = "exports"


def export_storage() -> Storage:
    return default_storage


def is_signed_url_storage(storage: Storage | None = None) -> bool:
    storage = storage or export_storage()
    return hasattr(storage, "bucket") and hasattr(storage, "connection")


def presigned_download_url(
    name: str, *, filename: str, expires_in: int = PRESIGNED_URL_SECONDS
) -> str | None:
    """A URL valid for `expires_in` seconds (at most 300) that makes the browser save the file as
    `filename` and never cache it; None when the storage cannot sign URLs."""
    storage: Any = export_storage()
    if not is_signed_url_storage(storage):
        return None
    expires_in = min(expires_in, PRESIGNED_URL_SECONDS)
    client = storage.connection.meta.client
    return str(
        client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": storage.bucket_name,
                "Key": storage._normalize_name(name),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseCacheControl": "no-store",
                "ResponseContentType": "application/zip",
            },
            ExpiresIn=expires_in,
        )
    )


def open_export(name: str) -> IO[bytes]:
    return export_storage().open(name, "rb")


def delete_export(name: str) -> None:
    if name:
        export_storage().delete(name)
