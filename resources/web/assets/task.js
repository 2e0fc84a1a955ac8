// SPDX-License-Identifier: MIT
// The task page: a form made from the task's fields, checked here and again by the server,
// with Run (wait for the result) and Start (go to the run page).
import { api, cookie, el, iconFor, lastPathSegment, notice, page } from './common.js';

const key = lastPathSegment();
const main = page(key, 'tasks');
const params = new URLSearchParams(location.search);

const controls = new Map(); // field key -> {field, input, error, read()}
let task = null;

function fieldId(field) {
    return `f-${field.key}`;
}

function choiceList(field) {
    return (field.choices || []).map((c) => ({ value: String(c.value), label: c.label || String(c.value) }));
}

function toLocalInput(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime()))
        return '';
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The control of one field, its label, help and error slot. */
function fieldControl(field, initial) {
    const id = fieldId(field);
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    const describedBy = field.description ? `${helpId} ${errorId}` : errorId;
    const common = { id, name: field.key, 'aria-describedby': describedBy, 'aria-invalid': 'false',
        required: field.required && field.type !== 'bool' && field.type !== 'multiselect' };
    let input;
    let read;
    let fieldset = false;
    const value = initial === undefined ? field.default : initial;
    switch (field.type) {
    case 'textarea':
        input = el('textarea', { ...common, placeholder: field.placeholder,
            minlength: field.min, maxlength: field.max });
        input.value = value ?? '';
        read = () => input.value;
        break;
    case 'integer':
    case 'number':
        input = el('input', { ...common, type: 'number', inputmode: field.type === 'integer' ? 'numeric' : 'decimal',
            step: field.type === 'integer' ? 1 : 'any', min: field.min, max: field.max, placeholder: field.placeholder });
        input.value = value ?? '';
        read = () => input.value.trim();
        break;
    case 'bool':
        input = el('input', { ...common, type: 'checkbox' });
        input.checked = value === true || value === 'true';
        read = () => input.checked;
        break;
    case 'select': {
        input = el('select', common);
        if (!field.required || value === undefined)
            input.append(el('option', { value: '' }, field.required ? 'Choose…' : '—'));
        for (const c of choiceList(field))
            input.append(el('option', { value: c.value }, c.label));
        input.value = value === undefined || value === null ? '' : String(value);
        read = () => input.value;
        break;
    }
    case 'multiselect': {
        fieldset = true;
        const chosen = new Set((Array.isArray(value) ? value : []).map(String));
        const boxes = choiceList(field).map((c) => el('input', { type: 'checkbox', name: field.key, value: c.value,
            checked: chosen.has(c.value) }));
        input = el('fieldset', { id, 'aria-describedby': describedBy, 'aria-invalid': 'false' },
            el('legend', {}, field.title || field.key, field.required ? el('span', { class: 'required-mark' }, ' *') : null),
            boxes.map((box, i) => el('label', {}, box, choiceList(field)[i].label)));
        read = () => boxes.filter((b) => b.checked).map((b) => b.value);
        break;
    }
    case 'secret':
        input = el('input', { ...common, type: 'password', autocomplete: 'new-password',
            placeholder: field.hasDefault ? '(has a default)' : field.placeholder,
            minlength: field.min, maxlength: field.max });
        read = () => input.value;
        break;
    case 'datetime':
        input = el('input', { ...common, type: 'datetime-local', step: 1 });
        input.value = value ? toLocalInput(value) : '';
        read = () => {
            if (!input.value)
                return '';
            const date = new Date(input.value);
            return Number.isNaN(date.getTime()) ? input.value : date.toISOString();
        };
        break;
    case 'file':
        // Uploaded when the form is sent; the task is given the stored copy's path.
        input = el('input', { ...common, type: 'file' });
        read = () => input.files[0] || '';
        break;
    default: // text
        input = el('input', { ...common, type: 'text', placeholder: field.placeholder,
            minlength: field.min, maxlength: field.max, pattern: field.pattern, autocomplete: 'off' });
        input.value = value ?? '';
        read = () => input.value;
    }
    const error = el('p', { class: 'error', id: errorId, 'aria-live': 'polite' });
    const help = field.description ? el('p', { class: 'help', id: helpId }, field.description) : null;
    const label = field.title || field.key;
    let wrapper;
    if (fieldset)
        wrapper = el('div', { class: 'field', 'data-field': field.key }, input, help, error);
    else if (field.type === 'bool')
        wrapper = el('div', { class: 'field', 'data-field': field.key },
            el('label', { class: 'check', for: id }, input, label), help, error);
    else
        wrapper = el('div', { class: 'field', 'data-field': field.key },
            el('label', { for: id }, label, field.required ? el('span', { class: 'required-mark', 'aria-hidden': 'true' }, ' *') : null),
            input, help, error);
    controls.set(field.key, { field, input, error, read });
    return wrapper;
}

