/** prisma/content/migrations, applied offline, produce exactly what schema.prisma declares. */
import { it } from 'vitest';
import { expectNoDrift } from '../../db/testing.ts';

it('the migrated content database matches prisma/content/schema.prisma (no drift)', () => expectNoDrift('content'));
