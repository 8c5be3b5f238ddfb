// Legacy completions, logprobs and n with the official OpenAI Node client against `mnemos serve`.
// usage: node test_completions.mjs MNEMOS_BINARY MODEL_GGUF
import OpenAI from 'openai';
import { commandLine, fail, runTest, startServer } from './serve.mjs';

const { binary, model } = commandLine('test_completions.mjs');

function check(ok, msg) { if (!ok) fail(msg); }

const srv = await startServer(binary, ['--model', model, '--threads', '1', '--max-tokens', '32']);
const port = srv.port;

async function expect400(what, fn, words) {
  try {
    await fn();
    fail(what + ': accepted');
  } catch (e) {
    if (e.status !== 400) fail(`${what}: expected 400, got ${e.status}`);
    else if (!words.every((w) => String(e.message).includes(w))) fail(`${what}: message ${e.message}`);
  }
}

// Chat logprobs entries: logprob <= 0, bytes are the token's UTF-8, top_logprobs sorted and of the asked size, the
// chosen token's logprob equal to its own alternative's when listed.
function checkChatLogprobs(what, content, nTop) {
  check(Array.isArray(content) && content.length > 0, `${what}: no logprobs content`);
  for (const e of content ?? []) {
    check(typeof e.token === 'string' && e.logprob <= 0, `${what}: entry ${JSON.stringify(e)}`);
    check(Array.isArray(e.bytes) && Buffer.from(e.bytes).toString() === e.token || e.token.includes('\ufffd'),
          `${what}: bytes ${JSON.stringify(e)}`);
    check(e.top_logprobs.length === nTop, `${what}: ${e.top_logprobs.length} alternatives, asked ${nTop}`);
    for (let k = 1; k < e.top_logprobs.length; ++k)
      check(e.top_logprobs[k].logprob <= e.top_logprobs[k - 1].logprob, `${what}: alternatives not sorted`);
    const same = e.top_logprobs.find((t) => t.token === e.token);
    if (same) check(same.logprob === e.logprob, `${what}: chosen ${e.logprob} vs alternative ${same.logprob}`);
    check(e.logprob <= e.top_logprobs[0].logprob, `${what}: chosen above the most likely`);
  }
}

