/**
 * Transport-level request validation, before any route runs: size (413),
 * media type (415) and JSON syntax (400). The body is parsed here, bounded by
 * MAX_BODY_BYTES, so routes only ever see `ctx.request.body` as parsed JSON.
 * Field-level checks belong to the routes (see validate.ts).
 */
import type { Context, Middleware } from 'koa';
import { koaBody, HttpMethodEnum } from 'koa-body';
import type { IncomingMessage } from 'node:http';
import { MalformedJsonError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
/** application/json and structured-syntax +json types (e.g. application/merge-patch+json). */
export const JSON_MEDIA_TYPES = ['application/json', '+json'];

function hasBody(ctx: Context): boolean {
  const length = ctx.request.length;
  return (length !== undefined && length > 0) || ctx.get('Transfer-Encoding') !== '';
}

export function requestValidation(options: { maxBodyBytes: number }): Middleware {
  const { maxBodyBytes } = options;
  const parseJson = koaBody({
    json: true,
    urlencoded: false,
    text: false,
    multipart: false,
    jsonTypes: JSON_MEDIA_TYPES,
    jsonLimit: maxBodyBytes,
    // Top-level value must be an object or an array: every API body is one.
    jsonStrict: true,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH],
    patchKoa: true,
    // Only parsing failures arrive here (not errors from later middleware).
    onError: (err, ctx) => {
      const translated = translateParseError(err, maxBodyBytes);
      // A chunked body cut off at the limit leaves the rest unread on the socket: close it.
      if (translated instanceof PayloadTooLargeError) ctx.set('Connection', 'close');
      throw translated;
    },
  });

  return async function requestValidation(ctx, next) {
    // A declared length is checked before reading a byte; chunked bodies are cut off by the parser's limit.
    const length = ctx.request.length;
    if (length !== undefined && length > maxBodyBytes) {
      // Lingering close: read and discard the body before answering and closing. Closing a socket
      // with unread data makes the kernel reset it, and the client would see EPIPE, not the 413.
      // Absurd sizes are not read: those clients get the reset.
      ctx.set('Connection', 'close');
      if (length <= 8 * maxBodyBytes) await discardBody(ctx.req, length, 10_000);
      throw new PayloadTooLargeError(maxBodyBytes);
    }
    if (BODY_METHODS.has(ctx.method) && hasBody(ctx) && !ctx.is(JSON_MEDIA_TYPES)) {
      const type = ctx.get('Content-Type');
      throw new UnsupportedMediaTypeError(
        type ? `Content-Type '${type}' is not supported; send application/json` : 'missing Content-Type; send application/json',
      );
    }
    await parseJson(ctx, next);
  };
}

/** Read a request body to its end (at most `cap` bytes, `timeoutMs`), keeping nothing. */
function discardBody(req: IncomingMessage, cap: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(done, timeoutMs);
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > cap) done();
    });
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

function translateParseError(err: Error, maxBodyBytes: number): Error {
  const e = err as Error & { status?: number; type?: string };
  if (e.status === 413 || e.type === 'entity.too.large') return new PayloadTooLargeError(maxBodyBytes);
  if (e.status === 415 || e.type === 'encoding.unsupported') return new UnsupportedMediaTypeError(e.message);
  if (e instanceof SyntaxError) return new MalformedJsonError(syntaxReason(e.message));
  // A body that says it is compressed but does not decompress: zlib codes are Z_*, brotli's ERR__ERROR_*.
  const code = (e as unknown as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR__ERROR_'))) {
    return new MalformedJsonError('the body could not be decoded with its Content-Encoding');
  }
  // e.g. 'request aborted', 'request size did not match content length': already http-errors with a status.
  return err;
}

/** V8 quotes a slice of the body in its message; keep only where it broke, never the content. */
function syntaxReason(message: string): string {
  const at = /at position (\d+)/.exec(message);
  if (at) return `syntax error at position ${at[1]}`;
  if (/only supports object and array/.test(message)) return 'the top-level value must be an object or an array';
  if (/unexpected end/i.test(message)) return 'unexpected end of input';
  if (/prototype/i.test(message)) return 'forbidden __proto__ key';
  return 'syntax error';
}
