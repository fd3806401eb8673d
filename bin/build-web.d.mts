/** Types of bin/build-web.mjs (plain JavaScript so that it runs without a loader). */
/** The pages, by folder name under `web/` (also their URL prefix). */
export declare const PAGES: readonly string[];
/** SHA-256 (hex) of the build's inputs: every file under web/ but web/dist, and package-lock.json. */
export declare function inputsHash(): Promise<string>;
/** Whether web/dist holds every page built from the current inputs. */
export declare function isWebBuilt(): Promise<boolean>;
/** Builds every page with Vite into web/dist/<page>. @throws Error naming the page when Vite fails */
export declare function buildWeb(options?: { quiet?: boolean }): Promise<void>;
/**
 * Builds the pages in a child process when web/dist is missing or stale; false without the dev
 * dependencies (nothing built). @throws Error when the build fails
 */
export declare function ensureWebBuilt(log?: (line: string) => void): Promise<boolean>;
