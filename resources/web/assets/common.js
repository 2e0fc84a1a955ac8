// SPDX-License-Identifier: MIT
// What every admin page shares: the API client, a small DOM builder, formats, the top bar.

/** Icons shipped in /admin/assets/icons; any other name shows the generic one. */
const ICONS = new Set(['task', 'terminal', 'fingerprint', 'database', 'trash', 'pie-chart', 'globe',
    'hand-wave', 'hard-drive', 'list-ordered', 'cpu', 'timer', 'file-text', 'refresh', 'pencil']);

export const ACTIVE_STATUSES = ['queued', 'running', 'retrying'];

/** The value of a cookie readable by scripts (the CSRF token). */
export function cookie(name) {
    for (const part of document.cookie.split(';')) {
        const [k, ...v] = part.trim().split('=');
        if (k === name)
            return decodeURIComponent(v.join('='));
    }
    return '';
}

/**
 * Calls the JSON API. Resolves to {ok, status, data}; never rejects for HTTP errors
 * (a network failure gives status 0 and data.message).
 */
export async function api(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
        headers['X-CSRF-Token'] = cookie('taskdeck_csrf');
        if (body !== undefined)
            headers['Content-Type'] = 'application/json';
    }
    try {
        const response = await fetch(path, {
            method, headers, credentials: 'same-origin',
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        let data = null;
        const text = await response.text();
        try {
            data = text ? JSON.parse(text) : null;
        } catch {
            data = { message: text };
        }
        if (response.status === 401)
            showLoggedOut();
        return { ok: response.ok, status: response.status, data };
    } catch (e) {
        return { ok: false, status: 0, data: { message: `the server cannot be reached (${e.message})` } };
    }
}

/** el('a', {href: '/x', class: 'c'}, 'text', child...): text children are never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null || value === false)
            continue;
        if (name === 'class')
            node.className = value;
        else if (name === 'text')
            node.textContent = value;
        else if (name.startsWith('on') && typeof value === 'function')
            node.addEventListener(name.slice(2), value);
        else if (value === true)
            node.setAttribute(name, '');
        else
            node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
        if (child === undefined || child === null || child === false)
            continue;
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
}

export function iconFor(name, size = 24) {
    const file = ICONS.has(name) ? name : 'task';
    return el('img', { src: `/admin/assets/icons/${file}.svg`, alt: '', width: size, height: size });
}

export function statusBadge(status) {
    return el('span', { class: `status status-${status}`, 'data-status': status }, status);
}

export function formatTime(iso) {
    if (!iso)
        return '—';
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatDuration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms))
        return '—';
    if (ms < 1000)
        return `${Math.round(ms)} ms`;
    const s = Math.round(ms / 1000);
    if (s < 60)
        return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60)
        return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The top bar with the navigation; \a current is 'tasks' or 'runs'. */
export function topBar(current) {
    const link = (href, label, name) =>
        el('a', { href, 'aria-current': current === name ? 'page' : undefined }, label);
    return el('header', { class: 'topbar' },
        el('a', { class: 'brand', href: '/admin/task' },
            el('img', { src: '/admin/assets/icons/taskdeck.svg', alt: '', width: 22, height: 22 }), 'Taskdeck'),
        el('nav', { 'aria-label': 'Main' }, link('/admin/task', 'Tasks', 'tasks'), link('/admin/run', 'Runs', 'runs')));
}

/** Sets up the page: title, top bar and an empty <main>; returns the <main>. */
export function page(title, current) {
    document.title = `${title} – Taskdeck`;
    const main = el('main', { id: 'main' });
    document.body.replaceChildren(topBar(current), main);
    return main;
}

export function notice(kind, message, items = []) {
    return el('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
        message, items.length ? el('ul', {}, items.map((item) => el('li', {}, item))) : null);
}

function showLoggedOut() {
    if (document.querySelector('#logged-out'))
        return;
    const main = document.querySelector('main') || document.body;
    main.prepend(el('div', { id: 'logged-out', class: 'notice error', role: 'alert' },
        'Your session has ended. Log in again with the link printed by taskdeck serve.'));
}

/** The last segment of the page's path, decoded (a task key or a run id). */
export function lastPathSegment() {
    const parts = location.pathname.split('/').filter(Boolean);
    return decodeURIComponent(parts[parts.length - 1] || '');
}
