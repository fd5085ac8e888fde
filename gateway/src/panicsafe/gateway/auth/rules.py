"""The rules and the wording of the identity flows: pure functions, no I/O.

Unknown logins, wrong passwords and locked accounts get one answer (`bad_credentials`), so that
nothing tells them apart; a wrong, replayed or refused second factor gets another (`bad_code`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.core.errors import ServiceError, not_found
from panicsafe.gateway.identity.passwords import PasswordProblem

BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect, ou compte temporairement verrouillé."
BAD_CODE = "Code incorrect ou déjà utilisé."
ENROLMENT_TTL = timedelta(minutes=30)
SECOND_FACTOR_TTL = timedelta(minutes=5)
TOTP_PURPOSE = "totp"  # the purpose a TOTP secret is sealed under (envelope encryption)
NO_SUCH_ID = "00000000-0000-0000-0000-000000000000"


def bad_credentials() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, BAD_CREDENTIALS)


def bad_code() -> ServiceError:
    """A second factor refused at login or re-authentication."""
    return ServiceError(ErrorCode.UNAUTHENTICATED, BAD_CODE)


def wrong_enrolment_code() -> ServiceError:
    """The first TOTP code of an enrolment does not match the secret just shown."""
    return ServiceError(ErrorCode.INVALID, BAD_CODE, [FieldError(field="code", message="wrong_code")])


def expired_step() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, "Étape expirée : reprenez la connexion.")


def unknown_passkey() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, "Clé d'accès inconnue.")


def unknown_invitation() -> ServiceError:
    return not_found("Invitation inconnue, déjà utilisée ou expirée.")


def unknown_enrolment() -> ServiceError:
    return not_found("Enrôlement inconnu ou expiré : reprenez depuis l'invitation.")


def login_taken() -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT, "Cet identifiant est déjà pris : demandez une nouvelle invitation.")


def passkey_taken() -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT, "Cette clé d'accès est déjà enregistrée.")


def session_over() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, "Session expirée ou révoquée : reconnectez-vous.")


def password_refusal(problems: Sequence[PasswordProblem]) -> ServiceError | None:
    """The error for a new password that breaks rules (each rule a field error), None if it is fine."""
    if not problems:
        return None
    return ServiceError(
        ErrorCode.INVALID,
        " ".join(p.message for p in problems),
        [FieldError(field="password", message=p.code) for p in problems],
    )


def invitation_view(invitation: Any) -> dict[str, Any]:
    """What an invitation shows before it is accepted."""
    return {
        "login": invitation["login"],
        "displayName": invitation["display_name"],
        "organisation": invitation["tenant_name"],
        "expiresAt": invitation["expires_at"].isoformat(),
    }


def crisis_role_of(invitation: Any) -> str:
    """The crisis role an invitation gives (member unless it says otherwise)."""
    return str(invitation["crisis_role"] or "member")


def second_factor_methods(*, totp_enabled: bool, passkeys: int) -> list[str]:
    """The second factors a login may use next, in the order the client offers them."""
    return (["totp"] if totp_enabled else []) + (["passkey"] if passkeys else []) + ["recovery"]


def passkey_fits(*, challenge_user: Any, key_user: Any, user_handle: bytes | None) -> bool:
    """Whether a passkey may answer a challenge: the challenge's user (if it names one) owns the key,
    and the authenticator's user handle (if it sends one) is that owner."""
    if challenge_user is not None and challenge_user != key_user:
        return False
    return user_handle is None or user_handle == uuid.UUID(str(key_user)).bytes


def canonical_token(token: str) -> str:
    """A challenge or enrolment token as a UUID; anything else becomes an id that matches nothing,
    so that a malformed token gets the same answer as an unknown one."""
    try:
        return str(uuid.UUID(token))
    except (ValueError, AttributeError, TypeError):
        return NO_SUCH_ID


def failed_login_summary(display_name: str, what: str) -> str:
    """The main courante's sentence for a failed login (`what`: the step that failed)."""
    return f"Échec de connexion pour {display_name} ({what})."


def lockout_summary(display_name: str) -> str:
    return f"Compte de {display_name} verrouillé 15 minutes après des échecs de connexion répétés."
