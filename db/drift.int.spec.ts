import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchemaDriftError } from './drift.ts';
import { expectNoDrift } from './testing.ts';

const SCHEMA = `generator client {
  provider = "prisma-client"
  output   = "./generated"
}

datasource db {
  provider = "postgresql"
}

model Widget {
  id        String   @id
  name      String
  size      Int?
  createdAt DateTime @map("created_at") @db.Timestamptz(3)

  @@index([name])
  @@map("widgets")
}
`;

const MIGRATION = `-- CreateTable
CREATE TABLE "widgets" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "size" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "widgets_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "widgets_name_idx" ON "widgets"("name");
`;

describe('expectNoDrift', () => {
  let dir: string;
  let options: { schemaPath: string; migrationsDir: string };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'fg-drift-'));
    await mkdir(path.join(dir, 'migrations', '20250101000000_init'), { recursive: true });
    await writeFile(path.join(dir, 'schema.prisma'), SCHEMA);
    await writeFile(path.join(dir, 'migrations', '20250101000000_init', 'migration.sql'), MIGRATION);
    options = { schemaPath: path.join(dir, 'schema.prisma'), migrationsDir: path.join(dir, 'migrations') };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes when the migrations produce exactly the schema (the event store schema is ignored)', async () => {
    await expect(expectNoDrift('widgets', options)).resolves.toBeUndefined();
  });

  it('fails, naming the column, when a column was added by hand', async () => {
    const failure = await expectNoDrift('widgets', {
      ...options,
      tamper: async (db) => { await db.pool.query('ALTER TABLE widgets ADD COLUMN colour text'); },
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(SchemaDriftError);
    expect((failure as SchemaDriftError).script).toMatch(/DROP COLUMN "colour"/);
  });

  it('fails when an index declared in the schema is missing', async () => {
    const failure = await expectNoDrift('widgets', {
      ...options,
      tamper: async (db) => { await db.pool.query('DROP INDEX widgets_name_idx'); },
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(SchemaDriftError);
    expect((failure as SchemaDriftError).script).toMatch(/CREATE INDEX "widgets_name_idx"/);
  });

  it('fails when a column is nullable in the database but required in the schema', async () => {
    const failure = await expectNoDrift('widgets', {
      ...options,
      tamper: async (db) => { await db.pool.query('ALTER TABLE widgets ALTER COLUMN name DROP NOT NULL'); },
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(SchemaDriftError);
    expect((failure as SchemaDriftError).script).toMatch(/"name" SET NOT NULL/);
  });
});
