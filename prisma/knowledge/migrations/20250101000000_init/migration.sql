-- CreateTable
CREATE TABLE "chunks" (
    "document_id" TEXT NOT NULL,
    "chunk_index" INTEGER NOT NULL,
    "chunk_count" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    "start_offset" INTEGER NOT NULL,
    "end_offset" INTEGER NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "chunks_pkey" PRIMARY KEY ("document_id","chunk_index")
);

-- CreateTable
CREATE TABLE "extraction_requests" (
    "run_id" TEXT NOT NULL,
    "step_name" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "document_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "reason" TEXT,
    "correlation_id" TEXT,
    "causation_id" TEXT NOT NULL,
    "requested_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "extraction_requests_pkey" PRIMARY KEY ("run_id","step_name","attempt")
);

-- CreateTable
CREATE TABLE "document_extractions" (
    "document_id" TEXT NOT NULL,
    "chunk_count" INTEGER NOT NULL,
    "entity_count" INTEGER NOT NULL,
    "relation_count" INTEGER NOT NULL,
    "extracted_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "document_extractions_pkey" PRIMARY KEY ("document_id")
);

-- CreateTable
CREATE TABLE "entities" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "mention_count" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "entities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "entity_mentions" (
    "entity_id" TEXT NOT NULL,
    "document_id" TEXT NOT NULL,
    "chunk_index" INTEGER NOT NULL,
    "count" INTEGER NOT NULL,

    CONSTRAINT "entity_mentions_pkey" PRIMARY KEY ("entity_id","document_id","chunk_index")
);

-- CreateTable
CREATE TABLE "relations" (
    "from_entity_id" TEXT NOT NULL,
    "to_entity_id" TEXT NOT NULL,
    "document_id" TEXT NOT NULL,
    "weight" INTEGER NOT NULL,

    CONSTRAINT "relations_pkey" PRIMARY KEY ("from_entity_id","to_entity_id","document_id")
);

-- CreateIndex
CREATE INDEX "extraction_requests_status_document_id_idx" ON "extraction_requests"("status", "document_id");

-- CreateIndex
CREATE INDEX "entities_name_idx" ON "entities"("name");

-- CreateIndex
CREATE INDEX "entity_mentions_document_id_idx" ON "entity_mentions"("document_id");

-- CreateIndex
CREATE INDEX "relations_to_entity_id_idx" ON "relations"("to_entity_id");

-- CreateIndex
CREATE INDEX "relations_document_id_idx" ON "relations"("document_id");
