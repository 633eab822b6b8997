/*
 * The autoprune dashboard: one page, routed by the address's #fragment, that fetches JSON from
 * /api/* and updates in place. Store values only ever enter the page as text (textContent, or
 * attributes set one by one), never as markup. Live updates poll: a study's page asks for the trial
 * rows changed after the version it holds (`since`), like optuna-dashboard's incremental polling.
 * Charts are chart.js without animation (a 10,000-point scatter must draw at once).
 */
/* global Chart */

// ---- DOM helpers --------------------------------------------------------------------------------

/** An element: `attrs` keys `class`, `on<event>` (a function), anything else as an attribute; children are nodes or text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces the children of `el` (arrays are flattened). */
function fill(el, ...children) {
  return append(clear(el), children);
}

const pct = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : `${(x * 100).toFixed(d)}%`);
const mmacs = (m) => `${(m / 1e6).toFixed(2)} M`;
const count = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n));
const ms = (x) => (x === null || x === undefined ? '–' : `${x.toFixed(3)} ms`);
const secs = (s) =>
  s === null || s === undefined
    ? '–'
    : s < 1
      ? `${(s * 1000).toFixed(0)} ms`
      : s < 120
        ? `${s.toFixed(1)} s`
        : s < 7200
          ? `${(s / 60).toFixed(1)} min`
          : `${(s / 3600).toFixed(2)} h`;

function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '–';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const studyHref = (name, tab) => `#/study/${encodeURIComponent(name)}${tab ? `/${tab}` : ''}`;
const trialHref = (name, n) => `#/study/${encodeURIComponent(name)}/trial/${n}`;
/** What "best at target" counts: trials with FLOPs <= target + window (the report's `withinTarget`). */
const targetText = (t, w) => (w ? `≤ ${+((t + w) * 100).toFixed(1)}% (target ${+(t * 100).toFixed(1)}%)` : `≤ ${+(t * 100).toFixed(1)}%`);

async function api(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new Error(body?.error ?? `${res.status} ${res.statusText}`);
  return body;
}

// ---- what tests and the status line read ---------------------------------------------------------

/** Per study: the number of trial rows each update brought (the first is the full load). */
const debug = { deltas: [], polls: 0 };
window.__autoprune = debug;

// ---- client-side copy of a study's trials, kept up to date incrementally --------------------------

class StudyData {
  constructor(name) {
    this.name = name;
    this.rows = new Map();
    this.epoch = null;
    this.version = 0;
    this.summary = null;
  }

  /** Fetches what changed; returns the number of rows that arrived. */
  async sync() {
    const q = new URLSearchParams({ study: this.name, since: String(this.version) });
    if (this.epoch) q.set('epoch', this.epoch);
    const [d, summary] = await Promise.all([api(`/api/trials?${q}`), api(`/api/study?name=${encodeURIComponent(this.name)}`)]);
    if (d.reset) this.rows.clear();
    for (const r of d.rows) this.rows.set(r.n, r);
    this.epoch = d.epoch;
    this.version = d.version;
    this.summary = summary;
    debug.deltas.push({ study: this.name, rows: d.rows.length, reset: d.reset, version: d.version });
    if (debug.deltas.length > 200) debug.deltas.shift();
    return d.rows.length;
  }

  list() {
    return [...this.rows.values()].sort((a, b) => a.n - b.n);
  }
}

const studies = new Map();
function studyData(name) {
  if (!studies.has(name)) studies.set(name, new StudyData(name));
  return studies.get(name);
}

// ---- live polling ---------------------------------------------------------------------------------

let page = null; // { update: async () => void, dispose: () => void }
let timer = null;
const $main = document.getElementById('main');
const $status = document.getElementById('status');
const $live = document.getElementById('live');
const $interval = document.getElementById('interval');
$live.checked = localStorage.getItem('autoprune.live') !== 'off';
$interval.value = localStorage.getItem('autoprune.interval') || '2000';

function schedule() {
  clearTimeout(timer);
  if (!$live.checked) return;
  timer = setTimeout(tick, Number($interval.value));
}

async function tick() {
  const p = page;
  if (p?.update) {
    try {
      await p.update();
      debug.polls++;
      $status.textContent = `updated ${new Date().toLocaleTimeString()}`;
      $status.classList.remove('bad');
    } catch (e) {
      $status.textContent = `update failed: ${e.message}`;
      $status.classList.add('bad');
    }
  }
  if (p === page) schedule();
}

$live.addEventListener('change', () => {
  localStorage.setItem('autoprune.live', $live.checked ? 'on' : 'off');
  schedule();
});
$interval.addEventListener('change', () => {
  localStorage.setItem('autoprune.interval', $interval.value);
  schedule();
});

// ---- hover card ------------------------------------------------------------------------------------

const $card = document.getElementById('card');

