"""Recognize secret values in the execution input, which must carry references only.

Secrets reach a deployment through `required_secrets` in environments.yaml, never through the
request. ValidateRequest rejects a request with a field that looks like a secret, and no
message, log line or ledger record repeats such a value.

The checks are a heuristic. They find well-known credential formats (AWS access key ids,
private keys, GitHub, Slack and Pulumi tokens, JSON Web Tokens), assignments such as
`password=...`, and random-looking strings. A short or hand-made password without such a
marker passes unnoticed.
"""

from __future__ import annotations

import itertools
import re

KNOWN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Pulumi access token", re.compile(r"\bpul-[0-9a-f]{40}\b")),
    ("a JSON Web Token", re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")),
)
SECRET_WORDS = (
    r"(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|passphrase"
    r"|credentials?)"
)
# `password=...`, `"token": "..."`, `API_KEY: ...`
ASSIGNMENT = re.compile(SECRET_WORDS + r"\"?'?\s*[:=]\s*\S", re.IGNORECASE)
# A key name such as `dbPassword`, `api_key` or `githubToken`.
SECRET_KEY_NAME = re.compile(SECRET_WORDS, re.IGNORECASE)
# Runs of the base64 and base64url alphabets, where generated secrets live.
TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
# Adjacent characters of different classes (upper, lower, digit, other) in a random base64
# string: about 65 % of pairs; in CamelCase names and version labels: 25 to 38 %.
RANDOM_CLASS_CHANGE_RATIO = 0.4


def secret_kind(text: str) -> str | None:
    """Return what kind of secret `text` looks like (for the message), or None."""
    for kind, pattern in KNOWN_FORMATS:
        if pattern.search(text):
            return kind
    if ASSIGNMENT.search(text):
        return "a secret assignment such as password=..."
    for run in TOKEN_RUN.findall(text):
        if _looks_random(run):
            return "a random-looking token"
    return None


def is_secret_key_name(name: str) -> bool:
    """Return whether a field name marks a secret (password, token, api_key, ...)."""
    return bool(SECRET_KEY_NAME.search(name))


def _looks_random(run: str) -> bool:
    if not (
        any(char.isupper() for char in run)
        and any(char.islower() for char in run)
        and any(char.isdigit() for char in run)
    ):
        return False
    changes = sum(_char_class(a) != _char_class(b) for a, b in itertools.pairwise(run))
    return changes / (len(run) - 1) >= RANDOM_CLASS_CHANGE_RATIO


def _char_class(char: str) -> str:
    if char.isupper():
        return "upper"
    if char.islower():
        return "lower"
    return "digit" if char.isdigit() else "other"
