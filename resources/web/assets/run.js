// SPDX-License-Identifier: MIT
// The run page: status, progress with ETA, the live log over the WebSocket (a bounded tail,
// ANSI colours as styled spans), result, error, cancel, re-run and exports. The page keeps
// the last event it rendered in sessionStorage and resumes with ?after=SEQ, after a reload
// or a dropped socket, with no gap and no duplicate. The socket asks for tail mode
// (?tail=TAIL_LINES): lines the page could not keep anyway are not sent, a "skipped"
// message names them, and the page says where they are (the full log).
import { ACTIVE_STATUSES, api, el, formatDuration, formatTime, lastPathSegment, notice, page, statusBadge } from './common.js';

/** Lines kept in the page; the full log is a download away. */
const TAIL_LINES = 5000;

const runId = lastPathSegment();
const main = page(`Run ${runId.slice(-12)}`, 'runs');
const storageKey = `taskdeck.run.${runId}`;

let run = null;
let lastSeq = 0;          // the last event applied
let lastLine = 0;         // the number of the last log line shown
let finished = false;
let socket = null;
let retryDelay = 500;
let caughtBehind = false;  // the server said "behind": reconnect at once, it is no failure
let follow = true;
let pending = [];         // lines received but not yet drawn
let tail = [];            // the raw lines shown, {n, stream, text}, at most TAIL_LINES
let drawScheduled = false;

// --- the page's parts ------------------------------------------------------------------

const heading = el('h1', {}, 'Run');
const statusSlot = el('span', { id: 'run-status' });
const facts = el('dl', { class: 'facts' });
const progressBar = el('progress', { id: 'run-progress', max: 100, 'aria-label': 'Progress' });
const progressText = el('span', { id: 'run-progress-text', class: 'muted' });
const progressRow = el('div', { class: 'progress-row hidden' }, progressBar, progressText);
const cancelButton = el('button', { type: 'button', id: 'cancel-button', class: 'danger hidden' }, 'Cancel');
const rerunLink = el('a', { class: 'button', id: 'rerun-link', href: '#' }, 'Re-run…');
const connection = el('span', { id: 'connection', class: 'muted', 'aria-live': 'polite' });
const errorSlot = el('div', { id: 'run-error' });
const resultSlot = el('section', { id: 'run-result', class: 'panel hidden', 'aria-label': 'Result' });

const logBox = el('div', { id: 'log', class: 'log', role: 'log', 'aria-live': 'off', tabindex: 0 });
const followBox = el('input', { type: 'checkbox', id: 'follow', checked: true });
const findInput = el('input', { type: 'search', id: 'log-find', placeholder: 'Find in log', autocomplete: 'off' });
const findCount = el('span', { id: 'log-find-count', class: 'muted', 'aria-live': 'polite' });
const exports = el('span', { class: 'actions' },
    el('a', { href: `/admin/run/${runId}/log`, id: 'download-log', download: `run-${runId}.log` }, 'Full log'),
    el('a', { href: `/admin/run/${runId}/export?format=json` }, 'Export JSON'),
    el('a', { href: `/admin/run/${runId}/export?format=csv` }, 'Export CSV'));

main.append(
    el('p', {}, el('a', { href: '/admin/run' }, '← Runs')),
    el('div', { class: 'run-head' }, heading, statusSlot, connection),
    el('section', { class: 'panel', 'aria-label': 'Run' }, facts, progressRow,
        el('div', { class: 'actions' }, cancelButton, rerunLink, exports)),
    errorSlot,
    resultSlot,
    el('section', { class: 'panel', 'aria-label': 'Log' },
        el('div', { class: 'log-tools' },
            el('label', { class: 'check' }, followBox, 'Follow'), findInput, findCount),
        logBox));

// --- the log ---------------------------------------------------------------------------

/** ansi_up (Debian's libjs-ansi-up) parses the escape codes; the spans are built here as
 *  elements with classes, so the page needs no inline style (the CSP forbids it). */
