import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandRetriesExhaustedError, handleCommand, type Decider } from './index.ts';
import { createStoreFixture, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('command');
});
afterAll(() => fx.close());

type CounterEvent = { type: 'Incremented'; data: { by: number } } | { type: 'Closed'; data: Record<string, never> };
type CounterCommand = { type: 'increment'; by: number } | { type: 'close' };
interface Counter {
  value: number;
  closed: boolean;
}
class CounterClosedError extends Error {
  readonly code = 'ILLEGAL_TRANSITION';
}
const counter: Decider<Counter, CounterCommand, CounterEvent> = {
  initialState: () => ({ value: 0, closed: false }),
  evolve: (state, event) => (event.type === 'Incremented' ? { ...state, value: state.value + event.data.by } : { ...state, closed: true }),
  decide: (command, state) => {
    if (state.closed) throw new CounterClosedError('counter is closed');
    if (command.type === 'close') return [{ type: 'Closed', data: {} }];
    if (command.by === 0) return [];
    return [{ type: 'Incremented', data: { by: command.by } }];
  },
};

describe('handleCommand', () => {
  it('loads, decides, appends at the exact version and returns the new state', async () => {
    const first = await handleCommand(fx.store, { streamId: 'counter-1', decider: counter, command: { type: 'increment', by: 2 } });
    expect(first.state).toEqual({ value: 2, closed: false });
    expect(first.newEvents.map((e) => e.type)).toEqual(['Incremented']);
    const second = await handleCommand(fx.store, { streamId: 'counter-1', decider: counter, command: { type: 'increment', by: 3 }, metadata: { actor: 'tester' } });
    expect(second.state.value).toBe(5);
    expect(second.newEvents[0]?.metadata.actor).toBe('tester');
    expect(second.result?.nextExpectedVersion).toBe(1);
  });

  it('returns without appending when decide returns no events', async () => {
    const r = await handleCommand(fx.store, { streamId: 'counter-1', decider: counter, command: { type: 'increment', by: 0 } });
    expect(r.result).toBeNull();
    expect(await fx.store.readStream('counter-1')).toHaveLength(2);
  });

  it('an illegal command throws the domain error and appends nothing', async () => {
    await handleCommand(fx.store, { streamId: 'counter-2', decider: counter, command: { type: 'close' } });
    await expect(handleCommand(fx.store, { streamId: 'counter-2', decider: counter, command: { type: 'increment', by: 1 } })).rejects.toBeInstanceOf(
      CounterClosedError,
    );
    expect(await fx.store.readStream('counter-2')).toHaveLength(1);
  });

  it('concurrent commands all succeed through bounded retries', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => handleCommand(fx.store, { streamId: 'counter-3', decider: counter, command: { type: 'increment', by: 1 }, maxAttempts: 20 })),
    );
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const events = await fx.store.readStream('counter-3');
    expect(events).toHaveLength(8);
  });

  it('gives up with CommandRetriesExhaustedError when every attempt conflicts', async () => {
    await fx.store.appendToStream('counter-4', [{ type: 'Incremented', data: { by: 1 } }]);
    // A concurrent writer that always gets in between the handler's read and its append.
    const contended = {
      ...fx.store,
      appendToStream: async (...args: Parameters<typeof fx.store.appendToStream>) => {
        await fx.store.appendToStream('counter-4', [{ type: 'Incremented', data: { by: 100 } }]);
        return fx.store.appendToStream(...args);
      },
    };
    const error = await handleCommand(contended, {
      streamId: 'counter-4',
      decider: counter,
      command: { type: 'increment', by: 1 },
      maxAttempts: 2,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandRetriesExhaustedError);
    expect(error).toMatchObject({ code: 'COMMAND_RETRIES_EXHAUSTED', streamId: 'counter-4', attempts: 2 });
    const events = await fx.store.readStream('counter-4');
    expect(events.map((e) => (e.data as { by: number }).by)).toEqual([1, 100, 100]);
  });
});
