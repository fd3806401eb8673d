-- Monitoring read models (prisma/monitoring/schema.prisma), hand-written in the shape
-- `prisma migrate diff` produces. Written by the inline projection
-- subgraphs/monitoring/projections/observedEventsProjection.ts.

-- CreateTable
CREATE TABLE "observed_events" (
    "source" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "schema_version" INTEGER NOT NULL,
    "stream_id" TEXT NOT NULL,
    "stream_position" INTEGER NOT NULL,
    "correlation_id" TEXT,
    "causation_id" TEXT,
    "actor" TEXT,
    "run_id" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "observed_at" TIMESTAMPTZ(3) NOT NULL,
    "summary" JSONB NOT NULL,
    "log_transaction_id" BIGINT NOT NULL,
    "log_position" BIGINT NOT NULL,

    CONSTRAINT "observed_events_pkey" PRIMARY KEY ("source","event_id")
);

-- CreateTable
CREATE TABLE "event_counters" (
    "source" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "count" BIGINT NOT NULL,
    "first_occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "last_occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "last_observed_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "event_counters_pkey" PRIMARY KEY ("source","type")
);

-- CreateIndex
CREATE INDEX "observed_events_correlation_id_log_transaction_id_log_posit_idx" ON "observed_events"("correlation_id", "log_transaction_id", "log_position");

-- CreateIndex
CREATE INDEX "observed_events_source_type_log_transaction_id_log_position_idx" ON "observed_events"("source", "type", "log_transaction_id", "log_position");

-- CreateIndex
CREATE INDEX "observed_events_causation_id_idx" ON "observed_events"("causation_id");

-- CreateIndex
CREATE INDEX "observed_events_run_id_idx" ON "observed_events"("run_id");

-- CreateIndex
CREATE INDEX "observed_events_event_id_idx" ON "observed_events"("event_id");

-- CreateIndex
CREATE UNIQUE INDEX "observed_events_log_transaction_id_log_position_key" ON "observed_events"("log_transaction_id", "log_position");
