/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
export type AttachmentInput = {
  documentId: string;
  title?: string;
  version: number;
};

export type CellKind =
  | 'COMMUNICATION'
  | 'CUSTOM'
  | 'DECISION'
  | 'IT_OPERATIONS'
  | 'LEGAL_DPO'
  | 'MEDICAL_CONTINUITY';

/** Où reprendre un canal : la dernière révision reçue. */
export type ChannelCursor = {
  afterRev: number;
  channelId: string;
};

/** Nature d'un canal de discussion. */
export type ChatChannelKind =
  | 'CELL'
  | 'CRISIS'
  | 'DIRECT'
  | 'EXTERNAL'
  | 'PRIVATE';

/** Ce qui arrive à un message (ou à un canal) dans le flux en direct. */
export type ChatUpdateKind =
  | 'CHANNEL'
  | 'EDITED'
  | 'MARKED'
  | 'PINNED'
  | 'POSTED'
  | 'REDACTED'
  | 'SYNCED';

export type CrisisMode =
  | 'EXERCISE'
  | 'REAL';

export type CrisisRole =
  | 'COORDINATOR'
  | 'DIRECTOR'
  | 'EXTERNAL_LIAISON'
  | 'MEMBER'
  | 'OBSERVER'
  | 'PATIENTS_REPRESENTATIVE';

export type CrisisStatus =
  | 'ACTIVE'
  | 'CLOSED'
  | 'RECOVERY';

export type DeclareCrisisInput = {
  cells?: Array<CellKind> | null | undefined;
  establishmentIds?: Array<string>;
  mode?: CrisisMode;
  severity: Severity;
  t0: string;
  title: string;
};

export type EstablishmentType =
  | 'CITY_MEDICINE'
  | 'CLINIC'
  | 'HOSPITAL'
  | 'LABORATORY'
  | 'MEDICO_SOCIAL'
  | 'NURSING_HOME'
  | 'OTHER';

/** Format d'export de la main courante. */
export type ExportFormat =
  | 'CSV'
  | 'JSON'
  | 'PDF';

export type InvitationInput = {
  cellIds?: Array<string>;
  crisisFunction?: string | null | undefined;
  crisisId?: string | null | undefined;
  crisisRole?: CrisisRole | null | undefined;
  displayName: string;
  login: string;
  supervisorRegion?: string | null | undefined;
  tenantRole?: TenantRole;
};

/** Une entrée saisie à la main. */
export type LogbookEntryInput = {
  body?: string;
  cellId?: string | null | undefined;
  corrects?: number | null | undefined;
  kind: LogbookKind;
  occurredAt?: string | null | undefined;
  summary: string;
};

/** Filtres de lecture de la main courante. */
export type LogbookFilter = {
  authorId?: string | null | undefined;
  cellId?: string | null | undefined;
  kinds?: Array<LogbookKind> | null | undefined;
  since?: string | null | undefined;
  source?: string | null | undefined;
  text?: string | null | undefined;
  until?: string | null | undefined;
};

/** Nature d'une entrée de la main courante. */
export type LogbookKind =
  | 'ACTION'
  | 'COMMUNICATION'
  | 'DECISION'
  | 'FACT'
  | 'SYSTEM';

/** Sens de lecture de la main courante. */
export type LogbookOrder =
  | 'NEWEST_FIRST'
  | 'OLDEST_FIRST';

/** Un message ; clientId (8 à 64 caractères) rend un nouvel envoi sans effet. */
export type SendMessageInput = {
  attachments?: Array<AttachmentInput> | null | undefined;
  channelId: string;
  clientId: string;
  mentionCellIds?: Array<string> | null | undefined;
  mentionUserIds?: Array<string> | null | undefined;
  replyTo?: string | null | undefined;
  text: string;
};

export type Severity =
  | 'CRITICAL'
  | 'MAJOR'
  | 'MINOR'
  | 'SIGNIFICANT';

export type TenantRole =
  | 'ADMIN'
  | 'MEMBER';

export type MeQueryVariables = Exact<{ [key: string]: never; }>;


export type MeQuery = { me: { id: string, login: string, displayName: string, tenantRole: TenantRole, tenantId: string, freshSecondFactor: boolean, memberships: Array<{ crisisId: string, role: CrisisRole, cellIds: Array<string> }>, factors: { totpEnabled: boolean, recoveryCodesLeft: number, enrolledAt: string | null, passkeys: Array<{ id: string, name: string, createdAt: string, lastUsedAt: string | null }> } }, tenant: { id: string, name: string } };

export type CrisesQueryVariables = Exact<{ [key: string]: never; }>;


export type CrisesQuery = { crises: Array<{ id: string, title: string, mode: CrisisMode, status: CrisisStatus, severity: Severity, t0: string, myRole: CrisisRole }> };

export type EstablishmentsQueryVariables = Exact<{ [key: string]: never; }>;


export type EstablishmentsQuery = { establishments: Array<{ id: string, name: string, type: EstablishmentType }> };

export type CrisisQueryVariables = Exact<{
  id: string;
}>;


export type CrisisQuery = { crisis: { id: string, title: string, mode: CrisisMode, status: CrisisStatus, severity: Severity, t0: string, declaredAt: string, myRole: CrisisRole, cells: Array<{ id: string, kind: CellKind, name: string }>, members: Array<{ userId: string, displayName: string, role: CrisisRole, function: string | null, cellIds: Array<string> }>, establishments: Array<{ id: string, name: string }> } };

export type DeclareMutationVariables = Exact<{
  input: DeclareCrisisInput;
}>;


export type DeclareMutation = { declareCrisis: { id: string } };

export type InviteMutationVariables = Exact<{
  input: InvitationInput;
}>;


