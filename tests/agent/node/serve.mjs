// Shared by the node tests (test*.mjs): the command line, failures, and `mnemos serve` on an ephemeral port.
import { spawn } from 'node:child_process';

// {binary, model} from `node FILE MNEMOS_BINARY MODEL_GGUF`; exits 2 with a usage line otherwise.
export function commandLine(file) {
  const [binary, model] = process.argv.slice(2);
  if (!binary || !model) {
    console.error(`usage: node ${file} MNEMOS_BINARY MODEL_GGUF`);
    process.exit(2);
  }
  return { binary, model };
}

let nFailures = 0;

// Reports a failed check; the test goes on and exits 1 at the end.
export function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exitCode = 1;
  nFailures++;
}

export function failures() {
  return nFailures;
}

// Starts `BINARY serve --port 0 ARGS...` and resolves once it listens, to {port, base, proc, exited, log, stop}:
// exited resolves to {code, signal}; log() is its stderr so far; stop() sends SIGTERM and awaits the exit.
export async function startServer(binary, args) {
  const proc = spawn(binary, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start: ' + stderr)), 60000);
    proc.stderr.on('data', (d) => {
      stderr += d.toString();
      const m = stderr.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error('server exited with ' + code + ': ' + stderr)));
  });
  const stop = () => {
    proc.kill('SIGTERM');
    return exited;
  };
  return { port, base: `http://127.0.0.1:${port}`, proc, exited, log: () => stderr, stop };
}

// Runs a test's body against srv: a thrown error is a failure; then the server is stopped and must exit cleanly
// (status 0), and the test says OK or FAILED.
export async function runTest(srv, body) {
  try {
    await body();
  } catch (e) {
    fail(e.stack || String(e));
  }
  const { code, signal } = await srv.stop();
  if (code !== 0) fail(`server exit code ${code} signal ${signal}: ${srv.log()}`);
  console.log(process.exitCode ? 'FAILED' : 'OK');
}
