// claude_request.js - a realistic ~50 KB Claude Code-shaped Messages request.
//
// Used by bench/run when no captured request exists under
// tests/fixtures/claude-code/.  Shape follows what the Claude Code CLI
// sends: two system blocks with cache_control, ~12 tools whose JSON Schemas
// and long descriptions total ~31 KB, and a short conversation with a
// tool_use / tool_result round trip.  Text is deterministic filler with
// the characters that matter to a JSON translator (newlines, quotes,
// backslashes, non-ASCII) so escaping paths are exercised.
'use strict';

const WORDS = ('the of to and a in is it you that he was for on are with as I his they be at one have ' +
  'this from or had by hot word but what some we can out other were all there when up use your how said ' +
  'an each she which do their time if will way about many then them write would like so these her long ' +
  'make thing see him two has look more day could go come did number sound no most people my over know ' +
  'water than call first who may down side been now find file path tool schema parameter command output ' +
  'function return value error repository commit branch test build directory pattern search glob grep').split(' ');

function filler(seed, bytes) {
  let x = seed >>> 0, out = '', n = 0;
  while (out.length < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = WORDS[(x >>> 8) % WORDS.length];
    out += w;
    n++;
    if (n % 97 === 0) out += '.\n\n- ';
    else if (n % 41 === 0) out += ' "quoted" ';
    else if (n % 53 === 0) out += ' — ';
    else if (n % 71 === 0) out += ' C:\\path\\to ';
    else if (n % 13 === 0) out += ', ';
    else out += ' ';
  }
  return out.slice(0, bytes);
}

const TOOL_NAMES = ['Task', 'Bash', 'Glob', 'Grep', 'ExitPlanMode', 'Read', 'Edit', 'MultiEdit',
  'Write', 'NotebookEdit', 'WebFetch', 'TodoWrite'];

function schemaFor(i) {
  const props = {};
  const required = [];
  const nprops = 3 + (i % 4);
  for (let k = 0; k < nprops; k++) {
    const name = ['file_path', 'command', 'pattern', 'description', 'timeout', 'old_string', 'new_string',
      'replace_all', 'url', 'prompt', 'todos', 'path'][(i + k) % 12];
    if (name === 'todos') {
      props[name] = {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            content: { type: 'string', minLength: 1 },
            status: { type: 'string', enum: ['pending', 'in_progress', 'completed'] },
            activeForm: { type: 'string', minLength: 1 },
          },
          required: ['content', 'status', 'activeForm'],
          additionalProperties: false,
        },
        description: 'The updated todo list',
      };
    } else if (name === 'timeout') {
      props[name] = { type: 'number', description: 'Optional timeout in milliseconds (max 600000)' };
    } else if (name === 'replace_all') {
      props[name] = { type: 'boolean', default: false, description: filler(i * 31 + k, 90) };
    } else {
      props[name] = { type: 'string', description: filler(i * 17 + k, 160) };
    }
    if (k < 2) required.push(name);
  }
  return {
    type: 'object',
    properties: props,
    required,
    additionalProperties: false,
    $schema: 'http://json-schema.org/draft-07/schema#',
  };
}

function anthropicRequest(opts = {}) {
  const stream = opts.stream !== undefined ? opts.stream : false;
  const tools = TOOL_NAMES.map((name, i) => ({
    name,
    description: filler(1000 + i, 1250 + (i % 3) * 200),
    input_schema: schemaFor(i),
  }));
  const fileText = filler(77, 3600).split('\n').map((l, i) => `${String(i + 1).padStart(6)}\u2192${l}`).join('\n');
  return {
    model: 'claude-sonnet-4-5-20250929',
    max_tokens: 32000,
    stream,
    system: [
      { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude.",
        cache_control: { type: 'ephemeral' } },
      { type: 'text', text: filler(4242, 11800), cache_control: { type: 'ephemeral' } },
    ],
    tools,
    messages: [
      { role: 'user', content: [
        { type: 'text', text: '<system-reminder>\n' + filler(9, 1200) + '\n</system-reminder>' },
        { type: 'text', text: 'Read src/main.c and explain what the event loop does.',
          cache_control: { type: 'ephemeral' } },
      ] },
      { role: 'assistant', content: [
        { type: 'text', text: "I'll read the file first." },
        { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'Read',
          input: { file_path: '/home/user/project/src/main.c' } },
      ] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'toolu_01A09q90qw90lq917835lq9', content: fileText },
      ] },
    ],
    metadata: { user_id: 'user_2f1e0c8b9a7d6e5f4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918_account__session_5b3c2d1e-0f9a-4b8c-9d7e-6f5a4b3c2d1e' },
    temperature: 1,
  };
}

// The same conversation in OpenAI chat shape (what a translator would send
// upstream): the body used for direct-to-upstream and OpenAI-format lanes.
function openaiRequest(opts = {}) {
  const a = anthropicRequest(opts);
  const msgs = [{ role: 'system', content: a.system.map((b) => b.text).join('\n\n') }];
  msgs.push({ role: 'user', content: a.messages[0].content.map((b) => b.text).join('\n\n') });
  msgs.push({ role: 'assistant', content: a.messages[1].content[0].text, tool_calls: [{
    id: 'toolu_01A09q90qw90lq917835lq9', type: 'function',
    function: { name: 'Read', arguments: JSON.stringify(a.messages[1].content[1].input) } }] });
  msgs.push({ role: 'tool', tool_call_id: 'toolu_01A09q90qw90lq917835lq9', content: a.messages[2].content[0].content });
  const o = {
    model: 'qwen-plus',
    messages: msgs,
    tools: a.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } })),
    max_tokens: 8192,
    temperature: 1,
    stream: a.stream,
  };
  if (a.stream) o.stream_options = { include_usage: true };
  return o;
}

module.exports = { anthropicRequest, openaiRequest };

if (require.main === module) {
  const fmt = process.argv[2] || 'anthropic';
  const stream = process.argv.includes('--stream');
  const r = fmt === 'openai' ? openaiRequest({ stream }) : anthropicRequest({ stream });
  process.stdout.write(JSON.stringify(r));
}
