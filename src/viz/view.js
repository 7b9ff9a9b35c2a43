'use strict';
// The view: the digested trace (built by src/viz/model.rs), lookups into it
// by time, and the view state (time window, filters) that the URL fragment
// mirrors, so a link or a headless screenshot can set what is shown.

const D = JSON.parse(document.getElementById('trace-data').textContent);

// Fields of one arrow tuple (`Arrow` in model.rs). Tuples, not objects:
// a long run has hundreds of thousands.
const A = {
  T0: 0, T1: 1, FROM: 2, TO: 3, KIND: 4, FATE: 5, DUP: 6, BALLOT: 7, SLOT: 8,
  SLOTS: 9, COMMANDS: 10, BYTES: 11, DIGEST: 12, ID: 13, REASON: 14,
};
const FATE = { DELIVERED: 0, DROPPED: 1, UNKNOWN: 2 };
// Fields of one chosen-slot tuple.
const C = { T: 0, LANE: 1, SLOT: 2, BALLOT: 3, COMMANDS: 4, DIGEST: 5 };

// First index in [0, n) where `pred` holds; `pred` must be false then true.
function lowerBound(n, pred) {
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pred(mid)) hi = mid; else lo = mid + 1;
  }
  return lo;
}

// Items sorted by start time end at scattered times. The running maximum of
// their ends never decreases, so a binary search over it finds the first
// item that can still reach into a window: everything before it ended
// earlier. This is what keeps a 100k-message trace responsive.
function runningMax(items, endOf) {
  const out = new Float64Array(items.length);
  let max = -Infinity;
  for (let i = 0; i < items.length; i++) {
    max = Math.max(max, endOf(items[i]));
    out[i] = max;
  }
  return out;
}

// [lo, hi) of items (sorted by start) that may overlap [t0, t1].
function visibleRange(items, startOf, endMax, t0, t1) {
  const lo = lowerBound(items.length, i => endMax[i] >= t0);
  const hi = lowerBound(items.length, i => startOf(items[i]) > t1);
  return [lo, Math.max(lo, hi)];
}

const index = {
  arrowEnds: runningMax(D.arrows, a => Math.max(a[A.T0], a[A.T1])),
  opEnds: runningMax(D.ops, o => (o.t1 === null ? D.t_max : o.t1)),
  // Commit indexes per lane, for "commit index at this time" on hover.
  commits: D.lanes.map((_, lane) => D.commits.filter(c => c[1] === lane)),
  kindCounts: D.kinds.map(() => 0),
};
for (const a of D.arrows) index.kindCounts[a[A.KIND]]++;

// The part of the timeline a fresh page shows: all of it, with a margin.
function fitWindow() {
  const span = Math.max(D.t_max - D.t_min, 1000);
  return [D.t_min - span * 0.02, D.t_max + span * 0.02];
}

const view = {
  t0: 0,
  t1: 1,
  kinds: new Set(D.kinds.map((_, i) => i)), // shown kind indexes
  lanes: D.lanes.map((_, i) => i),           // shown lane indexes, in order
  hover: null,                               // what the pointer is on
};

// Read `#t0=…&t1=…&kinds=accept,prepare&lanes=1,3` (times in the trace's
// clock, µs; kinds by name, or "all"/"none"; lanes by node id). Missing
// parts take their defaults, unknown names are ignored.
function readFragment(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  [view.t0, view.t1] = fitWindow();
  const t0 = Number(params.get('t0')), t1 = Number(params.get('t1'));
  if (params.has('t0') && Number.isFinite(t0)) view.t0 = t0;
  if (params.has('t1') && Number.isFinite(t1)) view.t1 = t1;
  if (!(view.t1 > view.t0)) [view.t0, view.t1] = fitWindow();
  const kinds = params.get('kinds');
  if (kinds === null || kinds === 'all') {
    view.kinds = new Set(D.kinds.map((_, i) => i));
  } else {
    const names = kinds === 'none' ? [] : kinds.split(',');
    view.kinds = new Set(names.map(n => D.kinds.indexOf(n)).filter(i => i >= 0));
  }
  const lanes = params.get('lanes');
  view.lanes = D.lanes.map((_, i) => i);
  if (lanes) {
    const ids = lanes.split(',').map(Number);
    const chosen = view.lanes.filter(i => ids.includes(D.lanes[i]));
    if (chosen.length > 0) view.lanes = chosen;
  }
}

// Write the view back into the fragment without adding history entries.
function writeFragment() {
  const parts = [`t0=${Math.round(view.t0)}`, `t1=${Math.round(view.t1)}`];
  if (view.kinds.size !== D.kinds.length) {
    const names = [...view.kinds].sort((a, b) => a - b).map(i => D.kinds[i]);
    parts.push(`kinds=${names.length ? names.join(',') : 'none'}`);
  }
  if (view.lanes.length !== D.lanes.length) {
    parts.push(`lanes=${view.lanes.map(i => D.lanes[i]).join(',')}`);
  }
  history.replaceState(null, '', '#' + parts.join('&'));
}

// Zoom by `factor` (< 1 zooms in) keeping time `at` under the same pixel.
function zoom(factor, at) {
  const span = view.t1 - view.t0;
  const next = Math.min(Math.max(span * factor, 5), (D.t_max - D.t_min + 1000) * 4);
  const f = (at - view.t0) / span;
  view.t0 = at - f * next;
  view.t1 = view.t0 + next;
}

function pan(dt) {
  view.t0 += dt;
  view.t1 += dt;
}

// --- text --------------------------------------------------------------

// Times on screen: simulated time from 0; wall time from the first event
// (the toolbar says when that was).
function timeBase() {
  return D.clock === 'wall' ? D.t_min : 0;
}

function fmtDuration(us) {
  const a = Math.abs(us);
  if (a === 0) return '0';
  if (a < 1000) return `${+us.toFixed(1)} µs`;
  if (a < 1e6) return `${+(us / 1000).toFixed(3)} ms`;
  return `${+(us / 1e6).toFixed(4)} s`;
}

function fmtTime(t) {
  return (D.clock === 'wall' ? '+' : '') + fmtDuration(t - timeBase());
}

function ballotText(i) {
  return i === null || i === undefined ? '–' : D.ballots[i];
}
