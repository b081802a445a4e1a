"""Password hashes: werkzeug's (scrypt, the parameters carried in the hash), plus a reader for the hashes the
first version wrote (``scrypt$N$r$p$salt$hash``, hashlib) so existing accounts keep signing in; those are
rehashed with werkzeug's scheme at their next sign-in (:func:`needs_rehash`).

:func:`burn` does the work of one real check against a fixed dummy hash: sign-in runs it for an unknown name,
a disabled or a locked account, so the answer takes as long as a wrong password does (no user enumeration by
timing).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from werkzeug.security import check_password_hash, generate_password_hash

__all__ = ["hash_password", "is_correct_password", "needs_rehash", "burn", "METHOD", "LEGACY_PREFIX"]

METHOD = "scrypt:32768:8:1"  # werkzeug's default today; stated so a library upgrade does not silently change it
LEGACY_PREFIX = "scrypt$"
# A hash made once with METHOD of a random password nobody kept: a constant, so even the first unknown name a
# process sees costs one hash, not two (tests/web/test_hostile_client.py checks it matches METHOD).
DUMMY_HASH = "scrypt:32768:8:1$CCuZcBZKU0yl12jh$9d7c9895775a645e37b7c7a9954bcbaa9970c67e5bbab56bedd72ddb8e6759ced075f9fa24e367ada6370e8f807cc73c6dc80d27de040199095abf2ef45a84d0"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=METHOD)


def _legacy_check(encoded: str, password: str) -> bool:
    scheme, n, r, p, salt, digest = encoded.split("$")
    n_, r_, p_ = int(n), int(r), int(p)
    if scheme != "scrypt" or not (2 <= n_ <= 2 ** 20 and 1 <= r_ <= 32 and 1 <= p_ <= 16):
        return False
    expected = base64.b64decode(digest, validate=True)
    got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt, validate=True), n=n_, r=r_, p=p_,
                         maxmem=128 * r_ * n_ * 2, dklen=len(expected))
    return hmac.compare_digest(got, expected)


def is_correct_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches ``encoded`` (either scheme; constant-time compare). Never raises."""
    try:
        if encoded.startswith(LEGACY_PREFIX):
            return _legacy_check(encoded, password)
        return check_password_hash(encoded, password)
    except (ValueError, TypeError, binascii.Error, MemoryError, UnicodeEncodeError):
        return False


def needs_rehash(encoded: str) -> bool:
    """True for a hash not made with today's method (legacy scheme or older parameters)."""
    return not encoded.startswith(METHOD + "$")


def burn(password: str) -> None:
    """One password check's worth of work whose answer is thrown away."""
    is_correct_password(DUMMY_HASH, password)
