/**
 * The cluster page's script (`GET /ui/app.js`), kept as a string so `tsc` carries it into `dist/` and no build
 * step exists. Every 2 s it fetches `/ui/state` and redraws the sections of the shell with DOM calls only
 * (`textContent`, never `innerHTML`, so a member name cannot inject markup). When the node does not answer it
 * keeps the last data, dims it and shows an error line. Rows carry `data-*` attributes the browser test reads.
 */

/** The script of `/ui`. */
export const UI_SCRIPT = String.raw`'use strict';
(() => {
  const REFRESH_MS = 2000;
  const TIMEOUT_MS = 5000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const byId = (id) => document.getElementById(id);
  let lastOk;

  function fill(e, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) if (value !== undefined && value !== null) e.setAttribute(name, String(value));
    for (const c of [].concat(children === undefined ? [] : children)) if (c !== null && c !== '') e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const h = (tag, attrs, children) => fill(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

  function table(headers, rows, empty) {
    if (rows.length === 0) return h('p', { class: 'empty' }, empty);
    const head = h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)));
    return h('table', {}, [h('thead', {}, head), h('tbody', {}, rows)]);
  }

  const time = (iso) => (iso ? iso.slice(0, 19).replace('T', ' ') + 'Z' : '–');
  const pct = (share) => (share * 100).toFixed(1) + ' %';
  const badge = (state) => h('span', { class: 'badge badge-' + state }, state);
  const kid = (k) => h('code', { class: 'kid', title: k }, k);
  const realmUse = (k) => k.realm + ' · ' + k.use;
  function ago(ms) {
    if (ms === null || ms === undefined) return 'never';
    const s = Math.floor(ms / 1000);
    return s < 120 ? s + ' s ago' : Math.floor(s / 60) + ' min ago';
  }
  function link(url) {
    return /^https?:\/\/[^\s]+$/.test(url) ? h('a', { href: url.replace(/\/$/, '') + '/ui' }, url) : url;
  }

  function renderMembers(state) {
    const members = state.members.slice().sort((a, b) => a.name.localeCompare(b.name));
    const rows = members.map((m) => h('tr', { 'data-member': m.name, 'data-state': m.state }, [
      h('td', {}, [m.name, m.self ? h('span', { class: 'self' }, ' (this node)') : null]),
      h('td', {}, h('code', {}, m.nodeId)),
      h('td', {}, badge(m.state)),
      h('td', { title: m.lastHeartbeatAt || '' }, m.self ? 'this node' : ago(m.heartbeatAgeMs)),
      h('td', {}, link(m.httpUrl)),
      h('td', { class: 'num' }, m.publishedKeys),
      h('td', {}, m.digestAgrees ? h('span', { class: 'ok' }, 'same as this node') : h('span', { class: 'warn' }, 'differs')),
      h('td', { class: 'num' }, m.registrationsVersion === null ? '–' : 'v' + m.registrationsVersion),
    ]));
    const headers = ['name', 'node id', 'state', 'last heartbeat', 'HTTP', 'keys published', 'key set', 'registrations'];
    byId('members').replaceChildren(table(headers, rows, 'no members known yet'));
  }

  function renderMap(state) {
    const map = state.map;
    byId('map-summary').textContent = map.epoch === 0
      ? 'No cluster map yet (' + map.status + ').'
      : 'Epoch ' + map.epoch + ', ' + map.members.length + ' members; this node: ' + map.status + '.';
    const members = map.members.slice().sort((a, b) => a.name.localeCompare(b.name));
    let x = 0;
    const segments = members.map((m, i) => {
      const width = m.share * 1000;
      const rect = svg('rect', { x: x, y: 0, width: width, height: 24, class: 'seg seg-' + (i % 8) }, svg('title', {}, m.name + ': ' + pct(m.share)));
      x += width;
      return rect;
    });
    const bar = svg('svg', { class: 'ring', viewBox: '0 0 1000 24', preserveAspectRatio: 'none', role: 'img', 'aria-label': 'ring share per member' }, segments);
    byId('ring').replaceChildren(...(segments.length > 0 ? [bar] : []));
    const rows = members.map((m, i) => h('tr', { 'data-map-member': m.name, 'data-role': m.role }, [
      h('td', {}, [h('span', { class: 'swatch seg-' + (i % 8) }), m.name]),
      h('td', {}, h('code', {}, m.nodeId)),
      h('td', {}, badge(m.role)),
      h('td', { class: 'num' }, pct(m.share)),
    ]));
    byId('map-members').replaceChildren(table(['member', 'node id', 'role', 'ring share'], rows, 'no members in the map'));
  }

  function keyRow(k) {
    const on = k.publishedOn;
    return h('tr', { 'data-kid': k.kid, 'data-state': k.state }, [
      h('td', {}, kid(k.kid)), h('td', {}, k.alg), h('td', {}, badge(k.state)),
      h('td', {}, time(k.publishAt)), h('td', {}, time(k.activateAt)), h('td', {}, time(k.retireAt)), h('td', {}, time(k.effectiveExpireAt)),
      h('td', { class: on.nodes < on.of ? 'num warn' : 'num' }, on.nodes + ' of ' + on.of),
    ]);
  }

  function renderKeys(state) {
    const headers = ['kid', 'alg', 'state', 'publish', 'activate', 'retire', 'effective expiry', 'published on'];
    const groups = state.keys.map((g) => h('div', { class: 'key-group', 'data-realm': g.realm, 'data-use': g.use }, [
      h('h3', {}, realmUse(g)), table(headers, g.keys.map(keyRow), 'no keys'),
    ]));
    byId('keys').replaceChildren(...(groups.length > 0 ? groups : [h('p', { class: 'empty' }, 'no keys yet')]));
  }

  function renderRecent(state) {
    const rotations = state.rotations.map((r) => h('tr', { 'data-rotation': r.kid }, [
      h('td', {}, time(r.createdAt)), h('td', {}, kid(r.kid)), h('td', {}, realmUse(r)), h('td', {}, badge(r.state)),
      h('td', { title: r.createdBy }, r.createdByName || h('code', {}, r.createdBy)),
    ]));
    byId('rotations').replaceChildren(table(['created', 'kid', 'realm · use', 'state', 'created by'], rotations, 'no keys'));
    const revocations = state.revocations.map((r) => h('tr', { 'data-revocation': r.kid }, [
      h('td', {}, time(r.revokedAt)), h('td', {}, kid(r.kid)), h('td', {}, realmUse(r)), h('td', {}, time(r.createdAt)),
    ]));
    byId('revocations').replaceChildren(table(['revoked', 'kid', 'realm · use', 'created'], revocations, 'no revocations'));
  }

  function renderRegistrations(state) {
    const r = state.registrations;
    if (!r) {
      byId('registrations').replaceChildren(h('p', { class: 'empty' }, 'this node runs without the cluster'));
      return;
    }
    const summary = h('p', { 'data-registrations-version': r.version }, 'Log version ' + r.version + ' (' + r.phase + ')'
      + (r.fileDifferences > 0 ? '; this node\'s config file differs from the cluster in ' + r.fileDifferences + ' registrations' : '') + '.');
    const rows = r.counts.map((c) => h('tr', { 'data-kind': c.kind, 'data-realm': c.realm }, [h('td', {}, c.kind), h('td', {}, c.realm), h('td', { class: 'num' }, c.count)]));
    byId('registrations').replaceChildren(summary, table(['kind', 'realm', 'registered'], rows, 'nothing registered'));
  }

  function render(state) {
    renderMembers(state);
    renderRegistrations(state);
    renderMap(state);
    renderKeys(state);
    renderRecent(state);
    lastOk = new Date();
    const status = byId('status');
    status.textContent = 'Node ' + state.node.name + ' (' + state.node.nodeId + ') · last refresh ' + lastOk.toLocaleTimeString()
      + ' · key sets ' + (state.digestsAgree ? 'agree' : 'differ');
    status.setAttribute('data-refreshed-at', lastOk.toISOString());
    byId('error').hidden = true;
    document.body.classList.remove('stale');
  }

  function showError(reason) {
    const line = byId('error');
    line.textContent = 'The node does not answer: ' + reason + (lastOk ? '. Showing data from ' + lastOk.toLocaleTimeString() + '.' : '.');
    line.hidden = false;
    document.body.classList.add('stale');
  }

  async function refresh() {
    try {
      const res = await fetch('/ui/state', { cache: 'no-store', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      render(await res.json());
    } catch (err) {
      showError(err && err.name === 'TimeoutError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : String((err && err.message) || err));
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
`;
