// app.js runs the shift dashboard. Everything it shows comes from the
// shift's admin API (/v1/shift…), which it polls every second and whose
// event stream makes it refresh at once when the engine decides something.
// Untrusted text (messages, actors, reasons) only ever reaches the page as
// textContent, never as markup.

import { draw } from './chart.js';

const COOKIE = 'cutover_token';
// Relative URLs keep the page working when it is served under a prefix
// (an ingress path, kubectl port-forward behind a proxy).
const API = 'v1/shift';
const $ = id => document.getElementById(id);

class AuthError extends Error {}

// ---- token ---------------------------------------------------------------

function hasToken() {
  return document.cookie.split(';').some(c => c.trim().startsWith(COOKIE + '='));
}

// Cookie values cannot hold spaces, quotes, commas, semicolons or
// backslashes; a token with them would be cut or refused by the server.
const TOKEN_RE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/;

function setToken(token) {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `${COOKIE}=${token}; Path=/; SameSite=Strict${secure}`;
}

function clearToken() {
  document.cookie = `${COOKIE}=; Path=/; SameSite=Strict; Max-Age=0`;
}

// ---- API -----------------------------------------------------------------

async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) throw new AuthError('the token was refused');
  // Charts end at the server's "now", not this browser's (whose clock may
  // be off): Date has a one-second resolution, enough for a chart.
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isFinite(date)) clockSkew = date - Date.now();
  const text = await res.text();
  let data;
  try { data = JSON.parse(text); } catch { /* a plain-text error: data stays undefined */ }
  return { status: res.status, ok: res.ok, data, text };
}

async function get(path) {
  const r = await api('GET', path);
  if (!r.ok || r.data === undefined) throw new Error(`${path}: ${r.status} ${r.text.trim()}`);
  return r.data;
}

// ---- small DOM helpers ---------------------------------------------------

function h(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

// text sets an element's text only when it changed: a screen reader hears
// a live region only when there is something new to hear.
function text(id, s) {
  const e = $(id);
  if (e.textContent !== s) e.textContent = s;
}

// rebuild replaces an element's children only when their input changed.
const built = new Map();
function rebuild(id, input, build) {
  const key = JSON.stringify(input);
  if (built.get(id) === key) return;
  built.set(id, key);
  $(id).replaceChildren(...build());
}

const pct = v => `${v}%`;
function ms(v) {
  if (v === null || !Number.isFinite(v)) return '–';
  return v < 10 ? v.toFixed(1) : Math.round(v).toString();
}
// axis formats a tick with as many decimals as its axis needs: 0.25,
// 2.5, 25.
const axis = (v, top) => v.toFixed(top <= 2.5 ? 2 : top <= 25 ? 1 : 0);

function fmtTime(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}
function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}
const FINAL = new Set(['Completed', 'RolledBack', 'Aborted']);

// ---- rendering -----------------------------------------------------------

let status = null;
let clockSkew = 0;
let samples = [];
let events = [];

// approvalText describes a plan's approval gate. The plan's Approval is
// read with either key spelling: it is a YAML type and may reach JSON
// without tags (Count) or with them (count).
function approvalText(a, startedBy) {
  const count = a.count ?? a.Count ?? 1, group = a.group ?? a.Group, fourEyes = a.fourEyes ?? a.FourEyes;
  let s = `${count} approval${count > 1 ? 's' : ''}`;
  if (group) s += ` from group ${group}`;
  if (fourEyes) s += `, four-eyes${startedBy ? ` (not ${startedBy}, who started the shift)` : ''}`;
  return s;
}

