/* bad-api.test.mjs - bad Anthropic Messages input to ai-proxy: truncated or
 * malformed JSON, depth bombs, huge strings, wrong types for each field,
 * invalid UTF-8, 1,000 tools, empty messages, unknown blocks.  Each gets an
 * Anthropic-style error (400 invalid_request_error, or 413 over
 * max_request_body_size), the mock DashScope sees no chat request, and the
 * workers live. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, postMessages, anthropicErrorProblem, readLog, waitFor, slow } from './lib.mjs';

let st, workers0;
let cases = 0;

before(async () => {
    st = await startStack({ workers: 2, env: { SLUICE_MAX_BODY_SIZE: '16m' } });
    workers0 = st.workers();
});

after(async () => { await st?.stop(); });

const base = { model: 'qwen-plus', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] };
const withField = (k, v) => JSON.stringify({ ...base, [k]: v });

async function expectError(name, body, { status = 400, type = 'invalid_request_error', stream, path } = {}) {
    cases++;
    if (stream !== undefined && typeof body === 'string' && body.startsWith('{')) {
        try {
            body = JSON.stringify({ ...JSON.parse(body), stream });
        } catch { /* keep: the JSON is broken on purpose */ }
    }
    const r = await postMessages(st.port, body, path ? { path } : {});
    assert.equal(r.status, status, `${name}: status ${r.status}: ${r.text.slice(0, 300)}`);
    assert.match(r.headers['content-type'] ?? '', /application\/json/, `${name}: content-type`);
    const problem = anthropicErrorProblem(r.text, type);
    assert.equal(problem, '', `${name}: ${problem}`);
    return r;
}

test('malformed JSON bodies', { timeout: slow(30000) }, async () => {
    await expectError('empty body', '');
    await expectError('truncated', '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"');
    await expectError('truncated string', '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi');
    await expectError('trailing garbage', `${JSON.stringify(base)} xyz`);
    await expectError('two documents', `${JSON.stringify(base)}${JSON.stringify(base)}`);
    await expectError('single quotes', "{'model':'m'}");
    await expectError('NaN', '{"model":"m","max_tokens":NaN,"messages":[]}');
    await expectError('not an object: array', '[]');
    await expectError('not an object: string', '"hello"');
    await expectError('not an object: number', '42');
    await expectError('not an object: null', 'null');
    await expectError('NUL byte', `{"model":"m\u0000","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`.replace('\\u0000', '\x00'));
});

test('depth bombs and huge input', { timeout: slow(30000) }, async () => {
    const d = 100000;
    await expectError('100k nested arrays', `{"model":"m","max_tokens":5,"messages":${'['.repeat(d)}${']'.repeat(d)}}`);
    await expectError('100k nested objects', `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"metadata":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`);
    await expectError('100k unclosed arrays', `{"messages":${'['.repeat(d)}`);
    await expectError('deep content blocks', JSON.stringify({ ...base, messages: [{ role: 'user', content: [{ type: 'text', text: 'x', extra: JSON.parse(`${'['.repeat(500)}${']'.repeat(500)}`) }] }] }).replace(/(\[\]){0}/, ''), { status: 400 })
        .catch(async (e) => {
            /* a 500-deep unknown field is legal JSON: accepting it is fine
             * as long as it does not crash; rejecting it must be clean */
            if (!/status 200/.test(e.message)) throw e;
        });
    await expectError('5 MB string', JSON.stringify({ ...base, messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] }),
        { status: 413, type: 'request_too_large' });
    await expectError('5 MB of whitespace', `${' '.repeat(5 * 1024 * 1024)}{}`, { status: 413, type: 'request_too_large' });
});

const WRONG = {
        model: [42, null, ['m'], { a: 1 }, true],
        messages: ['hi', 42, { role: 'user', content: 'hi' }, null, true],
        max_tokens: ['64', -1, 0, 1.5, null, [64], { n: 1 }, 1e300],
        system: [42, { text: 'x' }, [42], [{ type: 'text' }], [{ type: 'image', source: {} }], true],
        temperature: ['hot', [1], { t: 1 }, true],
        top_p: ['x', [0.5], true],
        top_k: ['x', [5], true, 1.5],
        stream: ['yes', 1, [true], { s: 1 }],
        stop_sequences: ['STOP', 42, [42], [{ s: 1 }]],
        tools: [{ name: 't' }, 'tools', 42, [42], ['t'], [{ name: 42, input_schema: {} }], [{ input_schema: {} }],
            [{ name: 't', input_schema: 'schema' }], [null]],
        tool_choice: [42, 'auto', ['auto'], { type: 42 }, { type: 'bogus' }, { type: 'tool' }, { type: 'tool', name: 42 }],
        metadata: ['m', 42, [1], { user_id: 42 }],
        thinking: ['on', 42, [1], { type: 'enabled', budget_tokens: 'many' }, { type: 42 }],
};
/* inside messages */
const BAD_MESSAGES = [
        [42], ['hi'], [null], [{ role: 'user' }], [{ content: 'hi' }], [{ role: 42, content: 'hi' }],
        [{ role: 'robot', content: 'hi' }], [{ role: 'user', content: 42 }], [{ role: 'user', content: { text: 'hi' } }],
        [{ role: 'user', content: null }], [{ role: 'user', content: [42] }], [{ role: 'user', content: ['hi'] }],
        [{ role: 'user', content: [{ text: 'no type' }] }], [{ role: 'user', content: [{ type: 42 }] }],
        [{ role: 'user', content: [{ type: 'text', text: 42 }] }], [{ role: 'user', content: [{ type: 'text' }] }],
        [{ role: 'user', content: [{ type: 'bogus_block', data: 1 }] }],
        [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }],
        [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 42, content: 'x' }] }],
        [{ role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 42, input: {} }] }],
        [{ role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 't', input: 'not an object' }] }],
        [{ role: 'user', content: [{ type: 'image', source: 42 }] }],
];

