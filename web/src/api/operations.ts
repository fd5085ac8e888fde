// Every GraphQL operation of the client; `npm run codegen` types them from the schema (generated.ts).
const graphql = (strings: TemplateStringsArray): string => strings.join("");

export const ME = graphql`
  query Me {
    me {
      id
      login
      displayName
      tenantRole
      tenantId
      freshSecondFactor
      memberships { crisisId role cellIds }
      factors { totpEnabled recoveryCodesLeft enrolledAt passkeys { id name createdAt lastUsedAt } }
    }
    tenant { id name }
  }
`;

export const CRISES = graphql`
  query Crises {
    crises { id title mode status severity t0 myRole }
  }
`;

export const ESTABLISHMENTS = graphql`
  query Establishments {
    establishments { id name type }
  }
`;

export const CRISIS = graphql`
  query Crisis($id: ID!) {
    crisis(id: $id) {
      id
      title
      mode
      status
      severity
      t0
      declaredAt
      myRole
      cells { id kind name }
      members { userId displayName role function cellIds }
      establishments { id name }
    }
  }
`;

export const DECLARE = graphql`
  mutation Declare($input: DeclareCrisisInput!) {
    declareCrisis(input: $input) { id }
  }
`;

export const INVITE = graphql`
  mutation Invite($input: InvitationInput!) {
    createInvitation(input: $input) { link qrSvg invitation { id login displayName } }
  }
`;

export const INVITATIONS = graphql`
  query Invitations {
    invitations { id login displayName crisisId crisisRole createdAt expiresAt used }
  }
`;

export const CHANNELS = graphql`
  query Channels($crisisId: ID!) {
    chatChannels(crisisId: $crisisId) {
      id kind name cellId memberIds lastSeq lastRev readSeq unread unreadMentions writable
    }
  }
`;


export const HISTORY = graphql`
  query History($channelId: ID!, $before: Int, $first: Int!) {
    chatHistory(channelId: $channelId, before: $before, first: $first) {
      hasMore
      messages {
        id channelId seq rev clientId authorId author createdAt version text editedAt redactedAt redactedBy
        replyTo mentionUserIds mentionCellIds pinnedAt pinnedBy markedKind markedAt markedBy
      }
    }
  }
`;

export const SEND = graphql`
  mutation Send($input: SendMessageInput!) {
    sendMessage(input: $input) {
      duplicate
      message {
        id channelId seq rev clientId authorId author createdAt version text editedAt redactedAt redactedBy
        replyTo mentionUserIds mentionCellIds pinnedAt pinnedBy markedKind markedAt markedBy
      }
    }
  }
`;

export const EDIT = graphql`
  mutation Edit($messageId: ID!, $text: String!) {
    editMessage(messageId: $messageId, text: $text) { id }
  }
`;

export const REDACT = graphql`
  mutation Redact($messageId: ID!) {
    redactMessage(messageId: $messageId) { id }
  }
`;

export const MARK = graphql`
  mutation Mark($messageId: ID!, $kind: LogbookKind!) {
    markMessage(messageId: $messageId, kind: $kind) { id markedKind }
  }
`;

export const MARK_READ = graphql`
  mutation MarkRead($channelId: ID!, $seq: Int!) {
    markChannelRead(channelId: $channelId, seq: $seq) { id unread }
  }
`;

export const SEARCH = graphql`
  query Search($crisisId: ID!, $text: String!) {
    chatSearch(crisisId: $crisisId, text: $text, first: 20) {
      messages { id channelId seq author createdAt text }
    }
  }
`;

export const CHAT_UPDATES = graphql`
  subscription ChatUpdates($crisisId: ID!, $resume: [ChannelCursor!]) {
    chatUpdates(crisisId: $crisisId, resume: $resume) {
      kind
      channelId
      channelName
      message {
        id channelId seq rev clientId authorId author createdAt version text editedAt redactedAt redactedBy
        replyTo mentionUserIds mentionCellIds pinnedAt pinnedBy markedKind markedAt markedBy
      }
    }
  }
`;

export const LOGBOOK = graphql`
  query Logbook($crisisId: ID!, $filter: LogbookFilter, $first: Int!, $order: LogbookOrder) {
    logbook(crisisId: $crisisId, filter: $filter, first: $first, order: $order) {
      size
      hasMore
      cursor
      entries { id seq occurredAt recordedAt rekeyed author source kind summary body cellId links leafHash }
    }
  }
`;

export const ADD_ENTRY = graphql`
  mutation AddEntry($crisisId: ID!, $entry: LogbookEntryInput!) {
    addLogbookEntry(crisisId: $crisisId, entry: $entry) { seq }
  }
`;

export const EXPORT = graphql`
  mutation Export($crisisId: ID!, $format: ExportFormat!) {
    exportLogbook(crisisId: $crisisId, format: $format) { id filename contentType size sha256 downloadPath }
  }
`;

export const LOGBOOK_ENTRIES = graphql`
  subscription LogbookEntries($crisisId: ID!) {
    logbookEntries(crisisId: $crisisId) { seq kind summary author }
  }
`;

export const SESSIONS = graphql`
  query Sessions {
    sessions { id createdAt lastSeenAt address userAgent current }
  }
`;

export const REVOKE_SESSION = graphql`
  mutation RevokeSession($id: ID!) {
    revokeSession(id: $id)
  }
`;

export const REVOKE_OTHERS = graphql`
  mutation RevokeOthers {
    revokeOtherSessions
  }
`;

export const RECOVERY_CODES = graphql`
  mutation RecoveryCodes {
    regenerateRecoveryCodes
  }
`;

export const REMOVE_PASSKEY = graphql`
  mutation RemovePasskey($id: String!) {
    removePasskey(id: $id)
  }
`;

