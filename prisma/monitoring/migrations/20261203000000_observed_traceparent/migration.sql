-- The W3C traceparent an observed event carried in its metadata (issue 9): Trace.traceId.
ALTER TABLE "observed_events" ADD COLUMN "traceparent" TEXT;
