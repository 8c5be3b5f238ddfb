// CORS from a real browser: headless Chromium loads a page from one origin (a small Node server) whose script
// calls `mnemos serve` on another with an API key header, so the browser sends a preflight first. The allowed
// origin reads the chat completion; a page from an origin the server was not given is blocked by the browser.
// usage: node test_cors_browser.mjs MNEMOS_BINARY MODEL_GGUF   (skipped when chromium is not installed)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandLine, fail, startServer } from './serve.mjs';

const { binary, model } = commandLine('test_cors_browser.mjs');
const chromium = process.env.CHROMIUM || 'chromium';
try {
  execFileSync(chromium, ['--version'], { stdio: 'ignore' });
} catch {
  console.log(`SKIP: ${chromium} not found`);
  process.exit(0);
}

// A page whose script posts a chat completion to `api` with a key (a non-simple header: preflighted) and writes
// the outcome into <pre id="result">.
function page(api) {
  return `<!doctype html><html><body><pre id="result">pending</pre><script>
fetch(${JSON.stringify(api + '/v1/chat/completions')}, {
  method: 'POST',
  headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer unused'},
  body: JSON.stringify({messages: [{role: 'user', content: 'Hi'}], max_tokens: 4, temperature: 0})
}).then(r => r.json()).then(j => {
  document.getElementById('result').textContent = 'ok ' + j.object;
}).catch(e => { document.getElementById('result').textContent = 'blocked ' + e.name; });
</script></body></html>`;
}

let api = '';  // mnemos' address, once it listens

// A Node server for a page's origin; resolves to it and its port.
function servePage() {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page(api));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port })));
}

const allowed = await servePage();  // its origin is the one the server allows
const other = await servePage();
const allowedOrigin = `http://127.0.0.1:${allowed.port}`;
const srv = await startServer(binary, ['--model', model, '--threads', '1', '--max-tokens', '8', '--cors-origin', allowedOrigin]);
const server = srv.proc;
const port = srv.port;
api = `http://127.0.0.1:${port}`;

// Chromium's DOM of url after its scripts ran (virtual time lets the fetch finish).
function dumpDom(url) {
  const profile = mkdtempSync(join(tmpdir(), 'mnemos-cors-'));
  return new Promise((resolve) => {
    const c = spawn(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                               '--disable-background-networking', '--disable-component-update', '--disable-sync',
                               `--user-data-dir=${profile}`, '--virtual-time-budget=15000', '--dump-dom', url],
                    { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d.toString(); });
    c.on('exit', () => { rmSync(profile, { recursive: true, force: true }); resolve(out); });
  });
}

try {
  const ok = await dumpDom(`${allowedOrigin}/`);
  const okResult = (ok.match(/<pre id="result">([^<]*)<\/pre>/) || [])[1];
  console.log('allowed origin:', okResult);
  if (okResult !== 'ok chat.completion') fail('the allowed origin could not read the reply: ' + okResult);
  const blocked = await dumpDom(`http://127.0.0.1:${other.port}/`);
  const blockedResult = (blocked.match(/<pre id="result">([^<]*)<\/pre>/) || [])[1];
  console.log('other origin:', blockedResult);
  if (!blockedResult || !blockedResult.startsWith('blocked')) fail('another origin was not blocked: ' + blockedResult);
} finally {
  server.kill('SIGTERM');
  allowed.srv.close();
  other.srv.close();
}
if (!process.exitCode) console.log('OK');