/** The browser's own check of one value; the server checks again. Returns a message or ''. */
function check(field, raw) {
    const empty = raw === '' || raw === undefined || raw === null || (Array.isArray(raw) && raw.length === 0);
    const hasDefault = field.default !== undefined || field.hasDefault;
    if (empty)
        return field.required && !hasDefault && field.type !== 'bool' ? 'Required.' : '';
    switch (field.type) {
    case 'integer':
    case 'number': {
        const n = Number(raw);
        if (!Number.isFinite(n))
            return 'Enter a number.';
        if (field.type === 'integer' && !Number.isInteger(n))
            return 'Enter a whole number.';
        if (field.min !== undefined && n < field.min)
            return `Must be at least ${field.min}.`;
        if (field.max !== undefined && n > field.max)
            return `Must be at most ${field.max}.`;
        return '';
    }
    case 'text':
    case 'textarea':
    case 'secret': {
        const length = [...raw].length;
        if (field.min !== undefined && length < field.min)
            return `Must be at least ${field.min} characters long.`;
        if (field.max !== undefined && length > field.max)
            return `Must be at most ${field.max} characters long.`;
        if (field.pattern) {
            try {
                if (!new RegExp(`^(?:${field.pattern})$`, 'u').test(raw))
                    return `Must match the pattern ${field.pattern}.`;
            } catch {
                // A pattern this browser cannot read is left to the server.
            }
        }
        return '';
    }
    case 'datetime':
        return Number.isNaN(new Date(raw).getTime()) ? 'Enter a date and time.' : '';
    case 'file':
        return raw instanceof File ? '' : 'Choose a file.';
    default:
        return '';
    }
}

function setError(keyName, message) {
    const control = controls.get(keyName);
    if (!control)
        return false;
    control.error.textContent = message;
    control.input.setAttribute('aria-invalid', message ? 'true' : 'false');
    return true;
}

function clearErrors() {
    for (const keyName of controls.keys())
        setError(keyName, '');
    document.querySelector('#form-errors')?.remove();
}

function showErrors(form, message, fieldErrors) {
    const unplaced = [];
    const seen = new Map();
    for (const { field, message: text } of fieldErrors) {
        const joined = seen.has(field) ? `${seen.get(field)} ${text}` : text;
        seen.set(field, joined);
        if (!setError(field, joined))
            unplaced.push(`${field}: ${text}`);
    }
    const box = notice('error', message, unplaced);
    box.id = 'form-errors';
    form.prepend(box);
    const first = [...controls.values()].find((c) => c.input.getAttribute('aria-invalid') === 'true');
    (first?.input.matches('fieldset') ? first.input.querySelector('input') : first?.input)?.focus();
}

function collect() {
    const args = {};
    const errors = [];
    for (const [keyName, { field, read }] of controls) {
        let value = read();
        const problem = check(field, value);
        if (problem)
            errors.push({ field: keyName, message: problem });
        if (value === '' || (Array.isArray(value) && !value.length && !field.required))
            continue;
        if ((field.type === 'integer' || field.type === 'number') && value !== '')
            value = Number(value);
        args[keyName] = value;
    }
    return { args, errors };
}

async function submit(form, mode, buttons) {
    clearErrors();
    const { args, errors } = collect();
    const confirmInput = form.querySelector('#confirm-key');
    if (task.danger && confirmInput && confirmInput.value !== task.key)
        errors.push({ field: 'confirm', message: `Type ${task.key} to confirm.` });
    if (errors.length) {
        showErrors(form, 'Some values need fixing:', errors);
        return;
    }
    if (task.expensive && !window.confirm(`${task.title || task.key} is marked expensive. Run it?`))
        return;
    if (task.danger)
        args.confirm = confirmInput.value;
    const status = form.querySelector('#submit-status');
    buttons.forEach((b) => { b.disabled = true; });
    // Files first: each becomes the path of its stored copy.
    for (const [name, value] of Object.entries(args)) {
        if (!(value instanceof File))
            continue;
        status.textContent = `Uploading ${value.name}…`;
        const uploaded = await upload(value);
        if (!uploaded.ok) {
            buttons.forEach((b) => { b.disabled = false; });
            status.textContent = '';
            const reason = uploaded.status === 413 ? 'The file is too large.' : (uploaded.data?.message || `HTTP ${uploaded.status}`);
            showErrors(form, 'The file could not be uploaded:', [{ field: name, message: reason }]);
            return;
        }
        args[name] = uploaded.data.path;
    }
    status.textContent = mode === 'run' ? 'Running… the result appears when the run ends.' : 'Starting…';
    const { ok, status: http, data } = await api(`/admin/task/${encodeURIComponent(task.key)}/${mode}`,
        { method: 'POST', body: args });
    buttons.forEach((b) => { b.disabled = false; });
    status.textContent = '';
    if (!ok) {
        const message = http === 400 && data?.fields?.length
            ? 'The server did not accept these values:'
            : `The run could not be started: ${data?.message || `HTTP ${http}`}`;
        showErrors(form, message, data?.fields || []);
        return;
    }
    location.assign(`/admin/run/${encodeURIComponent(data.id)}`);
}

