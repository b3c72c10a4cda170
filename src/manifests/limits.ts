/**
 * Bounds that keep hostile manifests from crashing or stalling the process. Manifests are
 * small; every limit is far above what a real one needs.
 */

/** Largest manifest (or appvisor.yaml) file read, in bytes. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** Deepest nesting of mappings and lists, aliases included. */
export const MAX_DEPTH = 64;

/**
 * Most YAML tokens in one file. The yaml parser needs several microseconds per token and more
 * for some shapes, so this bounds the time one file can take (about 50,000 tokens is 10,000 lines).
 */
export const MAX_TOKENS = 50_000;

/** Most alias nodes (`*name`) in one file, and the expansion budget handed to yaml. */
export const MAX_ALIASES = 100;

/** Files read and checked between two yields to the event loop while loading a folder. */
export const YIELD_EVERY = 64;

/** Most errors reported for one file; the rest are summed up in one last error. */
export const MAX_ERRORS_PER_FILE = 20;