const ansi = new window.AnsiUp();
ansi.use_classes = true;
let fragments = [];
ansi.transform_to_html = (fragment) => { fragments.push(fragment); return ''; };
ansi.process_hyperlink = (packet) => { fragments.push({ text: packet.text }); return ''; };

function ansiNodes(text) {
    fragments = [];
    ansi.ansi_to_html(text);
    const nodes = [];
    for (const f of fragments) {
        if (!f.text)
            continue;
        const classes = [];
        if (f.bold)
            classes.push('ansi-bold');
        if (f.italic)
            classes.push('ansi-italic');
        if (f.underline)
            classes.push('ansi-underline');
        if (f.fg && f.fg.class_name !== 'truecolor')
            classes.push(`${f.fg.class_name}-fg`);
        if (f.bg && f.bg.class_name !== 'truecolor')
            classes.push(`${f.bg.class_name}-bg`);
        if (!classes.length && !f.fg && !f.bg) {
            nodes.push(document.createTextNode(f.text));
            continue;
        }
        const span = el('span', { class: classes.join(' ') || undefined }, f.text);
        // Colours off the palette (256-colour and true colour) are set through the CSSOM,
        // which the CSP allows.
        if (f.fg && (f.fg.class_name === 'truecolor' || !f.fg.class_name))
            span.style.color = `rgb(${f.fg.rgb.join(',')})`;
        if (f.bg && (f.bg.class_name === 'truecolor' || !f.bg.class_name))
            span.style.backgroundColor = `rgb(${f.bg.rgb.join(',')})`;
        nodes.push(span);
    }
    return nodes;
}

function lineNode(line) {
    return el('div', { class: line.stream === 'err' ? 'line err' : 'line', 'data-n': line.n },
        el('span', { class: 'n' }, line.n), el('span', { class: 'text' }, ansiNodes(line.text)));
}

const fullLogHref = `/admin/run/${encodeURIComponent(runId)}/log`;

/** "N lines not shown — download the full log", with the link. */
function notShown(count, earlier, id) {
    return el('div', { class: earlier ? 'note' : 'note skipped', id },
        `${count.toLocaleString('en-US')} ${earlier ? 'earlier ' : ''}line${count === 1 ? '' : 's'} not shown — `,
        el('a', { href: fullLogHref, download: `run-${runId}.log` }, 'download the full log'));
}

/** The note above the first line shown: how many come before it, and where they are. Notes
 *  of skipped lines above it say the same, so they go. */
function updateTopNote() {
    while (logBox.firstElementChild && !logBox.firstElementChild.classList.contains('line'))
        logBox.firstElementChild.remove();
    const first = logBox.firstElementChild;
    const before = first ? Number(first.dataset.n) - 1 : lastLine;
    if (before > 0)
        logBox.prepend(notShown(before, true, 'log-trimmed'));
}

/** Takes a "skipped" message (or a snapshot's "skipped"): lines from..to are not sent. */
function addSkipped(skipped, seq) {
    if (skipped.to > lastLine) {
        const from = Math.max(skipped.from, lastLine + 1);
        const item = { skip: skipped.to - from + 1, from, to: skipped.to };
        pending.push(item);
        tail.push(item);
        lastLine = skipped.to;
        trimKept();
        scheduleDraw();
    }
    if (seq !== undefined)
        lastSeq = Math.max(lastSeq, seq);
}

/** Takes lines in; they are drawn at the next frame, only the last TAIL_LINES of them. */
function addLines(lines) {
    for (const line of lines) {
        if (line.n <= lastLine)
            continue; // already shown (a resumed stream never repeats, this is a safeguard)
        if (lastLine && line.n > lastLine + 1)
            pending.push({ gap: line.n - lastLine - 1 });
        lastLine = line.n;
        pending.push(line);
        tail.push(line);
    }
    trimKept();
    scheduleDraw();
}

