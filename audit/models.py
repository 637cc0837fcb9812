"""The audit trail: who did what to which customer's data, with ids only.

Invariants:
- An event holds ids (actor, customer, object) and a kind, never a name, e-mail or other
  personal data, so the trail can outlive the customer it is about.
- Append-only: a database trigger refuses changing an event, and refuses deleting one that is
  still inside its retention window (the data map's "sessions and audit events" category).
- `customer_id` is a plain integer, not a foreign key: deleting a customer leaves the trail.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Value
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from database.triggers import Refuse


class AuditEvent(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER_VIEWED = "customer_viewed", _("Staff viewed a customer")
        EXPORT_DOWNLOADED = "export_downloaded", _("Export downloaded")
        ACCESS_REQUESTED = "access_requested", _("Access requested")
        HOLD_PLACED = "hold_placed", _("Legal hold placed")
        HOLD_RELEASED = "hold_released", _("Legal hold released")
        MANUAL_DELETION = "manual_deletion", _("Deleted by staff")
        PURGE = "purge", _("Deleted by the scheduled purge")
        ERASURE_REQUESTED = "erasure_requested", _("Erasure requested")
        ERASURE_APPROVED = "erasure_approved", _("Erasure approved")
        CORRECTED = "corrected", _("Corrected by the customer")
        PORTAL_ACCESS_GRANTED = "portal_access_granted", _("Staff gave a contact portal access")
        SIGN_IN_ADDRESS_CHANGED = "sign_in_address_changed", _("Staff changed a sign-in address")

    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
    )
    customer_id = models.BigIntegerField(_("customer id"), null=True, blank=True, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    # Which fields a change touched (their names, never their values).
    changed_fields = ArrayField(
        models.CharField(max_length=64),
        verbose_name=_("changed fields"),
        default=list,
        db_default=Value([], output_field=ArrayField(models.CharField(max_length=64))),
        blank=True,
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-pk"]
        triggers = [
            # Append-only, but for one change: the database clearing `actor_id` when the user it
            # names is deleted (ON DELETE SET NULL), as when a customer who asked for her copy
            # herself is purged. Every other column, and any other new actor, is refused.
            Refuse(
                name="audit_event_no_update",
                message="audit events cannot change",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    "NOT (OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL AND "
                    "(NEW.id, NEW.kind, NEW.customer_id, NEW.object_type, NEW.object_id, NEW.created_at, "
                    "NEW.changed_fields) IS NOT DISTINCT FROM "
                    "(OLD.id, OLD.kind, OLD.customer_id, OLD.object_type, OLD.object_id, OLD.created_at, "
                    "OLD.changed_fields))"
                ),
            ),
            # Deleting is allowed only once the event is past its retention window, which the
            # purge computes; the database re-checks it with audit_event_kept_from(), one of the
            # SQL functions of retention/db.py (installed by audit 0001_initial before this
            # trigger, and refreshed from settings after every migrate).
            Refuse(
                name="audit_event_kept",
                message="an audit event inside its retention window cannot be deleted",
                operation=pgtrigger.Delete,
                condition=pgtrigger.Condition("OLD.created_at >= audit_event_kept_from()"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @classmethod
    def record(
        cls,
        kind: AuditEvent.Kind,
        *,
        actor: Any = None,
        customer_id: int | None = None,
        target: models.Model | None = None,
        changed_fields: list[str] | None = None,
    ) -> AuditEvent:
        actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
        return cls.objects.create(
            kind=kind,
            actor_id=actor_id,
            customer_id=customer_id,
            object_type=target._meta.label if target is not None else "",
            object_id=str(target.pk) if target is not None else "",
            changed_fields=list(changed_fields or []),
        )


class UserSession(models.Model):
    """One signed-in session of a user, so that signing out, or a staff user being deactivated,
    can end every session of that user, not only the one in the browser at hand.

    Invariants:
    - The row lives exactly as long as its session: ON DELETE CASCADE in the database from
      django_session (the nightly purge of expired sessions, Django's own flush on sign-out) and
      from the user (the customer purge), with no Python signal on either model.
    - It holds no session data, only which user the session key belongs to and when it began.
    """

    session = models.OneToOneField(
        "sessions.Session",
        verbose_name=_("session"),
        primary_key=True,
        on_delete=models.DB_CASCADE,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.DB_CASCADE,
        related_name="+",
    )
    created_at = models.DateTimeField(_("signed in"), default=timezone.now)

    class Meta:
        verbose_name = _("sign-in session")
        verbose_name_plural = _("sign-in sessions")

    def __str__(self) -> str:
        return f"session of user #{self.user_id}"
