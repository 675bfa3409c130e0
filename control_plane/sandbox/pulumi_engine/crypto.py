"""Pulumi's passphrase secrets provider: AES-256-GCM with a PBKDF2-derived key.

The formats match the Pulumi CLI (`sdk/go/common/resource/config/crypt.go` and the
passphrase secrets manager), so a real CLI with the same passphrase can read what this
engine writes:

- ciphertext: `v1:<base64 12-byte nonce>:<base64 ciphertext and GCM tag>`;
- key: PBKDF2-HMAC-SHA256(passphrase, salt, 1,000,000 iterations, 32 bytes);
- salt state (`encryptionsalt` in Pulumi.<stack>.yaml and the checkpoint's
  `secrets_providers.state.salt`): `v1:<base64 8-byte salt>:<ciphertext of "pulumi">`.
"""

from __future__ import annotations

import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .errors import ConfigurationError

PBKDF2_ITERATIONS = 1_000_000
SALT_CHECK_PLAINTEXT = "pulumi"

PASSPHRASE_MISSING = (
    'constructing secrets manager of type "passphrase": unable to find either '
    "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE when trying to access the "
    "Passphrase Secrets Provider; please ensure one of these environment variables is set "
    "to allow the operation to continue"
)
PASSPHRASE_INCORRECT = (
    'constructing secrets manager of type "passphrase": incorrect passphrase, please set '
    "PULUMI_CONFIG_PASSPHRASE to the correct passphrase or set "
    "PULUMI_CONFIG_PASSPHRASE_FILE to a file containing the passphrase"
)


class Crypter:
    """Encrypts and decrypts strings with one derived key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return f"v1:{_b64(nonce)}:{_b64(sealed)}"

    def decrypt(self, ciphertext: str) -> str:
        parts = ciphertext.split(":")
        if len(parts) != 3 or parts[0] != "v1":
            raise ConfigurationError(f"invalid ciphertext {ciphertext[:12]!r}...: bad value")
        try:
            plaintext = self._aead.decrypt(
                base64.b64decode(parts[1]), base64.b64decode(parts[2]), None
            )
        except (InvalidTag, ValueError) as error:
            raise ConfigurationError(PASSPHRASE_INCORRECT) from error
        return plaintext.decode()


@functools.lru_cache(maxsize=8)
def _derive_key(passphrase: str, salt: bytes) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=PBKDF2_ITERATIONS)
    return kdf.derive(passphrase.encode())


def read_passphrase(environ: dict[str, str]) -> str:
    """Return the passphrase from PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE."""
    if "PULUMI_CONFIG_PASSPHRASE" in environ:
        return environ["PULUMI_CONFIG_PASSPHRASE"]
    path = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\n")
    raise ConfigurationError(PASSPHRASE_MISSING)


def new_salt_state(passphrase: str) -> str:
    """Create a random salt and return its `encryptionsalt` state string."""
    salt = os.urandom(8)
    crypter = Crypter(_derive_key(passphrase, salt))
    return f"v1:{_b64(salt)}:{crypter.encrypt(SALT_CHECK_PLAINTEXT)}"


def crypter_from_salt_state(passphrase: str, salt_state: str) -> Crypter:
    """Build the crypter for a salt state, checking the passphrase against it.

    Raises ConfigurationError with the CLI's "incorrect passphrase" text on a mismatch.
    """
    parts = salt_state.split(":", 2)
    if len(parts) != 3 or parts[0] != "v1":
        raise ConfigurationError(f"invalid encryptionsalt {salt_state!r}: expected v1:<salt>:...")
    crypter = Crypter(_derive_key(passphrase, base64.b64decode(parts[1])))
    if crypter.decrypt(parts[2]) != SALT_CHECK_PLAINTEXT:
        raise ConfigurationError(PASSPHRASE_INCORRECT)
    return crypter


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
