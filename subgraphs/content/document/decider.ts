/** The document aggregate as a Decider (eventstore/command.ts). */
import type { Decider } from '../../../eventstore/index.ts';
import type { DocumentCommand } from './commands.ts';
import { decideDocument } from './decide.ts';
import type { DocumentEvent } from './events.ts';
import { evolveDocument, initialDocumentState, type DocumentState } from './evolve.ts';

/** `{ initialState, evolve, decide }` of the document aggregate (stream `document-<id>`). */
export const documentDecider: Decider<DocumentState, DocumentCommand, DocumentEvent> = {
  initialState: initialDocumentState,
  evolve: evolveDocument,
  decide: decideDocument,
};
