/**
 * Decoding rule of ingested documents (issue 3, content: "decodes UTF-8 with or without BOM,
 * normalises CRLF, rejects binary or empty input with a typed error"):
 * 1. input larger than `DOCUMENT_LIMITS.maxBytes` → DOCUMENT_TOO_LARGE;
 * 2. any NUL (byte 0x00 / U+0000) → BINARY_CONTENT (binary files, UTF-16 text);
 * 3. bytes that are not valid UTF-8 (WHATWG `TextDecoder('utf-8', { fatal: true })`), or a
 *    string with unpaired surrogates → INVALID_UTF8;
 * 4. one leading BOM (U+FEFF) is removed;
 * 5. CRLF and lone CR become LF;
 * 6. nothing but whitespace left → EMPTY_DOCUMENT.
 * Every rejection is a BadUserInputError (code BAD_USER_INPUT, `reason` as above).
 */
import { BadUserInputError, ContentRejectionReason } from '../errors.ts';
import { DOCUMENT_LIMITS } from '../document/limits.ts';

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A decoded document. */
export interface DecodedText {
  /** The normalised text: no BOM, LF line ends only. */
  text: string;
  /** Size of the input as received, in bytes (UTF-8 encoding for a string input). */
  sizeBytes: number;
}

/**
 * Decodes raw bytes (a file) or a string (GraphQL `text`, already Unicode) by the rule above.
 * @param field argument name reported in `details.field` of errors. @default 'text'
 * @throws BadUserInputError with reason DOCUMENT_TOO_LARGE, BINARY_CONTENT, INVALID_UTF8 or EMPTY_DOCUMENT
 */
export function decodeText(input: Uint8Array | string, field = 'text'): DecodedText {
  const sizeBytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (sizeBytes > DOCUMENT_LIMITS.maxBytes) {
    throw new BadUserInputError(ContentRejectionReason.DocumentTooLarge, `The document has ${sizeBytes} bytes; at most ${DOCUMENT_LIMITS.maxBytes} are accepted`, {
      field,
      sizeBytes,
      maxBytes: DOCUMENT_LIMITS.maxBytes,
    });
  }
  let decoded: string;
  if (typeof input === 'string') {
    if (input.includes('\u0000')) throw binary(field);
    if (UNPAIRED_SURROGATE.test(input)) {
      throw new BadUserInputError(ContentRejectionReason.InvalidUtf8, 'The text holds unpaired UTF-16 surrogates: it cannot be encoded as UTF-8', { field });
    }
    decoded = input;
  } else {
    if (input.includes(0)) throw binary(field);
    try {
      // ignoreBOM: keep the BOM in the output so that step 4 removes it for both input kinds.
      decoded = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      throw new BadUserInputError(ContentRejectionReason.InvalidUtf8, 'The document is not valid UTF-8', { field });
    }
  }
  const text = (decoded.startsWith('\uFEFF') ? decoded.slice(1) : decoded).replace(/\r\n?/g, '\n');
  if (text.trim().length === 0) {
    throw new BadUserInputError(ContentRejectionReason.EmptyDocument, 'The document is empty (nothing but whitespace)', { field });
  }
  return { text, sizeBytes };
}

function binary(field: string): BadUserInputError {
  return new BadUserInputError(ContentRejectionReason.BinaryContent, 'The document contains NUL bytes: binary data is not accepted, only UTF-8 text', { field });
}
