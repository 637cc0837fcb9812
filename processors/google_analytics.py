"""Google Analytics 4: the property's data retention setting, and per-person deletion.

The check reads `properties/{id}/dataRetentionSettings` through the Admin API client
(google-analytics-admin, REST transport) and compares it with the data map's promise
(`RetentionPeriods.analytics_months`, 26 months). Standard GA4 offers 2 or 14 months for event
data; 26 needs Google Analytics 360. Any difference is drift, with the two ways out: change the
setting, or change the policy.

Deletion uses the User Deletion API (`userDeletionRequests:upsert`), which the Admin client does
not cover: one request per analytics client id the customer gave us (retention.AnalyticsIdentifier).
Google answers at once and deletes within days; the request is idempotent, so a failed run simply
sends it again. It goes through google-auth's AuthorizedSession (the same credentials and token
refresh as the Admin client), with urllib3 retrying 429 and 5xx answers and honouring Retry-After up
to `MAX_RETRY_AFTER_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from processors.base import (
    Connector,
    ConnectorStatus,
    Drift,
    ErasureSubject,
    ProcessorDeletion,
    ProcessorError,
    ProcessorUnavailable,
)
from retention.windows import RetentionPeriods

if TYPE_CHECKING:
    from google.analytics.admin_v1beta import AnalyticsAdminServiceClient
    from google.analytics.admin_v1beta.types import DataRetentionSettings
    from google.auth.credentials import Credentials
    from google.auth.transport.requests import AuthorizedSession

    from processors.ledger import JobLedger

# The Google client libraries are imported where they are used: the Admin client alone takes
# seconds to import, and every portal process imports this module (the purge asks it whether it
# is configured).

SCOPES = (
    "https://www.googleapis.com/auth/analytics.readonly",
    "https://www.googleapis.com/auth/analytics.user.deletion",
)
USER_DELETION_PATH = "/analytics/v3/userDeletion/userDeletionRequests:upsert"
USER_DELETION = "user_deletion"
DELETION_REQUESTS = "google_analytics.UserDeletionRequest"
CATEGORY = "web_analytics"
MAX_RETRY_AFTER_SECONDS = 30
TIMEOUT_SECONDS = 30

# DataRetentionSettings.RetentionDuration, by name.
MONTHS = {
    "TWO_MONTHS": 2,
    "FOURTEEN_MONTHS": 14,
    "TWENTY_SIX_MONTHS": 26,
    "THIRTY_EIGHT_MONTHS": 38,
    "FIFTY_MONTHS": 50,
}
# What a standard (not 360) property can be set to.
STANDARD_MONTHS = (2, 14)


class CappedRetry(Retry):
    """urllib3's Retry, but a Retry-After longer than MAX_RETRY_AFTER_SECONDS is cut to it: a
    purge waits a little for Google, never an hour."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


@contextmanager
def google_errors(action: str) -> Iterator[None]:
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except api_exceptions.GoogleAPICallError as error:
        status = getattr(error, "code", None)
        message = f"google_analytics: {action}: HTTP {status} ({type(error).__name__})"
        if status is None or status == 429 or status >= 500:
            raise ProcessorUnavailable(message, status=status) from error
        raise ProcessorError(message, status=status) from error
    except api_exceptions.RetryError as error:
        raise ProcessorUnavailable(f"google_analytics: {action}: gave up retrying") from error
    except auth_exceptions.RefreshError as error:
        # Signing in failed: an outage of the token endpoint when google-auth says it may be
        # retried (5xx, 429), else the service account was refused (a configuration problem).
        if getattr(error, "retryable", False):
            raise ProcessorUnavailable(f"google_analytics: {action}: sign-in unavailable") from error
        raise ProcessorError(
            f"google_analytics: {action}: sign-in refused ({type(error).__name__})"
        ) from error
    except (auth_exceptions.TransportError, requests.RequestException) as error:
        raise ProcessorUnavailable(f"google_analytics: {action}: {type(error).__name__}") from error


def _months(duration: Any) -> int | None:
    return MONTHS.get(getattr(duration, "name", ""))


def _in_months(months: int | None) -> str:
    return _("%(months)s months") % {"months": months} if months else _("not set")


