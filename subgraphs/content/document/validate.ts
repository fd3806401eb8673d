/** Validation rules of an ingestion's arguments other than the text itself. */
import { BadUserInputError, ContentRejectionReason } from '../errors.ts';
import { DOCUMENT_LIMITS } from './limits.ts';

/**
 * Trims and checks a title.
 * @returns the trimmed title
 * @throws BadUserInputError INVALID_TITLE (field `title`) when it is empty or longer than 500 characters after trimming
 */
export function validateTitle(title: string): string {
  const trimmed = title.trim();
  if (trimmed.length === 0 || trimmed.length > DOCUMENT_LIMITS.maxTitleLength) {
    throw new BadUserInputError(ContentRejectionReason.InvalidTitle, `A title needs 1..${DOCUMENT_LIMITS.maxTitleLength} characters, got ${trimmed.length}`, {
      field: 'title',
    });
  }
  return trimmed;
}
