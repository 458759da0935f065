// whistle dashboard: signs in with a bearer token kept in sessionStorage and
// talks to whistled's HTTP API. No library, nothing fetched from elsewhere.
'use strict';
(function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const TOKEN_KEY = 'whistle.token';
  const LANG_KEY = 'whistle.lang';
  const SEEN_KEY = 'whistle.cases';
  const I18N = window.WHISTLE_I18N;
  const VIEWS = {
    street: ['raise', 'cases', 'callbacks', 'figures', 'timeline'],
    department: ['queue', 'timeline'],
    unit: ['queue', 'timeline'],
    auditor: ['figures', 'overdue', 'cases', 'timeline']
  };
  const STATUSES = ['routed', 'in_progress', 'resolved', 'closed', 'unassigned'];
  const RATINGS = ['satisfied', 'basically_satisfied', 'unsatisfied'];

  let lang = chooseLanguage();
  let token = null;
  let me = null;
  let dir = null;
  let names = new Map();
  // A street and one of its communities may share an id (镇海街道 and
  // 镇海社区 are both "zhenhai"): communities have a map of their own.
  let communityNames = new Map();
  let stopStreams = [];
  const state = {
    view: null,
    cases: new Map(), // case_id → case (street and auditor lists)
    listNext: null,
    listError: null,
    queue: new Map(), // case_id → queue item
    queueSynced: false,
    conn: 'connecting',
    stats: null,
    statsError: null,
    overdue: null,
    timeline: null,
    callbacks: null, // the street's callbacks due (GET /v1/callbacks)
    phones: new Map(), // case_id → phone revealed in this session (the reveal is recorded)
    receipts: new Map() // case_id → receipt issued in this session, with its link
  };

  // ---- small helpers ----

  function t(key, ...args) {
    let s = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
    args.forEach((a, i) => { s = s.split('{' + i + '}').join(String(a)); });
    return s;
  }

  // h builds an element: attrs may hold text, class, on<event>, dataset
  // entries (data-*), aria-* and plain attributes; children are nodes or text.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' && 'value' in el) el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
  }

  function nameOf(id) { return names.get(id) || communityNames.get(id) || id || ''; }
  function communityName(id) { return communityNames.get(id) || id || ''; }

  function pct(v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(1) + '%'; }

  // fmtSpan renders a duration in seconds (a figure, such as the median
  // time to close) at the precision it is read at: seconds, minutes, hours
  // and minutes, or days and hours.
  function fmtSpan(sec) {
    if (sec === null || sec === undefined) return '—';
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return t('dur_s', sec);
    if (sec < 3600) return t('dur_m', Math.floor(sec / 60));
    if (sec < 86400) return t('dur_h', Math.floor(sec / 3600), Math.floor((sec % 3600) / 60));
    return t('dur_d', Math.floor(sec / 86400), Math.floor((sec % 86400) / 3600));
  }

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'short', timeStyle: 'medium' });
  }

  function fmtDur(ms) {
    let sec = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(sec / 86400); sec -= d * 86400;
    const hh = Math.floor(sec / 3600); sec -= hh * 3600;
    const mm = Math.floor(sec / 60); sec -= mm * 60;
    const two = (n) => String(n).padStart(2, '0');
    return (d ? t('days', d) : '') + (d || hh ? hh + ':' + two(mm) : mm) + ':' + two(sec);
  }

  function randomKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function setStatus(msg, kind) {
    const el = document.getElementById('status');
    el.textContent = msg || '';
    el.className = 'status' + (kind ? ' ' + kind : '');
  }

  function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

  // ---- language ----

  function chooseLanguage() {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved && I18N[saved]) return saved;
    const server = document.documentElement.dataset.serverLang;
    if (server && I18N[server]) return server;
    for (const l of navigator.languages || []) {
      const p = l.toLowerCase().split('-')[0];
      if (I18N[p]) return p;
    }
    return 'zh';
  }

  function applyLanguage() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('brand') + ' · whistle';
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    const sw = document.getElementById('lang-switch');
    sw.textContent = t('langSwitch');
    sw.lang = lang === 'zh' ? 'en' : 'zh-CN';
    sw.setAttribute('aria-label', t('langSwitchLabel'));
  }

  // ---- API ----

  class APIError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || ('HTTP ' + status));
      this.status = status;
      this.code = e.code;
      this.field = e.field;
    }
  }

  async function api(method, path, body, headers) {
    const hs = Object.assign({ Authorization: 'Bearer ' + token, Accept: 'application/json' }, headers || {});
    const init = { method, headers: hs, cache: 'no-store' };
    if (body !== undefined) {
      hs['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }

  // openStream reads a text/event-stream with fetch, so that the token goes
  // in the Authorization header (EventSource cannot set headers), and
  // reconnects with Last-Event-ID. It returns a function that stops it.
  function openStream(path, onEvent, onState) {
    const ctl = new AbortController();
    let stopped = false;
    let lastId = null;
    let delay = 1000;
    (async () => {
      while (!stopped) {
        onState('connecting');
        try {
          const hs = { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' };
          if (lastId) hs['Last-Event-ID'] = lastId;
          const res = await fetch(path, { headers: hs, signal: ctl.signal, cache: 'no-store' });
          if (!res.ok) {
            let body = null;
            try { body = await res.json(); } catch (_) { body = null; }
            throw new APIError(res.status, body);
          }
          onState('live');
          delay = 1000;
          const reader = res.body.getReader();
          const dec = new TextDecoder();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const ev = parseEvent(buf.slice(0, i));
              buf = buf.slice(i + 2);
              if (!ev) continue;
              if (ev.id) lastId = ev.id;
              try { onEvent(ev); } catch (err) { console.error('event', ev.event, err); }
            }
          }
        } catch (err) {
          if (stopped || err.name === 'AbortError') return;
          if (err.status === 401 || err.status === 403 || err.status === 404) {
            onState('denied');
            return;
          }
        }
        if (stopped) return;
        onState('offline');
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      }
    })();
    return () => { stopped = true; ctl.abort(); };
  }

  function parseEvent(block) {
    const ev = { event: 'message', id: '', data: [] };
    let any = false;
    for (const line of block.split('\n')) {
      if (!line || line[0] === ':') continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'event') ev.event = value;
      else if (field === 'id') ev.id = value;
      else if (field === 'data') ev.data.push(value);
      else continue;
      any = true;
    }
    if (!any) return null;
    ev.data = ev.data.join('\n');
    return ev;
  }

  // ---- sign-in ----

  async function signIn(tok) {
    token = tok;
    me = await api('GET', '/v1/me');
    dir = await api('GET', '/v1/directory');
    sessionStorage.setItem(TOKEN_KEY, tok);
    names = new Map();
    communityNames = new Map();
    for (const st of dir.streets || []) {
      names.set(st.id, st.name);
      for (const c of st.communities || []) communityNames.set(c.id, c.name);
    }
    for (const o of (dir.departments || []).concat(dir.units || [])) names.set(o.id, o.name);
    for (const c of dir.categories || []) names.set(c.id, c.name);
    document.getElementById('view-signin').hidden = true;
    document.getElementById('sign-out').hidden = false;
    startRole();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(SEEN_KEY);
    for (const stop of stopStreams) stop();
    stopStreams = [];
    token = me = dir = null;
    state.cases.clear();
    state.queue.clear();
    Object.assign(state, { queueSynced: false, stats: null, statsAt: 0, statsError: null, statsAgain: false, catStreet: '', overdue: null, timeline: null, listError: null, listNext: null, callbacks: null });
    state.phones.clear();
    state.receipts.clear();
    history.replaceState(null, '', location.pathname);
    document.getElementById('nav').hidden = true;
    document.getElementById('views').replaceChildren();
    document.getElementById('who').textContent = '';
    document.getElementById('sign-out').hidden = true;
    document.getElementById('view-signin').hidden = false;
    setStatus('');
    document.getElementById('signin-token').focus();
  }

  function startRole() {
    const views = VIEWS[me.role] || ['timeline'];
    if (me.role === 'street') {
      loadCases();
      stopStreams.push(openStream('/v1/notifications', onNotification, () => {}));
    } else if (me.role === 'department' || me.role === 'unit') {
      stopStreams.push(openStream('/v1/queues/' + encodeURIComponent(me.id), onQueueEvent, (st) => {
        state.conn = st;
        const el = document.getElementById('queue-conn');
        if (el) { el.textContent = t(st); el.className = 'conn' + (st === 'live' ? ' live' : ''); }
      }));
    } else if (me.role === 'auditor') {
      loadCases();
    }
    if (!views.includes(currentRoute().view)) location.hash = '#' + views[0];
    renderAll();
  }

  function currentRoute() {
    const [view, arg] = location.hash.replace(/^#/, '').split('/');
    return { view, arg: arg ? decodeURIComponent(arg) : '' };
  }

  // ---- rendering ----

  function renderAll() {
    applyLanguage();
    if (!me) return;
    document.getElementById('who').textContent = t('signedInAs', nameOf(me.id), t('role_' + me.role));
    const views = VIEWS[me.role] || ['timeline'];
    let { view, arg } = currentRoute();
    if (!views.includes(view)) view = views[0];
    state.view = view;
    const nav = document.getElementById('nav');
    nav.hidden = false;
    nav.setAttribute('aria-label', t('nav'));
    nav.replaceChildren(...views.map((v) => h('button', {
      type: 'button', id: 'nav-' + v, 'aria-current': v === view ? 'page' : null,
      text: t('v_' + v), onclick: () => { location.hash = '#' + v; }
    })));
    const root = document.getElementById('views');
    const section = h('section', { id: 'view-' + view, class: 'view', 'aria-labelledby': 'h-' + view });
    root.replaceChildren(section);
    ({ raise: renderRaise, cases: renderCases, figures: renderFigures, overdue: renderOverdue,
      queue: renderQueue, timeline: renderTimeline, callbacks: renderCallbacks })[view](section, arg);
    tick();
  }

  function heading(view, text) { return h('h2', { id: 'h-' + view, text: text || t('v_' + view) }); }

  function field(id, label, control, hint) {
    control.id = id;
    return h('div', { class: 'field' }, h('label', { for: id, text: label }), control, hint ? h('p', { class: 'hint', text: hint }) : null);
  }

  function select(options, value) {
    return h('select', {}, options.map(([v, label]) => h('option', { value: v, text: label, selected: v === value })));
  }

  function badge(kind, value) { return h('span', { class: 'badge s-' + value, text: t(kind + '_' + value) }); }

  // ---- street: raise ----

  let raiseKey = null;

  function renderRaise(section) {
    const street = (dir.streets || []).find((x) => x.id === me.id) || { communities: [] };
    const kinds = ['issue', 'dispute', 'need'];
    const cat = h('select', {}, kinds.map((k) => h('optgroup', { label: t('k_' + k) },
      (dir.categories || []).filter((c) => c.kind === k).map((c) => h('option', { value: c.id, text: c.name })))));
    const urgencies = ['routine', 'urgent', 'emergency'].filter((u) => !dir.sla || dir.sla[u]);
    const title = h('input', { type: 'text', required: true, maxlength: 200, autocomplete: 'off' });
    const form = h('form', { class: 'card form', id: 'raise-form', novalidate: true },
      h('div', { class: 'row' },
        field('raise-community', t('community'), select(street.communities.map((c) => [c.id, c.name]))),
        field('raise-category', t('category'), cat)),
      field('raise-urgency', t('urgency'), select(urgencies.map((u) => [u, t('u_' + u)]), 'routine')),
      field('raise-title', t('title'), title),
      field('raise-description', t('description'), h('textarea', { maxlength: 4000 })),
      field('raise-address', t('address'), h('input', { type: 'text', autocomplete: 'street-address' })),
      h('p', { class: 'hint', text: t('raiseHelp') }),
      h('p', { class: 'error', id: 'raise-error', role: 'alert' }),
      h('button', { type: 'submit', class: 'primary', id: 'raise-submit', text: t('raiseSubmit') }));
    form.addEventListener('input', () => { raiseKey = null; });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = (id) => document.getElementById(id).value.trim();
      const err = document.getElementById('raise-error');
      err.textContent = '';
      for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      if (!v('raise-title')) {
        err.textContent = t('required', t('title'));
        title.setAttribute('aria-invalid', 'true');
        title.focus();
        return;
      }
      const body = { street: me.id, community: v('raise-community'), category: v('raise-category'), urgency: v('raise-urgency'), title: v('raise-title') };
      if (v('raise-description')) body.description = v('raise-description');
      if (v('raise-address')) body.location = { address: v('raise-address') };
      // The same key until the case is raised: a retry after a lost answer
      // gives back the first case instead of raising a second one.
      raiseKey = raiseKey || randomKey();
      const btn = document.getElementById('raise-submit');
      btn.disabled = true;
      try {
        const c = await api('POST', '/v1/whistles', body, { 'Idempotency-Key': raiseKey });
        raiseKey = null;
        remember(c.case_id);
        upsertCase(c);
        form.reset();
        const to = (c.assignments || []).map((a) => nameOf(a.assignee)).join('、');
        setStatus(t('raised', body.title, to || '—'), 'ok');
      } catch (e) {
        err.textContent = t('failed', e.message);
        const bad = e.field && document.getElementById('raise-' + e.field.split('.')[0].replace('location', 'address'));
        if (bad) { bad.setAttribute('aria-invalid', 'true'); bad.focus(); }
      } finally {
        btn.disabled = false;
      }
    });
    section.append(heading('raise', t('raiseTitle')), form, h('div', { id: 'recent-wrap' }));
    renderRecent();
  }

  // renderRecent redraws the latest cases under the raise form, leaving the
  // form (and what is being typed into it) alone.
  function renderRecent() {
    const wrap = document.getElementById('recent-wrap');
    if (!wrap) return;
    const recent = [...state.cases.values()].sort(byRaised).slice(0, 3);
    wrap.replaceChildren(...(recent.length ? [h('h3', { text: t('myCases') }), h('ul', { class: 'items', id: 'recent-cases' }, recent.map(caseItem))] : []));
  }

  // Cases this tab raised or heard of, so that they show even when the
  // case list (a read model) lags or is not there.
  function remember(id) {
    const ids = new Set(JSON.parse(sessionStorage.getItem(SEEN_KEY) || '[]'));
    ids.add(id);
    sessionStorage.setItem(SEEN_KEY, JSON.stringify([...ids].slice(-200)));
  }

  function byRaised(a, b) { return String(b.raised_at || '').localeCompare(String(a.raised_at || '')); }

  // ---- street and auditor: cases ----

  function casesQuery(cursor) {
    const q = new URLSearchParams({ limit: '500' });
    if (me.role === 'street') q.set('street', me.id);
    if (state.statusFilter) q.set('status', state.statusFilter);
    if (cursor) q.set('cursor', cursor);
    return '/v1/cases?' + q;
  }

  async function loadCases(more) {
    try {
      const ans = await api('GET', casesQuery(more ? state.listNext : null));
      if (!more) {
        // Keep what this tab has seen that the list does not yet show.
        const keep = new Set(JSON.parse(sessionStorage.getItem(SEEN_KEY) || '[]'));
        for (const id of [...state.cases.keys()]) if (!keep.has(id)) state.cases.delete(id);
      }
      for (const c of ans.cases || []) upsertCase(c, true);
      state.listNext = ans.next || null;
      state.listError = null;
    } catch (e) {
      state.listError = e.status ? 'HTTP ' + e.status : e.message;
    }
    if (me.role === 'street') {
      const ids = JSON.parse(sessionStorage.getItem(SEEN_KEY) || '[]');
      // A summary does not say whether a closed case was rated: read the
      // recently closed ones in full, so that their rating form shows.
      const week = Date.now() - 7 * 86400e3;
      const closed = [...state.cases.values()].filter((c) => c.status === 'closed' && !('rating' in c) && new Date(c.closed_at).getTime() > week).slice(0, 20).map((c) => c.case_id);
      // Nor why a case's leads declined and whom they suggested, which the
      // street needs to route it by hand.
      const unassigned = [...state.cases.values()].filter((c) => c.status === 'unassigned' && !('mediation' in c)).slice(0, 20).map((c) => c.case_id);
      await Promise.all(ids.filter((id) => !state.cases.has(id)).concat(closed, unassigned).map((id) => refreshCase(id, true)));
    }
    if (state.view === 'cases') renderAll();
    else if (state.view === 'raise') renderRecent();
  }

  async function refreshCase(id, quiet) {
    try {
      upsertCase(await api('GET', '/v1/cases/' + encodeURIComponent(id)), quiet);
    } catch (e) {
      if (e.status === 404 || e.status === 403) state.cases.delete(id);
    }
  }

  // upsertCase keeps the newest version of a case and redraws its item.
  function upsertCase(c, quiet) {
    const old = state.cases.get(c.case_id);
    if (old && old.version > c.version) return;
    if (!old || old.version < c.version) caseChanged(c.case_id);
    // A list's summary lacks some of a case's fields (rating, mediation):
    // keep what a full read gave.
    if (old) c = Object.assign({}, old, c, { assignments: c.assignments || old.assignments });
    if (state.statusFilter && c.status !== state.statusFilter && me.role === 'auditor') return;
    const same = old && JSON.stringify(old) === JSON.stringify(c);
    state.cases.set(c.case_id, c);
    if (quiet) return;
    // A callback's row is the callback list's own (loadCallbacks redraws it).
    const el = document.querySelector('li.item:not(.callback)[data-case-id="' + c.case_id + '"]');
    // A read that shows nothing new (the echo of this tab's own command,
    // or a second read of one change) leaves the item alone, and with it
    // a form being filled in there.
    if (el && same) return;
    if (el) {
      el.replaceWith(caseItem(c));
    } else if (state.view === 'raise') {
      renderRecent();
    } else if (state.view === 'cases') {
      if (document.getElementById('cases-results')) redrawCaseResults(); else renderAll();
    }
    tick();
  }

  const pendingRefresh = new Map();
  function onNotification(ev) {
    if (ev.event !== 'change') return;
    const m = JSON.parse(ev.data);
    remember(m.case_id);
    // Coalesce the several events of one command into one read of the case.
    clearTimeout(pendingRefresh.get(m.case_id));
    pendingRefresh.set(m.case_id, setTimeout(() => { pendingRefresh.delete(m.case_id); refreshCase(m.case_id); }, 150));
  }

  // The case list: a search (title, number, place, category), filters,
  // compact rows in pages of CASE_PAGE, and a plot of the cases that have
  // coordinates. Status is asked of the server; the rest filters the cases
  // loaded (the list loads up to 500 at a time, "load more" the next ones).
  const CASE_PAGE = 20;
  const locations = new Map(); // case_id → {lat, lon} or null: from the raise, which never changes

  function caseFilters() { return state.caseFilter || (state.caseFilter = {}); }

  function caseMatches(c, f) {
    if (f.street && c.street !== f.street) return false;
    if (f.community && c.community !== f.community) return false;
    if (f.category && c.category !== f.category) return false;
    if (f.overdue && !(c.assignments || []).some((a) => a.overdue)) return false;
    const raised = new Date(c.raised_at).getTime();
    if (f.from && !(raised >= new Date(f.from + 'T00:00:00').getTime())) return false;
    if (f.to && !(raised < new Date(f.to + 'T00:00:00').getTime() + 86400e3)) return false;
    if (f.q) {
      const hay = [c.title, c.case_id, c.case_no, c.receipt && c.receipt.case_no, nameOf(c.street), communityName(c.community), nameOf(c.category)]
        .filter(Boolean).join(' ').toLowerCase();
      if (!f.q.toLowerCase().split(/\s+/).filter(Boolean).every((w) => hay.includes(w))) return false;
    }
    return true;
  }

  function filteredCases() {
    const f = caseFilters();
    return [...state.cases.values()]
      .filter((c) => !state.statusFilter || c.status === state.statusFilter)
      .filter((c) => caseMatches(c, f)).sort(byRaised);
  }

  function renderCases(section) {
    section.append(heading('cases', me.role === 'street' ? t('myCases') : t('allCases')));
    const f = caseFilters();
    const onFilter = (key, el, prop) => {
      el.addEventListener(el.type === 'search' ? 'input' : 'change', () => {
        f[key] = el[prop || 'value'];
        state.casePage = 0;
        redrawCaseResults();
      });
      return el;
    };
    const status = select([['', t('all')]].concat(STATUSES.map((x) => [x, t('s_' + x)])), state.statusFilter || '');
    status.addEventListener('change', () => { state.statusFilter = status.value; state.casePage = 0; loadCases(); });
    const streets = me.role === 'street' ? (dir.streets || []).filter((x) => x.id === me.id) : (dir.streets || []);
    const communities = streets.filter((x) => !f.street || x.id === f.street).flatMap((x) => x.communities || []);
    const search = onFilter('q', h('input', { type: 'search', value: f.q || '', placeholder: t('searchHint') }));
    const controls = [
      field('cases-q', t('search'), search),
      field('cases-status', t('statusFilter'), status),
      me.role !== 'street' ? field('cases-street', t('street'), onFilter('street', select([['', t('all')]].concat(streets.map((x) => [x.id, x.name])), f.street || ''))) : null,
      field('cases-community', t('community'), onFilter('community', select([['', t('all')]].concat(communities.map((x) => [x.id, x.name])), f.community || ''))),
      field('cases-category', t('category'), onFilter('category', select([['', t('all')]].concat((dir.categories || []).map((x) => [x.id, x.name])), f.category || ''))),
      field('cases-from', t('raisedFrom'), onFilter('from', h('input', { type: 'date', value: f.from || '' }))),
      field('cases-to', t('raisedTo'), onFilter('to', h('input', { type: 'date', value: f.to || '' }))),
      h('label', { class: 'check', for: 'cases-overdue' }, onFilter('overdue', h('input', { type: 'checkbox', id: 'cases-overdue', checked: !!f.overdue }), 'checked'), ' ', t('overdueOnly')),
      h('button', { type: 'button', class: 'secondary', id: 'cases-refresh', text: t('refresh'), onclick: () => loadCases() })
    ];
    // A street chosen narrows the communities offered: draw the form again.
    const streetSel = controls[2] && controls[2].querySelector('select');
    if (streetSel) streetSel.addEventListener('change', () => { f.community = ''; renderAll(); });
    section.append(h('div', { class: 'filters', id: 'cases-filters' }, controls));
    if (state.listError) section.append(h('p', { class: 'hint', text: t('listUnavailable', state.listError) }));
    section.append(h('div', { id: 'cases-results' }));
    redrawCaseResults();
  }

  function redrawCaseResults() {
    const box = document.getElementById('cases-results');
    if (!box) return;
    const list = filteredCases();
    const pages = Math.max(1, Math.ceil(list.length / CASE_PAGE));
    state.casePage = Math.min(state.casePage || 0, pages - 1);
    const page = list.slice(state.casePage * CASE_PAGE, (state.casePage + 1) * CASE_PAGE);
    const go = (d) => { state.casePage += d; redrawCaseResults(); };
    box.replaceChildren(
      h('p', { class: 'hint', id: 'cases-count', text: t('casesShown', list.length, state.cases.size) }),
      casePlot(list),
      page.length ? h('ul', { class: 'items rows', id: 'case-list' }, page.map(caseItem)) : h('p', { class: 'empty', text: t('noCases') }),
      h('div', { class: 'pager', id: 'cases-pager' },
        h('button', { type: 'button', class: 'secondary', id: 'cases-prev', text: t('prevPage'), disabled: state.casePage === 0, onclick: () => go(-1) }),
        h('span', { id: 'cases-page', text: t('pageOf', state.casePage + 1, pages) }),
        h('button', { type: 'button', class: 'secondary', id: 'cases-next', text: t('nextPage'), disabled: state.casePage >= pages - 1, onclick: () => go(1) }),
        state.listNext ? h('button', { type: 'button', class: 'secondary', id: 'cases-more', text: t('loadMore'), onclick: () => loadCases(true) }) : null));
    tick();
    loadLocations(list);
  }

  // loadLocations reads, for the listed cases not yet known, the first
  // event of their history (the raise, with the location) and then draws
  // the plot again.
  let locLoading = false;
  async function loadLocations(list) {
    if (locLoading) return;
    const todo = list.filter((c) => !locations.has(c.case_id)).slice(0, 100);
    if (!todo.length) return;
    locLoading = true;
    await Promise.all(todo.map(async (c) => {
      try {
        const hist = await api('GET', '/v1/cases/' + encodeURIComponent(c.case_id) + '/history?limit=1');
        const loc = hist.events && hist.events[0] && hist.events[0].data && hist.events[0].data.location;
        locations.set(c.case_id, loc && typeof loc.lat === 'number' && typeof loc.lon === 'number' && (loc.lat || loc.lon) ? loc : null);
      } catch (e) {
        locations.set(c.case_id, null);
      }
    }));
    locLoading = false;
    const old = document.getElementById('cases-plot');
    if (old) old.replaceWith(casePlot(filteredCases()));
    if (document.getElementById('cases-results')) loadLocations(filteredCases());
  }

  // casePlot draws the cases with coordinates as points on longitude and
  // latitude: no map tiles, nothing fetched from elsewhere.
  function casePlot(list) {
    const pts = list.map((c) => [c, locations.get(c.case_id)]).filter(([, l]) => l);
    const wrap = h('figure', { class: 'card plot', id: 'cases-plot', 'data-points': pts.length },
      h('figcaption', { text: t('plotTitle', pts.length) }));
    if (!pts.length) { wrap.append(h('p', { class: 'empty', text: t('plotEmpty') })); return wrap; }
    const W = 640, H = 260, P = 36;
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const [, l] of pts) { x0 = Math.min(x0, l.lon); x1 = Math.max(x1, l.lon); y0 = Math.min(y0, l.lat); y1 = Math.max(y1, l.lat); }
    const padX = (x1 - x0) * 0.08 || 0.005, padY = (y1 - y0) * 0.08 || 0.005;
    x0 -= padX; x1 += padX; y0 -= padY; y1 += padY;
    const X = (lon) => P + ((lon - x0) / (x1 - x0)) * (W - 2 * P);
    const Y = (lat) => H - P + 10 - ((lat - y0) / (y1 - y0)) * (H - 2 * P);
    const svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'aria-label': t('plotTitle', pts.length) });
    svg.append(s('rect', { x: P, y: 10, width: W - 2 * P, height: H - 2 * P, class: 'frame', fill: 'none', stroke: 'currentColor', 'stroke-opacity': '0.25' }));
    svg.append(s('text', { x: P, y: H - 6, text: x0.toFixed(3) + '°E' }), s('text', { x: W - P, y: H - 6, 'text-anchor': 'end', text: x1.toFixed(3) + '°E' }),
      s('text', { x: 2, y: 22, text: y1.toFixed(3) + '°N' }), s('text', { x: 2, y: H - P + 8, text: y0.toFixed(3) + '°N' }));
    for (const [c, l] of pts) {
      const overdue = (c.assignments || []).some((a) => a.overdue);
      svg.append(s('circle', { cx: X(l.lon).toFixed(1), cy: Y(l.lat).toFixed(1), r: 6, class: 'pt s-' + c.status + (overdue ? ' late' : ''), 'data-case-id': c.case_id,
        tabindex: 0, onclick: () => { location.hash = '#timeline/' + encodeURIComponent(c.case_id); } },
      s('title', { text: (c.title || c.case_id) + ' · ' + communityName(c.community) + ' · ' + t('s_' + c.status) })));
    }
    wrap.append(svg);
    return wrap;
  }

  function assignmentsTable(assignments, caseStatus) {
    if (!assignments || !assignments.length) return null;
    return h('div', { class: 'scroll' }, h('table', { class: 'asg' },
      h('thead', {}, h('tr', {}, [t('assignee'), t('role'), t('status'), t('deadline')].map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', {}, assignments.map((a) => h('tr', {},
        h('td', { text: nameOf(a.assignee) }),
        h('td', { text: t('r_' + a.role) }),
        h('td', {}, badge('a', a.status), a.overdue ? h('span', { class: 'badge bad', text: t('overdue') }) : null,
          a.decline_reason ? h('div', { class: 'decline-reason', text: t('declineReason', a.decline_reason) }) : null,
          a.decline_suggest ? h('div', { class: 'decline-suggest', text: t('declineSuggest', nameOf(a.decline_suggest)) }) : null),
        h('td', {}, countdowns(a, caseStatus)))))));
  }

  // countdowns shows the time left to (or past) the deadlines still open;
  // tick() keeps them current.
  function countdowns(a, caseStatus) {
    const out = [];
    if (caseStatus === 'closed') return out; // nothing is due on a closed case
    if (a.status === 'assigned' && a.report_by) out.push(h('div', { class: 'countdown', 'data-deadline': a.report_by, 'data-kind': 'report' }));
    if ((a.status === 'assigned' || a.status === 'reported') && a.resolve_by) out.push(h('div', { class: 'countdown', 'data-deadline': a.resolve_by, 'data-kind': 'resolve' }));
    return out;
  }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('.countdown[data-deadline]')) {
      const left = new Date(el.dataset.deadline).getTime() - now;
      const kind = el.dataset.kind;
      el.textContent = left >= 0 ? t(kind === 'report' ? 'reportIn' : 'resolveIn', fmtDur(left)) : t(kind === 'report' ? 'reportLate' : 'resolveLate', fmtDur(left));
      el.classList.toggle('late', left < 0);
      el.title = fmtTime(el.dataset.deadline);
    }
  }

  function caseMeta(c) {
    return h('p', { class: 'meta' },
      h('span', { text: nameOf(c.category) }),
      h('span', { class: 'where', text: communityName(c.community) + (me.role !== 'street' ? ' · ' + nameOf(c.street) : '') }),
      c.kind ? h('span', { text: t('k_' + c.kind) }) : null,
      c.urgency ? h('span', { text: t('u_' + c.urgency) }) : null,
      c.raised_at ? h('span', { text: t('raisedAt', fmtTime(c.raised_at)) }) : null);
  }

  // caseItem is one compact row: title, status and where; its
  // assignments open with "details", and open by themselves when the case
  // waits for the street (verify, route, rate).
  function caseItem(c) {
    const overdue = (c.assignments || []).some((a) => a.overdue) || c.overdue === true;
    const waits = me.role === 'street' && (c.status === 'resolved' || c.status === 'unassigned' || (c.status === 'closed' && 'rating' in c && !c.rating));
    const li = h('li', { class: 'item row' + (overdue ? ' overdue' : '') + (waits ? ' open' : ''), 'data-case-id': c.case_id, 'data-status': c.status, 'data-rating': c.rating || null },
      h('h3', {}, c.title || c.case_id, ' ', badge('s', c.status), overdue ? h('span', { class: 'badge bad', text: t('overdue') }) : null),
      caseMeta(c),
      h('div', { class: 'more' },
        assignmentsTable(c.assignments, c.status),
        c.rating ? h('p', { text: t('rated', t('r_' + c.rating)) }) : null,
        c.mediation ? h('p', { text: t('m_' + c.mediation) }) : null));
    const actions = h('div', { class: 'actions' });
    if (me.role === 'street') {
      actions.append(h('button', { type: 'button', class: 'secondary', 'data-action': 'receipt', text: t('receiptIssue'),
        onclick: () => issueReceipt(c) }));
      if (c.status === 'resolved') actions.append(verifyForm(c));
      if (c.status === 'closed' && 'rating' in c && !c.rating) actions.append(rateForm(c));
      if (c.status === 'unassigned') actions.append(routeForm(c));
    }
    actions.append(h('button', { type: 'button', class: 'ghost', 'data-action': 'details', 'aria-expanded': waits ? 'true' : 'false', text: t('details'),
      onclick: (ev) => { const open = li.classList.toggle('open'); ev.currentTarget.setAttribute('aria-expanded', String(open)); } }));
    actions.append(h('button', { type: 'button', class: 'secondary', 'data-action': 'timeline', text: t('open'),
      onclick: () => { location.hash = '#timeline/' + encodeURIComponent(c.case_id); } }));
    li.append(actions);
    const rc = state.receipts.get(c.case_id);
    if (rc) li.append(receiptBox(rc));
    return li;
  }

  // ---- street: receipts and callbacks (回执, 回访) ----

  // issueReceipt asks for a new link (the old one stops working): the link
  // is shown only in the answer that issues it.
  async function issueReceipt(c) {
    const ans = await command(c, 'receipt', {});
    if (ans && ans.receipt && ans.receipt.link) {
      state.receipts.set(c.case_id, ans.receipt);
      renderAll();
    }
  }

  function receiptBox(rc) {
    const url = location.origin + rc.link;
    const sms = t('receiptSMS', rc.case_no, url);
    return h('div', { class: 'receipt card', 'data-case-no': rc.case_no },
      h('h4', { text: t('receipt') }),
      h('p', {}, t('receiptNo') + ' ', h('strong', { class: 'case-no', text: rc.case_no })),
      h('p', {}, t('receiptLink') + ' ', h('a', { class: 'receipt-link', href: url, target: '_blank', rel: 'noreferrer', text: url })),
      h('p', { class: 'hint' }, t('receiptSMSHint')),
      h('textarea', { class: 'sms', readonly: true, rows: 3, text: sms }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', text: t('print'), onclick: () => window.print() }),
        h('a', { class: 'button secondary', href: 'sms:?body=' + encodeURIComponent(sms), text: t('sendSMS') })));
  }

  async function loadCallbacks() {
    try {
      const ans = await api('GET', '/v1/callbacks');
      state.callbacks = ans.callbacks || [];
      state.callbacksError = null;
    } catch (e) {
      state.callbacksError = e.message;
    }
    if (state.view === 'callbacks') renderAll();
  }

  function renderCallbacks(section) {
    section.append(heading('callbacks', t('callbacksTitle')),
      h('p', { class: 'hint', text: t('callbacksHelp') }),
      h('div', { class: 'filters' }, h('button', { type: 'button', class: 'secondary', id: 'callbacks-refresh', text: t('refresh'), onclick: () => loadCallbacks() })));
    if (state.callbacks === null) {
      section.append(h('p', { text: t('loading') }));
      if (!state.callbacksError) loadCallbacks();
      return;
    }
    if (state.callbacksError) section.append(h('p', { class: 'error', text: t('failed', state.callbacksError) }));
    section.append(state.callbacks.length
      ? h('ul', { class: 'items', id: 'callback-list' }, state.callbacks.map(callbackItem))
      : h('p', { class: 'empty', id: 'callbacks-empty', text: t('noCallbacks') }));
  }

  function callbackItem(it) {
    const c = { case_id: it.case_id, title: it.title };
    const phone = state.phones.get(it.case_id);
    const cb = it.callback || {};
    return h('li', { class: 'item callback', 'data-case-id': it.case_id },
      h('h3', {}, it.title || it.case_id, ' ', badge('s', it.case_status), it.second_round ? h('span', { class: 'badge', text: t('secondRound') }) : null),
      caseMeta(it),
      h('p', { text: t('callbackAttempts', cb.attempts || 0, 3) }),
      phone
        ? h('p', { class: 'phone' }, t('phone') + ' ', h('a', { href: 'tel:' + phone.replace(/[^0-9+]/g, ''), class: 'phone-number', text: phone }), ' ',
          h('span', { class: 'hint', text: t('revealRecorded') }))
        : h('button', { type: 'button', class: 'secondary', 'data-action': 'reveal', text: t('revealPhone'), onclick: () => revealPhone(it) }),
      h('div', { class: 'actions' }, callbackForm(c, it)));
  }

  // revealPhone shows the requester's phone: the reveal is recorded in the
  // case's history (RequesterRevealed) before the phone is shown.
  async function revealPhone(it) {
    try {
      const ans = await api('GET', '/v1/cases/' + encodeURIComponent(it.case_id) + '?reveal=requester');
      const r = ans.requester || {};
      if (r.forgotten) { setStatus(t('requesterForgotten'), 'err'); return; }
      state.phones.set(it.case_id, r.phone || '');
      renderAll();
    } catch (e) {
      setStatus(t('failed', e.message), 'err');
    }
  }

  function callbackForm(c, it) {
    return actionForm(c, 'callback', t('callback'), (id) => [
      h('fieldset', {}, h('legend', { text: t('callbackLegend') }),
        h('label', {}, h('input', { type: 'radio', name: id + '-r', value: 'yes', checked: true }), t('reached')),
        h('label', {}, h('input', { type: 'radio', name: id + '-r', value: 'no' }), t('notReached'))),
      field(id + '-rating', t('rating'), select([['', t('none')]].concat(it.case_status === 'closed' ? RATINGS.map((r) => [r, t('r_' + r)]) : []), '')),
      field(id + '-note', t('note'), h('input', { type: 'text' }))
    ], (form, id) => {
      const body = { reached: form.querySelector('input[name="' + id + '-r"]:checked').value === 'yes' };
      const rating = document.getElementById(id + '-rating').value;
      const note = document.getElementById(id + '-note').value.trim();
      if (rating && body.reached) body.rating = rating;
      if (note) body.note = note;
      return body;
    }, true);
  }

  // command posts a case command; on success it updates the case (or the
  // queue item) from the answer and reports it in the status line.
  async function command(c, action, body, form) {
    const btn = form && form.querySelector('button[type=submit]');
    const err = form && form.querySelector('.error');
    if (err) err.textContent = '';
    if (btn) btn.disabled = true;
    try {
      const ans = await api('POST', '/v1/cases/' + encodeURIComponent(c.case_id) + '/' + action, body, { 'Idempotency-Key': randomKey() });
      setStatus(t('done', t(action) + ' · ' + (ans.title || c.title || c.case_id)), 'ok');
      if (me.role === 'street' || me.role === 'auditor') upsertCase(ans);
      else applyCaseToQueue(ans);
      if (action === 'callback') loadCallbacks();
      return ans;
    } catch (e) {
      const msg = t('failed', e.message);
      if (err) err.textContent = msg; else setStatus(msg, 'err');
      return null;
    } finally {
      if (btn && btn.isConnected) btn.disabled = false;
    }
  }

  let formSeq = 0;
  function actionForm(c, action, summary, controls, build, open) {
    const id = 'f' + (++formSeq);
    const form = h('form', { class: 'form', novalidate: true, 'data-action': action },
      controls(id), h('p', { class: 'error', role: 'alert' }),
      h('button', { type: 'submit', class: 'primary', text: t('submit') }));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = build(form, id);
      if (body) command(c, action, body, form);
    });
    return h('details', { open: open || null }, h('summary', { text: summary }), form);
  }

  function verifyForm(c) {
    return actionForm(c, 'verify', t('verify'), (id) => [
      h('fieldset', {}, h('legend', { text: t('verifyLegend') }),
        h('label', {}, h('input', { type: 'radio', name: id + '-v', value: 'yes', checked: true }), t('accept')),
        h('label', {}, h('input', { type: 'radio', name: id + '-v', value: 'no' }), t('reject'))),
      field(id + '-note', t('verifyNote'), h('input', { type: 'text' }))
    ], (form, id) => {
      const body = { accepted: form.querySelector('input[name="' + id + '-v"]:checked').value === 'yes' };
      const note = document.getElementById(id + '-note').value.trim();
      if (note) body.note = note;
      return body;
    }, true);
  }

  function rateForm(c) {
    return actionForm(c, 'rate', t('rate'), (id) => [
      field(id + '-rating', t('rating'), select(RATINGS.map((r) => [r, t('r_' + r)]), 'satisfied'))
    ], (form, id) => ({ rating: document.getElementById(id + '-rating').value }), true);
  }

  function routeForm(c) {
    const orgs = (dir.departments || []).concat(dir.units || []).map((o) => [o.id, o.name]);
    // The last decliner's suggestion, if it made one, is the likely lead.
    const suggested = (c.assignments || []).filter((a) => a.status === 'declined' && a.decline_suggest).map((a) => a.decline_suggest).pop();
    return actionForm(c, 'route', t('route'), (id) => [
      h('p', { class: 'hint', text: t('routeHelp') }),
      field(id + '-lead', t('lead'), select(orgs, suggested))
    ], (form, id) => ({ lead: document.getElementById(id + '-lead').value, assist: [] }), true);
  }

  // ---- department and unit: live queue ----

  function onQueueEvent(ev) {
    if (ev.event === 'reset') { state.queue.clear(); state.queueSynced = false; return; }
    if (ev.event === 'assignment') { const it = JSON.parse(ev.data); state.queue.set(it.case_id, it); return; }
    if (ev.event === 'synced') { state.queueSynced = true; redrawQueue(); return; }
    if (ev.event !== 'change') return;
    const m = JSON.parse(ev.data);
    caseChanged(m.case_id);
    const old = state.queue.get(m.case_id);
    if (old && old.version > m.version) return;
    const a = m.assignment;
    const open = a && a.assignee === me.id && (a.status === 'assigned' || a.status === 'reported') && m.case_status !== 'closed';
    if (!open) {
      state.queue.delete(m.case_id);
      redrawQueue(m.case_id);
      return;
    }
    const it = {
      case_id: m.case_id, assignee: a.assignee, role: a.role, status: a.status, report_by: a.report_by,
      resolve_by: a.resolve_by, reported_at: old ? old.reported_at : null, overdue: a.overdue, street: m.street,
      community: m.community, category: m.category, kind: m.kind, urgency: m.urgency, title: m.title,
      case_status: m.case_status, version: m.version
    };
    state.queue.set(m.case_id, it);
    if (!old && state.queueSynced) setStatus(t('newAssignment', m.title || nameOf(m.category)), 'ok');
    if (!sameItem(old, it)) redrawQueue(m.case_id);
  }

  // applyCaseToQueue updates the item from a command's answer at once,
  // before the change comes back on the stream.
  function applyCaseToQueue(c) {
    const mine = (c.assignments || []).filter((a) => a.assignee === me.id).pop();
    const version = c.version - 1; // the version of the case's last event
    const old = state.queue.get(c.case_id);
    if (old && old.version > version) return;
    caseChanged(c.case_id);
    if (!mine || !(mine.status === 'assigned' || mine.status === 'reported') || c.status === 'closed') {
      state.queue.delete(c.case_id);
    } else {
      const it = Object.assign({}, old, {
        case_id: c.case_id, assignee: me.id, role: mine.role, status: mine.status, report_by: mine.report_by,
        resolve_by: mine.resolve_by, reported_at: mine.reported_at, overdue: mine.overdue, street: c.street,
        community: c.community, category: c.category, kind: c.kind, urgency: c.urgency, title: c.title,
        case_status: c.status, version
      });
      state.queue.set(c.case_id, it);
      if (sameItem(old, it)) return;
    }
    redrawQueue(c.case_id);
  }

  // sameItem tells whether a queue item shows nothing that old did not
  // (reported_at and version are not shown): the stream's echo of this
  // tab's own command, before or after its answer, then leaves the item,
  // and a form being filled in it, alone.
  function sameItem(old, it) {
    return !!old && Object.keys(it).every((k) => k === 'reported_at' || k === 'version' || old[k] === it[k]);
  }

  function redrawQueue(caseID) {
    if (state.view !== 'queue') return;
    const list = document.getElementById('queue-list');
    const el = caseID && document.querySelector('#queue-list li[data-case-id="' + caseID + '"]');
    const it = caseID && state.queue.get(caseID);
    if (list && el && it) { el.replaceWith(queueItem(it)); tick(); return; }
    if (list && el && !it) { el.remove(); if (!state.queue.size) renderAll(); return; }
    renderAll();
  }

  function renderQueue(section) {
    section.append(heading('queue', t('queueTitle', nameOf(me.id))),
      h('p', { id: 'queue-conn', class: 'conn' + (state.conn === 'live' ? ' live' : ''), text: t(state.conn) }));
    if (!state.queueSynced) { section.append(h('p', { class: 'empty', text: t('loading') })); return; }
    const items = [...state.queue.values()].sort((a, b) => String(a.report_by || '').localeCompare(String(b.report_by || '')));
    section.append(items.length ? h('ul', { class: 'items', id: 'queue-list' }, items.map(queueItem)) :
      h('p', { class: 'empty', id: 'queue-empty', text: t('queueEmpty') }));
  }

  function queueItem(it) {
    const orgs = [['', t('none')]].concat((dir.departments || []).concat(dir.units || []).filter((o) => o.id !== me.id).map((o) => [o.id, o.name]));
    const noteField = (id) => field(id + '-note', t('note'), h('textarea', { maxlength: 2000 }));
    const note = (id) => { const v = document.getElementById(id + '-note').value.trim(); return v ? { note: v } : {}; };
    const actions = h('div', { class: 'actions' });
    const simple = (action) => h('button', { type: 'button', class: 'primary', 'data-action': action, text: t(action),
      onclick: (ev) => { ev.target.disabled = true; command(it, action, {}).finally(() => { if (ev.target.isConnected) ev.target.disabled = false; }); } });
    if (it.role === 'offer' && it.status === 'assigned') {
      actions.append(simple('claim'));
    } else if (it.status === 'assigned') {
      actions.append(simple('report'));
    }
    if (it.role !== 'offer' && (it.status === 'assigned' || it.status === 'reported')) {
      actions.append(actionForm(it, 'progress', t('progress'), (id) => [noteField(id)], (form, id) => note(id)));
    }
    if (it.role !== 'offer' && it.status === 'reported') {
      actions.append(actionForm(it, 'resolve', t('resolve'), (id) => [
        noteField(id),
        it.kind === 'dispute' ? h('fieldset', {}, h('legend', { text: t('mediation') }),
          h('label', {}, h('input', { type: 'radio', name: id + '-m', value: 'success', required: true }), t('m_success')),
          h('label', {}, h('input', { type: 'radio', name: id + '-m', value: 'failure' }), t('m_failure'))) : null
      ], (form, id) => {
        const body = note(id);
        if (it.kind === 'dispute') {
          const m = form.querySelector('input[name="' + id + '-m"]:checked');
          if (!m) { form.querySelector('.error').textContent = t('required', t('mediation')); return null; }
          body.mediation = m.value;
        }
        return body;
      }));
    }
    actions.append(actionForm(it, 'decline', t('decline'), (id) => [
      field(id + '-reason', t('reason'), h('input', { type: 'text', required: true, maxlength: 2000 })),
      it.role !== 'offer' ? field(id + '-suggest', t('suggest'), select(orgs, '')) : null
    ], (form, id) => {
      const reason = document.getElementById(id + '-reason').value.trim();
      if (!reason) {
        form.querySelector('.error').textContent = t('required', t('reason'));
        document.getElementById(id + '-reason').focus();
        return null;
      }
      const body = { reason };
      const sug = document.getElementById(id + '-suggest');
      if (sug && sug.value) body.suggest = sug.value;
      return body;
    }));
    actions.append(h('button', { type: 'button', class: 'secondary', 'data-action': 'timeline', text: t('open'),
      onclick: () => { location.hash = '#timeline/' + encodeURIComponent(it.case_id); } }));
    return h('li', { class: 'item' + (it.overdue ? ' overdue' : ''), 'data-case-id': it.case_id, 'data-status': it.status },
      h('h3', {}, it.title || nameOf(it.category), ' ', badge('a', it.status), ' ', h('span', { class: 'badge', text: t('r_' + it.role) }),
        it.overdue ? h('span', { class: 'badge bad', text: t('overdue') }) : null),
      caseMeta(it),
      h('div', {}, countdowns(it)),
      actions);
  }

  // ---- figures ----

  async function loadStats() {
    // A load asked for while one is under way (a new window, another
    // street) runs when it ends, rather than being lost.
    if (state.statsLoading) { state.statsAgain = true; return; }
    state.statsLoading = true;
    state.statsAgain = false;
    // The auditor's category breakdown may be narrowed to one street.
    const catStreet = me.role === 'auditor' ? state.catStreet || '' : '';
    const q = (by) => {
      const p = new URLSearchParams({ group_by: by });
      if (by === 'category' && catStreet) p.set('street', catStreet);
      if (state.from) p.set('from', state.from);
      if (state.to) p.set('to', nextDay(state.to)); // the chosen day included
      return '/v1/stats?' + p;
    };
    // A street reads only its own figures: by street (its own group), by
    // its communities, and its own cases by category and by urgency.
    const bys = me.role === 'street' ? ['street', 'community', 'category', 'urgency'] : ['day', 'street', 'assignee', 'category'];
    const got = await Promise.allSettled(bys.map((by) => api('GET', q(by))));
    state.statsLoading = false;
    if (!me) return; // signed out meanwhile
    if (state.statsAgain) { loadStats(); return; }
    state.statsAt = Date.now();
    const failed = got.find((r) => r.status === 'rejected');
    state.statsError = failed ? (failed.reason.status ? 'HTTP ' + failed.reason.status + ': ' : '') + failed.reason.message : null;
    if (got.some((r) => r.status === 'fulfilled')) {
      state.stats = { catStreet };
      bys.forEach((by, i) => { state.stats[by] = got[i].status === 'fulfilled' ? got[i].value : { groups: [] }; });
    }
    if (state.view === 'figures') {
      // The redraw replaces the view: keep the focus on the control that
      // had it (the street selector, the update button).
      const focused = document.activeElement && document.activeElement.id;
      renderAll();
      const el = focused && document.getElementById(focused);
      if (el && el !== document.activeElement) el.focus();
    }
  }

  function nextDay(day) {
    const d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + 1);
    return d.toISOString().slice(0, 10);
  }

  function totals(groups) {
    const sum = (k) => groups.reduce((n, g) => n + (g[k] || 0), 0);
    const weighted = (rate, count) => {
      const n = sum(count);
      return n ? groups.reduce((x, g) => x + (g[rate] || 0) * (g[count] || 0), 0) / n : null;
    };
    const raised = sum('raised');
    const assignments = sum('assignments');
    return {
      raised, closed: sum('closed'),
      closure: raised ? sum('closed') / raised : null,
      response: assignments ? sum('reported_on_time') / assignments : null,
      mediation: weighted('mediation_success_rate', 'disputes_resolved'),
      satisfaction: weighted('satisfaction_rate', 'ratings')
    };
  }

  function renderFigures(section) {
    section.append(heading('figures', t('figuresTitle')));
    const from = h('input', { type: 'date', value: state.from || '' });
    const to = h('input', { type: 'date', value: state.to || '' });
    section.append(h('form', { class: 'filters', id: 'figures-form', novalidate: true,
      onsubmit: (ev) => { ev.preventDefault(); state.from = from.value; state.to = to.value; state.statsAt = 0; loadStats(); } },
    field('figures-from', t('from'), from), field('figures-to', t('to'), to),
    h('button', { type: 'submit', class: 'secondary', id: 'figures-refresh', text: t('apply') })));
    if (state.statsError) section.append(h('p', { class: 'error', role: 'alert', text: t('statsUnavailable', state.statsError) }));
    // Entering the view reads the figures again when they are older than a few seconds.
    if (!state.statsLoading && (!state.statsAt || Date.now() - state.statsAt > 5000)) loadStats();
    if (!state.stats) {
      if (!state.statsError) section.append(h('p', { class: 'empty', text: t('loading') }));
      return;
    }
    const st = state.stats;
    const tot = totals((st.street && st.street.groups) || []);
    section.append(h('div', { class: 'tiles', id: 'figures-tiles' },
      [['raised', tot.raised], ['closed', tot.closed], ['closure', pct(tot.closure)], ['response', pct(tot.response)],
        ['mediation', pct(tot.mediation)], ['satisfaction', pct(tot.satisfaction)]].map(([k, v]) =>
        h('div', { class: 'tile', id: 'tile-' + k }, h('div', { class: 'v', text: String(v) }), h('div', { class: 'k', text: t('t_' + k) })))));
    section.append(h('p', { class: 'hint', text: t('figuresScope') }));
    const grid = h('div', { class: 'grid two' });
    section.append(grid);
    const groups = (by) => ((st[by] && st[by].groups) || []).slice();
    const days = groups('day').sort((a, b) => String(a.key).localeCompare(String(b.key)));
    const isOrg = new Set((dir.departments || []).concat(dir.units || []).map((o) => o.id));
    const depts = groups('assignee').filter((g) => isOrg.has(g.key)).sort(byRate('response_rate'));
    const streets = groups('street').sort(byRate('closure_rate'));
    const medsat = groups('street').sort((a, b) => nameOf(a.key).localeCompare(nameOf(b.key)));
    const communities = groups('community').sort(byRate('closure_rate'));
    // Charts are sized to their box once it is laid out.
    const charts = me.role === 'street' ? [
      ['chart-communities', t('chartCommunities'), (w) => barChart(w, communities, [['closure_rate', t('t_closure')], ['response_rate', t('t_response')]], communityName),
        [t('name'), t('t_closure'), t('t_response')], communities.map((g) => [communityName(g.key), pct(g.closure_rate), pct(g.response_rate)])],
      ['chart-medsat', t('chartMedSatCommunity'), (w) => barChart(w, communities, [['mediation_success_rate', t('t_mediation')], ['satisfaction_rate', t('t_satisfaction')]], communityName),
        [t('name'), t('t_mediation'), t('t_satisfaction')], communities.map((g) => [communityName(g.key), pct(g.mediation_success_rate), pct(g.satisfaction_rate)])]
    ] : [
      ['chart-daily', t('chartDaily'), (w) => lineChart(w, days, [['closure_rate', t('t_closure')], ['response_rate', t('t_response')]]),
        [t('day'), t('t_closure'), t('t_response')], days.map((g) => [g.key, pct(g.closure_rate), pct(g.response_rate)])],
      ['chart-depts', t('chartDepts'), (w) => barChart(w, depts, [['response_rate', t('t_response')]]),
        [t('name'), t('t_response')], depts.map((g) => [nameOf(g.key), pct(g.response_rate)])],
      ['chart-streets', t('chartStreets'), (w) => barChart(w, streets, [['closure_rate', t('t_closure')]]),
        [t('name'), t('t_closure')], streets.map((g) => [nameOf(g.key), pct(g.closure_rate)])],
      ['chart-medsat', t('chartMedSat'), (w) => barChart(w, medsat, [['mediation_success_rate', t('t_mediation')], ['satisfaction_rate', t('t_satisfaction')]]),
        [t('name'), t('t_mediation'), t('t_satisfaction')], medsat.map((g) => [nameOf(g.key), pct(g.mediation_success_rate), pct(g.satisfaction_rate)])]
    ];
    for (const [id, title, draw, cols, rows] of charts) {
      const box = h('div', { class: 'chart-box' });
      const fig = h('figure', { class: 'card', id },
        h('figcaption', { id: id + '-cap', text: title }), box,
        h('details', {}, h('summary', { text: t('dataTable') }), h('div', { class: 'scroll' }, h('table', { class: 'data' },
          h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((x) => h('td', { text: x })))) : h('tr', {}, h('td', { colspan: cols.length, text: t('noData') })))))));
      grid.append(fig);
      box.dataset.chart = id;
      chartDraws.set(box, { draw, title, empty: !rows.length });
    }
    // Breakdowns by category and by urgency, as tables: they hold counts
    // and times as well as rates. A street's are of its own cases; an
    // auditor's by category may be narrowed to one street.
    const byName = (a, b) => (b.raised - a.raised) || nameOf(a.key).localeCompare(nameOf(b.key));
    const categories = groups('category').sort(byName);
    if (me.role === 'street') {
      const order = ['emergency', 'urgent', 'routine'];
      const urgencies = groups('urgency').sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
      grid.append(
        figureTable('figures-categories', t('chartCategories'), t('category'), categories, nameOf),
        figureTable('figures-urgency', t('chartUrgency'), t('urgency'), urgencies, (k) => t('u_' + k)));
    } else {
      const sel = select([['', t('allStreets')]].concat((dir.streets || []).map((x) => [x.id, x.name])), state.catStreet || '');
      const fig = figureTable('figures-categories', t('chartCategoriesAll'), t('category'), categories, nameOf,
        h('div', { class: 'filters' }, field('figures-street', t('street'), sel)));
      fig.dataset.street = st.catStreet || '';
      sel.addEventListener('change', () => {
        state.catStreet = sel.value;
        fig.setAttribute('aria-busy', 'true');
        loadStats();
      });
      grid.append(fig);
    }
    drawCharts();
  }

  // figureTable is a figure whose content is a table of groups (categories,
  // urgencies): one row each, headed by its name, with the counts, rates
  // and the median time to close. Cells carry their column's name, which a
  // phone-width screen shows beside each value.
  function figureTable(id, title, keyHead, groups, label, controls) {
    const cols = [
      ['raised', t('t_raised'), (g) => String(g.raised)],
      ['closed', t('t_closed'), (g) => String(g.closed)],
      ['closure', t('t_closure'), (g) => pct(g.closure_rate)],
      ['response', t('t_response'), (g) => pct(g.response_rate)],
      ['median-close', t('t_medianClose'), (g) => fmtSpan(g.median_close_seconds)]
    ];
    const table = groups.length ? h('div', { class: 'scroll' }, h('table', { class: 'data figtable', 'aria-labelledby': id + '-cap' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: keyHead }), cols.map(([, head]) => h('th', { scope: 'col', class: 'num', text: head })))),
      h('tbody', {}, groups.map((g) => h('tr', { 'data-key': g.key },
        h('th', { scope: 'row', text: label(g.key) }),
        cols.map(([k, head, value]) => h('td', { class: 'num', 'data-col': k, 'data-label': head, text: value(g) }))))))) :
      h('p', { class: 'empty', text: t('noData') });
    return h('figure', { class: 'card', id }, h('figcaption', { id: id + '-cap', text: title }), controls || null, table);
  }

  const chartDraws = new Map();
  function drawCharts() {
    for (const [box, c] of chartDraws) {
      if (!box.isConnected) { chartDraws.delete(box); continue; }
      const w = Math.max(280, Math.floor(box.getBoundingClientRect().width) || 600);
      if (c.empty) { box.replaceChildren(h('p', { class: 'empty', text: t('noData') })); continue; }
      const chart = c.draw(w);
      const svg = chart.querySelector('svg');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', c.title);
      box.replaceChildren(chart);
    }
  }

  function byRate(k) {
    return (a, b) => (b[k] === null || b[k] === undefined ? -1 : b[k]) - (a[k] === null || a[k] === undefined ? -1 : a[k]);
  }

  function lineChart(W, groups, series) {
    const H = 240, L = 44, R = 12, T = 12, B = 34;
    const pw = W - L - R, ph = H - T - B;
    const n = groups.length;
    const x = (i) => L + (n <= 1 ? pw / 2 : (i * pw) / (n - 1));
    const y = (v) => T + ph - v * ph;
    const svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H });
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
        s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', text: v * 100 + '%' }));
    }
    svg.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: y(0), y2: y(0) }));
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 56))));
    groups.forEach((g, i) => {
      if (i % every === 0 || i === n - 1) svg.append(s('text', { x: x(i), y: H - 12, 'text-anchor': 'middle', text: String(g.key).slice(5, 10) || g.key }));
    });
    series.forEach(([k, label], si) => {
      const colour = si ? 'var(--c2)' : 'var(--c1)';
      let d = '', pen = false;
      groups.forEach((g, i) => {
        const v = g[k];
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
      });
      if (d) svg.append(s('path', { d, fill: 'none', stroke: colour, 'stroke-width': 2.5, 'stroke-dasharray': si ? '6 3' : null }));
      groups.forEach((g, i) => {
        const v = g[k];
        if (v === null || v === undefined) return;
        svg.append(s(si ? 'rect' : 'circle', si ? { x: x(i) - 4, y: y(v) - 4, width: 8, height: 8, fill: colour } : { cx: x(i), cy: y(v), r: 4, fill: colour },
          s('title', { text: g.key + ' ' + label + ' ' + pct(v) })));
      });
    });
    const wrap = h('div', {}, h('div', { class: 'legend' }, series.map(([, label], i) => h('span', { class: 'l' + (i + 1), text: label }))));
    wrap.append(svg);
    return wrap;
  }

  function barChart(W, groups, series, keyName) {
    const nameOfKey = keyName || nameOf;
    const barH = 16, gap = 10, T = 4;
    const labelW = Math.min(150, Math.floor(W * 0.34));
    const valueW = 52;
    const pw = W - labelW - valueW - 8;
    const rowH = series.length * barH + gap;
    const H = T + groups.length * rowH + 4;
    const svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H });
    for (const v of [0, 0.5, 1]) svg.append(s('line', { class: 'grid', x1: labelW + v * pw, x2: labelW + v * pw, y1: 0, y2: H }));
    groups.forEach((g, i) => {
      const y0 = T + i * rowH;
      svg.append(s('text', { x: labelW - 6, y: y0 + (series.length * barH) / 2 + 4, 'text-anchor': 'end', text: nameOfKey(g.key) }));
      series.forEach(([k, label], si) => {
        const v = g[k];
        const y = y0 + si * barH;
        const colour = si ? 'var(--c2)' : 'var(--c1)';
        if (v !== null && v !== undefined) {
          svg.append(s('rect', { x: labelW, y: y + 1, width: Math.max(1, v * pw), height: barH - 3, fill: colour },
            s('title', { text: nameOfKey(g.key) + ' ' + label + ' ' + pct(v) })));
        }
        svg.append(s('text', { x: labelW + (v ? v * pw : 0) + 4, y: y + barH - 4, text: pct(v) }));
      });
    });
    const wrap = h('div', {});
    if (series.length > 1) wrap.append(h('div', { class: 'legend' }, series.map(([, label], i) => h('span', { class: 'l' + (i + 1), text: label }))));
    wrap.append(svg);
    return wrap;
  }

  // ---- auditor: overdue ----

  async function loadOverdue() {
    try {
      const ans = await api('GET', '/v1/cases?overdue=true&limit=100');
      state.overdue = { cases: ans.cases || [] };
    } catch (e) {
      state.overdue = { error: e.status ? 'HTTP ' + e.status : e.message };
    }
    if (state.view === 'overdue') renderAll();
  }

  function renderOverdue(section) {
    section.append(heading('overdue', t('overdueTitle')),
      h('div', { class: 'filters' }, h('button', { type: 'button', class: 'secondary', text: t('refresh'), onclick: loadOverdue })));
    if (!state.overdue) { section.append(h('p', { class: 'empty', text: t('loading') })); loadOverdue(); return; }
    if (state.overdue.error) { section.append(h('p', { class: 'error', text: t('listUnavailable', state.overdue.error) })); return; }
    const list = state.overdue.cases.slice().sort(byRaised);
    section.append(list.length ? h('ul', { class: 'items', id: 'overdue-list' }, list.map(caseItem)) : h('p', { class: 'empty', text: t('noOverdue') }));
  }

  // ---- timeline with the hash chain checked here ----

  // caseChanged marks the case's timeline, when it is the one loaded (or
  // being loaded), out of date: it is read again the next time it shows,
  // however recently it was read.
  function caseChanged(id) {
    if (state.timeline && state.timeline.id === id) state.timeline.stale = true;
  }

  // goJSON encodes like Go's encoding/json: JSON.stringify escapes the
  // same control characters in the same way; Go also escapes <, > and &
  // and the line and paragraph separators.
  function goJSON(v) {
    return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  }

  // utcRFC3339Nano renders a time as Go's Format(time.RFC3339Nano) of its UTC
  // instant: whistle stores UTC, so the served form is already that; another
  // offset is moved to UTC keeping the fraction as written.
  function utcRFC3339Nano(s) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(s);
    if (!m || m[3] === 'Z') return s;
    const whole = new Date(m[1] + m[3]).toISOString().slice(0, 19);
    return whole + (m[2] || '') + 'Z';
  }

  // canonical mirrors domain.Envelope.canonical: the envelope without its
  // hash, fields in a fixed order, data compacted.
  function canonical(e) {
    return goJSON({
      id: e.id, type: e.type, case_id: e.case_id, version: e.version,
      occurred_at: utcRFC3339Nano(e.occurred_at),
      actor: { role: e.actor.role, id: e.actor.id },
      correlation_id: e.correlation_id, data: e.data, prev_hash: e.prev_hash
    });
  }

  async function sha256hex(text) {
    const buf = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
    return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function checkChain(events) {
    if (!(window.crypto && crypto.subtle && window.isSecureContext)) return { unavailable: true };
    let prev = '';
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.version !== i) return { ok: false, version: i, problem: t('chainVersion', e.version) };
      if ((e.prev_hash || '') !== prev) return { ok: false, version: e.version, problem: t('chainPrev') };
      const sum = await sha256hex(prev + '\n' + canonical(e));
      if (sum !== e.hash) return { ok: false, version: e.version, problem: t('chainHash') };
      prev = e.hash;
    }
    return { ok: true, count: events.length };
  }

  async function loadTimeline(id) {
    const loading = { id, loading: true };
    state.timeline = loading;
    try {
      const [hist, c] = await Promise.all([
        api('GET', '/v1/cases/' + encodeURIComponent(id) + '/history'),
        api('GET', '/v1/cases/' + encodeURIComponent(id))]);
      const chain = await checkChain(hist.events || []);
      state.timeline = { id, hist, c, chain, at: Date.now(), stale: loading.stale };
    } catch (e) {
      state.timeline = { id, error: e.message, at: Date.now(), stale: loading.stale };
    }
    if (state.view === 'timeline') renderAll();
  }

  function renderTimeline(section, arg) {
    section.append(heading('timeline', t('timelineTitle')));
    const input = h('input', { type: 'text', value: arg || '', spellcheck: 'false', autocomplete: 'off', pattern: '[0-9a-fA-F-]{36}' });
    section.append(h('form', { class: 'filters', id: 'timeline-form', novalidate: true,
      onsubmit: (ev) => { ev.preventDefault(); location.hash = '#timeline/' + encodeURIComponent(input.value.trim()); } },
    field('timeline-case', t('caseId'), input), h('button', { type: 'submit', class: 'secondary', text: t('show') }),
    arg ? h('button', { type: 'button', class: 'secondary', id: 'timeline-recheck', text: t('recheck'),
      onclick: () => { loadTimeline(arg); renderAll(); } }) : null));
    if (!arg) return;
    const tl = state.timeline;
    if (!tl || tl.id !== arg || (!tl.loading && (tl.stale || Date.now() - (tl.at || 0) > 5000))) {
      loadTimeline(arg);
      if (!tl || tl.id !== arg) { section.append(h('p', { class: 'empty', text: t('loading') })); return; }
    }
    if (tl.loading) { section.append(h('p', { class: 'empty', text: t('loading') })); return; }
    if (tl.error) { section.append(h('p', { class: 'error', role: 'alert', text: t('failed', tl.error) })); return; }
    const c = tl.c;
    section.append(h('div', { class: 'card' }, h('h3', {}, c.title || c.case_id, ' ', badge('s', c.status)), caseMeta(c),
      h('p', { class: 'hash', text: c.case_id }), assignmentsTable(c.assignments, c.status)));
    const ch = tl.chain;
    const serverText = t('chainServer', tl.hist.chain_whole ? t('whole') : t('broken') + (tl.hist.chain_problem ? ': ' + tl.hist.chain_problem : ''));
    let browser;
    if (ch.unavailable) browser = h('p', { class: 'hint', id: 'chain-browser', 'data-ok': 'unavailable', text: t('noCrypto') });
    else browser = h('p', { class: 'verdict ' + (ch.ok ? 'good' : 'bad'), id: 'chain-browser', 'data-ok': String(ch.ok), role: 'status',
      text: ch.ok ? t('chainBrowser', ch.count) : t('chainBrowserBad', ch.version, ch.problem) });
    section.append(browser, h('p', { id: 'chain-server', 'data-ok': String(tl.hist.chain_whole), text: serverText }));
    if (!ch.unavailable && ch.ok !== tl.hist.chain_whole) section.append(h('p', { class: 'error', text: t('chainDisagree') }));
    section.append(h('ol', { class: 'timeline', id: 'timeline-events' }, (tl.hist.events || []).map((e) => {
      const brokenHere = !ch.unavailable && !ch.ok && ch.version === e.version;
      return h('li', { class: brokenHere ? 'broken' : null, 'data-type': e.type },
        h('div', { class: 'ev', text: '#' + e.version + ' ' + t('ev_' + e.type) }),
        h('div', { class: 'meta' }, h('span', { text: fmtTime(e.occurred_at) }),
          h('span', { text: t('actor') + ': ' + (e.actor.role === 'system' ? t('system') : nameOf(e.actor.id) + ' (' + t('role_' + e.actor.role) + ')') })),
        eventDetails(e.data),
        h('div', { class: 'hash', text: 'hash ' + e.hash.slice(0, 16) + '… prev ' + (e.prev_hash ? e.prev_hash.slice(0, 16) + '…' : '—') }));
    })));
  }

  function eventDetails(data) {
    if (!data || typeof data !== 'object') return null;
    const parts = [];
    for (const [k, v] of Object.entries(data)) {
      if (v === null || v === '' || k === 'request_sha256' || k === 'directory_version') continue;
      let text;
      const label = I18N.en['f_' + k] ? t('f_' + k) : k;
      if (k === 'community') text = communityName(v);
      else if (['street', 'category', 'assignee', 'suggest', 'lead'].includes(k)) text = nameOf(v);
      else if (k === 'role') text = t('r_' + v);
      else if (k === 'urgency') text = t('u_' + v);
      else if (k === 'kind') text = t('k_' + v);
      else if (k === 'mediation') text = t('m_' + v);
      else if (k === 'rating') text = t('r_' + v);
      else if (/_by$|^due$/.test(k)) text = fmtTime(v);
      else if (k === 'location' && typeof v === 'object') text = [v.address, v.lat !== undefined ? v.lat + ', ' + v.lon : ''].filter(Boolean).join(' · ');
      else if (typeof v === 'object') text = JSON.stringify(v);
      else text = String(v);
      parts.push(h('span', {}, h('b', { text: label + ': ' }), text));
    }
    return h('p', { class: 'meta' }, parts);
  }

  // ---- start ----

  function start() {
    applyLanguage();
    document.getElementById('lang-switch').addEventListener('click', () => {
      lang = lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem(LANG_KEY, lang);
      setStatus('');
      renderAll();
    });
    document.getElementById('sign-out').addEventListener('click', signOut);
    document.getElementById('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = document.getElementById('signin-token');
      const err = document.getElementById('signin-error');
      err.textContent = '';
      const tok = input.value.trim();
      if (!tok) { err.textContent = t('required', t('token')); input.focus(); return; }
      try {
        await signIn(tok);
        input.value = '';
        document.getElementById('main').focus();
      } catch (e) {
        token = null;
        err.textContent = e.status === 401 ? t('badToken') : t('failed', e.message);
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
    });
    window.addEventListener('hashchange', () => { if (me) { renderAll(); document.getElementById('main').focus(); } });
    let resizeTimer = null;
    window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawCharts, 200); });
    setInterval(tick, 1000);
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      signIn(saved).catch(() => {
        sessionStorage.removeItem(TOKEN_KEY);
        token = null;
        document.getElementById('view-signin').hidden = false;
      });
    }
  }

  start();
})();
