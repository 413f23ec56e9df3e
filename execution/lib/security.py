"""Password and token hashing, constant-time checks, generated secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def generate_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


_ARGON2 = None


def _argon2():
    global _ARGON2
    if _ARGON2 is None:
        from argon2 import PasswordHasher

        _ARGON2 = PasswordHasher()     # argon2id with the library's current parameters
    return _ARGON2


def hash_password(password: str) -> str:
    """argon2id with a random salt (the encoded `$argon2id$...` string)."""
    if not password:
        raise ValueError("password must not be empty")
    return _argon2().hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches; reads argon2 hashes and the scrypt ones written before them."""
    if not stored or not password:
        return False
    if stored.startswith("$argon2"):
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return _argon2().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    """A hash from before argon2, or with weaker parameters than today's: replace it at the next login."""
    return not stored.startswith("$argon2") or _argon2().check_needs_rehash(stored)


def hash_token(token: str) -> str:
    """sha256 of a high-entropy bearer token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, stored_hash: str | None) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    if not token or not stored_hash:
        return False
    return hmac.compare_digest(hash_token(token), stored_hash)


def _fernet(secret_key: str):
    from cryptography.fernet import Fernet

    key = base64.urlsafe_b64encode(hashlib.sha256(f"token-encryption:{secret_key}".encode()).digest())
    return Fernet(key)


def encrypt_secret(secret_key: str, value: str) -> str:
    """Encrypt a provider token for storage (Fernet, key derived from APP_SECRET_KEY)."""
    return _fernet(secret_key).encrypt(value.encode()).decode()


def decrypt_secret(secret_key: str, token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored token cannot be decrypted with this APP_SECRET_KEY") from None


def sandbox_webhook_token(secret_key: str, instance_id: str) -> str:
    """The sandbox channel's webhook token, derived so the simulator can sign what it posts."""
    return hmac.new(secret_key.encode(), f"sandbox-webhook:{instance_id}".encode(), hashlib.sha256).hexdigest()
