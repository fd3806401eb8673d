/** Limits of a document (README, "Documents and chunking"). */
export const DOCUMENT_LIMITS = {
  /**
   * Largest input accepted, in bytes (UTF-8, as received: BOM and CR included): 16 MiB.
   * Inline `text` is further bounded by the HTTP body limit (2 MiB).
   */
  maxBytes: 16 * 1024 * 1024,
  /** Characters of a title after trimming: 1..500. */
  maxTitleLength: 500,
} as const;
