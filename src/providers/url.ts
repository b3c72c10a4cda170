/** Database URLs: parsing goes through the dialect registry; the shapes and helpers are shared. */
export { parseDatabaseUrl, SUPPORTED_SCHEMES } from '../dialects/registry.js';
export { type DatabaseUrl, redactUrl, withDatabase } from '../dialects/url.js';
