/**
 * Process lifecycle of `npm start` and `start:service`: resources are registered as they are
 * created and closed in reverse order on SIGINT/SIGTERM (or after a failed start); a second
 * signal forces the exit.
 */
import type { Logger } from 'pino';

/** How long the process may take to exit on its own after a clean shutdown, in ms. */
const EXIT_GRACE_MS = 5_000;
/**
 * The shutdown grace period, in ms: 35 s from the first signal. Closers still running then are
 * abandoned and the process exits with code 1, naming them: an in-flight integration event is
 * left unacknowledged (NATS redelivers it, the inbox absorbs a repeat), an open transaction is
 * rolled back by PostgreSQL. Longer than the embedded PostgreSQL's 30 s stop escalation, shorter
 * than docker-compose's `stop_grace_period: 40s`, after which Docker would SIGKILL.
 */
export const SHUTDOWN_GRACE_MS = 35_000;

/** Options of {@link createLifecycle}; the defaults are the process's own. */
export interface LifecycleOptions {
  /** @default {@link SHUTDOWN_GRACE_MS} */
  shutdownGraceMs?: number;
  /** Ends the process. @default `process.exit` */
  exit?: (code: number) => void;
  /** Listen to SIGINT/SIGTERM. @default true */
  handleSignals?: boolean;
}
/**
 * Signals within this many ms of the first one are the same Ctrl-C, not a second one: a
 * terminal signals its whole foreground process group, and `npm` and `tsx` then relay the
 * signal to their child as well, so one Ctrl-C reaches the process two or three times.
 */
const DUPLICATE_SIGNAL_WINDOW_MS = 1_000;

/** The process's cleanup stack. */
export interface Lifecycle {
  /** Registers `close` (named for the logs); closers run last-registered first. */
  defer(name: string, close: () => Promise<void> | void): void;
  /** True once a signal arrived or {@link Lifecycle.shutdown} was called. */
  readonly stopping: boolean;
  /** @throws StartAborted when a shutdown was requested: call between the steps of a start sequence. */
  throwIfStopping(): void;
  /**
   * Runs the process's start sequence. A shutdown requested meanwhile waits for it to settle
   * (the sequence should call {@link Lifecycle.throwIfStopping} between steps) before closing
   * what it registered. When the sequence throws anything but {@link StartAborted}, the error is
   * logged and everything registered so far is closed with exit code 1.
   */
  start(sequence: () => Promise<void>): Promise<void>;
  /**
   * Runs every closer in reverse order (a failing closer is logged and the others still run),
   * then sets `process.exitCode` (0, or 1 when a closer failed or `failed` is true) and lets the
   * process end; if something still holds the event loop after 5 s it exits anyway. Idempotent.
   */
  shutdown(reason: string, failed?: boolean): Promise<void>;
}

/** Thrown by a start sequence that notices a shutdown was requested while it was starting. */
export class StartAborted extends Error {
  override readonly name = 'StartAborted';
}

/**
 * A lifecycle whose SIGINT/SIGTERM handlers call `shutdown`. A second signal (more than 1 s
 * after the first; closer ones are the same Ctrl-C relayed by npm/tsx) exits at once with code
 * 130 (SIGINT) or 143 (SIGTERM).
 */
export function createLifecycle(logger: Logger, options: LifecycleOptions = {}): Lifecycle {
  const graceMs = options.shutdownGraceMs ?? SHUTDOWN_GRACE_MS;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const closers: Array<{ name: string; close: () => Promise<void> | void }> = [];
  let stopping = false;
  let shuttingDown: Promise<void> | undefined;
  let startSettled: Promise<void> = Promise.resolve();

  const shutdown = (reason: string, failed = false): Promise<void> => {
    stopping = true;
    shuttingDown ??= (async () => {
      logger.info({ reason }, 'shutting down');
      let current = 'the start sequence';
      const grace = setTimeout(() => {
        logger.error({ resource: current, graceMs }, 'shutdown grace period over: abandoning what is still closing (unacknowledged work is redelivered) and exiting');
        exit(1);
      }, graceMs);
      grace.unref();
      await startSettled;
      let ok = !failed;
      for (const { name, close } of closers.splice(0).reverse()) {
        current = name;
        try {
          await close();
          logger.info({ resource: name }, 'closed');
        } catch (error) {
          ok = false;
          logger.error({ resource: name, err: error }, 'close failed');
        }
      }
      clearTimeout(grace);
      logger.info('stopped');
      process.exitCode = ok ? 0 : 1;
      setTimeout(() => {
        logger.warn('something still holds the event loop after shutdown: exiting anyway');
        process.exit(process.exitCode);
      }, EXIT_GRACE_MS).unref();
    })();
    return shuttingDown;
  };

  let firstSignalAt: number | undefined;
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    handlers.set(signal, () => {
      if (firstSignalAt !== undefined && Date.now() - firstSignalAt < DUPLICATE_SIGNAL_WINDOW_MS) {
        logger.debug({ signal }, 'same signal relayed again: ignored');
        return;
      }
      firstSignalAt ??= Date.now();
      if (stopping && shuttingDown) {
        logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
        exit(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      void shutdown(signal);
    });
    if (options.handleSignals !== false) process.on(signal, handlers.get(signal)!);
  }

  /**
   * The composition root alone decides what a signal stops, and in which order. A library that
   * registered its own handler while starting (Apollo Server does unless given
   * `stopOnTerminationSignals: false`; it then stops itself and re-sends the signal) would stop
   * its part out of order and count as a second signal: such handlers are removed, with a warning.
   */
  const claimSignals = () => {
    if (options.handleSignals === false) return;
    for (const [signal, ours] of handlers) {
      for (const listener of process.listeners(signal)) {
        if (listener === ours) continue;
        process.removeListener(signal, listener);
        logger.warn({ signal }, 'removed a foreign signal handler registered during start (e.g. an ApolloServer without stopOnTerminationSignals: false)');
      }
    }
  };

  return {
    defer(name, close) {
      closers.push({ name, close });
    },
    get stopping() {
      return stopping;
    },
    throwIfStopping() {
      if (stopping) throw new StartAborted('shutdown requested during start');
    },
    async start(sequence) {
      const running = sequence();
      startSettled = running.then(
        () => undefined,
        () => undefined,
      );
      try {
        await running;
        claimSignals();
      } catch (error) {
        if (error instanceof StartAborted) return;
        logger.fatal({ err: error }, 'start failed');
        await shutdown('start failed', true);
      }
    },
    shutdown,
  };
}
