// The OpenAI Responses API of `mnemos serve`, driven by clients no one here wrote: the official `openai` client
// (responses.create: text and items input, streaming, a function tool round trip, previous_response_id across a
// server restart with --store) and the AI SDK's default OpenAI provider (it speaks Responses): generateText with a
// zod tool, and streamText.
// usage: node test_responses.mjs MNEMOS_BINARY MODEL_GGUF
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, generateObject, streamText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { commandLine, fail, startServer } from './serve.mjs';

const { binary, model } = commandLine('test_responses.mjs');

// Starts `mnemos serve` on an ephemeral port; resolves to {port, stop}. stop() ends it and checks a clean exit.
async function startResponsesServer(extra = []) {
  const srv = await startServer(binary, ['--model', model, '--threads', '1', '--max-tokens', '32', ...extra]);
  const stop = async () => {
    const { code, signal } = await srv.stop();
    if (code !== 0) fail(`server exit code ${code} signal ${signal}: ${srv.log()}`);
  };
  return { port: srv.port, stop };
}

function clientFor(port) {
  return new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
}

function checkResponse(r, what) {
  if (r.object !== 'response' || !/^resp_/.test(r.id)) fail(`${what}: not a Response: ${JSON.stringify(r)}`);
  if (!['completed', 'incomplete'].includes(r.status)) fail(`${what}: status ${r.status}`);
  const u = r.usage;
  if (!u || !(u.input_tokens > 0) || !(u.output_tokens > 0) || u.total_tokens !== u.input_tokens + u.output_tokens ||
      typeof u.input_tokens_details?.cached_tokens !== 'number' || u.output_tokens_details?.reasoning_tokens !== 0)
    fail(`${what}: usage ${JSON.stringify(u)}`);
}

const weatherTool = { type: 'function', name: 'get_weather', description: 'The weather in a city', strict: true,
  parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'],
                additionalProperties: false } };

