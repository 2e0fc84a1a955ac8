// SPDX-License-Identifier: MIT
// Shared by the browser tests and the web bench: finds chromium and playwright-core (or
// says loudly why it cannot), starts `taskdeck serve` on a free port with a fresh data
// directory and this folder's tasks file, and stops it again.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const SKIP = 77;
export const CHROMIUM = process.env.TASKDECK_CHROMIUM || '/usr/bin/chromium';

function loudSkip(why) {
    const bar = '#'.repeat(78);
    // CI installs both (packaging/install-deps --test): there a missing one is a failure.
    if (process.env.CI) {
        console.error(`${bar}\n# FAILED: ${why}\n# CI runs packaging/install-deps --test, which installs it\n${bar}`);
        console.log('0 passed, 1 failed');
        process.exit(1);
    }
    console.error(`${bar}\n# SKIPPED: ${why}\n# Install what is missing with: packaging/install-deps --test\n${bar}`);
    console.log('0 passed, 0 failed, 1 skipped');
    process.exit(SKIP);
}

/** playwright-core's chromium, or a loud skip when the browser or the module is missing. */
export async function loadChromium() {
    if (!existsSync(CHROMIUM))
        loudSkip(`${CHROMIUM} is missing (Debian package chromium)`);
    try {
        const module = await import('playwright-core');
        return module.chromium;
    } catch (e) {
        loudSkip(`playwright-core is not installed in ${join(here, 'node_modules')} (${e.code || e.message})`);
    }
    return null;
}

export function launch(chromium) {
    return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu',
        '--enable-precise-memory-info', '--js-flags=--expose-gc'] });
}

/**
 * Starts `taskdeck serve --listen 127.0.0.1:0`; resolves to {base, login, token, stop()}
 * once it printed its address and login link.
 */
export async function startServer({ tasks = join(here, 'tasks.yml'), env = {} } = {}) {
    const bin = process.env.TASKDECK_BIN;
    if (!bin || !existsSync(bin))
        throw new Error(`TASKDECK_BIN must name the taskdeck program (it is "${bin || ''}")`);
    const dataDir = mkdtempSync(join(tmpdir(), 'taskdeck-web-'));
    const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--tasks', tasks], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, XDG_CONFIG_HOME: join(dataDir, 'config'), ...env },
        // A process group of its own: a signal meant for the browser's or the harness's
        // group must not stop the server the tests talk to.
        detached: true,
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const lines = createInterface({ input: child.stdout });
    const started = await new Promise((resolve, reject) => {
        const found = {};
        const timer = setTimeout(() => reject(new Error(`taskdeck serve printed no login link in 20 s: ${stderr}`)), 20000);
        child.on('exit', (code) => reject(new Error(`taskdeck serve exited with ${code}: ${stderr}`)));
        lines.on('line', (line) => {
            const listening = line.match(/^listening on (\S+)/);
            const login = line.match(/^log in: (\S+)/);
            if (listening)
                found.base = listening[1].replace(/\/$/, '');
            if (login)
                found.login = login[1];
            if (found.base && found.login) {
                clearTimeout(timer);
                resolve(found);
            }
        });
    });
    let stopping = false;
    child.on('exit', (code, signal) => {
        if (!stopping)
            console.error(`taskdeck serve stopped by itself: code ${code}, signal ${signal}\n${stderr.slice(-4000)}`);
    });
    const token = new URL(started.login).searchParams.get('token');
    return {
        ...started, token, dataDir,
        async stop() {
            stopping = true;
            if (child.exitCode === null) {
                const exited = new Promise((resolve) => child.on('exit', resolve));
                child.kill('SIGTERM');
                await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
                if (child.exitCode === null)
                    child.kill('SIGKILL');
            }
            rmSync(dataDir, { recursive: true, force: true });
        },
    };
}