/**
 * Takes in a "log" message: lines seq, seq + 1, ... numbered n, n + 1, ... Only the lines
 * that can still be on screen become objects: a batch of a fast run holds thousands.
 */
function addLogMessage(message) {
    const count = message.lines.length;
    // Each line's seq: the first one's and up, or listed ("seqs") where they skip numbers.
    const seqOf = message.seqs ? (i) => message.seqs[i] : (i) => message.seq + i;
    let fresh = 0;
    while (fresh < count && (seqOf(fresh) <= lastSeq || message.n + fresh <= lastLine))
        ++fresh;
    if (fresh >= count)
        return;
    const from = Math.max(fresh, count - TAIL_LINES);
    const firstN = message.n + fresh;
    if (lastLine && firstN > lastLine + 1)
        pending.push({ gap: firstN - lastLine - 1 });
    if (from > fresh) {
        // More fresh lines than the page keeps: the first of them are never shown.
        const skipped = { skip: from - fresh, from: firstN, to: message.n + from - 1 };
        pending.push(skipped);
        tail.push(skipped);
    }
    const streams = new Map();
    for (const i of message.err || [])
        streams.set(i, 'err');
    for (const i of message.system || [])
        streams.set(i, 'system');
    for (let i = from; i < count; ++i) {
        const line = { n: message.n + i, stream: streams.get(i) || 'out', text: message.lines[i] };
        pending.push(line);
        tail.push(line);
    }
    lastLine = message.n + count - 1;
    lastSeq = seqOf(count - 1);
    trimKept();
    scheduleDraw();
}

function trimKept() {
    if (pending.length > TAIL_LINES * 1.2)
        pending = pending.slice(-TAIL_LINES);
    if (tail.length > TAIL_LINES * 1.2)
        tail = tail.slice(-TAIL_LINES);
}

let lastDrawCost = 0;
let lastDrawAt = 0;
/** Draws at the next frame, but spends at most a fifth of the time drawing: under a flood of
 *  lines the frames spread out, and lines that would scroll away unseen are never drawn. */
function scheduleDraw() {
    if (drawScheduled)
        return;
    drawScheduled = true;
    const wait = Math.min(1000, lastDrawCost * 4) - (performance.now() - lastDrawAt);
    if (wait > 0)
        drawTimer = setTimeout(() => { drawTimer = 0; requestAnimationFrame(draw); }, wait);
    else
        requestAnimationFrame(draw);
}

let drawTimer = 0;
/** The flood is over (the run finished): what waits is drawn at the next frame, not after the
 *  pause the frame budget asked for. */
function drawSoon() {
    if (!drawTimer)
        return;
    clearTimeout(drawTimer);
    drawTimer = 0;
    requestAnimationFrame(draw);
}

/** Lines drawn at once under a flood: more than a screenful, far fewer than the tail. The
 *  rest of the tail is drawn once the flood is over (fillTail). */
const FLOOD_LINES = 1000;
let partial = false;   // the page shows less than the tail: a flood cut it short
let fillTimer = 0;

function fillTail() {
    fillTimer = 0;
    if (!partial || pending.length)
        return;
    partial = false;
    pending = tail.slice(-TAIL_LINES);
    logBox.replaceChildren();
    draw();
}

/** What the log shows for a kept item: a line, or a note of lines it does not have. */
function itemNode(item) {
    if (item.gap)
        return el('div', { class: 'note gap' }, `… ${item.gap} lines missing here are in the full log`);
    if (item.skip)
        return notShown(item.skip, false);
    return lineNode(item);
}

