// SPDX-License-Identifier: MIT
// bench_weblog: a run printing 1,000,000 lines, followed live by the run page in headless
// chromium. value: time from the start until the page shows the last line; baseline: the
// run's own time (start to finish, as the API reports it, with no page open). Median of
// ROUNDS rounds, the sides alternating, after one round of each that is not kept. Also reports the page's JS heap at the end (target
// < 100 MiB).
//
// The measured page runs in a chromium driven over a DevTools pipe with nothing but
// navigation and evaluation (bench/plainchromium.mjs). Playwright enables DevTools' Network
// domain on every page, which makes the browser copy each WebSocket frame to the debugger,
// the bench's node process parse it, and both compete with the server for the CPU. One more
// round under playwright reports that instrumented time (instrumented_s) and what came over
// the page's socket: its bytes, the lines in "log" messages and the "skipped" notes (the
// page follows in tail mode, docs/server.md). Last line: the JSON result.
//
// Usage: bench_weblog [LINES] [ROUNDS]   (TASKDECK_BIN names the taskdeck program)
import { join } from 'node:path';
import { CHROMIUM, here as webDir, launch, loadChromium, startServer } from '../tests/web/harness.mjs';
import { launchPlain } from './plainchromium.mjs';

const lines = Number(process.argv[2] || process.env.TASKDECK_BENCH_LINES || 1000000);
const rounds = Number(process.argv[3] || 3);
const chromium = await loadChromium();
const server = await startServer({ tasks: join(webDir, 'tasks.yml') });
const auth = { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' };
const lastLine = `#log .line[data-n="${lines}"]`;

async function startRun() {
    const response = await fetch(`${server.base}/admin/task/million/start`,
        { method: 'POST', headers: auth, body: JSON.stringify({ lines }) });
    if (response.status !== 202)
        throw new Error(`start: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()).id;
}

async function waitFinished(id) {
    for (;;) {
        const run = await (await fetch(`${server.base}/admin/run/${id}`, { headers: auth })).json();
        if (!['queued', 'running', 'retrying'].includes(run.status))
            return run;
        await new Promise((r) => setTimeout(r, 20));
    }
}

async function succeeded(id, what) {
    const run = await waitFinished(id);
    if (run.status !== 'succeeded')
        throw new Error(`${what} ${run.status}`);
    return run;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (ms) => Number((ms / 1000).toFixed(3));

let plain;
let browser;
try {
    plain = await launchPlain(CHROMIUM);
    await plain.page.goto(server.login, '/admin/task');
    const alone = [];
    const watched = [];
    // Round 0 warms up both sides (the first page load compiles its scripts) and is not kept.
    for (let round = 0; round <= rounds; ++round) {
        // The baseline: the same run with nobody watching.
        let t0 = performance.now();
        await succeeded(await startRun(), 'the baseline run');
        const aloneMs = performance.now() - t0;

        t0 = performance.now();
        const id = await startRun();
        await plain.page.goto(`${server.base}/admin/run/${id}`);
        await plain.page.waitFor(`!!document.querySelector('${lastLine}')`);
        const watchedMs = performance.now() - t0;
        await succeeded(id, 'the watched run');
        if (round > 0) {
            alone.push(aloneMs);
            watched.push(watchedMs);
        }
        await plain.page.goto(`${server.base}/admin/task`);
    }
    const valueMs = median(watched);
    const baselineMs = median(alone);

    // The heap of a page that followed a whole run, after a garbage collection.
    const id = await startRun();
    await plain.page.goto(`${server.base}/admin/run/${id}`);
    await plain.page.waitFor(`!!document.querySelector('${lastLine}')`);
    await succeeded(id, 'the run the heap is measured on');
    await plain.page.call('HeapProfiler.collectGarbage');
    const heapMiB = (await plain.page.call('Runtime.getHeapUsage')).usedSize / (1024 * 1024);
    const shown = await plain.page.evaluate(`document.querySelectorAll('#log .line').length`);
    await plain.close();
    plain = undefined;

    // One instrumented round: playwright, with every frame of the page's socket seen here.
    browser = await launch(chromium);
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await page.goto(server.login);
    let connections = 0;
    let socketBytes = 0;
    let skippedNotes = 0;
    let linesSent = 0;
    page.on('websocket', (ws) => {
        connections += 1;
        ws.on('framereceived', ({ payload }) => {
            socketBytes += payload.length;
            // Cheap looks only: the bench shares the machine with the page and the server.
            if (payload.length < 200 && payload.includes('"type":"skipped"'))
                skippedNotes += 1;
            else if (payload.endsWith('"type":"log"}')) {
                // One time offset per line in "ms", the member after the texts.
                const from = payload.lastIndexOf('"ms":[') + 6;
                const to = payload.indexOf(']', from);
                let count = 1;
                for (let i = from; i < to; ++i)
                    count += payload.charCodeAt(i) === 44 ? 1 : 0;
                linesSent += count;
            }
        });
    });
    // Its first round warms the new browser up, as above.
    await page.goto(`${server.base}/admin/run/${await startRun()}`);
    await page.waitForSelector(lastLine, { timeout: 600000 });
    socketBytes = linesSent = skippedNotes = connections = 0;
    const t1 = performance.now();
    const instrumentedId = await startRun();
    await page.goto(`${server.base}/admin/run/${instrumentedId}`);
    await page.waitForSelector(lastLine, { timeout: 600000 });
    const instrumentedMs = performance.now() - t1;
    await succeeded(instrumentedId, 'the instrumented run');

    const ratio = valueMs / baselineMs;
    console.log(`${lines} lines: run alone ${(baselineMs / 1000).toFixed(2)} s, page shows the last line after `
        + `${(valueMs / 1000).toFixed(2)} s (ratio ${ratio.toFixed(2)}, target <= 1.5; medians of ${rounds}: `
        + `alone ${alone.map((v) => (v / 1000).toFixed(2)).join(' ')}, watched ${watched.map((v) => (v / 1000).toFixed(2)).join(' ')}); `
        + `JS heap ${heapMiB.toFixed(1)} MiB (target < 100), ${shown} lines in the page; `
        + `under playwright ${(instrumentedMs / 1000).toFixed(2)} s, its socket brought ${(socketBytes / 1e6).toFixed(1)} MB, `
        + `${linesSent} lines and ${skippedNotes} skipped notes over ${connections} connection(s)`);
    console.log(JSON.stringify({
        bench: 'weblog', value: seconds(valueMs), baseline: seconds(baselineMs), ratio: Number(ratio.toFixed(3)), unit: 's',
        lines, rounds, heap_mib: Number(heapMiB.toFixed(1)), lines_in_page: shown, ratio_target: 1.5, heap_target_mib: 100,
        instrumented_s: seconds(instrumentedMs), instrumented_ratio: Number((instrumentedMs / baselineMs).toFixed(3)),
        connections, socket_mb: Number((socketBytes / 1e6).toFixed(1)), lines_sent: linesSent, skipped_notes: skippedNotes,
    }));
} finally {
    await plain?.close();
    await browser?.close().catch(() => {});
    await server.stop();
}
