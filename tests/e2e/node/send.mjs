// The real Segment Node SDK (@segment/analytics-node) pointed at an API by its `host`.
//
//   node tests/e2e/node/send.mjs --host http://127.0.0.1:3000 --write-key wk_demo_website \
//        [--flush-at 15] [--max-retries 1] [CALLS_JSON]
//
// CALLS_JSON (the last argument, or stdin when it is absent) is a list of SDK calls:
//   [{"method": "identify", "args": {"userId": "u-1", "traits": {...}}},
//    {"method": "track", "args": {"userId": "u-1", "event": "Demo Link Clicked", "messageId": "m-1"}}, ...]
// Each becomes `analytics[method](args)`; then `await analytics.closeAndFlush()`.
//
// Prints one JSON line on stdout: the errors the SDK emitted ('error' event), the HTTP requests it
// made ('http_request') and the answers it got ('http_response'). Exits 0 when there was no error,
// 1 when the SDK reported one, 2 on bad usage.
//
// Used by tests/e2e/test_segment_node_sdk.py; install with `npm ci --prefix tests/e2e/node`.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { Analytics } from '@segment/analytics-node';

const METHODS = new Set(['identify', 'track', 'page', 'screen', 'group', 'alias']);
const CLOSE_TIMEOUT_MS = 20000;

function usage(message) {
  process.stderr.write(`send.mjs: ${message}\n`);
  process.exit(2);
}

function readCalls(positionals) {
  let text;
  try {
    text = positionals.length ? positionals[0] : readFileSync(0, 'utf8');
  } catch (error) {
    usage(`cannot read the calls from stdin: ${error.message}`);
  }
  let calls;
  try {
    calls = JSON.parse(text);
  } catch (error) {
    usage(`the calls are not JSON: ${error.message}`);
  }
  if (!Array.isArray(calls)) usage('the calls must be a JSON list');
  for (const [i, call] of calls.entries()) {
    if (!call || !METHODS.has(call.method) || typeof call.args !== 'object' || call.args === null) {
      usage(`call ${i} must be {"method": one of ${[...METHODS].join('|')}, "args": {...}}`);
    }
  }
  return calls;
}

function describe(reason) {
  if (reason instanceof Error) return { name: reason.name, message: reason.message };
  return { name: typeof reason, message: String(reason) };
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        host: { type: 'string' },
        'write-key': { type: 'string' },
        'flush-at': { type: 'string', default: '1' },
        'max-retries': { type: 'string', default: '1' },
      },
    });
  } catch (error) {
    usage(error.message);
  }
  const { values, positionals } = parsed;
  if (!values.host) usage('--host is required (e.g. http://127.0.0.1:3000)');
  if (!values['write-key']) usage('--write-key is required');
  const flushAt = Number.parseInt(values['flush-at'], 10);
  const maxRetries = Number.parseInt(values['max-retries'], 10);
  if (!(flushAt >= 1)) usage('--flush-at must be a positive integer');
  if (!(maxRetries >= 0)) usage('--max-retries must be a non-negative integer');
  const calls = readCalls(positionals);

  const analytics = new Analytics({
    writeKey: values['write-key'],
    host: values.host,
    flushAt,
    maxRetries,
    flushInterval: 200,
    httpRequestTimeout: 10000,
  });

  const errors = [];
  const requests = [];
  const responses = [];
  analytics.on('error', (error) => {
    const event = error.ctx?.event;
    errors.push({
      code: error.code,
      reason: describe(error.reason),
      type: event?.type ?? null,
      messageId: event?.messageId ?? null,
    });
  });
  analytics.on('http_request', (request) => {
    let batch = [];
    try {
      batch = JSON.parse(request.body).batch ?? [];
    } catch {
      // the body is reported as sent; an unparsable one shows as an empty batch
    }
    requests.push({
      method: request.method,
      url: request.url,
      headers: request.headers,
      bodyBytes: Buffer.byteLength(request.body),
      types: batch.map((message) => message.type),
      messageIds: batch.map((message) => message.messageId),
    });
  });
  analytics.on('http_response', (response) => {
    responses.push({ url: response.url, status: response.status, statusText: response.statusText });
  });

  for (const { method, args } of calls) {
    analytics[method](args);
  }
  const started = Date.now();
  await analytics.closeAndFlush({ timeout: CLOSE_TIMEOUT_MS });
  const flushMs = Date.now() - started;

  process.stdout.write(`${JSON.stringify({
    sdk: analytics.VERSION,
    calls: calls.length,
    flushMs,
    timedOut: flushMs >= CLOSE_TIMEOUT_MS,
    errors,
    requests,
    responses,
  })}\n`);
  return errors.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`send.mjs: ${error?.stack ?? error}\n`);
    process.exitCode = 2;
  },
);
