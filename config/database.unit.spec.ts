import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatabaseConfigError, parseDatabaseConfig } from './database.ts';

const SERVICES = [{ name: 'workflows', envPrefix: 'WORKFLOWS' }, { name: 'content', envPrefix: 'CONTENT' }];

describe('parseDatabaseConfig', () => {
  it('applies the documented defaults when nothing is set', () => {
    const config = parseDatabaseConfig({}, SERVICES);
    expect(config.adminUrl).toBeUndefined();
    expect(config.dataDir).toBe(path.resolve('.data'));
    expect(config.secretsFile).toBe(path.resolve('.data', 'secrets.json'));
    expect(config.embedded).toEqual({ port: 54329, dataDir: path.resolve('.data', 'postgres') });
    expect(config.services.workflows).toEqual({ service: 'workflows', url: undefined, poolMax: 10, statementTimeoutMs: 30_000, idleTimeoutMs: 10_000 });
  });

  it('reads every variable', () => {
    const config = parseDatabaseConfig({
      FLOWGRAPH_ADMIN_DATABASE_URL: 'postgres://postgres@db:5432/postgres',
      FLOWGRAPH_DATA_DIR: '/var/lib/fg',
      FLOWGRAPH_EMBEDDED_PG_PORT: '6000',
      CONTENT_DATABASE_URL: 'postgresql://c:pw@db/flowgraph_content',
      CONTENT_DB_POOL_MAX: '3',
      CONTENT_DB_STATEMENT_TIMEOUT_MS: '0',
      CONTENT_DB_IDLE_TIMEOUT_MS: '500',
    }, SERVICES);
    expect(config.adminUrl).toBe('postgres://postgres@db:5432/postgres');
    expect(config.embedded).toEqual({ port: 6000, dataDir: '/var/lib/fg/postgres' });
    expect(config.services.content).toEqual({
      service: 'content', url: 'postgresql://c:pw@db/flowgraph_content', poolMax: 3, statementTimeoutMs: 0, idleTimeoutMs: 500,
    });
  });

  it('fails fast naming every bad variable, without printing passwords', () => {
    let error: unknown;
    try {
      parseDatabaseConfig({
        WORKFLOWS_DATABASE_URL: 'mysql://u:hunter2@x/db',
        WORKFLOWS_DB_POOL_MAX: '0',
        FLOWGRAPH_EMBEDDED_PG_PORT: 'abc',
      }, SERVICES);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DatabaseConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/WORKFLOWS_DATABASE_URL: expected a postgres:\/\//);
    expect(message).toMatch(/WORKFLOWS_DB_POOL_MAX/);
    expect(message).toMatch(/FLOWGRAPH_EMBEDDED_PG_PORT/);
    expect(message).not.toContain('hunter2');
  });
});