function showCard(x, y, title, pairs) {
  clear($card);
  append($card, [
    h('b', {}, title),
    h(
      'dl',
      { class: 'kv' },
      pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
  ]);
  $card.hidden = false;
  const w = $card.offsetWidth;
  const hh = $card.offsetHeight;
  $card.style.left = `${Math.min(window.innerWidth - w - 8, x + 14)}px`;
  $card.style.top = `${Math.max(8, Math.min(window.innerHeight - hh - 8, y + 14))}px`;
}

function hideCard() {
  $card.hidden = true;
}

/** A trial record's rung: k for a rung-k fine-tune trial (stage `finetune`, meta.rung), else 0 (docs/rungs.md). */
function rungOf(t) {
  return t.stage === 'finetune' && t.meta && typeof t.meta.rung === 'number' ? t.meta.rung : 0;
}

function trialPairs(r, base) {
  const pairs = [
    ['state', r.state],
    ['controller', r.controller],
    ['FLOPs', `${pct(r.macs / base.macs, 1)} (${mmacs(r.macs)}MACs)`],
    ['params', count(r.params)],
    ['rung', String(r.rung)],
    [r.rung > 0 ? `validation acc, rung ${r.rung}` : 'proxy acc (rung 0)', pct(r.proxy)],
  ];
  if (r.final !== null) pairs.push(['fine-tuned test acc', pct(r.final)]);
  if (r.latency !== null) pairs.push(['latency', ms(r.latency)]);
  if (r.parent !== null) pairs.push(['parent', `#${r.parent}`]);
  return pairs;
}

// ---- charts -----------------------------------------------------------------------------------------

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];

function baseChartOptions(xTitle, yTitle) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    interaction: { mode: 'nearest', intersect: true },
    scales: {
      x: { type: 'linear', title: { display: true, text: xTitle } },
      y: { type: 'linear', title: { display: true, text: yTitle } },
    },
    plugins: { legend: { position: 'bottom' }, tooltip: { enabled: false } },
  };
}

/** Marks the first paint of a page's main chart (tests and the 2-second budget measure it). */
function markPainted(canvas, points) {
  requestAnimationFrame(() => {
    canvas.dataset.painted = String(points);
    if (!performance.getEntriesByName('autoprune:chart-painted').length) performance.mark('autoprune:chart-painted');
  });
}

/**
 * Accuracy vs cost scatter of a study: all complete trials, the proxy front as a line, the
 * uniform/global baselines, fine-tuned finalists and the base model. `xOf(row)` gives the x value
 * (null: not plotted). Hover shows the trial's card; a click opens it.
 */
class FrontChart {
  constructor(canvas, data, xOf, xTitle, ownFront) {
    this.data = data;
    /** Compute the front on this chart's x (latency) instead of the store's FLOPs front. */
    this.ownFront = ownFront;
    this.xOf = xOf;
    this.canvas = canvas;
    const opts = baseChartOptions(xTitle, 'accuracy (%)');
    opts.onClick = (_e, els) => {
      const el = els[0];
      if (!el) return;
      const p = this.chart.data.datasets[el.datasetIndex].data[el.index];
      if (p.n !== undefined) location.hash = trialHref(data.name, p.n);
    };
    opts.onHover = (e, els) => {
      canvas.style.cursor = els.length ? 'pointer' : 'default';
      const el = els[0];
      if (!el) return hideCard();
      const p = this.chart.data.datasets[el.datasetIndex].data[el.index];
      const s = data.summary;
      if (p.n === undefined) {
        return showCard(e.native.clientX, e.native.clientY, p.label, [
          ['accuracy', pct(p.y / 100)],
          ['MACs', mmacs(s.base.macs)],
        ]);
      }
      const r = data.rows.get(p.n);
      if (r) showCard(e.native.clientX, e.native.clientY, `Trial #${r.n}`, trialPairs(r, s.base));
    };
    canvas.addEventListener('mouseleave', hideCard);
    this.chart = new Chart(canvas, { type: 'scatter', data: { datasets: this.datasets() }, options: opts });
  }

  datasets() {
    const s = this.data.summary;
    const onFront = new Set(s.proxyFront);
    const all = [];
    const front = [];
    const uniform = [];
    const global = [];
    const fine = [];
    for (const r of this.data.rows.values()) {
      // Rung trials (rung >= 1) are fine-tunes of a search trial, not points of the proxy chart; the
      // last rung's accuracy is drawn at its origin (its final).
      if (r.state !== 'complete' || r.rung > 0) continue;
      const x = this.xOf(r);
      if (x === null) continue;
      if (r.proxy !== null) {
        const p = { x, y: r.proxy * 100, n: r.n };
        if (r.controller === 'uniform') uniform.push(p);
        else if (r.controller === 'global') global.push(p);
        else all.push(p);
        if (onFront.has(r.n)) front.push(p);
      }
      if (r.final !== null) fine.push({ x, y: r.final * 100, n: r.n });
    }
    let shownFront = front.sort((a, b) => a.x - b.x);
    if (this.ownFront) shownFront = paretoFront([...all, ...uniform, ...global]);
    const base = [];
    const baseX = this.xOf({ macs: s.base.macs, latency: null, base: true });
    if (baseX !== null) {
      if (s.base.proxyAccuracy !== null) base.push({ x: baseX, y: s.base.proxyAccuracy * 100, label: 'base model (validation)' });
      if (s.base.testAccuracy !== null) base.push({ x: baseX, y: s.base.testAccuracy * 100, label: 'base model (test)' });
    }
    const sets = [
      { label: `trials (${all.length})`, data: all, pointRadius: 2, pointHoverRadius: 5, backgroundColor: 'rgba(100,116,139,0.45)', borderWidth: 0 },
      {
        label: this.ownFront ? 'proxy Pareto front (on this axis)' : 'proxy Pareto front',
        data: shownFront,
        showLine: true,
        borderColor: COLORS[0],
        backgroundColor: COLORS[0],
        pointRadius: 3.5,
        borderWidth: 2,
      },
    ];
    if (uniform.length) sets.push({ label: 'uniform baseline', data: uniform, pointStyle: 'triangle', pointRadius: 5, backgroundColor: COLORS[4] });
    if (global.length) sets.push({ label: 'global baseline', data: global, pointStyle: 'rect', pointRadius: 4, backgroundColor: COLORS[2] });
    if (fine.length)
      sets.push({
        label: s.finalRung ? `fine-tuned (test, rung ${s.finalRung})` : 'fine-tuned (test)',
        data: fine,
        pointStyle: 'star',
        pointRadius: 7,
        borderColor: COLORS[1],
        backgroundColor: COLORS[1],
        borderWidth: 2,
      });
    if (base.length) sets.push({ label: 'base model', data: base, pointStyle: 'crossRot', pointRadius: 8, borderColor: '#111827', borderWidth: 3 });
    return sets;
  }

