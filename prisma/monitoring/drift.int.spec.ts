/** prisma/monitoring/migrations, applied offline, produce exactly what schema.prisma declares. */
import { it } from 'vitest';
import { expectNoDrift } from '../../db/testing.ts';

it('the migrated monitoring database matches prisma/monitoring/schema.prisma (no drift)', () => expectNoDrift('monitoring'));
