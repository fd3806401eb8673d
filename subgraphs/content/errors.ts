/**
 * Typed errors of the content subgraph and the one registry of codes that reach GraphQL
 * clients as `extensions.code` (STYLE.md: "Errors that reach a GraphQL client carry
 * `extensions.code` from one registry"). Rejected input carries `BAD_USER_INPUT` plus a
 * specific `extensions.reason` from {@link ContentRejectionReason}; event store errors keep
 * their own codes (`eventstore/errors.ts`), listed here so the registry is complete.
 */
import { EventStoreErrorCode } from '../../eventstore/index.ts';

/** Every `extensions.code` the content subgraph can return. */
export const ContentErrorCode = {
  /** A document that does not exist. */
  NotFound: 'NOT_FOUND',
  /** Input that breaks a documented rule; `extensions.reason` says which (see ContentRejectionReason). */
  BadUserInput: 'BAD_USER_INPUT',
  /** A pagination cursor the server did not produce (from the event store's cursor rules). */
  InvalidCursor: EventStoreErrorCode.InvalidCursor,
  /** An event payload above the store's limit (cannot happen with the chunking rule; listed for completeness). */
  EventTooLarge: EventStoreErrorCode.EventTooLarge,
  /** The service's database is unreachable, shutting down or out of connections: retry later (federation/formatError.ts). */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  /** Anything unexpected; the real error is logged, never returned. */
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const;
export type ContentErrorCode = (typeof ContentErrorCode)[keyof typeof ContentErrorCode];

/**
 * Why an ingestion (or a query argument) was rejected: `extensions.reason` of a
 * BAD_USER_INPUT error, and `code` of a saga's DocumentFailed event.
 */
export const ContentRejectionReason = {
  /** The input has no characters, or only whitespace, after BOM removal. */
  EmptyDocument: 'EMPTY_DOCUMENT',
  /** The input contains NUL bytes (U+0000): binary data, not text. */
  BinaryContent: 'BINARY_CONTENT',
  /** The bytes are not valid UTF-8 (or the string holds unpaired UTF-16 surrogates). */
  InvalidUtf8: 'INVALID_UTF8',
  /** The input is larger than the documented maximum (DOCUMENT_LIMITS.maxBytes). */
  DocumentTooLarge: 'DOCUMENT_TOO_LARGE',
  /** Neither or both of `text` and `corpusFile` were given. */
  SourceRequired: 'SOURCE_REQUIRED',
  /** `corpusFile` is not a plain file name inside the corpus directory (path traversal, separators, hidden files). */
  InvalidCorpusFile: 'INVALID_CORPUS_FILE',
  /** `corpusFile` names no file of the corpus directory. */
  CorpusFileNotFound: 'CORPUS_FILE_NOT_FOUND',
  /** The title is empty or longer than DOCUMENT_LIMITS.maxTitleLength. */
  InvalidTitle: 'INVALID_TITLE',
  /** A search query that is empty or longer than the limit. */
  InvalidQuery: 'INVALID_QUERY',
  /** `first` outside its documented range. */
  InvalidPageSize: 'INVALID_PAGE_SIZE',
  /** A saga StepStarted whose `runInput` has no usable `text` or `corpusFile`. */
  InvalidRunInput: 'INVALID_RUN_INPUT',
  /** A subscription's id argument that is not 1..200 characters, or holds U+0000. */
  InvalidId: 'INVALID_ID',
  /** An `_entities` representation whose `id` key is not a string of 1..500 characters without U+0000 (federation/batch.ts). */
  InvalidRepresentation: 'INVALID_REPRESENTATION',
} as const;
export type ContentRejectionReason = (typeof ContentRejectionReason)[keyof typeof ContentRejectionReason];

/**
 * Base class of the content domain's deliberate errors. `code` is the client-facing code;
 * `details` holds JSON context (ids, reason, field) that is safe to return in `extensions`.
 */
export class ContentError extends Error {
  constructor(
    readonly code: ContentErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The document named in `details` does not exist. Code `NOT_FOUND`. */
export class NotFoundError extends ContentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ContentErrorCode.NotFound, message, details);
  }
}

/**
 * Input breaks a rule. Code `BAD_USER_INPUT`; `reason` (also `details.reason`) says which
 * rule; `details.field` names the argument when known. Nothing is stored when it is thrown.
 */
export class BadUserInputError extends ContentError {
  constructor(
    readonly reason: ContentRejectionReason,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(ContentErrorCode.BadUserInput, message, { ...details, reason });
  }
}
