/**
 * The GraphQL documents of the page and the shapes of what they return (the subset of
 * supergraph.graphql the page selects).
 */

/** A step of a run as the runs list and the run detail show it. */
export interface StepView {
  name: string;
  kind: 'INGEST' | 'EXTRACT' | 'EXTERNAL';
  status: string;
  attempt: number;
  error: { message?: string } | null;
  startedAt: string | null;
  endedAt: string | null;
  retryAt?: string | null;
}

/** A run as the runs list shows it. */
export interface RunSummary {
  id: string;
  workflowId: string;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  currentStep: string | null;
  version: number;
  startedAt: string;
  updatedAt: string;
  endedAt: string | null;
  steps: StepView[];
}

/** A run as its detail view shows it. */
export interface RunDetail extends RunSummary {
  workflow: { name: string } | null;
  error: { stepName?: string; message?: string } | null;
  cancelReason: string | null;
  input: unknown;
  steps: (StepView & { document: { id: string; title: string } | null })[];
}

/** An event as monitoring observed it. */
export interface ObservedEvent {
  eventId: string;
  source: string;
  type: string;
  streamId: string;
  streamPosition: number;
  correlationId: string | null;
  causationId: string | null;
  runId: string | null;
  occurredAt: string;
  observedAt: string;
  lagMs: number;
}

/** A workflow in the filter's select. */
export interface WorkflowOption {
  id: string;
  name: string;
}

const STEP_FIELDS = 'name kind status attempt error startedAt endedAt retryAt';
/** The fields of a {@link RunSummary}. */
export const RUN_SUMMARY_FIELDS = `id workflowId status currentStep version startedAt updatedAt endedAt steps { ${STEP_FIELDS} }`;
/** The fields of a {@link RunDetail}. */
export const RUN_DETAIL_FIELDS = `id workflowId workflow { name } status currentStep version startedAt updatedAt endedAt error cancelReason input steps { ${STEP_FIELDS} document { id title } }`;
/** The fields of an {@link ObservedEvent}. */
export const OBSERVED_EVENT_FIELDS = 'eventId source type streamId streamPosition correlationId causationId runId occurredAt observedAt lagMs';

/** One page of runs, newest first. */
export const RUNS_PAGE = /* GraphQL */ `
  query MonitorRuns($filter: RunFilter, $first: Int, $after: String) {
    runs(filter: $filter, first: $first, after: $after) {
      edges { node { ${RUN_SUMMARY_FIELDS} } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

/** Every run event (no filter: the page filters), with the run as of it. */
export const RUNS_LIVE = /* GraphQL */ `
  subscription MonitorRunsLive($after: String) {
    runs(after: $after) { cursor eventType occurredAt run { ${RUN_SUMMARY_FIELDS} asOfVersion } }
  }
`;

/** The workflows, for the filter. */
export const WORKFLOWS = /* GraphQL */ `query MonitorWorkflows { workflows(first: 100) { id name } }`;

/** One run with its timeline. */
export const RUN_DETAIL = /* GraphQL */ `
  query MonitorRun($id: ID!) {
    run(id: $id) { ${RUN_DETAIL_FIELDS} }
    runTimeline(runId: $id, first: 1000) { sinceRunStartMs durationSinceCauseMs event { ${OBSERVED_EVENT_FIELDS} } }
  }
`;

/** A run's live updates. */
export const RUN_LIVE = /* GraphQL */ `
  subscription MonitorRunLive($runId: ID!, $after: String) {
    runUpdated(runId: $runId, after: $after) { cursor eventType occurredAt stepName run { ${RUN_DETAIL_FIELDS} asOfVersion } }
  }
`;

/** A run's timeline alone (refetched as it goes on). */
export const RUN_TIMELINE = /* GraphQL */ `
  query MonitorRunTimeline($id: ID!) {
    runTimeline(runId: $id, first: 1000) { sinceRunStartMs durationSinceCauseMs event { ${OBSERVED_EVENT_FIELDS} } }
  }
