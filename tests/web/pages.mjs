// SPDX-License-Identifier: MIT
// The admin pages in a real browser: Debian's chromium, headless, driven by playwright-core
// against `taskdeck serve` (TASKDECK_BIN) with the tasks of tests/web/tasks.yml.
// Prints "N passed, M failed" last; exits 1 on any failure, 77 (skip) only when chromium
// or playwright-core is missing. Screenshots go to TASKDECK_SCREENSHOTS.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { launch, loadChromium, startServer } from './harness.mjs';

const chromium = await loadChromium();
const shots = process.env.TASKDECK_SCREENSHOTS || join(process.cwd(), 'screenshots', 'web');
mkdirSync(shots, { recursive: true });

const server = await startServer();
const browser = await launch(chromium);
let finishing = false;
browser.on('disconnected', () => {
    if (!finishing)
        console.error('chromium went away before the tests ended');
});
const results = [];
let context;
let page;

async function newContext(options = {}) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
    ctx.setDefaultTimeout(20000);
    return ctx;
}

async function test(name, body) {
    const started = Date.now();
    try {
        await body();
        results.push({ name, ok: true });
        console.log(`PASS   ${name} (${Date.now() - started} ms)`);
    } catch (e) {
        results.push({ name, ok: false });
        console.log(`FAIL!  ${name}: ${e.stack || e}`);
        try {
            await page?.screenshot({ path: join(shots, `failure-${name.replace(/\W+/g, '-')}.png`), fullPage: true });
        } catch {
            // the page may be gone
        }
    }
}

/** Fills the form of the numbered task and starts it; resolves on the run page. */
async function startNumbered(p, { label = 'web', count = 20, pause = 0.05 } = {}) {
    await p.goto(`${server.base}/admin/task/numbered`);
    await p.fill('#f-label', label);
    await p.fill('#f-count', String(count));
    await p.fill('#f-pause', String(pause));
    await Promise.all([p.waitForURL(/\/admin\/run\/[0-9a-f-]{36}$/), p.click('#start-button')]);
    return p.url().split('/').pop();
}

/** The line numbers shown in the log, in page order. */
function shownLines(p) {
    return p.$$eval('#log .line', (nodes) => nodes.map((n) => Number(n.dataset.n)));
}

/** The log as the page shows it: line numbers, and the counts of the notes of lines not
 *  shown. Every jump between two lines must be a note saying exactly how many are left out. */
async function expectAccounted(p, last) {
    const items = await p.$$eval('#log > *', (nodes) => nodes.map((n) => (n.classList.contains('line')
        ? { n: Number(n.dataset.n) } : { note: n.textContent, id: n.id })));
    let previous = null;
    let notShown = null;
    let lines = 0;
    for (const item of items) {
        if (item.note !== undefined) {
            const count = /^([\d,]+) (earlier )?lines? not shown — download the full log$/.exec(item.note);
            assert.ok(count, `a note says "${item.note}"`);
            notShown = (notShown || 0) + Number(count[1].replaceAll(',', ''));
            continue;
        }
        const expected = (previous ?? 0) + 1 + (notShown || 0);
        assert.equal(item.n, expected, `line ${item.n} after ${previous ?? 'the start'} with ${notShown ?? 'no'} lines not shown`);
        previous = item.n;
        notShown = null;
        ++lines;
    }
    assert.equal(previous, last, `the last line shown is ${previous}`);
    return { items, lines };
}

function expectSequence(numbers, last) {
    assert.deepEqual(numbers, Array.from({ length: last }, (_, i) => i + 1),
        `the log shows lines ${JSON.stringify(numbers)}, not 1..${last} once each`);
}

