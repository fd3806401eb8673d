-- StepRun.document (issue 6): the document an INGEST step produced (its output's `documentId`)
-- or an EXTRACT step worked on (StepStarted's `documentId`). Written by the runs projection
-- from now on; rows projected before this migration are filled here with the same rules.

-- AlterTable
ALTER TABLE "step_runs" ADD COLUMN "document_id" TEXT;

-- Backfill: a COMPLETED INGEST step's output names its document.
UPDATE "step_runs"
   SET "document_id" = "output"->>'documentId'
 WHERE "kind" = 'INGEST' AND "status" = 'COMPLETED'
   AND jsonb_typeof("output"->'documentId') = 'string' AND "output"->>'documentId' <> '';

-- Backfill: a started EXTRACT step worked on the document of the nearest COMPLETED INGEST step
-- before it, else on the run input's `documentId` (decide.ts `documentIdFor`; an INGEST step
-- never changes once COMPLETED, so this is what its StepStarted carried).
UPDATE "step_runs" s
   SET "document_id" = COALESCE(
         (SELECT i."document_id" FROM "step_runs" i
           WHERE i."run_id" = s."run_id" AND i."position" < s."position" AND i."kind" = 'INGEST' AND i."document_id" IS NOT NULL
           ORDER BY i."position" DESC LIMIT 1),
         (SELECT CASE WHEN jsonb_typeof(r."input"->'documentId') = 'string' AND r."input"->>'documentId' <> ''
                      THEN r."input"->>'documentId' END
            FROM "workflow_runs" r WHERE r."id" = s."run_id"))
 WHERE s."kind" = 'EXTRACT' AND s."attempt" > 0;
