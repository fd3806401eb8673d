/** prisma/knowledge/migrations, applied offline, produce exactly what schema.prisma declares. */
import { it } from 'vitest';
import { expectNoDrift } from '../../db/testing.ts';

it('the migrated knowledge database matches prisma/knowledge/schema.prisma (no drift)', () => expectNoDrift('knowledge'));