class GoogleAnalyticsConnector(Connector):
    key = "google_analytics"
    name = "Google Analytics"
    processor = "google"
    categories = ("web_analytics",)

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        retry_deadline: float = 60.0,
    ) -> None:
        self.property_id = settings.GA_PROPERTY_ID
        self.credentials_file = settings.GA_CREDENTIALS_FILE
        self.api_endpoint = settings.GA_API_ENDPOINT
        self.user_deletion_endpoint = settings.GA_USER_DELETION_ENDPOINT.rstrip("/")
        self._credentials = credentials
        self.retry_deadline = retry_deadline

    def status(self) -> ConnectorStatus:
        missing = [
            name
            for name, value in (
                ("GA_PROPERTY_ID", self.property_id),
                ("GA_CREDENTIALS_FILE", self.credentials_file or self._credentials),
            )
            if not value
        ]
        if missing:
            return ConnectorStatus(False, _("Off: %(names)s not set.") % {"names": ", ".join(missing)})
        return ConnectorStatus(True, _("On: property %(id)s.") % {"id": self.property_id})

    def credentials(self) -> Credentials:
        from google.oauth2 import service_account

        if self._credentials is None:
            try:
                self._credentials = service_account.Credentials.from_service_account_file(
                    self.credentials_file, scopes=list(SCOPES)
                )
            except (OSError, ValueError) as error:
                raise ProcessorError(
                    f"google_analytics: GA_CREDENTIALS_FILE cannot be read ({type(error).__name__})"
                ) from error
        return self._credentials

    def admin_client(self) -> AnalyticsAdminServiceClient:
        from google.analytics.admin_v1beta import AnalyticsAdminServiceClient

        options = {"api_endpoint": self.api_endpoint} if self.api_endpoint else None
        return AnalyticsAdminServiceClient(
            credentials=self.credentials(), transport="rest", client_options=options
        )

    def session(self) -> AuthorizedSession:
        from google.auth.transport.requests import AuthorizedSession

        session = AuthorizedSession(self.credentials())
        retries = CappedRetry(
            total=3,
            backoff_factor=1,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,  # the upsert is idempotent: POST may be retried
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        for prefix in ("https://", "http://"):
            session.mount(prefix, HTTPAdapter(max_retries=retries))
        return session

    # --- Settings --------------------------------------------------------------------------------

    def read_retention(self) -> DataRetentionSettings:
        from google.api_core import retry as api_retry

        name = f"properties/{self.property_id}/dataRetentionSettings"
        retry = api_retry.Retry(
            predicate=api_retry.if_transient_error,
            initial=1.0,
            maximum=10.0,
            multiplier=2.0,
            timeout=self.retry_deadline,
        )
        with google_errors("read data retention settings"):
            return self.admin_client().get_data_retention_settings(
                name=name, retry=retry, timeout=TIMEOUT_SECONDS
            )

    def check_settings(self) -> list[Drift]:
        policy = RetentionPeriods.from_settings().analytics_months
        found = self.read_retention()
        drift = []
        event_months = _months(found.event_data_retention)
        if event_months != policy:
            if policy in STANDARD_MONTHS or event_months not in STANDARD_MONTHS:
                way_there = _("set Event data retention to %(policy)s months") % {"policy": policy}
            else:
                way_there = _(
                    "standard Google Analytics offers only 2 or 14 months, so upgrade the property to "
                    "Google Analytics 360 and set Event data retention to %(policy)s months"
                ) % {"policy": policy}
            drift.append(
                Drift(
                    processor=self.key,
                    setting=_("Event data retention"),
                    expected=_in_months(policy),
                    actual=_in_months(event_months),
                    fix=_(
                        "Either %(way_there)s (Google Analytics: Admin › Data collection and "
                        "modification › Data retention), or change the policy to %(actual)s: "
                        "RETENTION_ANALYTICS_MONTHS in the environment, which the privacy page and "
                        "this check follow."
                    )
                    % {"way_there": way_there, "actual": _in_months(event_months)},
                )
            )
        user_months = _months(found.user_data_retention)
        if user_months is not None and user_months > policy:
            drift.append(
                Drift(
                    processor=self.key,
                    setting=_("User data retention"),
                    expected=_("at most %(months)s") % {"months": _in_months(policy)},
                    actual=_in_months(user_months),
                    fix=_(
                        "Set User data retention to %(months)s or less (Admin › Data collection and "
                        "modification › Data retention)."
                    )
                    % {"months": _in_months(policy)},
                )
            )
        if found.reset_user_data_on_new_activity:
            drift.append(
                Drift(
                    processor=self.key,
                    setting=_("Reset user data on new activity"),
                    expected=_("off"),
                    actual=_("on"),
                    fix=_(
                        "Turn off “Reset user data on new activity” (Admin › Data collection and "
                        "modification › Data retention): while it is on, a returning visitor's data "
                        "is kept longer than %(months)s after it was collected."
                    )
                    % {"months": _in_months(policy)},
                )
            )
        return drift

    # --- Deletion --------------------------------------------------------------------------------

    def request_user_deletion(self, session: AuthorizedSession, client_id: str) -> None:
        body = {
            "kind": "analytics#userDeletionRequest",
            "id": {"type": "CLIENT_ID", "userId": client_id},
            "propertyId": self.property_id,
        }
        with google_errors("user deletion request"):
            response = session.post(
                self.user_deletion_endpoint + USER_DELETION_PATH, json=body, timeout=TIMEOUT_SECONDS
            )
        if response.status_code >= 300:
            message = f"google_analytics: user deletion request: HTTP {response.status_code}"
            if response.status_code == 429 or response.status_code >= 500:
                raise ProcessorUnavailable(message, status=response.status_code)
            raise ProcessorError(message, status=response.status_code)

    def delete_customer(self, subject: ErasureSubject, *, ledger: JobLedger) -> ProcessorDeletion:
        outcome = ProcessorDeletion(self.key, subject.customer_id)
        identifier_ids = [pk for pk, _client_id in subject.analytics_identifiers]
        if identifier_ids:
            outstanding = ledger.outstanding(USER_DELETION)
            job = outstanding[0] if outstanding else ledger.add(USER_DELETION, target_ids=identifier_ids)
            if job.target_ids != identifier_ids:
                job.target_ids = identifier_ids
                job.save(update_fields=["target_ids"])
            ledger.attempted(job)
            try:
                session = self.session()
                for _pk, client_id in subject.analytics_identifiers:
                    self.request_user_deletion(session, client_id)
            except ProcessorError as error:
                ledger.failed(job, error=str(error))
                return outcome.failed(error)
            # The ids logged are the portal's AnalyticsIdentifier rows the requests were made for.
            ledger.completed(job, log_model=DELETION_REQUESTS, category=CATEGORY)
            outcome.deleted[DELETION_REQUESTS] = identifier_ids
        ledger.erasure_complete()
        outcome.complete = True
        return outcome
