// French words for the schema's values.
import type { CellKind, ChatChannelKind, CrisisRole, CrisisStatus, LogbookKind, Severity } from "../api/generated";

export const ROLE: Record<CrisisRole, string> = {
  DIRECTOR: "Directeur·rice de crise",
  COORDINATOR: "Coordinateur·rice",
  MEMBER: "Membre",
  PATIENTS_REPRESENTATIVE: "Représentant·e des usagers",
  OBSERVER: "Observateur·rice",
  EXTERNAL_LIAISON: "Liaison externe",
};

export const STATUS: Record<CrisisStatus, string> = { ACTIVE: "Active", RECOVERY: "Reprise", CLOSED: "Close" };

export const SEVERITY: Record<Severity, string> = {
  MINOR: "Mineure",
  SIGNIFICANT: "Significative",
  MAJOR: "Majeure",
  CRITICAL: "Critique",
};

export const KIND: Record<LogbookKind, string> = {
  FACT: "Fait",
  DECISION: "Décision",
  ACTION: "Action",
  COMMUNICATION: "Communication",
  SYSTEM: "Système",
};

export const CELL: Record<CellKind, string> = {
  DECISION: "Cellule décisionnelle",
  IT_OPERATIONS: "Cellule SI et opérations",
  COMMUNICATION: "Cellule communication",
  MEDICAL_CONTINUITY: "Continuité des soins",
  LEGAL_DPO: "Juridique et DPO",
  CUSTOM: "Autre cellule",
};

export const CHANNEL: Record<ChatChannelKind, string> = {
  CRISIS: "Crise",
  CELL: "Cellule",
  EXTERNAL: "Externe",
  PRIVATE: "Privé",
  DIRECT: "Direct",
};

// Where a main courante entry came from: "manual" (typed in the main courante) or the service that wrote it.
export const SOURCE: Record<string, string> = {
  manual: "Saisie manuelle",
  gateway: "Plateforme",
  chat: "Messagerie",
  video: "Visioconférence",
  logbook: "Main courante",
  docs: "Documents",
  sara: "Moteur d'exercice",
};

/** The French name of an entry's source; one this client does not know yet is shown as it is. */
export function sourceLabel(source: string): string {
  return Object.hasOwn(SOURCE, source) ? SOURCE[source] : source;
}
