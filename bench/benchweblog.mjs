// SPDX-License-Identifier: MIT
// bench_weblog: a run printing 1,000,000 lines, followed live by the run page in headless
// chromium. value: time from the start until the page shows the last line; baseline: the
// run's own time (start to finish, as the API reports it, with no page open). Also reports
// the page's JS heap at the end (target < 100 MiB), and what came over the page's socket:
// its bytes, the lines in "log" messages and the "skipped" notes (the page follows in tail
// mode, docs/server.md). Last line: the JSON result.
//
// Usage: bench_weblog [LINES]   (TASKDECK_BIN names the taskdeck program)
import { join } from 'node:path';
import { here as webDir, launch, loadChromium, startServer } from '../tests/web/harness.mjs';

const lines = Number(process.argv[2] || process.env.TASKDECK_BENCH_LINES || 1000000);
const chromium = await loadChromium();
const server = await startServer({ tasks: join(webDir, 'tasks.yml') });
const auth = { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' };

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
        await new Promise((r) => setTimeout(r, 100));
    }
}

let browser;
try {
    // The baseline: the same run with nobody watching.
    const t0 = performance.now();
    const alone = await waitFinished(await startRun());
    const baselineMs = performance.now() - t0;
    if (alone.status !== 'succeeded')
        throw new Error(`the baseline run ${alone.status}`);

    browser = await launch(chromium);
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await page.goto(server.login);
    let connections = 0;
    let socketBytes = 0;
    let skippedNotes = 0;
    let linesSent = 0;
    let finishedAt = 0; // when the finish came over the socket (after the last line)
    page.on('websocket', (ws) => {
        connections += 1;
        ws.on('framereceived', ({ payload }) => {
            socketBytes += payload.length;
            // Cheap looks only: the bench shares the machine with the page and the server.
            if (payload.length < 200 && payload.includes('"type":"skipped"'))
                skippedNotes += 1;
            else if (payload.length < 8192 && payload.includes('"type":"finished"'))
                finishedAt = performance.now();
            else if (payload.endsWith('"type":"log"}')) {
                // One time offset per line in "ms", the member after the texts.
                const from = payload.lastIndexOf('"ms":[') + 6;
                const to = payload.indexOf(']', from);
                let lines = 1;
                for (let i = from; i < to; ++i)
                    lines += payload.charCodeAt(i) === 44 ? 1 : 0;
                linesSent += lines;
            }
        });
    });
    const t1 = performance.now();
    const id = await startRun();
    await page.goto(`${server.base}/admin/run/${id}`);
    await page.waitForSelector(`#log .line[data-n="${lines}"]`, { timeout: 600000 });
    const valueMs = performance.now() - t1;
    const watched = await waitFinished(id);

    const cdp = await context.newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    const heap = await cdp.send('Runtime.getHeapUsage');
    const heapMiB = heap.usedSize / (1024 * 1024);
    const shown = await page.$$eval('#log .line', (n) => n.length);
    const ratio = valueMs / baselineMs;
    console.log(`${lines} lines: run alone ${(baselineMs / 1000).toFixed(2)} s, page shows the last line after `
        + `${(valueMs / 1000).toFixed(2)} s (ratio ${ratio.toFixed(2)}, target <= 1.5); JS heap ${heapMiB.toFixed(1)} MiB `
        + `(target < 100), ${shown} lines in the page, ${connections} socket connections, watched run ${watched.status}; `
        + `the socket brought ${(socketBytes / 1e6).toFixed(1)} MB, ${linesSent} lines and ${skippedNotes} skipped notes, `
        + `the finish after ${((finishedAt - t1) / 1000).toFixed(2)} s`);
    console.log(JSON.stringify({
        bench: 'weblog', value: Number((valueMs / 1000).toFixed(3)), baseline: Number((baselineMs / 1000).toFixed(3)),
        ratio: Number(ratio.toFixed(3)), unit: 's', lines, heap_mib: Number(heapMiB.toFixed(1)),
        lines_in_page: shown, connections, ratio_target: 1.5, heap_target_mib: 100,
        socket_mb: Number((socketBytes / 1e6).toFixed(1)), lines_sent: linesSent, skipped_notes: skippedNotes,
        finish_received_s: Number(((finishedAt - t1) / 1000).toFixed(3)),
    }));
} finally {
    await browser?.close().catch(() => {});
    await server.stop();
}
