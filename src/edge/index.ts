/** The edge's public surface: what the CLI and the route modules import. */
export { createEdgeApp, MIDDLEWARE_ORDER, type EdgeApp, type EdgeAppOptions } from './app.js';
export { loadEdgeConfig, ConfigError, type EdgeConfig, type LogLevel } from './config.js';
export { createEdgeLogger } from './logger.js';
export { startEdgeServer, type EdgeServer, type EdgeServerOptions } from './server.js';
export { toProblem, problemForStatus, statusForCode, problemType, PROBLEM_CONTENT_TYPE, type Problem } from './problem.js';
export { sendProblem } from './middleware/errorHandling.js';
export { validate, validateRequest, formatIssuePath, type RequestSchemas, type Validated } from './middleware/validate.js';
export { JSON_MEDIA_TYPES } from './middleware/requestValidation.js';
export { REQUEST_ID_HEADER } from './middleware/requestLogging.js';
export type { ReadinessCheck } from './routes/ops.js';
export {
  RequestValidationError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  MalformedJsonError,
  RateLimitedError,
  NotReadyError,
  type FieldIssue,
} from './errors.js';
