-- Where each mention sits in the knowledge log (issue 6): `entityDiscovered` serves an entity's
-- mentionCount as of an event, `sum(count) WHERE entity_id = $1 AND (log_transaction_id,
-- log_position) <= (event's)`. Written by the graph projection from the recorded EntityMentioned;
-- rows projected before this migration keep NULL (counted as before every event) until a rebuild
-- (`npm run rebuild -- --service knowledge`) refills them.

-- AlterTable
ALTER TABLE "entity_mentions" ADD COLUMN "log_transaction_id" BIGINT,
ADD COLUMN "log_position" BIGINT;

-- CreateIndex
CREATE INDEX "entity_mentions_entity_id_log_transaction_id_log_position_idx" ON "entity_mentions"("entity_id", "log_transaction_id", "log_position");
