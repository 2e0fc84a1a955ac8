// SPDX-License-Identifier: MIT
// Runs: the active ones, refreshed while the page is open, and the history, paged, with
// filters by task and status.
import { ACTIVE_STATUSES, api, el, formatDuration, formatTime, notice, page, statusBadge } from './common.js';

const PAGE_SIZE = 25;
const STATUSES = ['queued', 'running', 'retrying', 'succeeded', 'failed', 'canceled', 'timedOut', 'interrupted'];
const main = page('Runs', 'runs');
const params = new URLSearchParams(location.search);
let offset = Math.max(0, Number(params.get('offset')) || 0);

const taskFilter = el('input', { type: 'search', id: 'filter-task', placeholder: 'task key', value: params.get('task') || '',
    autocomplete: 'off' });
const statusFilter = el('select', { id: 'filter-status' }, el('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => el('option', { value: s }, s)));
statusFilter.value = params.get('status') || '';
const active = el('div', { id: 'active-runs' });
const history = el('div', { id: 'history' });
const pager = el('div', { class: 'pager' });

main.append(
    el('h1', {}, 'Runs'),
    el('section', { class: 'panel', 'aria-label': 'Active runs' }, el('h2', {}, 'Active'), active),
    el('section', { class: 'panel', 'aria-label': 'History' },
        el('h2', {}, 'History'),
        el('form', { class: 'filters', id: 'history-filters', role: 'search' },
            el('label', {}, 'Task', taskFilter), el('label', {}, 'Status', statusFilter),
            el('button', { type: 'submit' }, 'Filter')),
        history, pager));

function runTable(runs, id) {
    const rows = runs.map((run) => el('tr', { 'data-run': run.id },
        el('td', { 'data-label': 'Task' }, el('a', { href: `/admin/task/${encodeURIComponent(run.task)}` }, run.task)),
        el('td', { 'data-label': 'Status' }, statusBadge(run.status)),
        el('td', { 'data-label': 'Progress' }, run.progress?.total > 0 ? `${run.progress.done}/${run.progress.total}` : '—'),
        el('td', { 'data-label': 'Queued' }, formatTime(run.queuedAt)),
        el('td', { 'data-label': 'Duration' }, run.durationMs === null ? '—' : formatDuration(run.durationMs)),
        el('td', { 'data-label': 'Run', class: 'mono' },
            el('a', { href: `/admin/run/${encodeURIComponent(run.id)}` }, run.id.slice(-12)))));
    return el('div', { class: 'table-wrap' }, el('table', { class: 'responsive', id },
        el('thead', {}, el('tr', {}, ['Task', 'Status', 'Progress', 'Queued', 'Duration', 'Run'].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)));
}

async function loadActive() {
    const lists = await Promise.all(ACTIVE_STATUSES.map((status) => api(`/admin/run?status=${status}&limit=100`)));
    const failed = lists.find((l) => !l.ok);
    if (failed) {
        active.replaceChildren(notice('error', failed.data?.message || 'The active runs cannot be loaded.'));
        return;
    }
    const runs = lists.flatMap((l) => l.data.runs);
    active.replaceChildren(runs.length ? runTable(runs, 'active-table') : el('p', { class: 'muted' }, 'No run is active.'));
}

async function loadHistory() {
    const query = new URLSearchParams({ limit: PAGE_SIZE, offset });
    if (taskFilter.value.trim())
        query.set('task', taskFilter.value.trim());
    if (statusFilter.value)
        query.set('status', statusFilter.value);
    const { ok, data } = await api(`/admin/run?${query}`);
    if (!ok) {
        history.replaceChildren(notice('error', data?.message || 'The history cannot be loaded.'));
        pager.replaceChildren();
        return;
    }
    history.replaceChildren(data.runs.length ? runTable(data.runs, 'history-table') : el('p', { class: 'muted' }, 'No runs.'));
    const last = Math.min(offset + data.runs.length, data.total);
    const previous = el('button', { type: 'button', disabled: offset === 0 }, '← Newer');
    const next = el('button', { type: 'button', disabled: last >= data.total }, 'Older →');
    previous.addEventListener('click', () => { offset = Math.max(0, offset - PAGE_SIZE); update(); });
    next.addEventListener('click', () => { offset += PAGE_SIZE; update(); });
    pager.replaceChildren(previous,
        el('span', { class: 'muted', id: 'history-range' }, data.total ? `${offset + 1}–${last} of ${data.total}` : ''), next);
}

function update() {
    const query = new URLSearchParams();
    if (taskFilter.value.trim())
        query.set('task', taskFilter.value.trim());
    if (statusFilter.value)
        query.set('status', statusFilter.value);
    if (offset)
        query.set('offset', offset);
    window.history.replaceState(null, '', query.size ? `?${query}` : location.pathname);
    loadHistory();
}

main.querySelector('#history-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    offset = 0;
    update();
});
statusFilter.addEventListener('change', () => { offset = 0; update(); });

loadActive();
loadHistory();
// Active runs change by the second; the history only when one ends.
let activeCount = -1;
setInterval(async () => {
    if (document.hidden)
        return;
    await loadActive();
    const count = active.querySelectorAll('tbody tr').length;
    if (count !== activeCount) {
        if (activeCount !== -1)
            loadHistory();
        activeCount = count;
    }
}, 2000);