async function upload(file) {
    try {
        const response = await fetch(`/admin/upload?name=${encodeURIComponent(file.name)}`, {
            method: 'POST', credentials: 'same-origin', body: file,
            headers: { Accept: 'application/json', 'Content-Type': 'application/octet-stream',
                'X-CSRF-Token': cookie('taskdeck_csrf') },
        });
        let data = null;
        try {
            data = await response.json();
        } catch {
            data = null;
        }
        return { ok: response.ok, status: response.status, data };
    } catch (e) {
        return { ok: false, status: 0, data: { message: e.message } };
    }
}

function render(initialArgs, rerunOf) {
    document.title = `${task.title || task.key} – Taskdeck`;
    const form = el('form', { id: 'task-form', class: 'panel', novalidate: true, 'aria-label': 'Arguments' });
    if (rerunOf)
        form.append(notice('warn', 'Values of the earlier run are filled in; secret values are not kept and must be entered again.'));
    for (const field of task.fields || [])
        form.append(fieldControl(field, initialArgs[field.key]));
    if (!(task.fields || []).length)
        form.append(el('p', { class: 'muted' }, 'This task takes no arguments.'));
    if (task.danger) {
        const confirm = el('input', { type: 'text', id: 'confirm-key', autocomplete: 'off', spellcheck: 'false',
            'aria-describedby': 'f-confirm-error', 'aria-invalid': 'false' });
        form.append(el('div', { class: 'field', 'data-field': 'confirm' },
            el('label', { for: 'confirm-key' }, `Type ${task.key} to confirm`), confirm,
            el('p', { class: 'error', id: 'f-confirm-error', 'aria-live': 'polite' })));
        controls.set('confirm', { field: { key: 'confirm', type: 'confirm' }, input: confirm,
            error: form.querySelector('#f-confirm-error'), read: () => undefined });
    }
    const run = el('button', { type: 'submit', class: task.danger ? 'danger' : 'primary', id: 'run-button', value: 'run' }, 'Run');
    const start = el('button', { type: 'submit', id: 'start-button', value: 'start' }, 'Start');
    form.append(el('div', { class: 'actions' }, start, run,
        el('span', { class: 'muted', id: 'submit-status', 'aria-live': 'polite' })));
    form.addEventListener('submit', (event) => {
        event.preventDefault();
        const mode = event.submitter?.value === 'run' ? 'run' : 'start';
        submit(form, mode, [run, start]);
    });

    const badges = [];
    if (task.danger)
        badges.push(el('span', { class: 'badge danger' }, 'danger'));
    if (task.expensive)
        badges.push(el('span', { class: 'badge expensive' }, 'expensive'));
    main.replaceChildren(...[
        el('p', {}, el('a', { href: '/admin/task' }, '← All tasks')),
        el('div', { class: 'task-head' }, iconFor(task.icon, 36),
            el('div', {}, el('h1', {}, task.title || task.key),
                el('div', { class: 'muted mono' }, task.key, ' ', badges))),
        task.description ? el('p', {}, task.description) : null,
        task.danger ? notice('error', task.danger) : null,
        form,
        el('p', {}, el('a', { href: `/admin/run?task=${encodeURIComponent(task.key)}` }, 'Runs of this task')),
    ].filter(Boolean));
}

async function load() {
    const { ok, data } = await api(`/admin/task/${encodeURIComponent(key)}`);
    if (!ok) {
        main.replaceChildren(el('p', {}, el('a', { href: '/admin/task' }, '← All tasks')),
            notice('error', data?.message || 'This task cannot be loaded.'));
        return;
    }
    task = data;
    let initial = {};
    const rerunOf = params.get('rerun');
    if (rerunOf) {
        const previous = await api(`/admin/run/${encodeURIComponent(rerunOf)}`);
        if (previous.ok && previous.data.task === task.key) {
            initial = { ...previous.data.args };
            for (const field of task.fields || []) {
                if (field.type === 'secret')
                    delete initial[field.key];
            }
        }
    }
    render(initial, rerunOf);
}

load();
