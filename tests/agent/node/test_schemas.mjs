// Zod 4 schemas through clients no one here wrote, over chat completions: the official openai client's
// chat.completions.parse with zodResponseFormat, and the Vercel AI SDK's generateObject and forced tool calls (zod
// inputSchema) through createOpenAI(...).chat() and createOpenAICompatible(...). The schemas use what zod writes for
// z.number().int() (minimum/maximum), .min/.max, .regex and .email (pattern, format), unions (anyOf, a discriminated
// oneOf), recursive schemas, getter-based and z.lazy ($ref/$defs, or draft-07 definitions from zodResponseFormat),
// an enum, and the uuid, date and datetime formats. The model has random weights: only the grammar makes the output valid, so every output of every seed must
// parse with the zod schema itself.
// usage: node test_schemas.mjs MNEMOS_BINARY MODEL_GGUF (a sibling with a byte-level BPE vocabulary is preferred:
// every JSON string is reachable with it)
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { generateObject, generateText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { z } from 'zod';
import { commandLine, fail, runTest, startServer } from './serve.mjs';

const { binary, model: modelArg } = commandLine('test_schemas.mjs');
const preferred = join(dirname(modelArg), 'qwen2-bpe-r-q6_k.gguf');
const model = existsSync(preferred) ? preferred : modelArg;
const n_seeds = Number(process.env.MNEMOS_SCHEMA_SEEDS ?? 10);
const max_tokens = 1024;

const srv = await startServer(binary, ['--model', model, '--threads', '2', '--ctx', '4096']);
const server = srv.proc;
const port = srv.port;

// ---- the schemas
const Person = z.object({
  name: z.string().min(1).max(12),
  age: z.number().int().min(0).max(130),
  email: z.string().email().max(40),
});
const Reading = z.object({
  code: z.string().regex(/^[A-Z]{3}-\d{2,4}$/),
  celsius: z.number().min(-40).max(60),
  level: z.number().int().gte(1).lte(5),
  unit: z.enum(['C', 'F']),
});
const Shape = z.object({
  shape: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('circle'), radius: z.number().int().min(1).max(100) }),
    z.object({ kind: z.literal('square'), side: z.number().int().min(1).max(100), label: z.string().max(6) }),
  ]),
  id: z.union([z.number().int().min(0).max(999), z.string().regex(/^id-[a-z]{2}$/)]),
  tag: z.union([z.literal('a'), z.literal('b'), z.null()]),
});
const Node = z.object({
  name: z.string().max(6),
  get children() { return z.array(Node).max(2); },
});
const Tree = z.object({ root: Node });
const Expr = z.lazy(() => z.union([
  z.number().int().min(0).max(9),
  z.object({ op: z.enum(['+', '*']), args: z.array(Expr).min(2).max(2) }),
]));
const Calc = z.object({ expr: Expr, id: z.string().uuid(), on: z.string().date(), at: z.string().datetime() });
// Formats Zod writes with the pattern that enforces them ("starts_with", "ends_with", "cuid", "ulid", "e164").
const Ids = z.object({ ref: z.string().startsWith('ab').max(8), file: z.string().endsWith('.js').max(10),
                       cuid: z.cuid().max(12), ulid: z.ulid(), phone: z.e164() });
const schemas = { Person, Reading, Shape, Tree, Calc, Ids };

const messages = [{ role: 'system', content: 'Answer with JSON only.' }, { role: 'user', content: 'Fill it in.' }];
const sdkPrompt = { system: 'Answer with JSON only.', prompt: 'Fill it in.' };
const baseURL = `http://127.0.0.1:${port}/v1`;
const counts = {};
const count = (k) => { counts[k] = (counts[k] ?? 0) + 1; };

function check(where, schema, value) {
  const r = schema.safeParse(value);
  if (!r.success) fail(`${where}: ${JSON.stringify(value)}: ${r.error.message}`);
  else count(where.split(' ')[0]);
  if (where.endsWith(' seed 1')) console.log(where + ':', JSON.stringify(value));
}

// Runs fn for every seed, a few at a time (the server batches them).
async function forSeeds(fn) {
  const seeds = Array.from({ length: n_seeds }, (_, i) => i + 1);
  for (let i = 0; i < seeds.length; i += 4) await Promise.all(seeds.slice(i, i + 4).map(fn));
}

