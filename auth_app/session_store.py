"""Django session engine over auth.sessions, so admin logins are sessions like API ones.

The cookie carries the session key; the table keeps only its SHA-256. A
session without a signed-in user is not stored (a row needs a user), which
costs nothing: the admin keeps messages in a cookie and CSRF in its own one.
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit_app.context import current_context
from sv_sdk.db.replicas import on_primary

from .models import Session
from .services import sessions_prune
from .tokens import token_hash

# Where a login puts how its user proved who they are (the column `amr` follows it).
AMR_SESSION_KEY = "sv_amr"


class SessionStore(SessionBase):
    def _row(self):
        return (
            Session.objects.filter(
                token_hash=token_hash(self.session_key), expires_at__gt=timezone.now()
            )
            .only("data")
            .first()
        )

    def load(self):
        # The session check stays on the primary: a revoked session ends at once.
        with on_primary():
            row = self._row() if self.session_key else None
        if row is None:
            self._session_key = None
            return {}
        return dict(row.data)

    def exists(self, session_key):
        return Session.objects.filter(token_hash=token_hash(session_key)).exists()

    def create(self):
        # Only allocate a key; the row appears once a user is signed in.
        self._session_key = self._get_new_session_key()
        self._session_cache = getattr(self, "_session_cache", {})
        self.modified = True

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        user_id = data.get(SESSION_KEY)
        if not user_id:
            return
        now = timezone.now()
        values = {
            "user_id": user_id,
            "data": data,
            "expires_at": self.get_expiry_date(),
            "amr": data.get(AMR_SESSION_KEY) or ["pwd"],
        }
        # Where the login came from, as the API's sessions record it.
        context = current_context()
        origin = {
            "last_seen_at": now,
            "ip_address": context.value("ip_address"),
            "user_agent": context.value("user_agent") or "",
        }
        try:
            with transaction.atomic():
                if must_create:
                    Session.objects.create(
                        token_hash=token_hash(self.session_key), **origin, **values
                    )
                else:
                    Session.objects.update_or_create(
                        token_hash=token_hash(self.session_key),
                        defaults=values,
                        create_defaults={**values, **origin},
                    )
        except IntegrityError as exc:
            if must_create:
                raise CreateError from exc
            raise

    def delete(self, session_key=None):
        key = session_key or self.session_key
        if key:
            Session.objects.filter(token_hash=token_hash(key)).delete()

    @classmethod
    def clear_expired(cls):
        # Django's clearsessions lands here: the same pruning as prune_sessions.
        sessions_prune()
