// SPDX-License-Identifier: MIT
// The task browser: every task by category, filtered as you type.
import { api, el, iconFor, notice, page } from './common.js';

const main = page('Tasks', 'tasks');
const params = new URLSearchParams(location.search);

const search = el('input', { type: 'search', id: 'task-search', placeholder: 'key, title, description or tag',
    value: params.get('q') || '', autocomplete: 'off' });
const categorySelect = el('select', { id: 'task-category' }, el('option', { value: '' }, 'All categories'));
const tagSelect = el('select', { id: 'task-tag' }, el('option', { value: '' }, 'All tags'));
const count = el('p', { class: 'muted', id: 'task-count', 'aria-live': 'polite' });
const list = el('div', { id: 'task-list' });

main.append(
    el('h1', {}, 'Tasks'),
    el('div', { class: 'filters', role: 'search' },
        el('label', { class: 'grow' }, 'Search', search),
        el('label', {}, 'Category', categorySelect),
        el('label', {}, 'Tag', tagSelect)),
    count, list);

let tasks = [];

function matches(task, words, category, tag) {
    if (category && (task.category || 'other') !== category)
        return false;
    if (tag && !(task.tags || []).includes(tag))
        return false;
    const haystack = [task.key, task.title, task.description, ...(task.tags || [])].join('\n').toLowerCase();
    return words.every((word) => haystack.includes(word));
}

function card(task) {
    const tags = (task.tags || []).map((tag) =>
        el('button', { type: 'button', class: 'badge tag', title: `Show tasks tagged ${tag}`,
            onclick: () => { tagSelect.value = tag; render(); } }, tag));
    const badges = [];
    if (task.danger)
        badges.push(el('span', { class: 'badge danger', title: task.danger }, 'danger'));
    if (task.expensive)
        badges.push(el('span', { class: 'badge expensive' }, 'expensive'));
    return el('article', { class: 'task-card', 'data-key': task.key },
        iconFor(task.icon, 28),
        el('div', { class: 'body' },
            el('a', { class: 'title', href: `/admin/task/${encodeURIComponent(task.key)}` }, task.title || task.key),
            el('div', { class: 'key' }, task.key),
            task.description ? el('p', {}, task.description) : null,
            el('div', { class: 'tags' }, badges, tags)));
}

function render() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = tasks.filter((task) => matches(task, words, categorySelect.value, tagSelect.value));
    const byCategory = new Map();
    for (const task of shown) {
        const category = task.category || 'other';
        if (!byCategory.has(category))
            byCategory.set(category, []);
        byCategory.get(category).push(task);
    }
    const sections = [...byCategory.keys()].sort().map((category) =>
        el('section', { class: 'category', 'aria-label': category },
            el('h2', {}, category),
            el('div', { class: 'task-grid' }, byCategory.get(category).map(card))));
    list.replaceChildren(...sections);
    count.textContent = shown.length === tasks.length
        ? `${tasks.length} tasks` : `${shown.length} of ${tasks.length} tasks`;
    if (!shown.length && tasks.length)
        list.append(el('p', { class: 'muted' }, 'No task matches.'));
    const query = new URLSearchParams();
    if (search.value)
        query.set('q', search.value);
    history.replaceState(null, '', query.size ? `?${query}` : location.pathname);
}

async function load() {
    const { ok, data } = await api('/admin/task');
    if (!ok) {
        list.replaceChildren(notice('error', `The tasks cannot be loaded: ${data?.message || 'unknown error'}`));
        return;
    }
    tasks = data.tasks || [];
    const categories = [...new Set(tasks.map((t) => t.category || 'other'))].sort();
    const tags = [...new Set(tasks.flatMap((t) => t.tags || []))].sort();
    categorySelect.append(...categories.map((c) => el('option', { value: c }, c)));
    tagSelect.append(...tags.map((t) => el('option', { value: t }, t)));
    render();
}

search.addEventListener('input', render);
categorySelect.addEventListener('change', render);
tagSelect.addEventListener('change', render);
load();