`;

/** A cross-service trace. */
export const TRACE = /* GraphQL */ `
  query MonitorTrace($correlationId: ID!) {
    trace(correlationId: $correlationId, first: 1000) {
      correlationId eventCount startedAt endedAt durationMs sources traceId truncated
      events { depth causeEventId durationSinceCauseMs sinceTraceStartMs event { ${OBSERVED_EVENT_FIELDS} } }
    }
  }
`;

/** A timeline entry of `runTimeline`. */
export interface TimelineEntry {
  sinceRunStartMs: number;
  durationSinceCauseMs: number | null;
  event: ObservedEvent;
}

/** A trace as `trace` returns it. */
export interface TraceView {
  correlationId: string;
  eventCount: number;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  sources: string[];
  traceId: string | null;
  truncated: boolean;
  events: { depth: number; causeEventId: string | null; durationSinceCauseMs: number | null; sinceTraceStartMs: number; event: ObservedEvent }[];
}

/** Retry a failed step. */
export const RETRY_STEP = /* GraphQL */ `mutation MonitorRetryStep($runId: ID!, $stepName: String!) { retryStep(runId: $runId, stepName: $stepName) { ${RUN_DETAIL_FIELDS} } }`;
/** Cancel a running run. */
export const CANCEL_RUN = /* GraphQL */ `mutation MonitorCancelRun($runId: ID!, $reason: String) { cancelRun(runId: $runId, reason: $reason) { ${RUN_DETAIL_FIELDS} } }`;

/** Every observed event from the cursor on. */
export const EVENT_FEED_LIVE = /* GraphQL */ `
  subscription MonitorFeed($after: String) {
    eventFeed(after: $after) { cursor occurredAt event { ${OBSERVED_EVENT_FIELDS} } }
  }
`;

/** The counters' starting totals. */
export const EVENT_COUNTERS = /* GraphQL */ `
  query MonitorCounters { eventCounters { total services { source count } types { source type count lastObservedAt } } }
`;

/** A document as the documents list shows it. */
export interface DocumentSummary {
  id: string;
  title: string;
  status: string;
  chunkCount: number;
  charCount: number;
  runId: string | null;
  createdAt: string;
}

/** Documents, newest first. */
export const DOCUMENTS = /* GraphQL */ `
  query MonitorDocuments($first: Int) { documents(first: $first) { edges { node { id title status chunkCount charCount runId createdAt } } } }
`;

/** One document. */
export const DOCUMENT = /* GraphQL */ `
  query MonitorDocument($id: ID!) {
    document(id: $id) { id title status source corpusFile sizeBytes chunkCount charCount runId createdAt updatedAt failure { code reason } }
  }
`;

/** A document's ingestion, live. */
export const DOCUMENT_PROGRESS = /* GraphQL */ `
  subscription MonitorDocumentProgress($documentId: ID!, $after: String) {
    documentProgress(documentId: $documentId, after: $after) { cursor eventType occurredAt chunksStored document { status chunkCount } }
  }
`;

/** A document's entities as its extraction finds them. */
export const ENTITY_DISCOVERED = /* GraphQL */ `
  subscription MonitorEntities($documentId: ID!, $after: String) {
    entityDiscovered(documentId: $documentId, after: $after) { cursor occurredAt chunkIndex entity { id name kind mentionCount } }
  }
`;

/** An entity's neighbours. */
export const NEIGHBORS = /* GraphQL */ `
  query MonitorNeighbors($id: ID!, $first: Int) {
    entity(id: $id) { id name kind mentionCount }
    neighbors(entityId: $id, depth: 1, first: $first) { depth weight entity { id name kind mentionCount } }
  }
`;

/** An entity. */
export interface EntityView {
  id: string;
  name: string;
  kind: 'PERSON' | 'PLACE' | 'ORGANIZATION';
  mentionCount: number;
}