function draw() {
    const started = performance.now();
    drawScheduled = false;
    let batch = pending;
    pending = [];
    // Notes of lines not shown are no lines: a snapshot's thousand lines after its note are
    // no flood.
    let lines = 0;
    for (const item of batch)
        lines += item.n === undefined ? 0 : 1;
    if (lines > FLOOD_LINES) {
        batch = batch.slice(-FLOOD_LINES);
        partial = true;
    }
    if (batch.length >= FLOOD_LINES)
        logBox.replaceChildren();
    clearTimeout(fillTimer);
    fillTimer = partial ? setTimeout(fillTail, 500) : 0;
    const fragment = document.createDocumentFragment();
    for (const item of batch)
        fragment.append(itemNode(item));
    logBox.append(fragment);
    let extra = logBox.childElementCount - TAIL_LINES;
    while (extra-- > 0)
        logBox.firstElementChild.remove();
    updateTopNote();
    if (findInput.value)
        applyFind(false);
    if (follow)
        logBox.scrollTop = logBox.scrollHeight;
    logBox.dataset.lastLine = String(lastLine);
    lastDrawAt = performance.now();
    lastDrawCost = lastDrawAt - started;
    saveSoon();
}

logBox.addEventListener('scroll', () => {
    const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 8;
    if (follow !== atBottom) {
        follow = atBottom;
        followBox.checked = atBottom;
    }
});
followBox.addEventListener('change', () => {
    follow = followBox.checked;
    if (follow)
        logBox.scrollTop = logBox.scrollHeight;
});

let findIndex = -1;
function applyFind(jump) {
    const needle = findInput.value.toLowerCase();
    const lines = logBox.querySelectorAll('.line');
    const hits = [];
    for (const line of lines) {
        const hit = needle !== '' && line.lastElementChild.textContent.toLowerCase().includes(needle);
        line.classList.toggle('match', hit);
        line.classList.remove('current');
        if (hit)
            hits.push(line);
    }
    findCount.textContent = needle ? `${hits.length} found` : '';
    if (jump && hits.length) {
        findIndex = (findIndex + 1) % hits.length;
        hits[findIndex].classList.add('current');
        follow = false;
        followBox.checked = false;
        hits[findIndex].scrollIntoView({ block: 'center' });
    }
}
findInput.addEventListener('input', () => { findIndex = -1; applyFind(true); });
findInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
        event.preventDefault();
        applyFind(true);
    }
});

// --- remembering where the page was ----------------------------------------------------

let saveTimer = 0;
/** Saves the lines received (shown, or drawn at the next frame) with the seq of the last
 *  event applied: the two always agree. */
function save() {
    clearTimeout(saveTimer);
    saveTimer = 0;
    // tail and lastSeq move together as lines arrive, drawn or not: no need to draw first
    // (a draw here, every few hundred milliseconds, undid the frame budget under a flood).
    const state = { seq: lastSeq, lastLine, lines: tail.slice(-TAIL_LINES) };
    try {
        sessionStorage.setItem(storageKey, JSON.stringify(state));
    } catch {
        // Storage full: the page still resumes after a dropped socket, just not a reload.
    }
}
function saveSoon() {
    if (!saveTimer)
        saveTimer = setTimeout(save, 1000);
}

function restore() {
    let state = null;
    try {
        state = JSON.parse(sessionStorage.getItem(storageKey) || 'null');
    } catch {
        state = null;
    }
    if (!state || !state.seq)
        return false;
    const fragment = document.createDocumentFragment();
    for (const item of state.lines)
        fragment.append(itemNode(item));
    logBox.append(fragment);
    tail = state.lines;
    lastSeq = state.seq;
    lastLine = state.lastLine;
    updateTopNote();
    logBox.dataset.lastLine = String(lastLine);
    logBox.scrollTop = logBox.scrollHeight;
    return true;
}

window.addEventListener('pagehide', save);

// --- run state -------------------------------------------------------------------------

