/**
 * The workflows side of the saga (issue 3, "The saga: a real workflow across services"):
 * durable consumers of the services that run INGEST and EXTRACT steps.
 *
 * - `workflows-from-content`: DocumentProcessed → the INGEST step completes with output
 *   `{ documentId, chunkCount }` (the next EXTRACT step's StepStarted carries that documentId);
 *   DocumentFailed → the step fails with `"<reason> [<code>]"`, then its retry policy applies
 *   (a retry is a new StepStarted, so content ingests again).
 * - `workflows-from-knowledge`: DocumentEntitiesExtracted → the EXTRACT step completes with
 *   output `{ entityCount, relationCount }`; ExtractionFailed → it fails with the reason.
 *
 * Each event is handled once (`handleOnce`): the inbox row, the run events and the inline
 * projections commit in one transaction, the run read on that transaction's connection and
 * appended at the version read. A concurrent writer (e.g. a cancelRun in between) makes the
 * append throw WrongExpectedVersionError: nothing commits, the transport redelivers, and the
 * retry decides on the new state. Reports that do not apply (no runId/stepName, unknown or
 * finished run, step not running, stale attempt) are recorded in the inbox and append nothing
 * (see `decideStepOutcome`); a malformed payload throws `EventRejectedError`, so the service's
 * parking lot parks it (eventstore/parking.ts) where an operator sees it.
 *
 * Appended events carry `{ correlationId, causationId: incoming.eventId, actor:
 * 'system:workflows-saga' }`; the correlation id is the run's (which the incoming event
 * carries too, since content and knowledge propagate it).
 */
import type { z } from 'zod';
import {
  handleOnce,
  type EventMetadata,
  type EventStore,
  type IntegrationConsumer,
  type IntegrationEvent,
  type IntegrationTransport,
  type Logger,
} from '../../../eventstore/index.ts';
import { EventRejectedError } from '../../../eventstore/parking.ts';
import type { Clock } from '../clock.ts';
import { ID_PATTERN } from '../commandHandlers.ts';
import { CONTENT_SOURCE, KNOWLEDGE_SOURCE } from '../run/decide.ts';
import { appendRunEventsIn, loadRunIn } from '../run/handleRunCommand.ts';
import type { StepKind } from '../workflow/events.ts';
import { decideStepOutcome, type IgnoredReason, type StepOutcome } from './decideStepOutcome.ts';
import { DocumentEntitiesExtractedV1, DocumentFailedV1, DocumentProcessedV1, ExtractionFailedV1 } from './incoming.ts';

/** `actor` of every run event appended because of an integration event. */
export const SAGA_ACTOR = 'system:workflows-saga';
/** Durable consumer names. */
export const CONTENT_CONSUMER = 'workflows-from-content';
export const KNOWLEDGE_CONSUMER = 'workflows-from-knowledge';

/** How one consumed event type becomes a step report. */
interface Translation<S extends z.ZodType = z.ZodType> {
  schema: S;
  result(data: z.infer<S>): StepOutcome['result'];
}
interface SourceTable {
  source: string;
  consumer: string;
  /** The step kind the source runs. */
  kind: StepKind;
  types: Record<string, Translation>;
}

const translation = <S extends z.ZodType>(schema: S, result: (data: z.infer<S>) => StepOutcome['result']): Translation =>
  ({ schema, result }) as Translation;

/** The consumed events, by source. */
export const SAGA_SOURCES: readonly SourceTable[] = [
  {
    source: CONTENT_SOURCE,
    consumer: CONTENT_CONSUMER,
    kind: 'INGEST',
    types: {
      DocumentProcessed: translation(DocumentProcessedV1, (d) => ({ ok: true, output: { documentId: d.documentId, chunkCount: d.chunkCount } })),
      DocumentFailed: translation(DocumentFailedV1, (d) => ({ ok: false, error: `${d.reason} [${d.code}]` })),
    },
  },
  {
    source: KNOWLEDGE_SOURCE,
    consumer: KNOWLEDGE_CONSUMER,
    kind: 'EXTRACT',
    types: {
      DocumentEntitiesExtracted: translation(DocumentEntitiesExtractedV1, (d) => ({
        ok: true,
        output: { entityCount: d.entityCount, relationCount: d.relationCount },
      })),
      ExtractionFailed: translation(ExtractionFailedV1, (d) => ({ ok: false, error: d.reason })),
    },
  },
];