  update() {
    this.chart.data.datasets = this.datasets();
    this.chart.update('none');
  }

  destroy() {
    this.chart.destroy();
  }
}

/** Points no other point beats on both x (lower) and y (higher), x ascending: a sort-and-sweep. */
function paretoFront(points) {
  const sorted = [...points].sort((a, b) => a.x - b.x || b.y - a.y);
  const out = [];
  for (const p of sorted) if (!out.length || p.y > out[out.length - 1].y) out.push(p);
  return out;
}

function sparkline(values) {
  const c = h('canvas', { class: 'spark', width: 240, height: 56, 'aria-label': 'best proxy accuracy so far' });
  const g = c.getContext('2d');
  if (!g || values.length < 2) return c;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  g.strokeStyle = '#2563eb';
  g.lineWidth = 3;
  g.beginPath();
  values.forEach((v, i) => {
    const x = 2 + (i / (values.length - 1)) * 236;
    const y = 52 - (hi === lo ? 24 : ((v - lo) / (hi - lo)) * 48);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  return c;
}

// ---- pages ------------------------------------------------------------------------------------------

function crumbs(...parts) {
  const nav = clear(document.getElementById('crumbs'));
  parts.forEach(([text, href], i) => {
    if (i) nav.append(h('span', { class: 'sep' }, '/'));
    nav.append(href ? h('a', { href }, text) : h('span', {}, text));
  });
}

function badge(state) {
  return h('span', { class: `badge ${state}` }, state);
}

function bestCell(s, k) {
  return `${pct(s.bestProxy[k])} / ${pct(s.bestFinal[k])}`;
}

async function studiesPage() {
  crumbs(['studies']);
  const body = h('tbody');
  const selected = new Set();
  const compareBtn = h(
    'button',
    {
      disabled: true,
      onclick: () => {
        location.hash = `#/compare?${[...selected].map((n) => `s=${encodeURIComponent(n)}`).join('&')}`;
      },
    },
    'Compare selected',
  );
  const storeLine = h('p', { class: 'muted' });
  fill(
    $main,
    h('h1', {}, 'Studies'),
    storeLine,
    h('div', { class: 'toolbar' }, compareBtn, h('span', { class: 'muted' }, 'best accuracy per FLOPs target: proxy (validation) / fine-tuned (test)')),
    h(
      'table',
      { id: 'studies' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, ''),
          h('th', {}, 'study'),
          h('th', {}, 'state'),
          h('th', { class: 'num' }, 'done'),
          h('th', { class: 'num' }, 'failed'),
          h('th', { class: 'num' }, 'running'),
          h('th', {}, 'best at target (proxy / fine-tuned)'),
          h('th', {}, 'last activity'),
          h('th', {}, 'progress'),
        ),
      ),
      body,
    ),
  );
  const update = async () => {
    const d = await api('/api/studies');
    storeLine.textContent = `store: ${d.store} — ${d.studies.length} stud${d.studies.length === 1 ? 'y' : 'ies'}`;
    clear(body);
    if (!d.studies.length) body.append(h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No studies yet: run `autoprune search <config>`.')));
    for (const s of d.studies) {
      const box = h('input', {
        type: 'checkbox',
        'aria-label': `select ${s.name}`,
        onchange: (e) => {
          if (e.target.checked) selected.add(s.name);
          else selected.delete(s.name);
          compareBtn.disabled = selected.size < 1;
        },
      });
      box.checked = selected.has(s.name);
      body.append(
        h(
          'tr',
          { 'data-study': s.name },
          h('td', {}, box),
          h('td', {}, h('a', { href: studyHref(s.name) }, s.name)),
          h('td', {}, badge(s.state)),
          h('td', { class: 'num' }, String(s.counts.complete)),
          h('td', { class: 'num' }, String(s.counts.failed)),
          h('td', { class: 'num' }, `${s.counts.running}${s.counts.waiting ? ` (+${s.counts.waiting} queued)` : ''}`),
          h(
            'td',
            {},
            s.targets.map((t, k) => h('div', {}, `${targetText(t, s.window)}: ${bestCell(s, k)}`)),
          ),
          h('td', { title: s.lastActivity }, ago(s.lastActivity)),
          h('td', {}, sparkline(s.spark)),
        ),
      );
    }
  };
  await update();
  return { update, dispose() {} };
}

function studyHeader(data, tab) {
  const s = data.summary;
  crumbs(['studies', '#/'], [s.name, studyHref(s.name)]);
  const tabs = [
    ['front', 'Pareto front'],
    ['trials', 'Trials'],
    ['progress', 'Progress'],
    ['pick', 'Pick'],
  ];
  const stats = h('div', { class: 'stats' });
  const fillStats = () => {
    const x = data.summary;
    fill(
      stats,
      h('div', {}, h('b', { class: 'stat-complete' }, String(x.counts.complete)), 'complete'),
      h('div', {}, h('b', {}, String(x.counts.failed)), 'failed'),
      h('div', {}, h('b', {}, String(x.counts.running)), 'running'),
      h('div', {}, h('b', {}, String(x.counts.waiting)), 'queued'),
      h('div', {}, h('b', {}, String(x.counts.finalists)), 'fine-tuned'),
      h('div', {}, h('b', {}, x.hypervolume.toFixed(4)), 'hypervolume'),
      // Rank agreement between consecutive rungs (docs/rungs.md), one stat per pair.
      ...(x.rungAgreement ?? []).map((a) =>
        h(
          'div',
          { title: `Kendall tau between rung ${a.from} and rung ${a.to} over the ${a.n} candidates that reached both` },
          h('b', {}, a.tau === null ? '–' : a.tau.toFixed(2)),
          `tau rung ${a.from}→${a.to} (n=${a.n})`,
        ),
      ),
      h('div', {}, h('b', {}, pct(x.base.proxyAccuracy)), 'base (validation)'),
      h('div', {}, h('b', {}, ago(x.lastActivity)), 'last activity'),
    );
  };
  fillStats();
  const el = h(
    'div',
    {},
    h('h1', {}, s.name, ' ', badge(s.state)),
    stats,
    h(
      'nav',
      { class: 'tabs' },
      tabs.map(([id, text]) => h('a', { href: studyHref(s.name, id === 'front' ? '' : id), class: id === tab ? 'on' : '' }, text)),
      h('a', { href: `#/compare?s=${encodeURIComponent(s.name)}` }, 'Compare…'),
    ),
  );
  return { el, refresh: fillStats };
}

function targetsTable(s) {
  const tbody = h('tbody');
  s.targets.forEach((t, k) => {
    tbody.append(
      h(
        'tr',
        {},
        h('td', {}, targetText(t, s.window)),
        h('td', { class: 'num' }, pct(s.bestProxy[k])),
        h('td', { class: 'num' }, pct(s.bestFinal[k])),
        h('td', { class: 'num' }, pct(s.baselineBest.uniform[k])),
        h('td', { class: 'num' }, pct(s.baselineBest.global[k])),
      ),
    );
  });
  return h(
    'table',
    { class: 'targets' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'FLOPs target'),
        h('th', { class: 'num' }, 'best proxy'),
        h('th', { class: 'num' }, 'best fine-tuned'),
        h('th', { class: 'num' }, 'uniform'),
        h('th', { class: 'num' }, 'global'),
      ),
    ),
    tbody,
  );
}

