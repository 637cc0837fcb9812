from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProcessorsConfig(AppConfig):
    name = "processors"
    verbose_name = _("Processors")

    def ready(self) -> None:
        from processors import checks  # noqa: F401  (registers the connectors' category check)
        from processors.purging import processor_erasure
        from retention.purges.erasure import register_erasure_step

        # The correspondence purge deletes a customer's data at the processors before her rows here.
        register_erasure_step(processor_erasure)