async function openaiClientChecks(client) {
  // Text input.
  const r = await client.responses.create({ model: 'any', input: 'Once upon a time', max_output_tokens: 12,
                                            temperature: 0 });
  checkResponse(r, 'text input');
  if (typeof r.output_text !== 'string' || r.output[0]?.type !== 'message') fail('text input: ' + JSON.stringify(r));
  console.log('responses.create:', JSON.stringify(r.output_text), r.status, r.usage);

  // Items input with instructions.
  const items = await client.responses.create({ model: 'any', instructions: 'You tell short stories.',
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'Tell me about a cat.' }] },
            { role: 'assistant', content: [{ type: 'output_text', text: 'The cat sat.' }] },
            { role: 'user', content: 'And then?' }],
    max_output_tokens: 8, temperature: 0 });
  checkResponse(items, 'items input');
  if (items.instructions !== 'You tell short stories.') fail('instructions not echoed: ' + items.instructions);

  // Streaming: the events in order, numbered, and the deltas are the final text.
  const stream = await client.responses.create({ model: 'any', input: 'Once upon a time', max_output_tokens: 12,
                                                 temperature: 0, stream: true });
  const types = [];
  let deltas = '';
  let final = null;
  let seq = 0;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.sequence_number !== seq++) fail(`sequence_number ${ev.sequence_number} at ${seq - 1}`);
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
  }
  const want = ['response.created', 'response.in_progress', 'response.output_item.added',
                'response.content_part.added', 'response.output_text.delta'];
  if (JSON.stringify(types.slice(0, 5)) !== JSON.stringify(want)) fail('stream starts with ' + types.slice(0, 5));
  const tail = ['response.output_text.done', 'response.content_part.done', 'response.output_item.done'];
  if (JSON.stringify(types.slice(-4, -1)) !== JSON.stringify(tail)) fail('stream ends with ' + types.slice(-4));
  if (!final) fail('no response.completed event');
  else {
    const text = final.output[0].content[0].text;
    if (text !== deltas) fail(`deltas ${JSON.stringify(deltas)} differ from the text ${JSON.stringify(text)}`);
    if (deltas !== r.output_text) fail(`greedy stream ${JSON.stringify(deltas)} vs ${JSON.stringify(r.output_text)}`);
  }
  console.log('stream:', types.length, 'events,', JSON.stringify(deltas));

  // The client's own stream helper accumulates the events by output and content index into the final Response.
  const helper = client.responses.stream({ model: 'any', input: 'Once upon a time', max_output_tokens: 12,
                                           temperature: 0 });
  let snapshot = '';
  helper.on('response.output_text.delta', (ev) => { snapshot = ev.snapshot; });
  const helped = await helper.finalResponse();
  if (helped.output_text !== deltas || snapshot !== deltas)
    fail(`responses.stream: ${JSON.stringify(helped.output_text)} / ${JSON.stringify(snapshot)} vs ${JSON.stringify(deltas)}`);
  const callStream = client.responses.stream({ model: 'any', input: 'Weather in Rome?', tools: [weatherTool],
                                               tool_choice: { type: 'function', name: 'get_weather' },
                                               max_output_tokens: 60, seed: 2 });
  let argsSnapshot = '';
  callStream.on('response.function_call_arguments.delta', (ev) => { argsSnapshot = ev.snapshot; });
  const streamedCall = await callStream.finalResponse();
  const sc = streamedCall.output.find((o) => o.type === 'function_call');
  if (!sc || sc.arguments !== argsSnapshot || typeof JSON.parse(sc.arguments).city !== 'string')
    fail('streamed call: ' + JSON.stringify(streamedCall.output) + ' snapshot ' + argsSnapshot);
  console.log('responses.stream:', JSON.stringify(helped.output_text), 'call', sc?.arguments);

  // A function tool round trip: the model must call; its output goes back; the model answers in text.
  const call = await client.responses.create({ model: 'any', input: 'What is the weather in Paris?',
    tools: [weatherTool], tool_choice: 'required', max_output_tokens: 60, seed: 7 });
  checkResponse(call, 'tool call');
  const fc = call.output.find((o) => o.type === 'function_call');
  if (!fc || fc.name !== 'get_weather' || !/^call_/.test(fc.call_id)) fail('no function_call: ' + JSON.stringify(call));
  else {
    const args = JSON.parse(fc.arguments);
    if (typeof args.city !== 'string' || args.city.length > 12) fail('arguments: ' + fc.arguments);
    const answer = await client.responses.create({ model: 'any', previous_response_id: call.id, tools: [weatherTool],
      input: [{ type: 'function_call_output', call_id: fc.call_id, output: JSON.stringify({ sky: 'sunny' }) }],
      max_output_tokens: 8, temperature: 0 });
    checkResponse(answer, 'tool answer');
    if (answer.previous_response_id !== call.id) fail('previous_response_id: ' + answer.previous_response_id);
    if (answer.output[0]?.type !== 'message') fail('tool answer: ' + JSON.stringify(answer.output));
    console.log('tool round trip:', fc.arguments, '->', JSON.stringify(answer.output_text));
  }

  // Structured output: text.format from a zod schema; the grammar makes the text parse.
  const Pet = z.object({ name: z.string().max(10), cat: z.boolean() });
  const parsed = await client.responses.parse({ model: 'any', input: 'Describe a pet.', max_output_tokens: 40,
                                                text: { format: zodTextFormat(Pet, 'pet') }, seed: 4 });
  const pet = parsed.output_parsed;
  if (!pet || typeof pet.name !== 'string' || typeof pet.cat !== 'boolean') fail('parse: ' + parsed.output_text);
  console.log('responses.parse:', JSON.stringify(pet));

  // Errors: an unknown previous response is a 404; an unknown field a 400 naming it.
  try {
    await client.responses.create({ model: 'any', input: 'x', previous_response_id: 'resp_' + 'a'.repeat(40) });
    fail('unknown previous_response_id accepted');
  } catch (e) {
    if (e.status !== 404 || !/previous_response_id/.test(e.message)) fail('unknown previous: ' + e.status + e.message);
  }
  try {
    await client.responses.create({ model: 'any', input: 'x', frobnicate: 1 });
    fail('unknown field accepted');
  } catch (e) {
    if (e.status !== 400 || !/frobnicate/.test(e.message)) fail('unknown field: ' + e.status + ' ' + e.message);
  }
}