/** What handling one report did. */
export type StepReportOutcome =
  | { status: 'APPLIED'; runId: string; stepName: string; attempt: number; appended: number }
  | { status: 'IGNORED'; reason: IgnoredReason | 'NOT_A_STEP_REPORT' | 'UNKNOWN_TYPE'; detail: string }
  | { status: 'DUPLICATE' };

/** What the consumers need. */
export interface SagaConsumerOptions {
  store: EventStore;
  transport: IntegrationTransport;
  clock: Clock;
  logger: Logger;
}

/**
 * Handles one integration event of a saga source once (see the module comment).
 * @returns what it did; `DUPLICATE` for a redelivery (nothing done)
 * @throws WrongExpectedVersionError when the run changed while deciding (nothing committed; redeliver); EventRejectedError when
 *   the payload breaks its schema (nothing committed; parked); database errors
 */
export async function handleStepReport(event: IntegrationEvent, options: Omit<SagaConsumerOptions, 'transport'>): Promise<StepReportOutcome> {
  const table = SAGA_SOURCES.find((t) => t.source === event.source);
  const entry = table?.types[event.type];
  const result = await handleOnce(options.store, event, async (tx): Promise<StepReportOutcome> => {
    if (!table || !entry) return { status: 'IGNORED', reason: 'UNKNOWN_TYPE', detail: `${event.source}.${event.type} is not a step report` };
    const parsed = entry.schema.safeParse(event.data);
    if (!parsed.success) throw EventRejectedError.fromZod(event.type, parsed.error);
    const data = parsed.data as { runId?: string; stepName?: string };
    if (data.runId === undefined || data.stepName === undefined) {
      return { status: 'IGNORED', reason: 'NOT_A_STEP_REPORT', detail: 'no runId/stepName: not caused by a workflow step' };
    }
    if (!ID_PATTERN.test(data.runId)) return { status: 'IGNORED', reason: 'RUN_NOT_FOUND', detail: 'not a run id' };
    const outcome: StepOutcome = { runId: data.runId, stepName: data.stepName, kind: table.kind, source: table.source, result: entry.result(parsed.data) };
    const { history, state } = await loadRunIn(options.store, tx, data.runId);
    const decision = decideStepOutcome(state, history, outcome, event.metadata.causationId, options.clock());
    if (!decision.apply) return { status: 'IGNORED', reason: decision.reason, detail: decision.detail };
    const meta: EventMetadata = {
      ...(event.metadata.correlationId !== undefined ? { correlationId: event.metadata.correlationId } : {}),
      causationId: event.eventId,
      actor: SAGA_ACTOR,
      ...(event.metadata.traceparent !== undefined ? { traceparent: event.metadata.traceparent } : {}),
    };
    const appended = await appendRunEventsIn(tx, data.runId, history, decision.events, meta);
    return { status: 'APPLIED', runId: data.runId, stepName: data.stepName, attempt: decision.attempt, appended };
  });
  return result.handled ? result.value : { status: 'DUPLICATE' };
}

/**
 * Starts `workflows-from-content` and `workflows-from-knowledge` on `transport`.
 * @returns `close()` stops both (idempotent)
 */
export async function startSagaConsumers(options: SagaConsumerOptions): Promise<{ close(): Promise<void> }> {
  const consumers: IntegrationConsumer[] = [];
  const { logger } = options;
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= Promise.all(consumers.map((c) => c.close())).then(() => undefined));
  try {
    for (const table of SAGA_SOURCES) {
      consumers.push(
        await options.transport.consume({
          consumer: table.consumer,
          source: table.source,
          types: Object.keys(table.types),
          handler: async (event) => {
            const outcome = await handleStepReport(event, options);
            const context = { eventId: event.eventId, source: event.source, type: event.type, correlationId: event.metadata.correlationId };
            if (outcome.status === 'APPLIED') logger.info({ ...context, ...outcome }, 'workflows saga: step report applied');
            else if (outcome.status === 'DUPLICATE') logger.debug(context, 'workflows saga: redelivered report, already handled');
            else logger.info({ ...context, reason: outcome.reason, detail: outcome.detail }, 'workflows saga: report ignored');
          },
        }),
      );
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { close };
}
