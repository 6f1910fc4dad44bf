// outreach collision insight page. The server renders the report, chart
// included, as HTML; this script only fetches it with the key and puts it in
// place. The key is kept in this tab's sessionStorage and sent only in the
// Authorization header: never in a URL, a cookie or the page.
(() => {
  'use strict';

  const STORE = 'outreach.insights.key';
  const $ = (sel, root = document) => root.querySelector(sel);
  const authOn = document.body.dataset.auth === 'on';
  const panel = $('#insights');
  const notice = $('#notice');
  const auth = $('#auth');
  const authMessage = $('#auth-message');
  const keyForm = $('#key-form');
  const keyInput = $('#key-input');
  const keyChange = $('#key-change');
  const rangeForm = $('form.range-form');
  const ASK = 'This page needs a key with the marketing role. It is kept in this browser tab only and sent with each request, never in a link.';

  const getKey = () => {
    try { return sessionStorage.getItem(STORE) || ''; } catch { return ''; }
  };
  const setKey = (key) => {
    try {
      if (key) sessionStorage.setItem(STORE, key); else sessionStorage.removeItem(STORE);
    } catch { /* storage disabled: the key lives only until the next page */ }
    keyChange.hidden = !authOn || !key;
  };

  // showNotice shows an error banner; its text is set as text, never as HTML.
  function showNotice(title, message) {
    const box = document.createElement('div');
    box.className = 'alert alert-outage';
    const body = document.createElement('div');
    body.className = 'alert-body';
    const t = document.createElement('p');
    t.className = 'alert-title';
    t.textContent = title;
    const m = document.createElement('p');
    m.textContent = message;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn';
    b.dataset.action = 'retry';
    b.textContent = 'Try again';
    const p = document.createElement('p');
    p.append(b);
    body.append(t, m, p);
    box.append(body);
    notice.replaceChildren(box);
  }

  function askForKey(message, isError) {
    authMessage.textContent = message;
    authMessage.classList.toggle('is-error', Boolean(isError));
    auth.hidden = false;
    panel.replaceChildren();
    panel.setAttribute('aria-busy', 'false');
    keyInput.focus();
  }

  // load fetches the report of the selected period and puts it in place.
  async function load() {
    panel.setAttribute('aria-busy', 'true');
    const headers = new Headers({ Accept: 'text/html' });
    const key = getKey();
    if (key) headers.set('Authorization', 'Bearer ' + key);
    let resp;
    try {
      resp = await fetch('/insights/panel?range=' + encodeURIComponent(panel.dataset.range),
        { headers, credentials: 'same-origin', cache: 'no-store' });
    } catch {
      panel.setAttribute('aria-busy', 'false');
      panel.classList.add('is-stale');
      showNotice('The outreach service cannot be reached', 'Check your connection, then try again. Anything shown below may be out of date.');
      return;
    }
    panel.setAttribute('aria-busy', 'false');
    const type = resp.headers.get('Content-Type') || '';
    if (resp.status === 401 || resp.status === 403) {
      setKey('');
      let why = '';
      try { why = (await resp.json()).error.message || ''; } catch { /* not JSON */ }
      askForKey(resp.status === 401
        ? (key ? 'That key was not accepted: it is unknown, mistyped or no longer valid. Enter another key.' : ASK)
        : 'That key may not open the insights (' + (why || 'wrong role') + '). Enter a key with the marketing role.', Boolean(key));
      return;
    }
    if (!type.startsWith('text/html')) {
      showNotice('The request failed', 'The service answered with status ' + resp.status + '.');
      return;
    }
    notice.replaceChildren();
    panel.classList.remove('is-stale');
    panel.innerHTML = await resp.text(); // rendered and escaped by html/template
    panel.dataset.state = resp.ok ? 'loaded' : 'error';
  }

  document.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    if (button.dataset.action === 'refresh' || button.dataset.action === 'retry') {
      notice.replaceChildren();
      load();
    }
  });

  rangeForm.addEventListener('submit', (e) => {
    e.preventDefault();
    panel.dataset.range = rangeForm.elements.range.value;
    history.replaceState(null, '', '/insights?range=' + encodeURIComponent(panel.dataset.range));
    load();
  });

  keyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    keyInput.value = '';
    setKey(key);
    auth.hidden = true;
    load();
  });

  keyChange.addEventListener('click', () => {
    setKey('');
    askForKey('Enter the key to use in this tab.', false);
  });

  setKey(getKey());
  if (authOn && !getKey()) askForKey(ASK, false); else load();
})();
