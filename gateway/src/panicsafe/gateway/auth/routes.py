"""`/auth/*`: JSON endpoints for the flows that come before a session exists, and the cookie ones.

Errors answer `{"error": {"code", "message", "fields"}}` with a status that follows the stable code.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.auth.principal import load_principal
from panicsafe.gateway.auth.service import AuthService, Client
from panicsafe.gateway.auth.sessions import CSRF_HEADER, REFRESH_COOKIE, IssuedSession, csrf_for
from panicsafe.gateway.domain.policy import Principal

STATUS = {
    ErrorCode.INVALID: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}


def error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse({"error": error.body().model_dump(mode="json")}, status_code=STATUS[error.code])


def _printable(value: str) -> str:
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("caractère interdit (NUL ou demi-paire)")
    return value


# Every string that comes in: no NUL (PostgreSQL refuses it) and no lone surrogate.
Text = Annotated[str, AfterValidator(_printable)]


class InvitationToken(BaseModel):
    token: Text = Field(min_length=16, max_length=200)


class PasswordEnrolment(InvitationToken):
    password: Text = Field(min_length=1, max_length=1024)


class EnrolmentCode(BaseModel):
    enrolment: Text = Field(max_length=64)
    code: Text = Field(min_length=1, max_length=16)


class EnrolmentPasskey(BaseModel):
    enrolment: Text = Field(max_length=64)
    credential: dict[str, Any]


class EnrolmentRef(BaseModel):
    enrolment: Text = Field(max_length=64)


class Login(BaseModel):
    login: Text = Field(min_length=1, max_length=128)
    password: Text = Field(min_length=1, max_length=1024)


class ChallengeCode(BaseModel):
    challenge: Text = Field(max_length=64)
    code: Text = Field(min_length=1, max_length=32)


class PasskeyOptionsRequest(BaseModel):
    challenge: Text | None = Field(default=None, max_length=64)


class Reauthentication(BaseModel):
    code: Text = Field(min_length=1, max_length=16)


class PasskeyLogin(BaseModel):
    challenge: Text = Field(max_length=64)
    credential: dict[str, Any]


def get_auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


ServiceDep = Annotated[AuthService, Depends(get_auth_service)]


def build_auth_router(*, origin: str) -> APIRouter:
    """The `/auth` routes; the app keeps its `AuthService` in `app.state.auth_service`."""
    router = APIRouter(prefix="/auth")

    def client_of(request: Request) -> Client:
        return Client(
            address=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )

    def with_session(issued: IssuedSession, extra: dict[str, Any] | None = None) -> JSONResponse:
        response = JSONResponse({**issued.body(), **(extra or {})})
        response.set_cookie(
            REFRESH_COOKIE,
            issued.refresh_token,
            max_age=issued.refresh_max_age,
            path="/auth",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def check_cookie_request(request: Request, csrf: str | None) -> str:
        """Refresh and logout ride on the cookie: same origin only, and the CSRF token must match it."""
        sent_origin = request.headers.get("origin")
        if sent_origin is not None and sent_origin != origin:
            raise ServiceError(ErrorCode.FORBIDDEN, "Origine refusée.")
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Session expirée : reconnectez-vous.")
        if not csrf or not hmac.compare_digest(csrf, csrf_for(refresh)):
            raise ServiceError(ErrorCode.FORBIDDEN, "Jeton anti-CSRF absent ou invalide.")
        return refresh

    @router.post("/invitation")
    async def inspect_invitation(body: InvitationToken, service: ServiceDep) -> dict[str, Any]:
        return await service.inspect_invitation(body.token)

    @router.post("/enrol/password")
    async def enrol_password(body: PasswordEnrolment, request: Request, service: ServiceDep) -> JSONResponse:
        started = await service.enrol_password(body.token, body.password, client_of(request))
        return JSONResponse(
            {
                "enrolment": started.enrolment_token,
                "login": started.login,
                "totp": {
                    "secret": started.totp_secret,
                    "uri": started.totp_uri,
                    "qrSvg": started.totp_qr_svg,
                },
            },
            headers={"Cache-Control": "no-store"},
        )

    @router.post("/enrol/totp")
    async def enrol_totp(body: EnrolmentCode, request: Request, service: ServiceDep) -> JSONResponse:
        enrolled = await service.enrol_totp(body.enrolment, body.code, client_of(request))
        return with_session(enrolled.session, {"recoveryCodes": enrolled.recovery_codes})

    @router.post("/enrol/passkey/options")
    async def enrol_passkey_options(body: EnrolmentRef, service: ServiceDep) -> dict[str, Any]:
        return await service.enrol_passkey_options(body.enrolment)

    @router.post("/enrol/passkey")
    async def enrol_passkey(body: EnrolmentPasskey, request: Request, service: ServiceDep) -> JSONResponse:
        enrolled = await service.enrol_passkey(body.enrolment, body.credential, client_of(request))
        return with_session(enrolled.session, {"recoveryCodes": enrolled.recovery_codes})

    @router.post("/login")
    async def login(body: Login, request: Request, service: ServiceDep) -> dict[str, Any]:
        challenge = await service.login_password(body.login, body.password, client_of(request))
        return {"challenge": challenge.challenge_token, "methods": challenge.methods}

    @router.post("/login/totp")
    async def login_totp(body: ChallengeCode, request: Request, service: ServiceDep) -> JSONResponse:
        return with_session(await service.login_totp(body.challenge, body.code, client_of(request)))

    @router.post("/login/recovery")
    async def login_recovery(body: ChallengeCode, request: Request, service: ServiceDep) -> JSONResponse:
        return with_session(await service.login_recovery(body.challenge, body.code, client_of(request)))

    @router.post("/login/passkey/options")
    async def passkey_options(body: PasskeyOptionsRequest, service: ServiceDep) -> dict[str, Any]:
        token, options = await service.passkey_login_options(body.challenge)
        return {"challenge": token, "publicKey": options}

    @router.post("/login/passkey")
    async def passkey_login(body: PasskeyLogin, request: Request, service: ServiceDep) -> JSONResponse:
        return with_session(await service.passkey_login(body.challenge, body.credential, client_of(request)))

    @router.post("/reauth")
    async def reauthenticate(
        body: Reauthentication,
        request: Request,
        service: ServiceDep,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, bool]:
        """A fresh second factor (five minutes) for sensitive actions: factors, leading roles, exports."""
        if not authorization or not authorization.startswith("Bearer "):
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Authentification requise.")
        principal = await load_principal(service.db, service.tokens, authorization.removeprefix("Bearer ").strip())
        await service.reauthenticate_totp(
            user_id=principal.user_id, tenant_id=principal.tenant_id, session_id=principal.session_id, code=body.code
        )
        return {"freshSecondFactor": True}

    async def bearer_principal(request: Request, service: AuthService) -> Principal:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Authentification requise.")
        return await load_principal(service.db, service.tokens, header.removeprefix("Bearer ").strip())

    @router.post("/reauth/passkey/options")
    async def reauth_passkey_options(request: Request, service: ServiceDep) -> dict[str, Any]:
        principal = await bearer_principal(request, service)
        setup_id, options = await request.app.state.factor_service.reauth_passkey_options(principal)
        return {"challenge": setup_id, "publicKey": options}

    @router.post("/reauth/passkey")
    async def reauth_passkey(body: PasskeyLogin, request: Request, service: ServiceDep) -> dict[str, bool]:
        principal = await bearer_principal(request, service)
        await request.app.state.factor_service.reauth_passkey(principal, body.challenge, body.credential)
        return {"freshSecondFactor": True}

    @router.post("/refresh")
    async def refresh(
        request: Request, service: ServiceDep, csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None
    ) -> JSONResponse:
        return with_session(await service.refresh(check_cookie_request(request, csrf)))

    @router.post("/logout")
    async def logout(
        request: Request, service: ServiceDep, csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None
    ) -> Response:
        await service.logout(check_cookie_request(request, csrf))
        response = Response(status_code=204)
        response.delete_cookie(REFRESH_COOKIE, path="/auth", secure=True, httponly=True, samesite="strict")
        return response

    return router
