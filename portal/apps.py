from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # The processors' tables (Zendesk tickets) in customers' access-request exports.
        from portal.processor_exports import register_processor_exports

        register_processor_exports()
