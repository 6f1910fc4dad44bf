// outreach agent page. The server renders every piece of customer data as
// HTML; this script only fetches those fragments with the agent's key, puts
// them in place and shows times in the agent's local time zone.
//
// The key is kept in this tab's sessionStorage and sent only in the
// Authorization header: never in a URL, a cookie or the page.
(() => {
  'use strict';

  const STORE = 'outreach.key';
  const $ = (sel, root = document) => root.querySelector(sel);
  const authOn = document.body.dataset.auth === 'on';
  const panel = $('#panel');
  const notice = $('#notice');
  const auth = $('#auth');
  const authMessage = $('#auth-message');
  const keyForm = $('#key-form');
  const keyInput = $('#key-input');
  const keyChange = $('#key-change');
  const search = $('form.search');
  let afterKey = null; // what to do once a key is entered

  const getKey = () => {
    try { return sessionStorage.getItem(STORE) || ''; } catch { return ''; }
  };
  const setKey = (key) => {
    try {
      if (key) sessionStorage.setItem(STORE, key); else sessionStorage.removeItem(STORE);
    } catch { /* storage disabled: the key lives only until the next page */ }
    keyChange.hidden = !authOn || !key;
  };

  // ---- time --------------------------------------------------------------
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  const absFormat = new Intl.DateTimeFormat(undefined, {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const dayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
  const relFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  function relative(date) {
    const s = (date.getTime() - Date.now()) / 1000;
    const a = Math.abs(s);
    if (a < 60) return 'just now';
    if (a < 3600) return relFormat.format(Math.trunc(s / 60), 'minute');
    if (a < 48 * 3600) return relFormat.format(Math.trunc(s / 3600), 'hour');
    if (a < 60 * 86400) return relFormat.format(Math.trunc(s / 86400), 'day');
    if (a < 730 * 86400) return relFormat.format(Math.trunc(s / (30.44 * 86400)), 'month');
    return relFormat.format(Math.trunc(s / (365.25 * 86400)), 'year');
  }

  // localize rewrites the server's UTC times in the agent's time zone.
  function localize(root) {
    for (const t of root.querySelectorAll('time[datetime]')) {
      const date = new Date(t.getAttribute('datetime'));
      if (Number.isNaN(date.getTime())) continue;
      t.title = absFormat.format(date) + ' (' + zone + ')';
      if (t.classList.contains('day')) {
        t.textContent = dayFormat.format(date);
        continue;
      }
      const rel = $('.rel', t);
      const abs = $('.abs', t);
      if (rel) rel.textContent = relative(date);
      if (abs) abs.textContent = absFormat.format(date);
    }
  }
  setInterval(() => {
    for (const rel of document.querySelectorAll('time[datetime] .rel')) {
      const date = new Date(rel.parentElement.getAttribute('datetime'));
      if (!Number.isNaN(date.getTime())) rel.textContent = relative(date);
    }
  }, 60 * 1000);

  // ---- requests ----------------------------------------------------------
  // request fetches an HTML fragment. It resolves to {kind: 'html', ok, html}
  // or to what went wrong: 'unauthorized', 'forbidden', 'network', 'error'.
  async function request(url, init = {}) {
    const headers = new Headers(init.headers || {});
    headers.set('Accept', 'text/html');
    const key = getKey();
    if (key) headers.set('Authorization', 'Bearer ' + key);
    let resp;
    try {
      resp = await fetch(url, { ...init, headers, credentials: 'same-origin', cache: 'no-store' });
    } catch {
      return { kind: 'network' };
    }
    const type = resp.headers.get('Content-Type') || '';
    if (type.startsWith('text/html')) {
      return { kind: 'html', ok: resp.ok, html: await resp.text() };
    }
    let message = '';
    try { message = (await resp.json()).error.message || ''; } catch { /* not JSON */ }
    if (resp.status === 401) return { kind: 'unauthorized', hadKey: key !== '' };
    if (resp.status === 403) return { kind: 'forbidden', message };
    return { kind: 'error', message: message || 'The service answered with status ' + resp.status + '.' };
  }

  // handle deals with a failed request and returns false; retry is what to
  // run again once the agent has acted.
  function handle(result, retry) {
    switch (result.kind) {
      case 'html':
        clearNotice();
        return true;
      case 'unauthorized':
        setKey('');
        askForKey(result.hadKey
          ? 'That key was not accepted: it is unknown, mistyped or no longer valid. Enter another agent key.'
          : 'This service needs an agent key. It is kept in this browser tab only and sent with each request, never in a link.',
        result.hadKey, retry);
        return false;
      case 'forbidden':
        setKey('');
        askForKey('That key may not open customer pages (' + (result.message || 'wrong role') +
          '). Enter a key with the agent role.', true, retry);
        return false;
      case 'network':
        showNotice('The outreach service cannot be reached',
          'Check your connection, then try again. Anything shown below may be out of date.', retry);
        return false;
      default:
        showNotice('The request failed', result.message, retry);
        return false;
    }
  }

  // showNotice shows an error banner; its text is set as text, never as HTML.
  function showNotice(title, message, retry) {
    notice.replaceChildren();
    const box = document.createElement('div');
    box.className = 'alert alert-outage';
    const body = document.createElement('div');
    body.className = 'alert-body';
    const t = document.createElement('p');
    t.className = 'alert-title';
    t.textContent = title;
    const m = document.createElement('p');
    m.textContent = message;
    body.append(t, m);
    if (retry) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn';
      b.textContent = 'Try again';
      b.addEventListener('click', () => { clearNotice(); retry(); });
      const p = document.createElement('p');
      p.append(b);
      body.append(p);
    }
    box.append(body);
    notice.append(box);
  }
  const clearNotice = () => notice.replaceChildren();

  function askForKey(message, isError, then) {
    afterKey = then || null;
    authMessage.textContent = message;
    authMessage.classList.toggle('is-error', Boolean(isError));
    auth.hidden = false;
    if (panel && panel.dataset.state !== 'loaded') {
      panel.replaceChildren();
      panel.setAttribute('aria-busy', 'false');
    }
    keyInput.focus();
  }

  // ---- the panel ---------------------------------------------------------
  function panelURL(before) {
    if (panel.dataset.src) return panel.dataset.src; // the follow-ups page
    let url = '/customers/' + encodeURIComponent(panel.dataset.customer) + '/panel';
    if (before) url += '?before=' + encodeURIComponent(before);
    return url;
  }

  async function loadPanel() {
    panel.setAttribute('aria-busy', 'true');
    const result = await request(panelURL());
    panel.setAttribute('aria-busy', 'false');
    if (!handle(result, loadPanel)) {
      // Whatever the panel still shows may be out of date: grey it out.
      if (result.kind === 'network' || result.kind === 'error') panel.classList.add('is-stale');
      return;
    }
    panel.classList.remove('is-stale');
    panel.innerHTML = result.html; // rendered and escaped by html/template
    panel.dataset.state = result.ok ? 'loaded' : 'error';
    localize(panel);
  }

  async function loadMore(button) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = 'Loading…';
    const result = await request(panelURL(button.dataset.before));
    button.disabled = false;
    button.textContent = label;
    if (!handle(result, () => loadMore(button))) return;
    const fragment = document.createElement('template');
    fragment.innerHTML = result.html;
    const wrap = button.closest('.more');
    if (!result.ok) { // an alert: show it where the button was
      wrap.replaceWith(fragment.content);
      return;
    }
    const list = $('.timeline', button.closest('.tl-page'));
    const items = [...fragment.content.querySelectorAll('.timeline > li')];
    list.append(...items);
    localize(list);
    const more = $('.more', fragment.content);
    if (more) wrap.replaceWith(more); else wrap.remove();
    if (items.length) items[0].focus();
  }

  async function check(form) {
    const area = $('.verdict-area', form.parentElement);
    const button = $('button[type=submit]', form);
    button.disabled = true;
    area.setAttribute('aria-busy', 'true');
    const body = new URLSearchParams(new FormData(form));
    const result = await request(form.action, { method: 'POST', body });
    button.disabled = false;
    area.setAttribute('aria-busy', 'false');
    if (!handle(result, () => check(form))) return;
    area.innerHTML = result.html; // rendered and escaped by html/template
    localize(area);
    area.scrollIntoView({ block: 'nearest' });
  }

  // ---- events ------------------------------------------------------------
  document.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    switch (button.dataset.action) {
      case 'refresh': loadPanel(); break;
      case 'more': loadMore(button); break;
      case 'retry': {
        const form = button.closest('.check-section') && $('form.check-form', button.closest('.check-section'));
        if (form) check(form); else loadPanel();
        break;
      }
    }
  });

  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (form.matches('form.check-form')) {
      e.preventDefault();
      check(form);
    }
  });

  search.addEventListener('submit', (e) => {
    const id = search.elements.customer.value.trim();
    if (!id) return;
    e.preventDefault();
    window.location.assign('/customers/' + encodeURIComponent(id));
  });

  keyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    keyInput.value = '';
    setKey(key);
    auth.hidden = true;
    const then = afterKey || (panel ? loadPanel : null);
    afterKey = null;
    if (then) then();
  });

  keyChange.addEventListener('click', () => {
    setKey('');
    askForKey('Enter the agent key to use in this tab.', false, panel ? loadPanel : null);
  });

  // ---- start -------------------------------------------------------------
  setKey(getKey());
  if (authOn && !getKey()) {
    askForKey('This service needs an agent key. It is kept in this browser tab only and sent with each request, never in a link.', false,
      panel ? loadPanel : null);
  } else if (panel) {
    loadPanel();
  }
})();