export type InviteMutation = { createInvitation: { link: string, qrSvg: string, invitation: { id: string, login: string, displayName: string } } };

export type InvitationsQueryVariables = Exact<{ [key: string]: never; }>;


export type InvitationsQuery = { invitations: Array<{ id: string, login: string, displayName: string, crisisId: string | null, crisisRole: CrisisRole | null, createdAt: string, expiresAt: string, used: boolean }> };

export type ChannelsQueryVariables = Exact<{
  crisisId: string;
}>;


export type ChannelsQuery = { chatChannels: Array<{ id: string, kind: ChatChannelKind, name: string, cellId: string | null, memberIds: Array<string>, lastSeq: number, lastRev: number, readSeq: number, unread: number, unreadMentions: number, writable: boolean }> };

export type HistoryQueryVariables = Exact<{
  channelId: string;
  before?: number | null | undefined;
  first: number;
}>;


export type HistoryQuery = { chatHistory: { hasMore: boolean, messages: Array<{ id: string, channelId: string, seq: number, rev: number, clientId: string, authorId: string | null, author: string, createdAt: string, version: number, text: string | null, editedAt: string | null, redactedAt: string | null, redactedBy: string | null, replyTo: string | null, mentionUserIds: Array<string>, mentionCellIds: Array<string>, pinnedAt: string | null, pinnedBy: string | null, markedKind: LogbookKind | null, markedAt: string | null, markedBy: string | null }> } };

export type SendMutationVariables = Exact<{
  input: SendMessageInput;
}>;


export type SendMutation = { sendMessage: { duplicate: boolean, message: { id: string, channelId: string, seq: number, rev: number, clientId: string, authorId: string | null, author: string, createdAt: string, version: number, text: string | null, editedAt: string | null, redactedAt: string | null, redactedBy: string | null, replyTo: string | null, mentionUserIds: Array<string>, mentionCellIds: Array<string>, pinnedAt: string | null, pinnedBy: string | null, markedKind: LogbookKind | null, markedAt: string | null, markedBy: string | null } } };

export type EditMutationVariables = Exact<{
  messageId: string;
  text: string;
}>;


export type EditMutation = { editMessage: { id: string } };

export type RedactMutationVariables = Exact<{
  messageId: string;
}>;


export type RedactMutation = { redactMessage: { id: string } };

export type MarkMutationVariables = Exact<{
  messageId: string;
  kind: LogbookKind;
}>;


export type MarkMutation = { markMessage: { id: string, markedKind: LogbookKind | null } };

export type MarkReadMutationVariables = Exact<{
  channelId: string;
  seq: number;
}>;


export type MarkReadMutation = { markChannelRead: { id: string, unread: number } };

export type SearchQueryVariables = Exact<{
  crisisId: string;
  text: string;
}>;


export type SearchQuery = { chatSearch: { messages: Array<{ id: string, channelId: string, seq: number, author: string, createdAt: string, text: string | null }> } };

export type ChatUpdatesSubscriptionVariables = Exact<{
  crisisId: string;
  resume?: Array<ChannelCursor> | ChannelCursor | null | undefined;
}>;


export type ChatUpdatesSubscription = { chatUpdates: { kind: ChatUpdateKind, channelId: string, channelName: string | null, message: { id: string, channelId: string, seq: number, rev: number, clientId: string, authorId: string | null, author: string, createdAt: string, version: number, text: string | null, editedAt: string | null, redactedAt: string | null, redactedBy: string | null, replyTo: string | null, mentionUserIds: Array<string>, mentionCellIds: Array<string>, pinnedAt: string | null, pinnedBy: string | null, markedKind: LogbookKind | null, markedAt: string | null, markedBy: string | null } | null } };

export type LogbookQueryVariables = Exact<{
  crisisId: string;
  filter?: LogbookFilter | null | undefined;
  first: number;
  order?: LogbookOrder | null | undefined;
}>;


export type LogbookQuery = { logbook: { size: number, hasMore: boolean, cursor: number | null, entries: Array<{ id: string, seq: number, occurredAt: string, recordedAt: string, rekeyed: boolean, author: string, source: string, kind: LogbookKind, summary: string, body: string | null, cellId: string | null, links: Record<string, unknown>, leafHash: string }> } };

export type AddEntryMutationVariables = Exact<{
  crisisId: string;
  entry: LogbookEntryInput;
}>;


export type AddEntryMutation = { addLogbookEntry: { seq: number } };

export type ExportMutationVariables = Exact<{
  crisisId: string;
  format: ExportFormat;
}>;


export type ExportMutation = { exportLogbook: { id: string, filename: string, contentType: string, size: number, sha256: string, downloadPath: string } };

export type LogbookEntriesSubscriptionVariables = Exact<{
  crisisId: string;
}>;


export type LogbookEntriesSubscription = { logbookEntries: { seq: number, kind: LogbookKind, summary: string, author: string } };

export type SessionsQueryVariables = Exact<{ [key: string]: never; }>;


export type SessionsQuery = { sessions: Array<{ id: string, createdAt: string, lastSeenAt: string, address: string | null, userAgent: string | null, current: boolean }> };

export type RevokeSessionMutationVariables = Exact<{
  id: string;
}>;


export type RevokeSessionMutation = { revokeSession: boolean };

export type RevokeOthersMutationVariables = Exact<{ [key: string]: never; }>;


export type RevokeOthersMutation = { revokeOtherSessions: number };

export type RecoveryCodesMutationVariables = Exact<{ [key: string]: never; }>;


export type RecoveryCodesMutation = { regenerateRecoveryCodes: Array<string> };

export type RemovePasskeyMutationVariables = Exact<{
  id: string;
}>;


export type RemovePasskeyMutation = { removePasskey: boolean };
