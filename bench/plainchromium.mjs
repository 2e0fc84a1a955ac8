// SPDX-License-Identifier: MIT
// A headless chromium driven over --remote-debugging-pipe with only the DevTools calls the
// bench needs: no Network domain, so the browser does not copy every WebSocket frame to a
// debugger as it does under playwright (which enables it on every page). What it measures
// is then the page as a person's browser runs it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launchPlain(executable, { width = 1400, height = 900 } = {}) {
    const profile = mkdtempSync(join(tmpdir(), 'taskdeck-bench-chromium-'));
    const child = spawn(executable, ['--headless=new', '--no-sandbox', '--disable-gpu', '--remote-debugging-pipe',
        `--user-data-dir=${profile}`, `--window-size=${width},${height}`, '--enable-precise-memory-info',
        '--js-flags=--expose-gc', 'about:blank'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    const toBrowser = child.stdio[3];
    const fromBrowser = child.stdio[4];
    let nextId = 1;
    const waiting = new Map();
    let buffered = '';
    fromBrowser.setEncoding('utf8');
    fromBrowser.on('data', (chunk) => {
        buffered += chunk;
        for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
            const message = JSON.parse(buffered.slice(0, end));
            buffered = buffered.slice(end + 1);
            const pending = message.id !== undefined && waiting.get(message.id);
            if (!pending)
                continue;
            waiting.delete(message.id);
            if (message.error)
                pending.reject(new Error(`${pending.method}: ${message.error.message}`));
            else
                pending.resolve(message.result);
        }
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.on('exit', () => {
        for (const pending of waiting.values())
            pending.reject(new Error(`chromium exited during ${pending.method}`));
        waiting.clear();
    });
    function send(method, params = {}, sessionId = undefined) {
        const id = nextId++;
        return new Promise((resolve, reject) => {
            waiting.set(id, { resolve, reject, method });
            toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
        });
    }
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const page = {
        call: (method, params) => send(method, params, sessionId),
        async evaluate(expression) {
            const { result, exceptionDetails } = await page.call('Runtime.evaluate', { expression, returnByValue: true });
            if (exceptionDetails)
                throw new Error(`${expression}: ${exceptionDetails.text}`);
            return result.value;
        },
        /** Resolves once expression is truthy, checked every intervalMs. */
        async waitFor(expression, { intervalMs = 10, timeoutMs = 600000 } = {}) {
            const until = Date.now() + timeoutMs;
            for (;;) {
                // Between navigations there is no context to evaluate in: try again.
                const value = await page.evaluate(expression).catch(() => false);
                if (value)
                    return value;
                if (Date.now() > until)
                    throw new Error(`timed out waiting for ${expression}`);
                await new Promise((r) => setTimeout(r, intervalMs));
            }
        },
        /** Navigates and resolves once a document at a path starting with landsOn is loaded
         *  (a login link redirects: its page is not the one asked for). */
        async goto(url, landsOn = new URL(url).pathname) {
            await page.call('Page.navigate', { url });
            await page.waitFor(`location.pathname.startsWith(${JSON.stringify(landsOn)}) && document.readyState === 'complete'`);
        },
    };
    return {
        page,
        async close() {
            await send('Browser.close').catch(() => {});
            await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
            if (child.exitCode === null && child.signalCode === null)
                child.kill('SIGKILL');
            rmSync(profile, { recursive: true, force: true });
        },
    };
}