async function aiSdkChecks(port) {
  const openai = createOpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused' });
  const m = openai('mnemos');  // the default provider: the Responses API
  const g = await generateText({ model: m, prompt: 'Once upon a time', maxOutputTokens: 10, temperature: 0 });
  if (typeof g.text !== 'string' || !(g.usage.outputTokens > 0)) fail('generateText: ' + JSON.stringify(g.usage));
  if (!/^resp_/.test(g.response.id)) fail('generateText response id: ' + g.response.id);
  console.log('generateText:', JSON.stringify(g.text), g.finishReason);

  // A tool with a zod input schema: called in the first step (required), answered in the second.
  let executed = null;
  const weather = tool({ description: 'The weather in a city', inputSchema: z.object({ city: z.string().max(12) }),
                         execute: async ({ city }) => { executed = city; return { city, sky: 'sunny' }; } });
  const t = await generateText({ model: m, prompt: 'What is the weather in Paris?', tools: { weather },
    toolChoice: 'required', stopWhen: stepCountIs(2), maxOutputTokens: 60, temperature: 0,
    prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}) });
  const first = t.steps[0];
  if (t.steps.length !== 2 || first.toolCalls.length !== 1 || first.toolCalls[0].toolName !== 'weather')
    fail('tool steps: ' + JSON.stringify(t.steps.map((s) => ({ calls: s.toolCalls, text: s.text }))));
  if (typeof executed !== 'string') fail('the tool did not run');
  if (typeof t.text !== 'string') fail('no text after the tool');
  console.log('generateText with a tool:', executed, '->', JSON.stringify(t.text));

  const o = await generateObject({ model: m, prompt: 'Describe a pet.', maxOutputTokens: 200, temperature: 0,
                                   schema: z.object({ name: z.string().max(10), legs: z.array(z.boolean()).max(4) }) })
    .catch((e) => { fail('generateObject: ' + e.message + ' ' + JSON.stringify(e.text) + ' ' + e.finishReason); return {}; });
  if (typeof o.object?.name !== 'string' || !Array.isArray(o.object.legs)) fail('generateObject: ' + JSON.stringify(o.object));
  console.log('generateObject:', JSON.stringify(o.object));

  const s = streamText({ model: m, prompt: 'Once upon a time', maxOutputTokens: 10, temperature: 0 });
  let streamed = '';
  for await (const piece of s.textStream) streamed += piece;
  const whole = await s.text;
  if (streamed !== whole) fail(`streamText pieces ${JSON.stringify(streamed)} vs text ${JSON.stringify(whole)}`);
  if (whole !== g.text) fail(`streamText ${JSON.stringify(whole)} vs generateText ${JSON.stringify(g.text)} (greedy)`);
  const usage = await s.usage;
  if (!(usage.outputTokens > 0)) fail('streamText usage: ' + JSON.stringify(usage));
  console.log('streamText:', JSON.stringify(whole), await s.finishReason);

  // streamText with the tool: the call arrives as stream events, runs, and the second step answers.
  executed = null;
  const st = streamText({ model: m, prompt: 'What is the weather in Oslo?', tools: { weather },
    toolChoice: 'required', stopWhen: stepCountIs(2), maxOutputTokens: 60, temperature: 0,
    prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}) });
  const kinds = new Set();
  for await (const part of st.fullStream) kinds.add(part.type);
  const steps = await st.steps;
  if (steps.length !== 2 || steps[0].toolCalls[0]?.toolName !== 'weather' || typeof executed !== 'string' ||
      !kinds.has('tool-call') || !kinds.has('tool-result') || !kinds.has('text-delta'))
    fail('streamText with a tool: ' + [...kinds].join(',') + ' ' + JSON.stringify(steps.map((x) => x.toolCalls)));
  console.log('streamText with a tool:', executed, [...kinds].join(','));
}

// previous_response_id across a restart: the chain is in the durable store.
async function restartChecks() {
  const dir = mkdtempSync(join(tmpdir(), 'mnemos-responses-'));
  try {
    const a = await startResponsesServer(['--store', join(dir, 'db')]);
    let first;
    try {
      first = await clientFor(a.port).responses.create({ model: 'any', input: 'Remember the number 42.',
                                                         max_output_tokens: 6, temperature: 0 });
      checkResponse(first, 'before restart');
    } finally {
      await a.stop();
    }
    const b = await startResponsesServer(['--store', join(dir, 'db')]);
    try {
      const client = clientFor(b.port);
      const again = await client.responses.retrieve(first.id);
      if (again.output_text !== first.output_text) fail('retrieve after restart: ' + JSON.stringify(again));
      const next = await client.responses.create({ model: 'any', previous_response_id: first.id,
                                                   input: 'Which number?', max_output_tokens: 6, temperature: 0 });
      checkResponse(next, 'after restart');
      if (next.previous_response_id !== first.id) fail('previous_response_id after restart');
      // The history is part of the prompt: more input than the first turn had in and out.
      if (!(next.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens))
        fail(`chain not continued: ${JSON.stringify(first.usage)} then ${JSON.stringify(next.usage)}`);
      console.log('chain across a restart:', first.id, '->', next.id, next.usage);
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  const s = await startResponsesServer();
  try {
    await openaiClientChecks(clientFor(s.port));
    await aiSdkChecks(s.port);
  } finally {
    await s.stop();
  }
  await restartChecks();
} catch (e) {
  fail(e.stack || String(e));
}
console.log(process.exitCode ? 'FAILED' : 'OK');
