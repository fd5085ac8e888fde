"""The tenancy vocabulary: roles, cells, crisis states (DOMAIN.md's words)."""

from __future__ import annotations

from enum import StrEnum


class TenantRole(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class CrisisRole(StrEnum):
    DIRECTOR = "director"
    COORDINATOR = "coordinator"
    MEMBER = "member"
    PATIENTS_REPRESENTATIVE = "patients_representative"
    OBSERVER = "observer"
    EXTERNAL_LIAISON = "external_liaison"


class CellKind(StrEnum):
    DECISION = "decision"
    IT_OPERATIONS = "it_operations"
    COMMUNICATION = "communication"
    MEDICAL_CONTINUITY = "medical_continuity"
    LEGAL_DPO = "legal_dpo"
    CUSTOM = "custom"


class CrisisStatus(StrEnum):
    ACTIVE = "active"
    RECOVERY = "recovery"
    CLOSED = "closed"


class Severity(StrEnum):
    MINOR = "minor"
    SIGNIFICANT = "significant"
    MAJOR = "major"
    CRITICAL = "critical"


class CrisisMode(StrEnum):
    REAL = "real"
    EXERCISE = "exercise"


class EstablishmentType(StrEnum):
    HOSPITAL = "hospital"
    CLINIC = "clinic"
    NURSING_HOME = "nursing_home"
    LABORATORY = "laboratory"
    MEDICO_SOCIAL = "medico_social"
    CITY_MEDICINE = "city_medicine"
    OTHER = "other"


class TenantKind(StrEnum):
    GHT = "ght"
    GROUP = "group"
    ASSOCIATION = "association"
    AUTHORITY = "authority"
    OTHER = "other"


DEFAULT_CELLS: tuple[tuple[CellKind, str], ...] = (
    (CellKind.DECISION, "Cellule décisionnelle"),
    (CellKind.IT_OPERATIONS, "Cellule SI et opérations"),
    (CellKind.COMMUNICATION, "Cellule communication"),
    (CellKind.MEDICAL_CONTINUITY, "Continuité des soins"),
    (CellKind.LEGAL_DPO, "Juridique et DPO"),
)

# Roles whose holders run the crisis; granting them is a sensitive action (fresh second factor).
LEADING_ROLES = frozenset({CrisisRole.DIRECTOR, CrisisRole.COORDINATOR})
# Invited members with limited need-to-know: they see only the cells they belong to.
LIMITED_ROLES = frozenset({CrisisRole.PATIENTS_REPRESENTATIVE, CrisisRole.EXTERNAL_LIAISON})
