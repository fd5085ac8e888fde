"""Sign-in identifiers: a login belongs to one organisation and names it (`jdupont@ght-demo`).

The person who invites chooses the local part (`jdupont`); the organisation's code, fixed when the
organisation is created, completes it. Two organisations may each have their `jdupont`, so inviting
one tells an administrator nothing about another organisation's logins (when logins were global, an
invitation answered "déjà pris" for a login of another organisation). The sign-in form takes the whole
identifier, which enrolment shows; a bare local part signs nobody in.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator

SEPARATOR = "@"
LOCAL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
CODE_MAX = 32
CODE_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
CODE_RE = re.compile(f"^{CODE_PATTERN}$")
# What PostgreSQL checks of every stored login and code (migration 0008).
STORED_LOGIN_SQL = f"^[a-z0-9][a-z0-9._-]{{2,63}}@{CODE_PATTERN}$"
CODE_SQL = f"^{CODE_PATTERN}$"
_BASE_MAX = CODE_MAX - 7  # room for a "-" and a six-character suffix
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})


def qualified(local: str, code: str) -> str:
    """The sign-in identifier of `local` in the organisation of code `code`."""
    return f"{local}{SEPARATOR}{code}"


def code_base(name: str) -> str:
    """An organisation's code from its name: `GHT Démo` → `ght-demo` (`org` if nothing is left)."""
    spelled = name.translate(_LIGATURES)  # no decomposition of their own: NFKD would drop them
    plain = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    if len(slug) > _BASE_MAX:  # cut between words if one ends late enough
        cut = slug[: _BASE_MAX + 1].rfind("-")
        slug = slug[:cut] if cut >= _BASE_MAX // 2 else slug[:_BASE_MAX].strip("-")
    return slug or "org"


def code_candidates(name: str) -> Iterator[str]:
    """Codes to try, in order, for a new organisation named `name`: `ght-demo`, `ght-demo-2`, ...,
    then random suffixes (codes are unique across organisations)."""
    base = code_base(name)
    yield base
    for n in range(2, 100):
        yield f"{base}-{n}"
    while True:
        yield f"{base}-{secrets.token_hex(3)}"
