"""Tamper evidence: a keyed MAC per audit row and per checkpoint.

The key lives outside the database (SV_AUDIT_KEYS, else derived from SECRET_KEY),
so whoever can write to the database but does not hold the key cannot alter a row,
or insert one, without audit_verify noticing.
"""

import functools
import hashlib
import hmac
import ipaddress
import json
from datetime import UTC, datetime

from django.conf import settings

_ROW = b"sv_sdk audit row v1\x00"
_CHECKPOINT = b"sv_sdk audit checkpoint v1\x00"
_ARCHIVE = b"sv_sdk audit archive v1\x00"
_DERIVE = b"sv_sdk audit mac key v1"


def _derived(secret: str) -> bytes:
    # A key for this purpose only: the MACs say nothing about SECRET_KEY itself.
    return hmac.new(secret.encode(), _DERIVE, hashlib.sha256).digest()


@functools.lru_cache(maxsize=4)
def _keys(configured: tuple[str, ...], secrets_: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(key.encode() for key in configured if key) + tuple(
        _derived(secret) for secret in secrets_ if secret
    )


def keys() -> tuple[bytes, ...]:
    """The keys that verify, the first of which signs."""
    return _keys(
        tuple(settings.SV_AUDIT_KEYS),
        (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])),
    )


def _mac(key: bytes, domain: bytes, message: bytes) -> str:
    return hmac.new(key, domain + message, hashlib.sha256).hexdigest()


def _verified(mac: str, domain: bytes, message: bytes) -> bool:
    return any(hmac.compare_digest(mac, _mac(key, domain, message)) for key in keys())


def normalise_metadata(value):
    """Metadata as it will read back from jsonb, so the MAC computed now still matches."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("audit metadata cannot hold NaN or infinity")
        # jsonb prints 1e+20 as 100000000000000000000, which reads back as an int.
        if value.is_integer() and "e" in repr(value):
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): normalise_metadata(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise_metadata(v) for v in value]
    return value


def _ip(value: str | None) -> str | None:
    # PostgreSQL and Python spell some IPv6 addresses differently; compare the address.
    return ipaddress.ip_address(value).exploded if value else None


def _row_message(row) -> bytes:
    occurred_at: datetime = row.occurred_at
    fields = [
        row.id,
        occurred_at.astimezone(UTC).isoformat(),
        row.event_type,
        row.actor_id,
        row.user_id,
        row.target_type,
        row.target_id,
        row.metadata,
        _ip(row.ip_address),
        row.user_agent,
        row.request_id,
    ]
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def row_mac(row) -> str:
    return _mac(keys()[0], _ROW, _row_message(row))


def row_is_authentic(row) -> bool:
    return bool(row.row_mac) and _verified(row.row_mac, _ROW, _row_message(row))


def digest_line(row_id: int, mac: str) -> bytes:
    """What a checkpoint's digest hashes for each row, in id order."""
    return f"{row_id}:{mac}\n".encode()


def _checkpoint_message(checkpoint) -> bytes:
    fields = [
        checkpoint.after_id,
        checkpoint.last_id,
        checkpoint.row_count,
        checkpoint.missing_ids,
        checkpoint.digest,
        checkpoint.previous_mac,
    ]
    return json.dumps(fields, separators=(",", ":")).encode()


def checkpoint_mac(checkpoint) -> str:
    return _mac(keys()[0], _CHECKPOINT, _checkpoint_message(checkpoint))


def checkpoint_is_authentic(checkpoint) -> bool:
    return _verified(checkpoint.mac, _CHECKPOINT, _checkpoint_message(checkpoint))


def _manifest_message(manifest: dict) -> bytes:
    fields = {key: value for key, value in manifest.items() if key != "mac"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def manifest_mac(manifest: dict) -> str:
    """The MAC of an archive's manifest (every field but `mac`)."""
    return _mac(keys()[0], _ARCHIVE, _manifest_message(manifest))


def manifest_is_authentic(manifest: dict) -> bool:
    mac = manifest.get("mac")
    return isinstance(mac, str) and _verified(mac, _ARCHIVE, _manifest_message(manifest))
