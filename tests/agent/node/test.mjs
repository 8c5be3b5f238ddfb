// Drives `mnemos serve` with the official OpenAI Node client (a client no one here wrote).
// usage: node test.mjs MNEMOS_BINARY MODEL_GGUF
import OpenAI from 'openai';
import { commandLine, fail, runTest, startServer } from './serve.mjs';

const { binary, model } = commandLine('test.mjs');

const srv = await startServer(binary, ['--model', model, '--threads', '1', '--max-tokens', '32']);
const port = srv.port;

await runTest(srv, async () => {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });

  const models = await client.models.list();
  if (!models.data.length || typeof models.data[0].id !== 'string') fail('models.list: ' + JSON.stringify(models));

  const messages = [{ role: 'system', content: 'You tell short stories.' },
                    { role: 'user', content: 'Once upon a time' }];
  const r = await client.chat.completions.create({ model: 'any', messages, max_tokens: 12, temperature: 0 });
  const text = r.choices[0].message.content;
  if (typeof text !== 'string') fail('no content: ' + JSON.stringify(r));
  if (r.choices[0].message.role !== 'assistant') fail('role: ' + r.choices[0].message.role);
  if (!['stop', 'length'].includes(r.choices[0].finish_reason)) fail('finish_reason: ' + r.choices[0].finish_reason);
  if (!(r.usage.prompt_tokens > 0) || !(r.usage.completion_tokens > 0)) fail('usage: ' + JSON.stringify(r.usage));
  console.log('non-stream:', JSON.stringify(text), r.usage);

  const stream = await client.chat.completions.create({ model: 'any', messages, max_tokens: 12, temperature: 0,
                                                         stream: true });
  let streamed = '';
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks++;
    streamed += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  console.log('stream:', JSON.stringify(streamed), chunks, 'chunks, finish', finish);
  if (streamed !== text) fail(`greedy stream differs: ${JSON.stringify(streamed)} vs ${JSON.stringify(text)}`);
  if (chunks < 2) fail('too few chunks: ' + chunks);
  if (!finish) fail('no finish_reason in the stream');

  // A tool call, forced by a named tool_choice: the grammar makes the arguments valid JSON with the required keys.
  const tools = [{ type: 'function', function: { name: 'pick', description: 'Pick a number',
    parameters: { type: 'object', properties: { n: { type: 'integer' }, tag: { type: 'string', maxLength: 4 } },
                  required: ['n', 'tag'] } } }];
  const tr = await client.chat.completions.create({ model: 'any', max_tokens: 80, seed: 3, tools,
    tool_choice: { type: 'function', function: { name: 'pick' } },
    messages: [{ role: 'user', content: 'Pick a number' }] });
  const call = tr.choices[0].message.tool_calls?.[0];
  if (!call) fail('no tool_calls: ' + JSON.stringify(tr));
  else {
    if (tr.choices[0].finish_reason !== 'tool_calls') fail('tool finish_reason: ' + tr.choices[0].finish_reason);
    if (call.type !== 'function' || call.function.name !== 'pick') fail('tool call: ' + JSON.stringify(call));
    let args = null;
    try { args = JSON.parse(call.function.arguments); } catch (e) { fail('arguments not JSON: ' + call.function.arguments); }
    if (args && (!Number.isInteger(args.n) || typeof args.tag !== 'string')) fail('arguments: ' + call.function.arguments);
    console.log('tool call:', call.function.name, call.function.arguments);
  }

  // A history longer than the model's window: the turn still works; the middle is left out and said so.
  const long = [{ role: 'system', content: 'You tell short stories.' }];
  for (let i = 0; i < 80; i++)
    long.push({ role: i % 2 ? 'assistant' : 'user', content: `Once upon a time there was a little dog number ${i}.` });
  const lr = await client.chat.completions.create({ model: 'any', messages: long, max_tokens: 8, temperature: 0 });
  const cx = lr.mnemos?.context;
  if (typeof lr.choices[0].message.content !== 'string') fail('long history: ' + JSON.stringify(lr));
  // Sparse attention (the default): the whole history is attended, nothing is cut.
  if (!cx || cx.attention !== 'sparse' || cx.truncated !== false || cx.n_dropped !== 0 ||
      lr.usage.prompt_tokens <= 512)
    fail('long history metadata: ' + JSON.stringify(lr));
  else console.log('long history:', JSON.stringify(cx), 'prompt_tokens', lr.usage.prompt_tokens);

  try {
    await client.chat.completions.create({ model: 'any', messages: [{ role: 'user', content: 'x' }],
      tools: [{ type: 'function', function: { name: 'bad name' } }] });
    fail('malformed tool accepted');
  } catch (e) {
    if (e.status !== 400) fail('malformed tool: expected 400, got ' + e.status);
  }

  try {
    await client.chat.completions.create({ model: 'any', messages: [], max_tokens: 4 });
    fail('empty messages accepted');
  } catch (e) {
    if (e.status !== 400) fail('empty messages: expected 400, got ' + e.status);
  }
});
if (!srv.log().includes('stopped')) fail('no graceful shutdown message');
