// The OpenAI protocol surface of `mnemos serve`, through the official OpenAI Node client and plain fetch: errors
// with string codes, random seeds unless given, models.retrieve, streamed usage with stream_options, a 413 that
// fetch reads whole, CORS preflights, and session_id (created on first use, resent histories matched).
// usage: node test_protocol.mjs MNEMOS_BINARY MODEL_GGUF
import OpenAI from 'openai';
import { commandLine, fail, runTest, startServer } from './serve.mjs';

const { binary, model } = commandLine('test_protocol.mjs');

const origin = 'http://localhost:5173';
// Full attention in a small context, so that a long message is refused (context_length_exceeded).
const srv = await startServer(binary, ['--model', model, '--threads', '1', '--max-tokens', '16', '--ctx', '256', '--attention', 'full', '--cors-origin', origin]);
const server = srv.proc;
const port = srv.port;
const base = `http://127.0.0.1:${port}`;

// Runs fn, which must throw an OpenAI.APIError; returns it.
async function apiError(what, fn) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) throw e;
    return e;
  }
  fail(what + ': no error');
  return null;
}

await runTest(srv, async () => {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const hi = [{ role: 'user', content: 'Once upon a time' }];

  // Errors: string codes where clients look for them.
  let e = await apiError('long message', () => client.chat.completions.create(
    { model: 'any', messages: [{ role: 'user', content: 'the cat sat on the mat '.repeat(200) }] }));
  if (e && (e.status !== 400 || e.code !== 'context_length_exceeded' || e.type !== 'invalid_request_error' ||
            e.param !== 'messages'))
    fail('context_length_exceeded: ' + JSON.stringify({ status: e.status, code: e.code, type: e.type, param: e.param }));
  e = await apiError('max_tokens 1e9', () => client.chat.completions.create(
    { model: 'any', messages: hi, max_tokens: 1e9 }));
  if (e && (e.status !== 400 || e.code !== 'invalid_value' || e.param !== 'max_tokens' || !/1048576/.test(e.message)))
    fail('max_tokens: ' + JSON.stringify({ status: e.status, code: e.code, param: e.param, message: e.message }));
  e = await apiError('models.retrieve', () => client.models.retrieve('gpt-4o'));
  if (e && (!(e instanceof OpenAI.NotFoundError) || e.code !== 'model_not_found'))
    fail('models.retrieve(gpt-4o): ' + JSON.stringify({ status: e.status, code: e.code }));
  console.log('errors: string codes ok');

  // Models.
  const list = await client.models.list();
  const id = list.data[0].id;
  const one = await client.models.retrieve(id);
  if (one.id !== id || one.object !== 'model') fail('models.retrieve: ' + JSON.stringify(one));

  // Seeds: two free draws at temperature 1 differ, a given seed repeats, the reported seed reproduces.
  const hot = { model: 'any', messages: hi, max_tokens: 24, temperature: 1 };
  const a = await client.chat.completions.create(hot);
  const b = await client.chat.completions.create(hot);
  const ta = a.choices[0].message.content, tb = b.choices[0].message.content;
  if (ta === tb) fail('two requests without seed gave the same text: ' + JSON.stringify(ta));
  if (!Number.isSafeInteger(a.mnemos?.seed) || a.mnemos.seed === b.mnemos?.seed)
    fail('reported seeds: ' + JSON.stringify([a.mnemos, b.mnemos]));
  const s1 = await client.chat.completions.create({ ...hot, seed: 42 });
  const s2 = await client.chat.completions.create({ ...hot, seed: 42 });
  if (s1.choices[0].message.content !== s2.choices[0].message.content) fail('seed 42 does not repeat');
  const replay = await client.chat.completions.create({ ...hot, seed: a.mnemos.seed });
  if (replay.choices[0].message.content !== ta) fail('the reported seed does not reproduce the reply');
  console.log('seeds:', JSON.stringify(ta), 'vs', JSON.stringify(tb));

  // Streamed usage: none without stream_options; with include_usage, usage null on every chunk and a last
  // chunk with no choices.
  let chunks = [];
  for await (const c of await client.chat.completions.create({ ...hot, seed: 1, stream: true })) chunks.push(c);
  if (chunks.some((c) => 'usage' in c)) fail('usage without stream_options');
  chunks = [];
  const so = { ...hot, seed: 1, stream: true, stream_options: { include_usage: true } };
  for await (const c of await client.chat.completions.create(so)) chunks.push(c);
  const last = chunks[chunks.length - 1];
  if (!last || last.choices.length !== 0 || !(last.usage?.completion_tokens > 0) ||
      last.usage.total_tokens !== last.usage.prompt_tokens + last.usage.completion_tokens)
    fail('usage chunk: ' + JSON.stringify(last));
  if (chunks.slice(0, -1).some((c) => c.usage !== null || c.choices.length !== 1))
    fail('chunks before the usage chunk: ' + JSON.stringify(chunks.slice(0, -1)));
  console.log('stream usage:', chunks.length, 'chunks, last', JSON.stringify(last.usage));

  // A body over the limit (1 MiB): fetch reads the whole 413, every time.
  const big = JSON.stringify({ model: 'any', messages: [{ role: 'user', content: 'x'.repeat(2 << 20) }] });
  let n413 = 0;
  for (let i = 0; i < 10; i++) {
    try {
      const res = await fetch(`${base}/v1/chat/completions`,
                              { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
      const j = await res.json();
      if (res.status === 413 && j.error?.code === 'payload_too_large') n413++;
      else fail('oversized body: ' + res.status + ' ' + JSON.stringify(j));
    } catch (err) {
      fail('oversized body, try ' + i + ': ' + (err.cause?.code || err.message));
    }
  }
  if (n413 !== 10) fail(`413 in ${n413} of 10`);
  // Still sending when the server answers (a streamed body that pauses after its first piece): the server drains
  // the rest before it closes, so the upload completes and the 413 is read.
  for (let i = 0; i < 3; i++) {
    const piece = new TextEncoder().encode('x'.repeat(256 << 10));
    let sent = 0;
    const body = new ReadableStream({
      async pull(controller) {
        if (sent === 1) await new Promise((r) => setTimeout(r, 200));
        if (sent++ < 8) controller.enqueue(piece);
        else controller.close();
      },
    });
    try {
      const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', body, duplex: 'half',
                                                               headers: { 'content-type': 'application/json' } });
      const j = await res.json();
      if (res.status !== 413 || j.error?.code !== 'payload_too_large') fail('streamed oversized body: ' + res.status);
    } catch (err) {
      fail('streamed oversized body, try ' + i + ': ' + (err.cause?.code || err.message));
    }
  }
  console.log('oversized body: 413 in', n413, 'of 10');

  // CORS: a preflight from the allowed origin is granted, one from another origin is not.
  const preflight = (from) => fetch(`${base}/v1/chat/completions`, { method: 'OPTIONS', headers: {
    Origin: from, 'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization, content-type, x-stainless-os' } });
  const ok = await preflight(origin);
  const h = (name) => ok.headers.get(name) ?? '';
  if (ok.status !== 204 || h('access-control-allow-origin') !== origin ||
      !h('access-control-allow-methods').includes('POST') ||
      !h('access-control-allow-headers').toLowerCase().includes('authorization') ||
      !h('access-control-allow-headers').includes('x-stainless-os') || !(Number(h('access-control-max-age')) > 0))
    fail('preflight: ' + ok.status + ' ' + JSON.stringify([...ok.headers]));
  const denied = await preflight('http://evil.example');
  if (denied.status === 204 || denied.headers.get('access-control-allow-origin'))
    fail('preflight from another origin: ' + denied.status + ' ' + JSON.stringify([...denied.headers]));
  const got = await fetch(`${base}/v1/models`, { headers: { Origin: origin } });
  if (got.headers.get('access-control-allow-origin') !== origin) fail('no Access-Control-Allow-Origin on GET');
  console.log('cors: preflight', ok.status, 'denied', denied.status);

  // session_id: created on first use; a resent history appends only its new tail; a contradicting one gets 409.
  const sid = 'node-' + Math.random().toString(16).slice(2, 10);
  const history = [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'A fox.' }];
  const r1 = await client.chat.completions.create({ model: 'any', messages: history, max_tokens: 8, session_id: sid });
  if (r1.session_id !== sid) fail('session_id not echoed: ' + JSON.stringify(r1));
  history.push({ role: 'assistant', content: r1.choices[0].message.content }, { role: 'user', content: 'A hen.' });
  await client.chat.completions.create({ model: 'any', messages: history, max_tokens: 8, session_id: sid });
  const events = await (await fetch(`${base}/v1/sessions/${sid}/events`)).json();
  const logged = events.data.filter((ev) => ev.type === 'message').map((ev) => ev.role + ':' + ev.content);
  if (logged.length !== 5 || logged[0] !== 'system:You tell short stories.' || logged[3] !== 'user:A hen.')
    fail('session log after a resent history: ' + JSON.stringify(logged));
  const edited = [...history.slice(0, 3), { role: 'user', content: 'A wolf.' }, { role: 'assistant', content: 'x' },
                  { role: 'user', content: 'More.' }];
  e = await apiError('contradicting history', () => client.chat.completions.create(
    { model: 'any', messages: edited, max_tokens: 8, session_id: sid }));
  if (e && (!(e instanceof OpenAI.ConflictError) || e.code !== 'session_history_mismatch' ||
            !/messages\[3\]/.test(e.message)))
    fail('contradicting history: ' + JSON.stringify({ status: e.status, code: e.code, message: e.message }));
  console.log('session_id:', logged.length, 'messages logged;', e?.message);
});