function renderStatus() {
  const st = status, s = st.state, p = st.plan;
  const n = p.steps ? p.steps.length : 0;
  text('service', p.service || 'shift');
  text('plan-meta', `plan ${p.name} · router ${p.router} · metrics ${p.metrics} · digest ${String(p.digest || '').slice(0, 12)}`);
  document.title = `${s.phase} · ${p.service} · cutover`;

  const ph = $('phase');
  text('phase', s.phase);
  ph.className = 'phase ph-' + s.phase;
  const stepText = s.step < 0 ? 'not started' : `step ${s.step + 1} of ${n}`;
  text('step', stepText);

  const moving = s.target !== s.weight && !FINAL.has(s.phase);
  text('weights', `legacy ${100 - s.weight}% · new ${s.weight}%` + (moving ? ` → new ${s.target}% requested` : '') +
    (s.mirror ? ` · mirroring ${s.mirror}%` : ''));
  $('bar-legacy').style.width = `${100 - s.weight}%`;
  $('bar-new').style.width = `${s.weight}%`;

  text('waiting', FINAL.has(s.phase) ? 'nothing: the shift has ended' : st.waiting || '–');
  // The reason often says what the engine waits for, in the same words.
  text('reason', s.reason && s.reason !== st.waiting ? s.reason : '–');
  const started = fmtTime(s.started);
  text('started', started ? `${started}${s.startedBy ? ' by ' + s.startedBy : ''}` : (s.startedBy ? `by ${s.startedBy}` : '–'));
  text('failures', `${s.consecutiveFailures} in a row, ${s.cumulativeFailures} in all`);

  // The live region says what changed in words; the hold's countdown is
  // left out so that it does not speak every second.
  const wait = s.phase === 'Holding' ? '' : ` Waiting for: ${st.waiting}.`;
  text('live', `${s.phase}, ${stepText}, new side ${s.weight}%.${FINAL.has(s.phase) ? '' : wait}`);

  renderApproval();
  renderControls();
  renderTimeline();
  renderVerdict();
}

function renderApproval() {
  const s = status.state, steps = status.plan.steps || [];
  const waiting = s.phase === 'WaitingApproval' && steps[s.step] && steps[s.step].approval;
  $('approval').hidden = !waiting;
  if (!waiting) return;
  const st = steps[s.step];
  text('approval-text', `Step ${s.step + 1} (new side to ${st.weight}%) needs ${approvalText(st.approval, s.startedBy)}.`);
  const given = (s.approvals || []).filter(a => a.step === s.step);
  text('approval-given', given.length ? `Approved so far by ${given.map(a => a.actor).join(', ')}.` : 'No approvals yet.');
}

// busy is set while a command is on its way: one command at a time, so
// that a double click cannot approve and then refuse a second approval.
let busy = false;

function renderControls() {
  const s = status.state;
  const final = FINAL.has(s.phase) || busy;
  $('pause').disabled = final || s.phase === 'Paused' || s.phase === 'RollingBack';
  $('resume').disabled = busy || s.phase !== 'Paused';
  $('promote').disabled = busy || !(s.phase === 'Holding' || (s.phase === 'Paused' && s.resume === 'Holding'));
  $('abort').disabled = final;
  $('approve').disabled = $('reject').disabled = busy || s.phase !== 'WaitingApproval';
}

function stepState(i) {
  const s = status.state;
  const visits = (status.steps || []).filter(v => v.step === i);
  const last = visits[visits.length - 1];
  if (i === s.step && !FINAL.has(s.phase)) {
    const what = {
      WaitingApproval: 'waiting for approval', Blackout: 'waiting for a blackout to end', Setting: 'setting weight',
      Holding: 'holding', Paused: 'paused', RollingBack: 'rolling back', Pending: 'starting',
    }[s.phase] || s.phase;
    return { cls: 'current', label: what, last, visits };
  }
  if (last && last.outcome) return { cls: 'done ' + last.outcome.replace(/\s+/g, '-'), label: last.outcome, last, visits };
  if (last) return { cls: 'done', label: 'visited', last, visits };
  return { cls: 'pending', label: 'pending', last, visits };
}

function renderTimeline() {
  const s = status.state, steps = status.plan.steps || [];
  const rows = steps.map((st, i) => ({ st, ...stepState(i) }));
  rebuild('timeline', [rows, s.phase, s.step], () => rows.map(({ st, cls, label, last, visits }, i) => {
    const bits = [st.hold && st.hold !== '0s' ? `hold ${st.hold}` : 'no hold'];
    if (st.mirror) bits.push(`mirror ${st.mirror}%`);
    if (st.approval) bits.push(`needs ${approvalText(st.approval)}`);
    let detail = '';
    if (last && last.ended && !last.ended.startsWith('0001')) {
      detail = `held ${fmtDuration(new Date(last.ended) - new Date(last.started))}`;
    } else if (last) {
      detail = `since ${fmtTime(last.started)}`;
    }
    if (visits.length > 1) detail += ` · visited ${visits.length}×`;
    return h('li', { class: 'tl ' + cls, 'aria-current': cls === 'current' ? 'step' : null },
      h('span', { class: 'tl-dot', 'aria-hidden': 'true' }),
      h('div', { class: 'tl-body' },
        h('div', { class: 'tl-head' }, h('strong', {}, `Step ${i + 1}`), ` · new ${st.weight}%`,
          h('span', { class: 'tl-state' }, label)),
        h('div', { class: 'small' }, bits.join(' · ')),
        detail ? h('div', { class: 'small' }, detail) : null));
  }));
}

