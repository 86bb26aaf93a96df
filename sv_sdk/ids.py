"""Text identifiers that are URL-safe and sort by creation time (UUIDv7)."""

import os
import time
import uuid


def new_id() -> str:
    """Return a UUIDv7 string: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    # Version 7 in bits 76-79, RFC 9562 variant (0b10) in bits 62-63.
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))