await runTest(srv, async () => {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
  const prompt = 'Once upon a time, there was a little girl named Lily. She';

  // Plain, greedy.
  const plain = await client.completions.create({ model: 'any', prompt, max_tokens: 12, temperature: 0 });
  check(plain.object === 'text_completion', 'object: ' + plain.object);
  const text = plain.choices[0].text;
  check(typeof text === 'string' && text.length > 0, 'plain text: ' + JSON.stringify(plain));
  check(['stop', 'length'].includes(plain.choices[0].finish_reason), 'finish: ' + plain.choices[0].finish_reason);
  check(plain.usage.prompt_tokens > 10 && plain.usage.completion_tokens > 0 &&
        plain.usage.total_tokens === plain.usage.prompt_tokens + plain.usage.completion_tokens,
        'usage: ' + JSON.stringify(plain.usage));
  console.log('completion:', JSON.stringify(text), plain.usage);

  // Streamed: the same greedy text.
  const stream = await client.completions.create({ model: 'any', prompt, max_tokens: 12, temperature: 0,
                                                   stream: true });
  let streamed = '', finish = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    check(c.object === 'text_completion', 'chunk object: ' + c.object);
    streamed += c.choices[0]?.text ?? '';
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
  }
  check(streamed === text, `stream ${JSON.stringify(streamed)} vs ${JSON.stringify(text)}`);
  check(chunks >= 2 && finish, `stream: ${chunks} chunks, finish ${finish}`);

  // Echo: the prompt first.
  const echoed = await client.completions.create({ model: 'any', prompt, max_tokens: 12, temperature: 0, echo: true });
  check(echoed.choices[0].text === prompt + text, 'echo: ' + JSON.stringify(echoed.choices[0].text));

  // Stop: a word of the greedy text; the output ends before it.
  const words = text.trim().split(/\s+/);
  if (words.length >= 2) {
    const stop = ' ' + words[1];
    const stopped = await client.completions.create({ model: 'any', prompt, max_tokens: 12, temperature: 0, stop });
    const t = stopped.choices[0].text;
    check(stopped.choices[0].finish_reason === 'stop' && !t.includes(stop) && text.startsWith(t),
          `stop ${JSON.stringify(stop)}: ${JSON.stringify(stopped.choices[0])}`);
  }

  // Legacy logprobs: four parallel arrays; the tokens spell the text; offsets count from the prompt's end.
  const lp = await client.completions.create({ model: 'any', prompt, max_tokens: 12, temperature: 0, logprobs: 3 });
  const L = lp.choices[0].logprobs;
  check(lp.choices[0].text === text, 'logprobs changed the greedy text');
  check(L && L.tokens.length > 0 && L.tokens.length === L.token_logprobs.length &&
        L.tokens.length === L.top_logprobs.length && L.tokens.length === L.text_offset.length,
        'legacy logprobs shape: ' + JSON.stringify(L));
  check(L.tokens.join('') === text, `tokens ${JSON.stringify(L.tokens)} vs text ${JSON.stringify(text)}`);
  check(L.text_offset[0] === prompt.length, 'text_offset[0]: ' + L.text_offset[0]);
  L.token_logprobs.forEach((v, k) => {
    check(v <= 0, `token_logprobs[${k}] = ${v}`);
    const top = Object.values(L.top_logprobs[k]);
    check(top.length >= 1 && top.length <= 3, `top_logprobs[${k}]: ${JSON.stringify(L.top_logprobs[k])}`);
    // Greedy without penalties: the chosen token is the most likely one.
    check(Math.abs(Math.max(...top) - v) < 1e-6, `greedy token ${k} is not the most likely: ${v} vs ${top}`);
  });

  // Echo with logprobs: the prompt's tokens come first, the first without a logprob.
  const el = await client.completions.create({ model: 'any', prompt, max_tokens: 4, temperature: 0, echo: true,
                                               logprobs: 1 });
  const E = el.choices[0].logprobs;
  check(E.token_logprobs[0] === null && E.top_logprobs[0] === null, 'echo: first prompt token has a logprob');
  check(E.tokens.length > el.usage.completion_tokens && E.token_logprobs.slice(1).every((v) => v <= 0),
        'echo logprobs: ' + JSON.stringify(E.token_logprobs));

  // Chat with logprobs and top_logprobs.
  const messages = [{ role: 'user', content: 'Tell me about Lily and her dog.' }];
  const cr = await client.chat.completions.create({ model: 'any', messages, max_tokens: 12, temperature: 0,
                                                    logprobs: true, top_logprobs: 3 });
  const content = cr.choices[0].logprobs?.content;
  checkChatLogprobs('chat', content, 3);
  check(content.map((e) => e.token).join('') === cr.choices[0].message.content,
        'chat logprobs tokens do not spell the content');
  for (const e of content) check(e.logprob === e.top_logprobs[0].logprob, 'chat greedy token not the most likely');
  console.log('chat logprobs:', content.length, 'tokens, first', JSON.stringify(content[0]));

  // Streamed: every chunk carries its tokens' logprobs; together they equal the non-streamed ones.
  const cs = await client.chat.completions.create({ model: 'any', messages, max_tokens: 12, temperature: 0,
                                                    logprobs: true, top_logprobs: 3, stream: true });
  const streamedLp = [];
  let chatStreamed = '';
  for await (const c of cs) {
    const ch = c.choices[0];
    if (!ch) continue;
    chatStreamed += ch.delta?.content ?? '';
    if (ch.delta?.content) check(ch.logprobs?.content?.length > 0, 'a content chunk without logprobs');
    streamedLp.push(...(ch.logprobs?.content ?? []));
  }
  checkChatLogprobs('chat stream', streamedLp, 3);
  check(chatStreamed === cr.choices[0].message.content, 'chat stream text differs');
  check(JSON.stringify(streamedLp) === JSON.stringify(content), 'streamed logprobs differ from the non-streamed');

  // n: 2 choices, each with its own seed, sharing the prompt.
  const one = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, seed: 5 });
  const two = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, seed: 5, n: 2 });
  check(two.choices.length === 2 && two.choices[0].index === 0 && two.choices[1].index === 1,
        'n: 2 choices: ' + JSON.stringify(two.choices));
  check(two.choices[0].message.content === one.choices[0].message.content, 'choice 0 is not the seed\'s sample');
  check(two.usage.prompt_tokens === one.usage.prompt_tokens, 'n: 2 prompt_tokens counted twice');
  check(two.usage.completion_tokens >= one.usage.completion_tokens + 1, 'n: 2 usage: ' + JSON.stringify(two.usage));
  const reused = two.mnemos?.choices_reused;
  check(Array.isArray(reused) && reused.length === 2, 'choices_reused: ' + JSON.stringify(two.mnemos));
  if (one.usage.prompt_tokens > 16) check(reused[1] >= 16, 'choice 1 did not share the prompt: ' + reused);
  console.log('n=2:', two.choices.map((c) => JSON.stringify(c.message.content)).join(' | '), two.usage, reused);

  const ns = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, seed: 5, n: 2,
                                                    stream: true });
  const byIndex = ['', ''];
  for await (const c of ns) for (const ch of c.choices) byIndex[ch.index] += ch.delta?.content ?? '';
  check(byIndex[0] === two.choices[0].message.content && byIndex[1] === two.choices[1].message.content,
        'n: 2 stream differs: ' + JSON.stringify(byIndex));

  const cn = await client.completions.create({ model: 'any', prompt, max_tokens: 6, n: 2, seed: 9 });
  check(cn.choices.length === 2 && cn.choices.map((c) => c.index).join() === '0,1', 'completions n: 2');

  await expect400('n: 9', () => client.chat.completions.create({ model: 'any', messages, n: 9 }), ["'n'", '8']);
  await expect400('top_logprobs: 21', () => client.chat.completions.create({ model: 'any', messages,
    logprobs: true, top_logprobs: 21 }), ['top_logprobs']);
  await expect400('suffix', () => client.completions.create({ model: 'any', prompt, suffix: 'x' }), ['suffix']);
  await expect400('logprobs: 6', () => client.completions.create({ model: 'any', prompt, logprobs: 6 }),
                  ['logprobs']);
});
