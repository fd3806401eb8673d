/**
 * Vitest global setup: makes sure the tests have a PostgreSQL admin connection in
 * `FLOWGRAPH_ADMIN_DATABASE_URL`.
 */
export default async function setup(): Promise<void> {
  if (!process.env.FLOWGRAPH_ADMIN_DATABASE_URL) {
    process.env.FLOWGRAPH_ADMIN_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
  }
}
