// GET /metrics read by a Prometheus text-format parser no one here wrote (parse-prometheus-text-format): after a few
// requests through the official OpenAI client the latency histograms are there, with endpoint, status and model
// labels, cumulative buckets and counts that agree with the requests made; mnemos_build_info names the build.
// usage: node test_metrics.mjs MNEMOS_BINARY MODEL_GGUF
import OpenAI from 'openai';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { commandLine, fail, runTest, startServer } from './serve.mjs';

const { binary, model } = commandLine('test_metrics.mjs');

const srv = await startServer(binary, ['--model', model, '--threads', '1', '--max-tokens', '16', '--log', '--log-format', 'json']);
const port = srv.port;

const family = (parsed, name) => parsed.find((f) => f.name === name);
const withLabels = (f, want) => (f?.metrics ?? []).filter((m) =>
  Object.entries(want).every(([k, v]) => m.labels?.[k] === v));

// The series of a labelled histogram. parse-prometheus-text-format (1.1.1) checks the syntax and the family types,
// but folds a histogram's series into one (buckets keyed by le alone, _count and _sum only without labels), so
// the series are read here from its samples: {labels (without le), buckets: [[le, cumulative]], count, sum}.
function histogramSeries(text, name) {
  const series = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+)\{(.*)\} (\S+)$/);
    if (!m || ![name + '_bucket', name + '_count', name + '_sum'].includes(m[1])) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const le = labels.le;
    delete labels.le;
    const key = JSON.stringify(labels);
    if (!series.has(key)) series.set(key, { labels, buckets: [] });
    const s = series.get(key);
    if (m[1].endsWith('_bucket')) s.buckets.push([le === '+Inf' ? Infinity : Number(le), Number(m[3])]);
    else if (m[1].endsWith('_count')) s.count = Number(m[3]);
    else s.sum = Number(m[3]);
  }
  return [...series.values()];
}

// Every series: labelled, buckets cumulative (never decreasing with le), the +Inf bucket equal to _count, a _sum.
// Returns the series.
function checkHistogram(parsed, text, name) {
  const f = family(parsed, name);
  if (!f) { fail(`${name}: missing`); return []; }
  if (f.type !== 'HISTOGRAM') fail(`${name}: type ${f.type}`);
  const all = histogramSeries(text, name);
  if (!all.length) fail(`${name}: no series`);
  for (const s of all) {
    const where = `${name}${JSON.stringify(s.labels)}`;
    for (const l of ['endpoint', 'status', 'model']) if (!s.labels[l]) fail(`${where}: no ${l} label`);
    const b = s.buckets.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < b.length; i++) if (b[i][1] < b[i - 1][1]) fail(`${where}: buckets not cumulative`);
    if (b.at(-1)?.[0] !== Infinity) fail(`${where}: no +Inf bucket`);
    if (b.at(-1)?.[1] !== s.count) fail(`${where}: +Inf ${b.at(-1)?.[1]} != count ${s.count}`);
    if (!(s.sum >= 0)) fail(`${where}: sum ${s.sum}`);
  }
  return all;
}
const countOf = (series, want) => series.filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
  .reduce((t, s) => t + s.count, 0);

await runTest(srv, async () => {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-not-checked', maxRetries: 0 });
  const messages = [{ role: 'user', content: 'Once upon a time' }];
  let generated = 0;
  const n = 3;
  for (let i = 0; i < n; i++) {
    const r = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, seed: i });
    generated += r.usage.completion_tokens;
  }
  const stream = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, stream: true });
  for await (const chunk of stream) void chunk;
  try { await client.models.retrieve('no-such-model-route/x/y'); } catch { /* a 404: counted too */ }

  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').startsWith('text/plain')) fail('content-type ' + res.headers.get('content-type'));
  const parsed = parsePrometheusTextFormat(text);

  const chat = { endpoint: '/v1/chat/completions' };
  const requests = family(parsed, 'mnemos_http_requests_total');
  if (requests?.type !== 'COUNTER') fail('mnemos_http_requests_total: ' + JSON.stringify(requests));
  const ok = withLabels(requests, { ...chat, status: '200' });
  if (ok.length !== 1 || Number(ok[0].value) !== n + 1) fail('chat requests counted: ' + JSON.stringify(ok));

  const http = checkHistogram(parsed, text, 'mnemos_http_request_duration_seconds');
  if (countOf(http, { ...chat, status: '200' }) !== n + 1) fail('chat latency count: ' + JSON.stringify(http));
  for (const name of ['mnemos_time_to_first_token_seconds', 'mnemos_queue_wait_seconds', 'mnemos_turn_duration_seconds']) {
    const c = countOf(checkHistogram(parsed, text, name), chat);
    if (c !== n + 1) fail(`${name}: ${c} chat turns, want ${n + 1}`);
    console.log(name, 'chat count', c);
  }
  if (countOf(checkHistogram(parsed, text, 'mnemos_time_per_output_token_seconds'), chat) < 1) fail('no per-token time');
  const turns = withLabels(family(parsed, 'mnemos_turns_total'), chat).reduce((t, m) => t + Number(m.value), 0);
  if (turns !== n + 1) fail(`mnemos_turns_total ${turns}, want ${n + 1}`);
  const tokens = withLabels(family(parsed, 'mnemos_tokens_generated_total'), chat).reduce((t, m) => t + Number(m.value), 0);
  if (!(tokens >= generated)) fail(`mnemos_tokens_generated_total ${tokens} < ${generated}`);

  const build = family(parsed, 'mnemos_build_info');
  const b = build?.metrics?.[0];
  if (!b || Number(b.value) !== 1 || !b.labels.version || !b.labels.commit || !b.labels.model)
    fail('mnemos_build_info: ' + JSON.stringify(build));
  console.log('build info', JSON.stringify(b?.labels));

  // The JSON access log: one object per request line, the key never in it.
  const lines = srv.log().split('\n').filter((l) => l.startsWith('{'));
  const logged = lines.map((l) => JSON.parse(l)).filter((j) => j.path === '/v1/chat/completions');
  if (logged.length !== n + 1) fail(`${logged.length} chat lines in the access log, want ${n + 1}`);
  if (logged.some((j) => j.status !== 200 || !(j.generated_tokens > 0) || typeof j.duration_ms !== 'number'))
    fail('access log: ' + JSON.stringify(logged));
  if (srv.log().includes('sk-not-checked')) fail('the key reached the log');
});