async function studyPage(name) {
  const data = studyData(name);
  await data.sync();
  const head = studyHeader(data, 'front');
  const canvas = h('canvas', { id: 'front-chart', 'aria-label': 'accuracy vs FLOPs' });
  const latCanvas = h('canvas', { id: 'latency-chart', 'aria-label': 'accuracy vs latency' });
  const latPanel = h('div', { class: 'panel' }, h('h2', {}, 'Accuracy vs measured latency'), h('div', { class: 'chart small' }, latCanvas));
  const targets = h('div', {}, targetsTable(data.summary));
  fill(
    $main,
    head.el,
    h(
      'div',
      { class: 'panel' },
      h('h2', {}, 'Accuracy vs FLOPs (% of the base model)'),
      h('p', { class: 'muted' }, 'Hover a point for its trial, click to open it.'),
      h('div', { class: 'chart' }, canvas),
    ),
    latPanel,
    h('div', { class: 'panel' }, h('h2', {}, 'Best accuracy per FLOPs target'), targets),
  );
  const flopsChart = new FrontChart(canvas, data, (r) => (r.macs / data.summary.base.macs) * 100, 'FLOPs (% of base model)');
  markPainted(canvas, data.rows.size);
  let latChart = null;
  const ensureLatency = () => {
    latPanel.hidden = !data.summary.hasLatency;
    if (data.summary.hasLatency && !latChart) latChart = new FrontChart(latCanvas, data, (r) => (r.base ? null : r.latency), 'latency (ms per image)', true);
  };
  ensureLatency();
  return {
    async update() {
      const before = data.version;
      await data.sync();
      head.refresh();
      if (data.version === before) return;
      flopsChart.update();
      ensureLatency();
      latChart?.update();
      fill(targets, targetsTable(data.summary));
    },
    dispose() {
      flopsChart.destroy();
      latChart?.destroy();
      hideCard();
    },
  };
}

const COLUMNS = [
  { key: 'n', label: 'trial', num: true, text: (r) => `#${r.n}` },
  { key: 'state', label: 'state', text: (r) => r.state },
  { key: 'controller', label: 'controller', text: (r) => r.controller },
  { key: 'flops', label: 'FLOPs', num: true, value: (r, b) => r.macs / b.macs, text: (r, b) => pct(r.macs / b.macs, 1) },
  { key: 'params', label: 'params', num: true, text: (r) => count(r.params) },
  { key: 'rung', label: 'rung', num: true, text: (r) => String(r.rung) },
  { key: 'proxy', label: 'validation acc', num: true, text: (r) => pct(r.proxy) },
  { key: 'final', label: 'fine-tuned test acc', num: true, text: (r) => pct(r.final) },
  { key: 'latency', label: 'latency', num: true, text: (r) => ms(r.latency) },
  { key: 'finished', label: 'finished', text: (r) => (r.finished ? r.finished.replace('T', ' ').slice(0, 19) : '') },
  { key: 'error', label: 'error', text: (r) => r.error ?? '', cls: 'err' },
];
const PAGE = 50;

