-- CreateTable
CREATE TABLE "workflows" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "revision" INTEGER NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "workflows_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflow_steps" (
    "workflow_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "max_attempts" INTEGER NOT NULL,
    "backoff_ms" INTEGER NOT NULL,
    "timeout_ms" INTEGER NOT NULL,

    CONSTRAINT "workflow_steps_pkey" PRIMARY KEY ("workflow_id","position")
);

-- CreateTable
CREATE TABLE "workflow_runs" (
    "id" TEXT NOT NULL,
    "workflow_id" TEXT NOT NULL,
    "workflow_revision" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "input" JSONB NOT NULL,
    "output" JSONB,
    "error" JSONB,
    "cancel_reason" TEXT,
    "idempotency_key" TEXT,
    "current_step" TEXT,
    "seq" BIGINT NOT NULL,
    "version" INTEGER NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3),

    CONSTRAINT "workflow_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "step_runs" (
    "run_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "max_attempts" INTEGER NOT NULL,
    "backoff_ms" INTEGER NOT NULL,
    "timeout_ms" INTEGER NOT NULL,
    "deadline" TIMESTAMPTZ(3),
    "retry_at" TIMESTAMPTZ(3),
    "output" JSONB,
    "error" JSONB,
    "started_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),

    CONSTRAINT "step_runs_pkey" PRIMARY KEY ("run_id","name")
);

-- CreateTable
CREATE TABLE "run_deadlines" (
    "run_id" TEXT NOT NULL,
    "step_name" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "due_at" TIMESTAMPTZ(3) NOT NULL,
    "causation_id" TEXT NOT NULL,
    "correlation_id" TEXT,

    CONSTRAINT "run_deadlines_pkey" PRIMARY KEY ("run_id")
);

-- CreateTable
CREATE TABLE "idempotency_keys" (
    "workflow_id" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "run_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("workflow_id","key")
);

-- CreateIndex
CREATE UNIQUE INDEX "workflow_steps_workflow_id_name_key" ON "workflow_steps"("workflow_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "workflow_runs_seq_key" ON "workflow_runs"("seq");

-- CreateIndex
CREATE INDEX "workflow_runs_workflow_id_seq_idx" ON "workflow_runs"("workflow_id", "seq");

-- CreateIndex
CREATE INDEX "workflow_runs_status_seq_idx" ON "workflow_runs"("status", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "step_runs_run_id_position_key" ON "step_runs"("run_id", "position");

-- CreateIndex
CREATE INDEX "run_deadlines_due_at_idx" ON "run_deadlines"("due_at");

-- CreateIndex
CREATE UNIQUE INDEX "idempotency_keys_run_id_key" ON "idempotency_keys"("run_id");

-- AddForeignKey
ALTER TABLE "workflow_steps" ADD CONSTRAINT "workflow_steps_workflow_id_fkey" FOREIGN KEY ("workflow_id") REFERENCES "workflows"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "step_runs" ADD CONSTRAINT "step_runs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "workflow_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