function showRun(next) {
    run = { ...run, ...next };
    heading.textContent = `${run.task} run`;
    document.title = `${run.task} run – Taskdeck`;
    statusSlot.replaceChildren(statusBadge(run.status));
    const fact = (name, value) => [el('dt', {}, name), el('dd', {}, value)];
    const args = Object.entries(run.args || {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    facts.replaceChildren(
        ...fact('Task', el('a', { href: `/admin/task/${encodeURIComponent(run.task)}` }, run.task)),
        ...fact('Run id', el('span', { class: 'mono' }, run.id || runId)),
        ...fact('Arguments', args.length ? el('span', { class: 'mono' }, args.join('  ')) : '—'),
        ...fact('Queued', formatTime(run.queuedAt)),
        ...fact('Started', formatTime(run.startedAt)),
        ...fact('Finished', formatTime(run.finishedAt)),
        ...fact('Duration', run.durationMs !== null && run.durationMs !== undefined ? formatDuration(run.durationMs) : '—'),
        ...fact('Attempt', `${run.attempt || 0} of ${run.maxAttempts || 1}`));
    const active = ACTIVE_STATUSES.includes(run.status);
    cancelButton.classList.toggle('hidden', !active);
    if (!active)
        connection.textContent = '';
    rerunLink.href = `/admin/task/${encodeURIComponent(run.task)}?rerun=${encodeURIComponent(run.id || runId)}`;
    if (run.progress)
        showProgress(run.progress);
    if (!active)
        progressRow.classList.toggle('hidden', !(run.progress && run.progress.total > 0));
    errorSlot.replaceChildren();
    if (run.error) {
        errorSlot.append(el('section', { class: 'notice error', role: 'alert', id: 'run-error-view' },
            el('strong', {}, run.error.kind || 'Error'), ': ', run.error.message,
            run.error.detail ? el('pre', { class: 'mono' }, run.error.detail) : null));
    }
    if (run.result !== null && run.result !== undefined)
        showResult(run.result);
}

function showProgress(progress) {
    if (!progress || !(progress.total > 0)) {
        progressRow.classList.add('hidden');
        return;
    }
    progressRow.classList.remove('hidden');
    const done = Math.min(progress.done, progress.total);
    progressBar.max = progress.total;
    progressBar.value = done;
    let eta = '';
    const started = run?.startedAt ? new Date(run.startedAt).getTime() : NaN;
    // Only a run still going has time left: one canceled or failed midway keeps its count.
    if (done > 0 && done < progress.total && !Number.isNaN(started) && ACTIVE_STATUSES.includes(run?.status)) {
        const elapsed = Date.now() - started;
        eta = ` · about ${formatDuration(elapsed * (progress.total - done) / done)} left`;
    }
    const percent = Math.round(100 * done / progress.total);
    progressText.textContent = `${done} / ${progress.total} (${percent}%)${eta}${progress.message ? ` · ${progress.message}` : ''}`;
}

function jsonTree(value, name) {
    const label = name === undefined ? null : el('span', { class: 'k' }, `${name}: `);
    if (value === null || typeof value !== 'object') {
        const cls = typeof value === 'string' ? 's' : 'num';
        return el('li', {}, label, el('span', { class: cls }, JSON.stringify(value)));
    }
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const summary = Array.isArray(value) ? `[${value.length}]` : `{${entries.length}}`;
    return el('li', {}, el('details', { open: true }, el('summary', {}, label, summary),
        el('ul', {}, entries.map(([k, v]) => jsonTree(v, k)))));
}

function tableOf(rows) {
    const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
    const cell = (v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v ?? ''));
    return el('div', { class: 'table-wrap' }, el('table', { class: 'responsive result-table' },
        el('thead', {}, el('tr', {}, columns.map((c) => el('th', {}, c)))),
        el('tbody', {}, rows.map((row) => el('tr', {}, columns.map((c) => el('td', { 'data-label': c }, cell(row[c]))))))));
}

function showResult(result) {
    const text = JSON.stringify(result, null, 2);
    const copy = el('button', { type: 'button', id: 'copy-result' }, 'Copy');
    copy.addEventListener('click', async () => {
        try {
            await navigator.clipboard.writeText(text);
            copy.textContent = 'Copied';
        } catch {
            copy.textContent = 'Copy failed';
        }
    });
    const parts = [el('div', { class: 'actions' }, el('h2', {}, 'Result'), copy)];
    const arrays = Array.isArray(result) ? [['', result]]
        : (result && typeof result === 'object' ? Object.entries(result).filter(([, v]) => Array.isArray(v)) : []);
    for (const [name, rows] of arrays) {
        if (rows.length && rows.every((r) => r && typeof r === 'object' && !Array.isArray(r))) {
            if (name)
                parts.push(el('h3', {}, name));
            parts.push(tableOf(rows));
        }
    }
    parts.push(el('div', { class: 'json-tree', id: 'result-tree' }, el('ul', {}, jsonTree(result))));
    resultSlot.replaceChildren(...parts);
    resultSlot.classList.remove('hidden');
}

// --- the live stream -------------------------------------------------------------------

function onMessage(message) {
    if (message.seq !== undefined && message.type !== 'log' && message.type !== 'behind' && message.seq <= lastSeq)
        return; // seen already
    switch (message.type) {
    case 'snapshot':
        showRun(message.run);
        if (message.skipped)
            addSkipped(message.skipped);
        addLines((message.log || []).map((l) => ({ n: l.n, stream: l.stream, text: l.text })));
        break;
    case 'log':
        addLogMessage(message);
        break;
    case 'skipped':
        addSkipped(message, message.seq);
        break;
    case 'progress':
        showProgress(message.progress);
        break;
    case 'behind':
        connection.textContent = 'Catching up…';
        caughtBehind = true;
        return; // the socket closes; onclose reconnects after the last seq
    case 'queued':
    case 'started':
    case 'retrying':
    case 'finished':
        if (message.run)
            showRun(message.run);
        if (message.type === 'finished') {
            finished = true;
            drawSoon();
        }
        break;
    default:
        break;
    }
    if (message.type !== 'log' && message.seq !== undefined)
        lastSeq = Math.max(lastSeq, message.seq);
}

function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const after = lastSeq > 0 ? `&after=${lastSeq}` : '';
    socket = new WebSocket(`${scheme}://${location.host}/ws/task/${encodeURIComponent(runId)}?tail=${TAIL_LINES}${after}`);
    connection.textContent = after ? 'Reconnecting…' : 'Connecting…';
    socket.addEventListener('open', () => {
        connection.textContent = ACTIVE_STATUSES.includes(run?.status) ? 'Live' : '';
        retryDelay = 500;
    });
    socket.addEventListener('message', (event) => {
        let message;
        try {
            message = JSON.parse(event.data);
        } catch {
            return;
        }
        onMessage(message);
    });
    socket.addEventListener('close', (event) => {
        socket = null;
        if (finished || event.reason === 'run finished') {
            finished = true;
            connection.textContent = '';
            saveSoon();
            return;
        }
        if (event.reason === 'unknown run') {
            connection.textContent = 'This run is unknown.';
            return;
        }
        if (caughtBehind) {
            caughtBehind = false;
            connect();
            return;
        }
        connection.textContent = 'Disconnected; reconnecting…';
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 10000);
    });
}

cancelButton.addEventListener('click', async () => {
    cancelButton.disabled = true;
    const { ok, data } = await api(`/admin/run/${encodeURIComponent(runId)}/cancel`, { method: 'POST' });
    cancelButton.disabled = false;
    if (!ok)
        errorSlot.replaceChildren(notice('error', `Cancel failed: ${data?.message || 'unknown error'}`));
    else
        connection.textContent = 'Canceling…';
});

async function load() {
    const { ok, data } = await api(`/admin/run/${encodeURIComponent(runId)}`);
    if (!ok) {
        main.replaceChildren(el('p', {}, el('a', { href: '/admin/run' }, '← Runs')),
            notice('error', data?.message || 'This run cannot be loaded.'));
        return;
    }
    const resumed = restore();
    showRun(data);
    if (!resumed && !ACTIVE_STATUSES.includes(data.status) && data.logLines > 0)
        connection.textContent = '';
    connect();
}

load();
