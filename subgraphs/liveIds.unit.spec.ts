/**
 * Every subscription id argument that names an event stream (`runUpdated(runId)`,
 * `runs(filter.workflowId)`, `documentProgress(documentId)`, `entityDiscovered(documentId)`) refuses
 * an unpaired surrogate up front with BAD_USER_INPUT reason INVALID_ID: the event store refuses such
 * a stream id (eventstore/validate.ts), and a feed would otherwise retry its catch-up read for ever.
 */
import { describe, expect, it } from 'vitest';
import { requireId as contentRequireId } from './content/live/contentLiveFields.ts';
import { requireId as knowledgeRequireId } from './knowledge/live/knowledgeLiveFields.ts';
import { requireId as workflowsRequireId } from './workflows/live/workflowsLiveFields.ts';

describe.each([
  ['workflows', workflowsRequireId],
  ['content', contentRequireId],
  ['knowledge', knowledgeRequireId],
])('%s subscription ids', (_service, requireId) => {
  it.each(['doc\uD800', '\uDC00', 'a\uDBFF\uDBFF'])('refuses %j (an unpaired surrogate) with BAD_USER_INPUT reason INVALID_ID naming the argument', (id) => {
    let thrown: unknown;
    try {
      requireId(id, 'documentId');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect((thrown as { details: Record<string, unknown> }).details).toMatchObject({ field: 'documentId', reason: 'INVALID_ID' });
  });

  it('accepts an id with an emoji (a paired surrogate)', () => {
    expect(requireId('doc-😀', 'documentId')).toBe('doc-😀');
  });
});