function renderVerdict() {
  const smp = status.sample;
  if (!smp) {
    text('verdict-summary', 'No analysis yet: the judge runs once the new side takes traffic.');
    rebuild('verdict', null, () => []);
    return;
  }
  const v = smp.verdict;
  if (smp.error) text('verdict-summary', `${fmtTime(smp.time)}: the metrics provider failed: ${smp.error}`);
  else if (v) text('verdict-summary', `${fmtTime(smp.time)} at new ${smp.weight}%: ${v.result}${v.reason ? ' — ' + v.reason : ''}`);
  const checks = (v && v.checks) || [];
  rebuild('verdict', checks, () => [
    h('thead', {}, h('tr', {}, ['Check', 'Result', 'New', 'Limit', 'Legacy'].map(c => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, checks.map(c => h('tr', { class: 'r-' + c.result, title: c.reason },
      h('td', {}, c.name), h('td', {}, c.result), h('td', {}, num(c.value, c.unit)),
      h('td', {}, num(c.limit, c.unit)), h('td', {}, num(c.baseline, c.unit))))),
  ]);
}

function num(v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 's') return `${ms(v * 1000)} ms`;
  if (unit === 'ratio') return `${(v * 100).toFixed(2)}%`;
  return v.toPrecision(3);
}

const EVENT_CLASS = {
  'command-refused': 'bad', rollback: 'bad', 'rolled-back': 'bad', aborted: 'bad', rejected: 'bad',
  approved: 'good', 'step-passed': 'good', completed: 'good', promoted: 'good',
  paused: 'warn', blackout: 'warn', 'approval-needed': 'warn',
};
const MAX_LOG = 300;

function renderLog() {
  const shown = events.slice(-MAX_LOG).reverse();
  rebuild('log', [events.length, events[events.length - 1]], () => shown.map(te => {
    const e = te.event || {};
    return h('tr', { class: 'ev ' + (EVENT_CLASS[e.type] || '') },
      h('td', { title: te.time }, fmtTime(te.time)), h('td', {}, e.type),
      h('td', {}, e.step >= 0 ? String(e.step + 1) : '–'), h('td', {}, String(e.weight ?? '')),
      h('td', {}, e.actor || ''), h('td', {}, e.message || ''));
  }));
  text('log-note', events.length > MAX_LOG ? `Showing the latest ${MAX_LOG} of ${events.length} events.` : '');
}

// weightSeries is the new side's confirmed weight over time. Samples alone
// would not do: none are taken at weight 0, so after a rollback the line
// would stay at the failed step's weight. Events that confirm a weight,
// and the state now, complete it.
const WEIGHT_EVENTS = new Set(['shift-started', 'weight-confirmed', 'rolled-back']);
function weightSeries() {
  const pts = samples.map(smp => [Date.parse(smp.time), smp.weight]);
  for (const te of events) {
    if (WEIGHT_EVENTS.has(te.event.type)) pts.push([Date.parse(te.time), te.event.weight ?? 0]);
  }
  if (status && pts.length && !FINAL.has(status.state.phase)) pts.push([Date.now() + clockSkew, status.state.weight]);
  return pts.filter(p => Number.isFinite(p[0])).sort((a, b) => a[0] - b[0]);
}

const MARKS = { 'step-started': 'step', rollback: 'bad', aborted: 'bad', paused: 'warn', promoted: 'step' };

function renderCharts() {
  const t = smp => Date.parse(smp.time);
  const side = (name, f) => samples.map(smp => [t(smp), f(smp[name] || {})]);
  const val = v => (v === null || v === undefined ? null : v);
  const rate = o => (o.requests > 0 && o.errors !== null ? (o.errors / o.requests) * 100 : null);
  const markers = events.filter(te => MARKS[te.event.type]).map(te => ({ t: Date.parse(te.time), cls: MARKS[te.event.type], label: te.event.message }));
  const last = samples[samples.length - 1];
  const legend = (id, f, fmt) => text(id, last ? `latest: legacy ${fmt(f(last.legacy || {}))}, new ${fmt(f(last.new || {}))}` : '');

  const charts = [
    ['ch-weight', [{ cls: 'new', points: weightSeries() }], { fmt: pct, max: 100, step: true }],
    ['ch-p99', [{ cls: 'legacy', points: side('legacy', o => val(o.p99) === null ? null : o.p99 * 1000) },
      { cls: 'new', points: side('new', o => val(o.p99) === null ? null : o.p99 * 1000) }], { fmt: axis }],
    ['ch-err', [{ cls: 'legacy', points: side('legacy', rate) }, { cls: 'new', points: side('new', rate) }], { fmt: axis }],
    ['ch-req', [{ cls: 'legacy', points: side('legacy', o => val(o.requests)) }, { cls: 'new', points: side('new', o => val(o.requests)) }], { fmt: v => String(Math.round(v)) }],
  ];
  // One time axis for all charts, from the first measurement to now (or
  // to the end of a shift that ended).
  const times = charts.flatMap(c => c[1].flatMap(s => s.points.map(p => p[0])));
  const span = times.length ? { x0: Math.min(...times), x1: Math.max(...times) } : {};
  for (const [id, series, opts] of charts) draw($(id), { series, markers, ...span, ...opts });

  text('lg-weight', status ? `now: ${status.state.weight}%` : '');
  legend('lg-p99', o => (val(o.p99) === null ? null : o.p99 * 1000), v => (v === null ? '–' : `${ms(v)} ms`));
  legend('lg-err', rate, v => (v === null ? '–' : `${v.toFixed(2)}%`));
  legend('lg-req', o => val(o.requests), v => (v === null ? '–' : String(Math.round(v))));
  for (const [id, lg] of [['ch-weight', 'lg-weight'], ['ch-p99', 'lg-p99'], ['ch-err', 'lg-err'], ['ch-req', 'lg-req']]) {
    $(id).setAttribute('aria-label', $(lg).textContent || 'no samples yet');
  }
}

// ---- refresh loop and event stream ---------------------------------------

let timer = null;
let running = false;
let stream = null;
let lastFullEvents = 0;

function setConn(s, bad) {
  text('conn', s);
  $('conn').className = 'conn' + (bad ? ' bad' : '');
}

// One refresh at a time: a refresh asked for while one is on its way (an
// event arrived) runs right after it, so that polling never forks into two
// loops.
let inflight = false;
let again = false;

async function refresh() {
  if (!running) return;
  if (inflight) { again = true; return; }
  inflight = true;
  clearTimeout(timer);
  try {
    const streamLive = stream && stream.readyState === EventSource.OPEN;
    // Without the stream, or every ten seconds with it (a slow stream
    // subscriber may miss events), the whole log is read again.
    const wantEvents = !streamLive || Date.now() - lastFullEvents > 10000;
    // Only the samples after the last one we hold: a long shift has
    // thousands, and this runs every second.
    const last = samples.length ? samples[samples.length - 1].time : '';
    const since = last ? '?since=' + encodeURIComponent(last) : '';
    const [st, smp, ev] = await Promise.all([get(API), get(API + '/samples' + since), wantEvents ? get(API + '/events') : null]);
    if (!running) return;
    status = st;
    samples = samples.concat(smp || []);
    if (samples.length > 7200) samples = samples.filter((_, i) => i % 2 === 0 || i === samples.length - 1);
    if (wantEvents) { events = ev || []; lastFullEvents = Date.now(); }
    renderStatus();
    renderCharts();
    renderLog();
    setConn(streamLive ? 'live' : 'polling');
  } catch (err) {
    if (err instanceof AuthError) { signOut('The token was refused. Enter a valid admin token.'); return; }
    setConn(`connection lost: ${err.message}; retrying`, true);
  } finally {
    inflight = false;
    if (running) {
      clearTimeout(timer);
      timer = setTimeout(refresh, again ? 0 : 1000);
    }
    again = false;
  }
}

let soon = null;
function refreshSoon() {
  if (soon) return;
  soon = setTimeout(() => { soon = null; refresh(); }, 50);
}

const EVENT_TYPES = ['shift-started', 'step-started', 'weight-confirmed', 'analysis', 'step-passed', 'approval-needed',
  'approved', 'rejected', 'blackout', 'paused', 'resumed', 'promoted', 'rollback', 'rolled-back', 'aborted', 'completed',
  'command-refused', 'message'];

function openStream() {
  if (!('EventSource' in window)) return;
  stream = new EventSource(API + '/stream');
  const onEvent = msg => {
    let te;
    try { te = JSON.parse(msg.data); } catch { return; }
    const key = x => `${x.time}|${x.event.type}|${x.event.step}|${x.event.message}`;
    const k = key(te);
    if (!events.slice(-50).some(x => key(x) === k)) events.push(te);
    refreshSoon();
  };
  for (const t of EVENT_TYPES) stream.addEventListener(t, onEvent);
  // Events may have happened between the first read of the log and the
  // stream's start: read the whole log again once it is open.
  stream.addEventListener('open', () => { lastFullEvents = 0; refreshSoon(); });
}

function start() {
  $('login').hidden = true;
  $('dash').hidden = false;
  $('signout').hidden = false;
  running = true;
  openStream();
  refresh();
}

function signOut(why) {
  running = false;
  clearTimeout(timer);
  if (stream) { stream.close(); stream = null; }
  clearToken();
  status = null;
  $('dash').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  text('login-error', why || '');
  setConn('');
  say('', '');
  $('token').focus();
}

// ---- commands ------------------------------------------------------------

let sayTimer = null;

// say shows the engine's answer. A refusal or failure stays until
// dismissed; a success fades after a while.
function say(kind, s) {
  const m = $('message');
  clearTimeout(sayTimer);
  m.className = 'msg ' + kind;
  m.textContent = s;
  $('message-close').hidden = !s;
  if (kind === 'ok') sayTimer = setTimeout(() => say('', ''), 10000);
}

async function command(kind, reason, input) {
  busy = true;
  document.querySelectorAll('#approval button, #operate button').forEach(b => { b.disabled = true; });
  say('info', `${kind}: sent, waiting for the engine…`);
  try {
    const r = await api('POST', `${API}/${kind}`, { reason: reason || '' });
    const evs = (r.data && r.data.events) || [];
    const refused = evs.filter(e => e.type === 'command-refused');
    if (refused.length) say('error', 'Refused: ' + refused.map(e => e.message).join('; '));
    else if (!r.ok) say('error', `${kind} failed (${r.status}): ${r.text.trim()}`);
    else {
      say('ok', evs.length ? evs.map(e => e.message).join('; ') : `${kind}: done`);
      if (input) $(input).value = '';
    }
  } catch (err) {
    if (err instanceof AuthError) { signOut('The token was refused. Enter a valid admin token.'); return; }
    say('error', `${kind} could not be sent: ${err.message}`);
  } finally {
    busy = false;
    if (status) renderControls();
  }
  refreshSoon();
}

function wire() {
  $('login-form').addEventListener('submit', ev => {
    ev.preventDefault();
    const tok = $('token').value.trim();
    if (!TOKEN_RE.test(tok)) {
      text('login-error', 'A token cannot contain spaces, quotes, commas, semicolons or backslashes.');
      return;
    }
    setToken(tok);
    $('token').value = '';
    text('login-error', '');
    start();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('message-close').addEventListener('click', () => say('', ''));
  $('approve').addEventListener('click', () => command('approve', $('approval-reason').value, 'approval-reason'));
  $('reject').addEventListener('click', () => command('reject', $('approval-reason').value, 'approval-reason'));
  $('pause').addEventListener('click', () => command('pause', $('command-reason').value, 'command-reason'));
  $('resume').addEventListener('click', () => command('resume', $('command-reason').value, 'command-reason'));
  $('promote').addEventListener('click', () => command('promote', $('command-reason').value, 'command-reason'));
  const dlg = $('abort-dialog');
  $('abort').addEventListener('click', () => {
    $('abort-reason').value = $('command-reason').value;
    dlg.returnValue = '';
    dlg.showModal();
  });
  dlg.addEventListener('close', () => {
    if (dlg.returnValue === 'abort') command('abort', $('abort-reason').value, 'command-reason');
  });
  // Charts follow the page's width.
  let rt = null;
  window.addEventListener('resize', () => {
    clearTimeout(rt);
    rt = setTimeout(() => { if (status) renderCharts(); }, 100);
  });
}

wire();
if (hasToken()) start();
else signOut('');
