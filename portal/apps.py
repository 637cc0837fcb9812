from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """django.contrib.admin with the portal's site (audited screens, allauth's staff sign-in)."""

    default_site = "portal.admin_site.PortalAdminSite"


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Cross-app wiring lives here.
        from allauth.mfa.signals import authentication_failed
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
        from django.db.models.signals import post_save, pre_save

        from customers.models import Contact, Customer
        from portal import logs, privacy, security, sign_in_addresses
        from retention.models import PurgeRun

        logs.configure_structlog()
        user_login_failed.connect(logs.on_user_login_failed, dispatch_uid="portal.logs.login_failed")
        authentication_failed.connect(logs.on_second_factor_failed, dispatch_uid="portal.logs.mfa_failed")
        user_logged_in.connect(security.on_user_logged_in, dispatch_uid="portal.security.logged_in")
        user_logged_out.connect(security.on_user_logged_out, dispatch_uid="portal.security.logged_out")
        post_save.connect(
            security.on_user_saved, sender=get_user_model(), dispatch_uid="portal.security.user_saved"
        )
        # A changed sign-in address signs in nobody (portal/sign_in_addresses.py).
        for holder in (Customer, Contact):
            pre_save.connect(
                sign_in_addresses.on_holder_pre_save,
                sender=holder,
                dispatch_uid=f"portal.sign_in_addresses.pre_save.{holder.__name__}",
            )
            post_save.connect(
                sign_in_addresses.on_holder_post_save,
                sender=holder,
                dispatch_uid=f"portal.sign_in_addresses.post_save.{holder.__name__}",
            )
        # The public privacy page shows when each purge last ran: a finished run refreshes it.
        post_save.connect(
            privacy.on_purge_run_saved, sender=PurgeRun, dispatch_uid="portal.privacy.purge_run"
        )