async function trialsPage(name) {
  const data = studyData(name);
  await data.sync();
  const head = studyHeader(data, 'trials');
  const st = { sort: 'n', asc: true, page: 0, state: '', controller: '', text: '' };
  const tbody = h('tbody');
  const thead = h('thead');
  const info = h('span', { class: 'muted' });
  const stateSel = h(
    'select',
    { 'aria-label': 'state', onchange: (e) => ((st.state = e.target.value), (st.page = 0), render()) },
    ['', 'complete', 'failed', 'running', 'waiting'].map((s) => h('option', { value: s }, s || 'any state')),
  );
  const ctlSel = h('select', { 'aria-label': 'controller', onchange: (e) => ((st.controller = e.target.value), (st.page = 0), render()) });
  const search = h('input', {
    type: 'search',
    placeholder: 'trial # or error text',
    'aria-label': 'filter',
    oninput: (e) => ((st.text = e.target.value.trim().toLowerCase()), (st.page = 0), render()),
  });
  const prev = h('button', { onclick: () => ((st.page = Math.max(0, st.page - 1)), render()) }, '‹ prev');
  const next = h('button', { onclick: () => (st.page++, render()) }, 'next ›');
  const fillControllers = () => {
    const names = [...new Set([...data.rows.values()].map((r) => r.controller))].sort();
    if (ctlSel.options.length === names.length + 1) return;
    fill(
      ctlSel,
      h('option', { value: '' }, 'any controller'),
      names.map((n) => h('option', { value: n }, n)),
    );
    ctlSel.value = st.controller;
  };
  const render = () => {
    const base = data.summary.base;
    const col = COLUMNS.find((c) => c.key === st.sort);
    const val = col.value ? (r) => col.value(r, base) : (r) => r[col.key];
    let rows = [...data.rows.values()];
    if (st.state) rows = rows.filter((r) => r.state === st.state);
    if (st.controller) rows = rows.filter((r) => r.controller === st.controller);
    if (st.text) rows = rows.filter((r) => String(r.n) === st.text.replace(/^#/, '') || (r.error ?? '').toLowerCase().includes(st.text));
    const dir = st.asc ? 1 : -1;
    rows.sort((a, b) => {
      const x = val(a);
      const y = val(b);
      if (x === y) return a.n - b.n;
      if (x === null || x === undefined) return 1; // empty cells last either way
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    const shown = rows.slice(st.page * PAGE, (st.page + 1) * PAGE);
    fill(
      thead,
      h(
        'tr',
        {},
        COLUMNS.map((c) =>
          h(
            'th',
            {
              class: `sortable${c.num ? ' num' : ''}${c.key === st.sort ? ` sorted${st.asc ? ' asc' : ''}` : ''}`,
              'data-key': c.key,
              onclick: () => {
                if (st.sort === c.key) st.asc = !st.asc;
                else (st.sort = c.key), (st.asc = !c.num || c.key === 'n' || c.key === 'flops' || c.key === 'params');
                render();
              },
            },
            c.label,
          ),
        ),
      ),
    );
    fill(
      tbody,
      shown.map((r) =>
        h(
          'tr',
          { class: 'link', 'data-trial': r.n, onclick: () => (location.hash = trialHref(name, r.n)) },
          COLUMNS.map((c) => h('td', { class: [c.num ? 'num' : '', c.cls ?? ''].join(' ').trim() || null }, c.text(r, base))),
        ),
      ),
    );
    info.textContent = rows.length
      ? `${st.page * PAGE + 1}–${st.page * PAGE + shown.length} of ${rows.length} (${data.rows.size} trials)`
      : `none of ${data.rows.size} trials match`;
    prev.disabled = st.page === 0;
    next.disabled = st.page >= pages - 1;
  };
  fillControllers();
  fill($main, head.el, h('div', { class: 'toolbar' }, stateSel, ctlSel, search, prev, next, info), h('table', { id: 'trials' }, thead, tbody));
  render();
  return {
    async update() {
      const before = data.version;
      await data.sync();
      head.refresh();
      if (data.version === before) return;
      fillControllers();
      render();
    },
    dispose() {},
  };
}

async function progressPage(name) {
  const data = studyData(name);
  await data.sync();
  const head = studyHeader(data, 'progress');
  const accCanvas = h('canvas', { id: 'progress-chart', 'aria-label': 'best accuracy over time' });
  const hvCanvas = h('canvas', { id: 'hv-chart', 'aria-label': 'hypervolume over time' });
  fill(
    $main,
    head.el,
    h(
      'div',
      { class: 'grid2' },
      h('div', { class: 'panel' }, h('h2', {}, 'Best proxy accuracy so far'), h('div', { class: 'chart small' }, accCanvas)),
      h('div', { class: 'panel' }, h('h2', {}, 'Hypervolume of the proxy front'), h('div', { class: 'chart small' }, hvCanvas)),
    ),
    h(
      'p',
      { class: 'muted' },
      'x: time from the creation of the first trial to the end of each completed one. Hypervolume: area dominated on (FLOPs / base, accuracy), reference (1, 0).',
    ),
  );
  const make = (canvas, yTitle) => {
    const o = baseChartOptions('time since the first trial', yTitle);
    o.scales.x.min = 0;
    o.interaction = { mode: 'nearest', intersect: false };
    o.plugins.tooltip = { enabled: true };
    return new Chart(canvas, { type: 'line', data: { datasets: [] }, options: o });
  };
  const acc = make(accCanvas, 'accuracy (%)');
  const hv = make(hvCanvas, 'hypervolume');
  let shown = -1;
  const load = async () => {
    if (shown === data.version) return;
    const p = await api(`/api/progress?study=${encodeURIComponent(name)}`);
    shown = data.version;
    // The unit follows the span: a smoke search lasts seconds, an overnight one hours.
    const span = Math.max(0, ...p.steps.map((s) => s.seconds ?? 0));
    const [unit, per] = span < 120 ? ['seconds', 1] : span < 7200 ? ['minutes', 60] : ['hours', 3600];
    for (const c of [acc, hv]) c.options.scales.x.title.text = `${unit} since the first trial`;
    const x = (s, i) => (s.seconds === null ? i : s.seconds / per);
    const line = (label, color, pts) => ({ label, data: pts, borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2, stepped: true });
    acc.data.datasets = [
      // Dashed: it often coincides with a target's line, which must stay visible beneath it.
      {
        ...line(
          'best overall',
          COLORS[6],
          p.steps.map((s, i) => ({ x: x(s, i), y: s.bestProxyAccuracy * 100 })),
        ),
        borderDash: [5, 4],
      },
      ...p.targets.map((t, k) =>
        line(
          `best at ${targetText(t, p.window)}`,
          COLORS[k % COLORS.length],
          p.steps.filter((s) => s.bestAtTarget[k] !== null).map((s, i) => ({ x: x(s, i), y: s.bestAtTarget[k] * 100 })),
        ),
      ),
    ];
    hv.data.datasets = [
      line(
        'hypervolume',
        COLORS[0],
        p.steps.map((s, i) => ({ x: x(s, i), y: s.hypervolume })),
      ),
    ];
    acc.update('none');
    hv.update('none');
    markPainted(accCanvas, p.steps.length);
  };
  await load();
  return {
    async update() {
      await data.sync();
      head.refresh();
      await load();
    },
    dispose() {
      acc.destroy();
      hv.destroy();
    },
  };
}

function copyButton(text) {
  return h(
    'button',
    {
      type: 'button',
      onclick: async (e) => {
        try {
          await navigator.clipboard.writeText(text);
          e.target.textContent = 'copied';
        } catch {
          e.target.textContent = 'select and copy';
        }
      },
    },
    'copy',
  );
}

async function pickPage(name) {
  const data = studyData(name);
  await data.sync();
  const head = studyHeader(data, 'pick');
  const field = (id, label, ph) => h('label', {}, label, h('input', { type: 'text', name: id, placeholder: ph }));
  const out = h('div', { id: 'pick-result' });
  const form = h(
    'form',
    { class: 'pick panel' },
    field('maxFlops', 'max FLOPs (of base)', '50% or 0.5'),
    field('maxParams', 'max params', '120k or 1.2M'),
    field('maxLatency', 'max latency (ms/image)', '2 or 0.5ms'),
    field('minAcc', 'min accuracy', '0.9 or 90%'),
    h('label', {}, 'top', h('input', { type: 'number', name: 'top', value: '10', min: '1' })),
    h('button', { type: 'submit' }, 'Pick'),
  );
  const run = async () => {
    const q = new URLSearchParams({ study: name });
    for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
    clear(out);
    try {
      const r = await api(`/api/pick?${q}`);
      const where = r.latency
        ? ` Latencies measured by ${r.latency.engine ?? 'no engine'}${r.latency.host ? ` on ${r.latency.host}` : ''}${r.latency.dropped ? ` (${r.latency.dropped} trials measured elsewhere left out)` : ''}.`
        : '';
      out.append(
        h('p', {}, `${r.matched} of ${r.complete} complete trials meet the constraints.${where}`),
        h('p', { class: 'muted' }, 'The same from a terminal:'),
        h('code', { class: 'cmd' }, r.command),
      );
      if (!r.rows.length) return;
      out.append(
        h(
          'table',
          { id: 'picked' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['rank', 'trial', 'FLOPs', 'MACs', 'params', 'accuracy', 'measured on', 'latency', 'export'].map((t) => h('th', {}, t)),
            ),
          ),
          h(
            'tbody',
            {},
            r.rows.map((c) =>
              h(
                'tr',
                { 'data-trial': c.trial },
                h('td', { class: 'num' }, String(c.rank)),
                h('td', {}, h('a', { href: trialHref(name, c.trial) }, `#${c.trial}`)),
                h('td', { class: 'num' }, pct(c.flopsFraction, 1)),
                h('td', { class: 'num' }, mmacs(c.macs)),
                h('td', { class: 'num' }, count(c.params)),
                h('td', { class: 'num' }, pct(c.accuracy)),
                h(
                  'td',
                  {},
                  c.accuracySource === 'final' ? `test, ${c.rung === null ? 'fine-tuned' : `rung ${c.rung} (fine-tune)`}` : 'validation, rung 0 (proxy)',
                ),
                h('td', { class: 'num' }, ms(c.latencyMs)),
                h('td', {}, h('code', {}, c.exportCommand), ' ', copyButton(c.exportCommand)),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      out.append(h('p', { class: 'bad', role: 'alert' }, e.message));
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  fill(
    $main,
    head.el,
    h(
      'p',
      { class: 'muted' },
      'Complete trials that meet every constraint, best accuracy first (fine-tuned test accuracy for finalists, else proxy), as `autoprune pick` ranks them.',
    ),
    form,
    out,
  );
  await run();
  return {
    async update() {
      await data.sync();
      head.refresh();
    },
    dispose() {},
  };
}

async function trialPage(name, n) {
  const data = studyData(name);
  const load = () => api(`/api/trial?study=${encodeURIComponent(name)}&n=${n}`);
  let d = await load();
  if (!data.summary) await data.sync();
  crumbs(['studies', '#/'], [name, studyHref(name)], [`trial #${n}`]);
  const root = h('div');
  const render = () => {
    const t = d.trial;
    const b = d.base;
    const dur = t.startedAt && t.finishedAt ? (Date.parse(t.finishedAt) - Date.parse(t.startedAt)) / 1000 : null;
    const kv = (pairs) =>
      h(
        'dl',
        { class: 'kv' },
        pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      );
    const link = (m) => h('a', { href: trialHref(name, m) }, `#${m}`);
    const delta = (a, base) =>
      a === null || a === undefined || base === null ? '' : ` (${a - base >= 0 ? '+' : ''}${((a - base) * 100).toFixed(2)} pp vs base)`;
    fill(
      root,
      h('h1', {}, `Trial #${t.number} `, badge(t.state), d.onProxyFront ? h('span', { class: 'badge complete' }, 'on the proxy front') : null),
      h('p', { class: 'muted' }, `study ${name}`),
      t.error ? h('div', { class: 'panel' }, h('h2', {}, 'Error'), h('pre', { class: 'error', id: 'trial-error' }, t.error)) : null,
      h(
        'div',
        { class: 'grid2' },
        h(
          'div',
          { class: 'panel' },
          h('h2', {}, 'Costs and accuracy'),
          kv([
            ['FLOPs', `${pct(t.cost.macs / b.macs, 1)} of base (${mmacs(t.cost.macs)}MACs; base ${mmacs(b.macs)}MACs)`],
            ['speed-up (FLOPs)', `${(b.macs / t.cost.macs).toFixed(2)}×`],
            ['params', `${count(t.cost.params)} (${pct(t.cost.params / b.params, 1)} of base)`],
            [
              rungOf(t) > 0 ? `validation accuracy (rung ${rungOf(t)})` : 'proxy accuracy (validation, rung 0)',
              `${pct(t.metrics.proxyAccuracy)}${delta(t.metrics.proxyAccuracy, b.proxyAccuracy)}`,
            ],
            [
              d.final && d.finalRung ? `fine-tuned accuracy (test, rung ${d.finalRung})` : 'fine-tuned accuracy (test)',
              d.final
                ? `${pct(d.final.finalAccuracy)}${delta(d.final.finalAccuracy, b.testAccuracy)}, ${d.final.epochs} epoch${d.final.epochs === 1 ? '' : 's'}${d.final.trainEngine ? ` on ${d.final.trainEngine}` : ''}`
                : rungOf(t) > 0 && t.metrics.finalAccuracy != null
                  ? `${pct(t.metrics.finalAccuracy)}${delta(t.metrics.finalAccuracy, b.testAccuracy)} after rung ${rungOf(t)}`
                  : '–',
            ],
            [
              'latency',
              t.metrics.latencyMs !== undefined
                ? `${ms(t.metrics.latencyMs)}${d.latencyEngine ? ` on ${d.latencyEngine}` : ''}${t.metrics.latencyDevice ? ` (${t.metrics.latencyDevice})` : ''}`
                : '–',
            ],
          ]),
        ),
        h(
          'div',
          { class: 'panel' },
          h('h2', {}, 'Run'),
          kv([
            ['controller', `${t.controller}${t.meta && typeof t.meta.target === 'number' ? ` (target ${pct(t.meta.target, 0)})` : ''}`],
            ['stage', t.stage],
            ['parent', t.parent === null ? 'base model' : link(t.parent)],
            ['children', d.children.length ? d.children.flatMap((c, i) => (i ? [' ', link(c)] : [link(c)])) : '–'],
            ['worker', t.worker ?? '–'],
            ['host', d.host ?? '–'],
            ['engine', d.latencyEngine ?? '–'],
            ['attempts', String(t.attempts)],
            ['created', t.createdAt],
            ['started', t.startedAt ?? '–'],
            ['finished', t.finishedAt ?? '–'],
            ['evaluation time', secs(dur)],
          ]),
        ),
      ),
      h(
        'div',
        { class: 'panel' },
        h('h2', {}, 'Keep ratio per group'),
        h(
          'div',
          { class: 'bars', id: 'keep-bars' },
          d.groups.map((g) =>
            h(
              'div',
              { class: 'bar' },
              h('span', { class: 'label', title: g.id }, g.id),
              h('span', { class: 'track' }, h('span', { class: 'fill', style: `width: ${Math.max(0, Math.min(1, g.ratio ?? 0)) * 100}%` })),
              h('span', { class: 'num' }, g.kept === null ? '–' : `${g.kept}/${g.channels} (${(g.ratio ?? 0).toFixed(2)})`),
            ),
          ),
        ),
      ),
      t.metrics.timings ? h('div', { class: 'panel' }, h('h2', {}, 'Timings'), kv(Object.entries(t.metrics.timings).map(([k, v]) => [k, secs(v)]))) : null,
      d.artifacts.length
        ? h('div', { class: 'panel' }, h('h2', {}, 'Artifacts'), kv(d.artifacts.map((a) => [a.key, `${count(a.size)} B, sha256 ${a.sha256.slice(0, 12)}…`])))
        : null,
      d.exportCommand
        ? h('div', { class: 'panel' }, h('h2', {}, 'Export'), h('code', { class: 'cmd' }, d.exportCommand), ' ', copyButton(d.exportCommand))
        : null,
    );
  };
  render();
  fill($main, root);
  return {
    async update() {
      if (d.trial.state === 'complete' || d.trial.state === 'failed') {
        if (d.final || d.trial.state === 'failed') return; // finished and nothing more can come
      }
      const next = await load();
      if (JSON.stringify(next) !== JSON.stringify(d)) {
        d = next;
        render();
      }
    },
    dispose() {},
  };
}

async function comparePage(names) {
  crumbs(['studies', '#/'], ['compare']);
  const all = await api('/api/studies');
  const chosen = new Set(names.filter((n) => all.studies.some((s) => s.name === n)));
  const picker = h('div', { class: 'toolbar' });
  const canvas = h('canvas', { id: 'compare-chart', 'aria-label': 'proxy fronts of the chosen studies' });
  const table = h('div');
  const note = h('p', { class: 'muted' });
  fill(
    $main,
    h('h1', {}, 'Compare studies'),
    picker,
    h('div', { class: 'panel' }, h('h2', {}, 'Proxy Pareto fronts'), h('div', { class: 'chart' }, canvas)),
    h('div', { class: 'panel' }, h('h2', {}, 'Hypervolume and best accuracy per target'), table, note),
  );
  const opts = baseChartOptions('FLOPs (% of each base model)', 'proxy accuracy (%)');
  opts.plugins.tooltip = { enabled: true };
  opts.onClick = (_e, els) => {
    const el = els[0];
    if (!el) return;
    const ds = chart.data.datasets[el.datasetIndex];
    location.hash = trialHref(ds.study, ds.data[el.index].n);
  };
  const chart = new Chart(canvas, { type: 'scatter', data: { datasets: [] }, options: opts });
  let sig = '';
  const load = async (force) => {
    const list = await api('/api/studies');
    const s2 = JSON.stringify([[...chosen], list.studies.map((s) => [s.name, s.version, s.epoch])]);
    if (!force && s2 === sig) return;
    sig = s2;
    fill(
      picker,
      list.studies.map((s) => {
        const box = h('input', {
          type: 'checkbox',
          onchange: (e) => {
            if (e.target.checked) chosen.add(s.name);
            else chosen.delete(s.name);
            history.replaceState(null, '', `#/compare?${[...chosen].map((n) => `s=${encodeURIComponent(n)}`).join('&')}`);
            load(true);
          },
        });
        box.checked = chosen.has(s.name);
        return h('label', {}, box, ' ', s.name);
      }),
    );
    if (!chosen.size) {
      chart.data.datasets = [];
      chart.update('none');
      fill(table, h('p', { class: 'muted' }, 'Choose one or more studies.'));
      return;
    }
    const c = await api(`/api/compare?${[...chosen].map((n) => `s=${encodeURIComponent(n)}`).join('&')}`);
    chart.data.datasets = c.studies.map((s, i) => ({
      label: s.name,
      study: s.name,
      data: s.front.map((p) => ({ x: p.flopsFraction * 100, y: p.accuracy * 100, n: p.trial })),
      showLine: true,
      stepped: false,
      borderColor: COLORS[i % COLORS.length],
      backgroundColor: COLORS[i % COLORS.length],
      // Every other study dashed: fronts that coincide stay visible.
      borderDash: i % 2 ? [6, 4] : [],
      pointStyle: ['circle', 'rect', 'triangle', 'rectRot'][i % 4],
      pointRadius: 3.5,
    }));
    chart.update('none');
    markPainted(canvas, c.studies.length);
    fill(
      table,
      h(
        'table',
        { id: 'compare' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'study'),
            h('th', { class: 'num' }, 'trials'),
            h('th', { class: 'num' }, 'complete'),
            h('th', { class: 'num' }, 'hypervolume'),
            c.targets.map((t) => h('th', { class: 'num' }, `best @ ≤ ${+(t * 100).toFixed(1)}%`)),
            h('th', { class: 'num' }, 'wall time'),
          ),
        ),
        h(
          'tbody',
          {},
          c.studies.map((s) =>
            h(
              'tr',
              {},
              h('td', {}, h('a', { href: studyHref(s.name) }, s.name)),
              h('td', { class: 'num' }, String(s.trials)),
              h('td', { class: 'num' }, String(s.complete)),
              h('td', { class: 'num' }, s.hypervolume.toFixed(4)),
              s.bestAtTarget.map((b) => h('td', { class: 'num' }, pct(b))),
              h('td', { class: 'num' }, secs(s.wallSeconds)),
            ),
          ),
        ),
      ),
    );
    note.textContent = c.sameBase ? '' : "The studies have different base models: FLOPs and hypervolumes are normalised by each base model's MACs.";
  };
  await load(true);
  return { update: () => load(false), dispose: () => chart.destroy() };
}

// ---- router -----------------------------------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'study' && parts.length >= 2) {
    const name = parts[1];
    if (parts[2] === 'trial' && /^\d+$/.test(parts[3] ?? '')) return () => trialPage(name, Number(parts[3]));
    if (parts[2] === 'trials') return () => trialsPage(name);
    if (parts[2] === 'progress') return () => progressPage(name);
    if (parts[2] === 'pick') return () => pickPage(name);
    return () => studyPage(name);
  }
  if (parts[0] === 'compare') return () => comparePage(new URLSearchParams(query ?? '').getAll('s'));
  return () => studiesPage();
}

let navigation = 0;
async function navigate() {
  const mine = ++navigation;
  clearTimeout(timer);
  page?.dispose();
  page = null;
  hideCard();
  try {
    const p = await route()();
    if (mine !== navigation) return p.dispose();
    page = p;
    $status.textContent = '';
  } catch (e) {
    if (mine !== navigation) return;
    fill($main, h('p', { class: 'bad', role: 'alert' }, e.message), h('p', {}, h('a', { href: '#/' }, 'All studies')));
  }
  schedule();
}

window.addEventListener('hashchange', navigate);
navigate();