try {
    context = await newContext();
    page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));

    await test('a browser that is not logged in sees how to log in, API clients get JSON', async () => {
        const anonymous = await newContext();
        const p = await anonymous.newPage();
        const response = await p.goto(`${server.base}/admin/task`);
        assert.equal(response.status(), 401);
        assert.match(await p.textContent('#login'), /taskdeck serve/);
        await p.screenshot({ path: join(shots, 'login-light-wide.png') });
        await anonymous.close();
        const api = await fetch(`${server.base}/admin/task`, { headers: { Accept: '*/*' } });
        assert.equal(api.status, 401);
        assert.match(api.headers.get('content-type'), /application\/json/);
        const listed = await fetch(`${server.base}/admin/task`,
            { headers: { Authorization: `Bearer ${server.token}` } });
        assert.equal(listed.status, 200);
        assert.ok((await listed.json()).tasks.some((t) => t.key === 'numbered'));
    });

    await test('the login link opens the task browser', async () => {
        await page.goto(server.login);
        assert.match(new URL(page.url()).pathname, /^\/admin\/task$/);
        await page.waitForSelector('.task-card[data-key="numbered"]');
        assert.equal(await page.textContent('h1'), 'Tasks');
        assert.ok(await page.$('.task-card[data-key="erase"] .badge.danger'), 'the danger badge is missing');
        assert.ok(await page.$('.task-card[data-key="sleeper"] .badge.expensive'), 'the expensive badge is missing');
    });

    await test('static assets carry their type and an ETag that revalidates', async () => {
        const css = await fetch(`${server.base}/admin/assets/app.css`);
        assert.equal(css.status, 200);
        assert.match(css.headers.get('content-type'), /^text\/css/);
        const etag = css.headers.get('etag');
        assert.ok(etag, 'no ETag');
        const again = await fetch(`${server.base}/admin/assets/app.css`, { headers: { 'If-None-Match': etag } });
        assert.equal(again.status, 304);
        const js = await fetch(`${server.base}/admin/assets/ansi_up.js`);
        assert.match(js.headers.get('content-type'), /^text\/javascript/);
        assert.match(await js.text(), /AnsiUp/);
    });

    await test('search filters the tasks as you type', async () => {
        await page.fill('#task-search', 'numbered');
        await page.waitForFunction(() => document.querySelectorAll('.task-card').length === 1);
        assert.deepEqual(await page.$$eval('.task-card', (c) => c.map((n) => n.dataset.key)), ['numbered']);
        await page.fill('#task-search', 'dangerous-looking'); // words of a description only
        await page.waitForFunction(() => document.querySelector('.task-card')?.dataset.key === 'erase');
        await page.fill('#task-search', 'no-such-task-anywhere');
        await page.waitForSelector('text=No task matches.');
        await page.fill('#task-search', '');
        await page.selectOption('#task-tag', 'web-test');
        const keys = await page.$$eval('.task-card', (c) => c.map((n) => n.dataset.key).sort());
        assert.deepEqual(keys, ['erase', 'failing', 'kinds', 'linecount', 'numbered', 'sleeper']);
        await page.selectOption('#task-tag', '');
        await page.selectOption('#task-category', 'bench');
        assert.deepEqual(await page.$$eval('.task-card', (c) => c.map((n) => n.dataset.key)), ['million']);
        await page.selectOption('#task-category', '');
    });

    await test('bad values show every field\'s error at once, in the browser', async () => {
        await page.goto(`${server.base}/admin/task/numbered`);
        await page.fill('#f-label', 'A1');
        await page.fill('#f-count', '0');
        await page.fill('#f-pause', '5');
        await page.click('#start-button');
        await page.waitForSelector('#form-errors');
        for (const key of ['label', 'count', 'pause']) {
            assert.equal(await page.getAttribute(`#f-${key}`, 'aria-invalid'), 'true', `${key} is not marked invalid`);
            assert.ok((await page.textContent(`#f-${key}-error`)).trim(), `${key} shows no error`);
            assert.match(await page.getAttribute(`#f-${key}`, 'aria-describedby'), new RegExp(`f-${key}-error`));
        }
        assert.match(await page.textContent('#f-count-error'), /at least 1/);
        assert.match(await page.textContent('#f-pause-error'), /at most 1/);
        assert.match(new URL(page.url()).pathname, /\/admin\/task\/numbered$/, 'the form was sent');
    });

    await test('the server\'s field errors are shown next to their fields', async () => {
        // The page is given the fields without their limits, so only the server checks.
        const p = await context.newPage();
        await p.route('**/admin/task/numbered', async (route) => {
            if (route.request().resourceType() !== 'fetch')
                return route.continue();
            const response = await route.fetch();
            const task = await response.json();
            for (const f of task.fields) {
                delete f.min; delete f.max; delete f.pattern;
            }
            await route.fulfill({ response, json: task });
        });
        await p.goto(`${server.base}/admin/task/numbered`);
        await p.fill('#f-label', 'A1');
        await p.fill('#f-count', '0');
        await p.fill('#f-pause', '5');
        const [response] = await Promise.all([
            p.waitForResponse((r) => r.url().endsWith('/admin/task/numbered/start')),
            p.click('#start-button')]);
        assert.equal(response.status(), 400);
        await p.waitForSelector('#form-errors');
        for (const key of ['label', 'count', 'pause']) {
            assert.equal(await p.getAttribute(`#f-${key}`, 'aria-invalid'), 'true', `${key} is not marked invalid`);
            assert.ok((await p.textContent(`#f-${key}-error`)).trim(), `${key} shows no server error`);
        }
        await p.close();
    });

    let firstRun = '';
    await test('corrected values start a run whose coloured lines appear live and in order', async () => {
        await page.fill('#f-label', 'live');
        await page.fill('#f-count', '40');
        await page.fill('#f-pause', '0.1');
        await Promise.all([page.waitForURL(/\/admin\/run\/[0-9a-f-]{36}$/), page.click('#start-button')]);
        firstRun = page.url().split('/').pop();
        // Seen while the run is still going.
        await page.waitForSelector('#log .line[data-n="5"]');
        assert.equal(await page.getAttribute('#run-status .status', 'data-status'), 'running');
        assert.ok(!(await page.$('#log .line[data-n="40"]')), 'the whole log was there at once');
        const green = await page.$('#log .line[data-n="1"] .text span.ansi-green-fg');
        assert.ok(green, 'line 1 has no green span');
        assert.equal(await green.textContent(), 'line 1 green live');
        assert.equal(await green.evaluate((n) => getComputedStyle(n).color), 'rgb(137, 202, 120)');
        assert.ok(await page.$('#log .line[data-n="3"] .text span.ansi-red-fg'), 'line 3 is not red');
        const blue = await page.$('#log .line[data-n="2"] .text span.ansi-blue-fg');
        assert.equal(await blue.evaluate((n) => getComputedStyle(n).fontWeight), '700');
        assert.ok(!(await page.textContent('#log')).includes('\u001b'), 'raw escape codes in the page');
        assert.ok(await page.isVisible('#run-progress'), 'no progress bar');
        await page.screenshot({ path: join(shots, 'run-running-light-wide.png') });
    });

    await test('the result shows as a table and a tree when the run ends', async () => {
        await page.waitForSelector('#run-status .status[data-status="succeeded"]', { timeout: 30000 });
        await page.waitForSelector('#log .line[data-n="40"]');
        expectSequence(await shownLines(page), 40);
        await page.waitForSelector('#run-result:not(.hidden)');
        const cells = await page.$$eval('#run-result table td', (tds) => tds.map((td) => td.textContent));
        assert.deepEqual(cells, ['alpha', '1', 'beta', '2']);
        assert.match(await page.textContent('#result-tree'), /"live"/);
        assert.equal(await page.getAttribute('#run-progress', 'value'), '40');
        assert.ok(await page.$('a[href$="/export?format=csv"]'), 'no CSV export link');
    });

    await test('find marks the matching lines', async () => {
        await page.fill('#log-find', '3 red');
        await page.waitForSelector('#log .line.match');
        const matched = await page.$$eval('#log .line.match', (n) => n.map((x) => Number(x.dataset.n)));
        assert.deepEqual(matched, [3, 33]);
        assert.match(await page.textContent('#log-find-count'), /2 found/);
        await page.fill('#log-find', '');
    });

    await test('reloading mid-run resumes the log with no gap and no duplicate', async () => {
        const sockets = [];
        page.on('websocket', (ws) => sockets.push(ws.url()));
        await startNumbered(page, { label: 'resume', count: 80, pause: 0.06 });
        await page.waitForSelector('#log .line[data-n="15"]');
        const before = await shownLines(page);
        await page.reload();
        await page.waitForSelector('#run-status .status[data-status="succeeded"]', { timeout: 30000 });
        await page.waitForSelector('#log .line[data-n="80"]');
        expectSequence(await shownLines(page), 80);
        assert.ok(before.length >= 15 && before.length < 80, `${before.length} lines before the reload`);
        const resumed = sockets.filter((url) => /after=\d+/.test(url));
        assert.ok(resumed.length >= 1, `no socket resumed with ?after=: ${sockets.join(', ')}`);
    });

    await test('a dropped socket reconnects after the last event', async () => {
        // The page's sockets pass through the test, which cuts the first one mid-run.
        const p = await context.newPage();
        const urls = [];
        let first = null;
        await p.routeWebSocket(/\/ws\/task\//, (ws) => {
            urls.push(ws.url());
            ws.connectToServer();
            first = first || ws;
        });
        await startNumbered(p, { label: 'drop', count: 60, pause: 0.05 });
        await p.waitForSelector('#log .line[data-n="10"]');
        await first.close({ code: 4000, reason: 'cut by the test' });
        await p.waitForSelector('#run-status .status[data-status="succeeded"]', { timeout: 30000 });
        await p.waitForSelector('#log .line[data-n="60"]');
        expectSequence(await shownLines(p), 60);
        assert.ok(urls.length >= 2 && /after=\d+/.test(urls[1]), `sockets: ${urls.join(', ')}`);
        await p.close();
    });

    await test('cancel stops a long run', async () => {
        page.once('dialog', (dialog) => dialog.accept()); // expensive: asks first
        await page.goto(`${server.base}/admin/task/sleeper`);
        await Promise.all([page.waitForURL(/\/admin\/run\//), page.click('#start-button')]);
        await page.waitForSelector('#log .line[data-n="1"]');
        await page.waitForFunction(() => document.querySelector('#run-progress-text')?.textContent.startsWith('1 / 100'));
        await page.click('#cancel-button');
        await page.waitForSelector('#run-status .status[data-status="canceled"]', { timeout: 20000 });
        assert.ok(await page.isHidden('#cancel-button'), 'cancel still offered');
        // Stopped at 1 of 100: its progress stays, with no time left to wait for.
        const progress = await page.textContent('#run-progress-text');
        assert.match(progress, /^1 \/ 100 \(1%\)/);
        assert.doesNotMatch(progress, /left/);
    });

    await test('a dangerous task needs its key typed', async () => {
        await page.goto(`${server.base}/admin/task/erase`);
        await page.click('#run-button');
        await page.waitForSelector('#form-errors');
        assert.match(await page.textContent('#f-confirm-error'), /erase/);
        await page.fill('#confirm-key', 'erase');
        await Promise.all([page.waitForURL(/\/admin\/run\//), page.click('#run-button')]);
        await page.waitForSelector('#run-status .status[data-status="succeeded"]');
        await page.waitForSelector('#log .line[data-n="1"]');
        assert.match(await page.textContent('#log'), /nothing erased/);
    });

    await test('a file field uploads the file and the task reads the stored copy', async () => {
        await page.goto(`${server.base}/admin/task/linecount`);
        assert.equal(await page.getAttribute('#f-file', 'type'), 'file');
        await page.click('#start-button');
        await page.waitForSelector('#form-errors');
        assert.match(await page.textContent('#f-file-error'), /Required/);
        await page.setInputFiles('#f-file', { name: 'three lines.txt', mimeType: 'text/plain',
            buffer: Buffer.from('one\ntwo\nthree\n') });
        await Promise.all([page.waitForURL(/\/admin\/run\//), page.click('#start-button')]);
        await page.waitForSelector('#run-status .status[data-status="succeeded"]');
        await page.waitForSelector('#log .line[data-n="1"]');
        const line = await page.textContent('#log .line[data-n="1"] .text');
        assert.match(line, /^3 /);
        assert.ok(line.includes(`${server.dataDir}/uploads/`) || /\/uploads\/[0-9a-f-]{36}\/three_lines\.txt$/.test(line), line);
    });

    await test('a path on the server given by the browser is refused', async () => {
        const answer = await page.evaluate(async () => {
            const csrf = document.cookie.split('; ').find((c) => c.startsWith('taskdeck_csrf=')).split('=')[1];
            const response = await fetch('/admin/task/linecount/start', { method: 'POST',
                headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
                body: JSON.stringify({ file: '/etc/hostname' }) });
            return { status: response.status, body: await response.json() };
        });
        assert.equal(answer.status, 400);
        assert.equal(answer.body.fields[0].field, 'file');
        assert.match(answer.body.fields[0].message, /upload/);
        // An API client with the token may still name a path.
        const api = await fetch(`${server.base}/admin/task/linecount/start`, { method: 'POST',
            headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ file: '/etc/hostname' }) });
        assert.equal(api.status, 202);
    });

    await test('every field type has its control and its value reaches the task', async () => {
        await page.goto(`${server.base}/admin/task/kinds`);
        assert.equal(await page.evaluate(() => document.querySelector('#f-notes').tagName), 'TEXTAREA');
        assert.equal(await page.getAttribute('#f-loud', 'type'), 'checkbox');
        assert.equal(await page.getAttribute('#f-when', 'type'), 'datetime-local');
        assert.equal(await page.getAttribute('#f-password', 'type'), 'password');
        assert.equal(await page.evaluate(() => document.querySelector('#f-parts').tagName), 'FIELDSET');
        assert.equal(await page.textContent('label[for="f-color"]'), 'Colour *');
        await page.click('#start-button'); // the colour is required
        await page.waitForSelector('#form-errors');
        assert.equal(await page.getAttribute('#f-color', 'aria-invalid'), 'true');
        await page.fill('#f-notes', 'first\nsecond');
        await page.fill('#f-ratio', '0.25');
        await page.check('#f-loud');
        await page.selectOption('#f-color', 'green');
        await page.check('#f-parts input[value="alpha"]');
        await page.check('#f-parts input[value="gamma"]');
        await page.fill('#f-when', '2026-03-04T05:06:07');
        await page.fill('#f-password', 'hunter2');
        await Promise.all([page.waitForURL(/\/admin\/run\//), page.click('#start-button')]);
        await page.waitForSelector('#run-status .status[data-status="succeeded"]');
        await page.waitForSelector('#log .line[data-n="5"]');
        const log = await page.textContent('#log');
        assert.match(log, /color=green parts=alpha,gamma loud=true ratio=0\.25/);
        assert.match(log, /notes=first/);
        assert.match(log, /password given/);
        const expected = new Date('2026-03-04T05:06:07').toISOString().slice(0, 19);
        assert.ok(log.includes(`when=${expected}`), `${expected} not in ${log}`);
        assert.ok(!log.includes('hunter2'), 'the secret is in the log');
    });

    await test('a finished run\'s page shows its log, after a reload too', async () => {
        // More lines than a snapshot carries: the page shows the last ones and says where
        // the rest is; the full log link serves every line.
        const started = await fetch(`${server.base}/admin/task/numbered/start`, { method: 'POST',
            headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ label: 'done', count: 1500, pause: 0 }) });
        const { id } = await started.json();
        for (let i = 0; i < 300; ++i) {
            const run = await (await fetch(`${server.base}/admin/run/${id}`,
                { headers: { Authorization: `Bearer ${server.token}` } })).json();
            if (run.status === 'succeeded')
                break;
            await new Promise((r) => setTimeout(r, 100));
        }
        const fresh = await newContext();
        const p = await fresh.newPage();
        await p.goto(server.login);
        const sockets = [];
        p.on('websocket', (ws) => ws.on('close', () => sockets.push(ws.url())));
        await p.goto(`${server.base}/admin/run/${id}`);
        await p.waitForSelector('#run-status .status[data-status="succeeded"]');
        await p.waitForSelector('#log .line[data-n="1500"]');
        const shown = await shownLines(p);
        assert.ok(shown.length >= 500, `${shown.length} lines shown`);
        assert.deepEqual(shown, Array.from({ length: shown.length }, (_, i) => 1501 - shown.length + i));
        assert.equal(await p.textContent('#log-trimmed'),
            `${(1500 - shown.length).toLocaleString('en-US')} earlier lines not shown — download the full log`);
        // Drawn, not only in the DOM: the log is below the result, out of the first screen,
        // and its lines must still be painted (a capture of the page showed an empty pane).
        assert.ok(await p.$eval('#log .line[data-n="1500"]', (n) => n.checkVisibility({ contentVisibilityAuto: true })),
            'the last line is not painted');
        const full = await (await p.request.get(`${server.base}/admin/run/${id}/log`)).text();
        assert.equal(full.trimEnd().split('\n').length, 1500);
        // A reload draws what the page had and asks only for what came after: nothing.
        await p.reload();
        await p.waitForSelector('#log .line[data-n="1500"]');
        expectSequence((await shownLines(p)).map((n) => n - (1500 - shown.length)), shown.length);
        await p.waitForFunction(() => document.querySelector('#connection').textContent === '');
        await p.screenshot({ path: join(shots, 'run-finished-light-wide.png'), fullPage: true });
        await fresh.close();
    });

    await test('a long run\'s page skips to its last lines, says how many it leaves out, and a reload goes on with no gap', async () => {
        // 200,000 lines at once, a pause, 200,000 more: far more than the page keeps (5,000).
        const fresh = await newContext();
        const p = await fresh.newPage();
        await p.goto(server.login);
        const sockets = [];
        let linesReceived = 0;
        let skippedMessages = 0;
        p.on('websocket', (ws) => {
            sockets.push(ws.url());
            ws.on('framereceived', ({ payload }) => {
                const message = JSON.parse(String(payload));
                if (message.type === 'log')
                    linesReceived += message.lines.length;
                else if (message.type === 'skipped' || message.skipped)
                    ++skippedMessages;
            });
        });
        const started = await fetch(`${server.base}/admin/task/flood/start`, { method: 'POST',
            headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ lines: 200000, pause: 4 }) });
        assert.equal(started.status, 202);
        const { id } = await started.json();
        await p.goto(`${server.base}/admin/run/${id}`);
        await p.waitForSelector('#log .line[data-n="200000"]', { timeout: 60000 });
        let shown = await expectAccounted(p, await p.$eval('#log', (n) => Number(n.dataset.lastLine)));
        assert.ok(shown.lines <= 5000, `${shown.lines} lines in the page`);
        assert.match(await p.textContent('#log-trimmed'), /^[\d,]+ earlier lines not shown — download the full log$/);
        assert.equal(await p.getAttribute('#log-trimmed a', 'href'), `/admin/run/${id}/log`);
        assert.ok(sockets.every((url) => /[?&]tail=5000/.test(url)), `sockets: ${sockets.join(', ')}`);
        // A reload (most likely during the pause) shows what the page had and goes on after it.
        await p.reload();
        await p.waitForSelector('#log .line[data-n="400000"]', { timeout: 60000 });
        await p.waitForSelector('#run-status .status[data-status="succeeded"]', { timeout: 60000 });
        shown = await expectAccounted(p, 400000);
        assert.ok(shown.lines >= 1000 && shown.lines <= 5000, `${shown.lines} lines in the page`);
        assert.ok(sockets.slice(1).some((url) => /[?&]after=\d+/.test(url)), `sockets: ${sockets.join(', ')}`);
        // The server left lines out (it said so), rather than the page dropping what came.
        assert.ok(skippedMessages >= 1, 'no skipped message came');
        assert.ok(linesReceived < 400000, `${linesReceived} lines came over the socket`);
        const full = await (await p.request.get(`${server.base}/admin/run/${id}/log`)).text();
        assert.equal(full.trimEnd().split('\n').length, 400000);
        await p.screenshot({ path: join(shots, 'run-tail-light-wide.png') });
        await fresh.close();
    });

    await test('a failed run shows its error and its stderr lines', async () => {
        const started = await fetch(`${server.base}/admin/task/failing/start`, { method: 'POST',
            headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' }, body: '{}' });
        const { id } = await started.json();
        await page.goto(`${server.base}/admin/run/${id}`);
        await page.waitForSelector('#run-status .status[data-status="failed"]');
        await page.waitForSelector('#run-error-view');
        assert.match(await page.textContent('#run-error-view'), /3/);
        await page.waitForSelector('#log .line.err[data-n="1"]');
        assert.match(await page.textContent('#log .line.err[data-n="1"]'), /about to fail/);
        await page.screenshot({ path: join(shots, 'run-failed-light-wide.png') });
    });

    await test('re-run fills the form with the earlier values', async () => {
        await page.goto(`${server.base}/admin/run/${firstRun}`);
        await Promise.all([page.waitForURL(/\/admin\/task\/numbered\?rerun=/), page.click('#rerun-link')]);
        await page.waitForSelector('#f-label');
        assert.equal(await page.inputValue('#f-label'), 'live');
        assert.equal(await page.inputValue('#f-count'), '40');
    });

    await test('the runs page lists active runs and the history with filters', async () => {
        await page.goto(`${server.base}/admin/run`);
        await page.waitForSelector('#history-table tbody tr');
        const tasks = await page.$$eval('#history-table tbody tr td:first-child', (t) => t.map((x) => x.textContent));
        assert.ok(tasks.includes('numbered') && tasks.includes('erase'), `history: ${tasks}`);
        await page.fill('#filter-task', 'erase');
        await page.click('#history-filters button[type="submit"]');
        await page.waitForFunction(() => [...document.querySelectorAll('#history-table tbody tr td:first-child')]
            .every((td) => td.textContent === 'erase'));
        await page.fill('#filter-task', '');
        await page.selectOption('#filter-status', 'canceled');
        await page.waitForFunction(() => [...document.querySelectorAll('#history-table tbody tr')].length === 1
            && document.querySelector('#history-table td:first-child').textContent === 'sleeper');
        await page.selectOption('#filter-status', '');
        const other = await context.newPage();
        await startNumbered(other, { label: 'active', count: 200, pause: 0.05 });
        await page.waitForSelector('#active-table tr[data-run] a[href^="/admin/run/"]', { timeout: 10000 });
        await page.screenshot({ path: join(shots, 'runs-active-light-wide.png') });
        await other.close();
    });

    await test('a form posted from another origin is refused', async () => {
        const foreign = createServer((req, res) => {
            res.setHeader('Content-Type', 'text/html');
            res.end(`<!doctype html><form method="post" action="${server.base}/admin/task/numbered/start">
                <input name="label" value="evil"><button id="go">go</button></form>`);
        });
        await new Promise((resolve) => foreign.listen(0, '127.0.0.1', resolve));
        try {
            const p = await context.newPage(); // logged in: the session cookie exists
            await p.goto(`http://127.0.0.1:${foreign.address().port}/`);
            const [response] = await Promise.all([
                p.waitForResponse((r) => r.url().endsWith('/admin/task/numbered/start')),
                p.click('#go')]);
            assert.equal(response.status(), 403);
            // The refused post is a navigation: let it finish before closing the page. Closing
            // a page while its cross-origin navigation commits is a race that chromium can
            // lose, and then page.close() (which has no timeout) never returns.
            await p.waitForURL(/\/admin\/task\/numbered\/start$/, { waitUntil: 'load' });
            await p.close();
            const runs = await (await fetch(`${server.base}/admin/run?limit=1000`,
                { headers: { Authorization: `Bearer ${server.token}` } })).json();
            assert.ok(!runs.runs.some((r) => r.args?.label === 'evil'), 'the foreign form started a run');
        } finally {
            foreign.close();
        }
    });

    await test('screenshots of every page, light and dark, narrow and wide', async () => {
        const pages = [['tasks', '/admin/task', '.task-card'], ['task', '/admin/task/numbered', '#task-form'],
            ['run', `/admin/run/${firstRun}`, '#log .line[data-n="40"]'], ['runs', '/admin/run', '#history-table'],
            ['login', '/admin/task', '#login']];
        for (const scheme of ['light', 'dark']) {
            for (const [size, width] of [['narrow', 390], ['wide', 1400]]) {
                const ctx = await newContext({ viewport: { width, height: 900 }, colorScheme: scheme });
                const p = await ctx.newPage();
                await p.goto(server.login);
                for (const [name, path, ready] of pages) {
                    if (name === 'login')
                        await ctx.clearCookies();
                    await p.goto(`${server.base}${path}`);
                    await p.waitForSelector(ready);
                    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
                    assert.ok(overflow <= 0, `${name} is ${overflow} px wider than a ${width} px window`);
                    await p.screenshot({ path: join(shots, `${name}-${scheme}-${size}.png`), fullPage: true });
                }
                await ctx.close();
            }
        }
    });

    await test('no script errors on the pages', async () => {
        const real = consoleErrors.filter((e) => !/status of 40[013]|net::ERR_INTERNET_DISCONNECTED|WebSocket/.test(e));
        assert.deepEqual(real, []);
    });
} finally {
    finishing = true;
    await browser.close().catch(() => {});
    await server.stop();
}

const failed = results.filter((r) => !r.ok).length;
console.log(`screenshots: ${shots}`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
