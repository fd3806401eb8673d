/** prisma/workflows/migrations, applied offline, produce exactly what schema.prisma declares. */
import { it } from 'vitest';
import { expectNoDrift } from '../../db/testing.ts';

it('the migrated workflows database matches prisma/workflows/schema.prisma (no drift)', () => expectNoDrift('workflows'));