test('wrong types for every top-level field', { timeout: slow(60000) }, async () => {
    const failures = [];
    const check = (name, body) => expectError(name, body).catch((e) => failures.push(e.message.split('\n')[0]));
    for (const [field, values] of Object.entries(WRONG)) {
        for (const v of values) await check(`${field}=${JSON.stringify(v).slice(0, 40)}`, withField(field, v));
    }
    for (const m of BAD_MESSAGES) await check(`messages=${JSON.stringify(m).slice(0, 60)}`, withField('messages', m));
    assert.deepEqual(failures, []);
});

test('count_tokens refuses what /v1/messages refuses, with the same Anthropic 400s', { timeout: slow(60000) }, async () => {
    const path = '/ai/v1/messages/count_tokens';
    const cbase = { model: 'qwen-plus', messages: [{ role: 'user', content: 'hello' }] };
    const cfield = (k, v) => JSON.stringify({ ...cbase, [k]: v });
    const failures = [];
    const check = (name, body, opts = {}) => expectError(`count_tokens ${name}`, body, { path, ...opts })
        .catch((e) => failures.push(e.message.split('\n')[0]));
    for (const b of ['', '{', '[]', '"x"', 'null', '42', `${JSON.stringify(cbase)} x`, '{"messages":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
        `{"messages":${'['.repeat(100000)}${']'.repeat(100000)}}`]) {
        await check(`body ${JSON.stringify(b.slice(0, 30))}`, b);
    }
    await check('no messages', JSON.stringify({ model: 'qwen-plus' }));
    await check('empty messages', cfield('messages', []));
    await check('a foreign model', cfield('model', 'claude-opus-4-1'));
    await check('text: 5', cfield('messages', [{ role: 'user', content: [{ type: 'text', text: 5 }] }]));
    const tools = [];
    for (let k = 0; k < 2000; k++) tools.push({ name: `tool_${k}`, input_schema: { type: 'object' } });
    await check('2,000 tools', cfield('tools', tools));
    const good = Buffer.from(JSON.stringify(cbase));
    const i = good.indexOf('hello');
    await check('invalid UTF-8', Buffer.concat([good.subarray(0, i), Buffer.from([0xff, 0xfe]), good.subarray(i)]));
    for (const [field, values] of Object.entries(WRONG)) {
        for (const v of values) await check(`${field}=${JSON.stringify(v).slice(0, 40)}`, cfield(field, v));
    }
    for (const m of BAD_MESSAGES) await check(`messages=${JSON.stringify(m).slice(0, 60)}`, cfield('messages', m));
    await check('5 MB string', cfield('messages', [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }]),
        { status: 413, type: 'request_too_large' });
    assert.deepEqual(failures, []);
});

test('invalid UTF-8, empty messages, 1,000 tools, unknown block type', { timeout: slow(30000) }, async () => {
    const good = Buffer.from(JSON.stringify(base));
    const i = good.indexOf('hello');
    for (const bad of [[0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80]]) {
        const b = Buffer.concat([good.subarray(0, i), Buffer.from(bad), good.subarray(i)]);
        await expectError(`invalid UTF-8 ${Buffer.from(bad).toString('hex')}`, b);
    }
    await expectError('empty messages', withField('messages', []));
    await expectError('empty messages, streaming', withField('messages', []), { stream: true });
    const tools = [];
    for (let k = 0; k < 1000; k++) {
        tools.push({ name: `tool_${k}`, description: 'd', input_schema: { type: 'object', properties: {} } });
    }
    await expectError('1,000 tools', withField('tools', tools));
    await expectError('unknown content block type', withField('messages', [{ role: 'user', content: [{ type: 'hologram', text: 'x' }] }]));
    await expectError('unknown block, streaming', withField('messages', [{ role: 'user', content: [{ type: 'hologram' }] }]), { stream: true });
});

test('none of it reached the upstream; every case was logged; workers alive', { timeout: slow(15000) }, async () => {
    const chats = await st.mock.chatRequests();
    assert.equal(chats.length, 0, `upstream calls: ${JSON.stringify(chats.map((c) => c.body).slice(0, 2)).slice(0, 500)}`);
    const recs = await waitFor(() => {
        const l = readLog(st.logPath);
        return l.length >= cases ? l : null;
    }, slow(10000));
    assert.ok(recs, `log has ${readLog(st.logPath).length} records for ${cases} requests`);
    for (const r of recs) {
        assert.ok([400, 413].includes(r.response.status), `logged ${r.response.status}`);
        assert.equal(r.upstream_status, '');
    }
    /* a good request still works */
    const ok = await postMessages(st.port, JSON.stringify(base));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).type, 'message');
    assert.deepEqual(st.workers(), workers0, `a worker died: ${st.gw.stderr.slice(-6000)}`);
    console.log(`# bad-api: ${cases} bad inputs, all refused before the upstream`);
});