await runTest(srv, async () => {
  // 1. The official client: chat.completions.parse with zodResponseFormat (strict json_schema, draft-07 definitions).
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  for (const [name, schema] of Object.entries(schemas)) {
    await forSeeds(async (seed) => {
      const where = `openai.parse ${name} seed ${seed}`;
      try {
        const c = await client.chat.completions.parse({ model: 'any', messages, seed, temperature: 1, max_tokens,
          response_format: zodResponseFormat(schema, name.toLowerCase()) });
        const msg = c.choices[0].message;
        if (c.choices[0].finish_reason !== 'stop') fail(`${where}: finish_reason ${c.choices[0].finish_reason}`);
        if (!isDeepStrictEqual(msg.parsed, schema.parse(JSON.parse(msg.content)))) fail(`${where}: parsed differs`);
        check(where, schema, msg.parsed);
      } catch (e) { fail(`${where}: ${e.message}`); }
    });
  }

  // 2. The AI SDK: generateObject through the OpenAI provider's chat model and through openai-compatible.
  const providers = {
    'openai.chat': createOpenAI({ baseURL, apiKey: 'unused' }).chat('any'),
    'compatible': createOpenAICompatible({ name: 'mnemos', baseURL, apiKey: 'unused', supportsStructuredOutputs: true })
      .chatModel('any'),
  };
  for (const [pname, m] of Object.entries(providers)) {
    for (const [name, schema] of Object.entries(schemas)) {
      await forSeeds(async (seed) => {
        const where = `generateObject/${pname} ${name} seed ${seed}`;
        try {
          const r = await generateObject({ model: m, schema, schemaName: name, ...sdkPrompt, seed, temperature: 1,
                                           maxOutputTokens: max_tokens, maxRetries: 0 });
          check(where, schema, r.object);
        } catch (e) { fail(`${where}: ${e.message} ${JSON.stringify(e.text ?? '')}`); }
      });
    }
  }

  // 3. The AI SDK: a forced tool call whose inputSchema is the zod schema (generateText, toolChoice naming it).
  for (const [pname, m] of Object.entries(providers)) {
    for (const [name, schema] of Object.entries(schemas)) {
      await forSeeds(async (seed) => {
        const where = `tool/${pname} ${name} seed ${seed}`;
        try {
          const r = await generateText({ model: m, ...sdkPrompt, seed, temperature: 1, maxOutputTokens: max_tokens,
            maxRetries: 0, tools: { record: tool({ description: 'Record it', inputSchema: schema }) },
            toolChoice: { type: 'tool', toolName: 'record' } });
          const call = r.toolCalls[0];
          if (!call || call.toolName !== 'record' || call.invalid) {
            fail(`${where}: no valid call: ${JSON.stringify(r.content)}`);
            return;
          }
          check(where, schema, call.input);
        } catch (e) { fail(`${where}: ${e.message}`); }
      });
    }
  }

  // 4. A budget too small for the document: the reply says "length" and the client reports it, nothing invalid
  // is passed off as complete.
  try {
    const c = await client.chat.completions.create({ model: 'any', messages, seed: 1, temperature: 1, max_tokens: 3,
      response_format: zodResponseFormat(Person, 'person') });
    if (c.choices[0].finish_reason !== 'length') fail('short budget: finish_reason ' + c.choices[0].finish_reason);
    await client.chat.completions.parse({ model: 'any', messages, seed: 1, temperature: 1, max_tokens: 3,
      response_format: zodResponseFormat(Person, 'person') }).then(
      () => fail('short budget: parse() did not throw'),
      (e) => { if (!/length/i.test(e.constructor.name + e.message)) fail('short budget: ' + e.message); });
  } catch (e) { fail('short budget: ' + e.message); }

  // 5. No budget given (the AI SDK sends no max_tokens without maxOutputTokens): the document runs to its end,
  // past the server's --max-tokens (default 256), and parses.
  const Free = z.object({ bio: z.string(), email: z.string().email(), tags: z.array(z.string().max(20)).max(5) });
  await forSeeds(async (seed) => {
    const where = `unbudgeted Free seed ${seed}`;
    try {
      const r = await generateObject({ model: providers['openai.chat'], schema: Free, ...sdkPrompt, seed,
                                       temperature: 1, maxRetries: 0 });
      check(where, Free, r.object);
      if (r.finishReason !== 'stop') fail(`${where}: finishReason ${r.finishReason}`);
    } catch (e) { fail(`${where}: ${e.message} ${JSON.stringify(e.text ?? '')}`); }
  });

  console.log('valid outputs:', JSON.stringify(counts), 'model', model.split('/').at(-1));
  const want = Object.keys(schemas).length * n_seeds;
  for (const k of ['openai.parse', 'generateObject/openai.chat', 'generateObject/compatible', 'tool/openai.chat',
                   'tool/compatible'])
    if ((counts[k] ?? 0) < want) fail(`${k}: ${counts[k] ?? 0} valid of ${want}`);
  if ((counts.unbudgeted ?? 0) < n_seeds) fail(`unbudgeted: ${counts.unbudgeted ?? 0} valid of ${n_seeds}`);
});
