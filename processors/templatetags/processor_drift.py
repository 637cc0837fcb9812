"""`{% processor_problems as problems %}`: what the latest processor checks say is wrong, for the
admin index's banner (templates/admin/index.html)."""

from django import template

from processors.selectors import processor_problems as latest_problems

register = template.Library()


@register.simple_tag
def processor_problems() -> list[str]:
    return latest_problems()
