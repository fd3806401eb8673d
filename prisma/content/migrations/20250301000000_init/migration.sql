-- CreateTable
CREATE TABLE "documents" (
    "id" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "source_kind" TEXT NOT NULL,
    "corpus_file" TEXT,
    "size_bytes" INTEGER NOT NULL,
    "char_count" INTEGER NOT NULL,
    "chunk_count" INTEGER NOT NULL,
    "run_id" TEXT,
    "step_name" TEXT,
    "failure_code" TEXT,
    "failure_reason" TEXT,
    "seq" BIGINT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "documents_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "chunks" (
    "document_id" TEXT NOT NULL,
    "chunk_index" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    "start_offset" INTEGER NOT NULL,
    "end_offset" INTEGER NOT NULL,
    "search" tsvector,

    CONSTRAINT "chunks_pkey" PRIMARY KEY ("document_id","chunk_index")
);

-- CreateIndex
CREATE UNIQUE INDEX "documents_seq_key" ON "documents"("seq");

-- CreateIndex
CREATE INDEX "documents_run_id_step_name_idx" ON "documents"("run_id", "step_name");

-- CreateIndex
CREATE INDEX "chunks_search_idx" ON "chunks" USING GIN ("search");

-- AddForeignKey
ALTER TABLE "chunks" ADD CONSTRAINT "chunks_document_id_fkey" FOREIGN KEY ("document_id") REFERENCES "documents"("id") ON DELETE CASCADE ON UPDATE CASCADE;
