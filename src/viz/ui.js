// The toolbar, legend and pointer: everything that changes the view, and
// the hover details. Redraws are batched into one per animation frame.

const tip = document.getElementById('tip');

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'style') e.style.cssText = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

let framePending = false;
function redraw() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => {
    framePending = false;
    draw();
    writeFragment();
  });
}

function relayout() {
  layout();
  draw();
  writeFragment();
}

// --- toolbar -------------------------------------------------------------

function buildToolbar() {
  document.getElementById('title').textContent = D.title;
  const info = [`${D.source === 'sim' ? 'simulator' : 'live cluster'}`, `${D.lanes.length} replicas`];
  if (D.seed !== null) info.push(`seed ${D.seed}`);
  info.push(`${D.arrows.length} messages`, `${D.ops.length} client ops`);
  info.push(D.clock === 'wall' ? `wall clock, t=0 at ${new Date(D.t_min / 1000).toISOString()}` : 'simulated time');
  if (D.unmatched) info.push(`${D.unmatched} deliveries without a send`);
  document.getElementById('info').textContent = info.join(' · ');
  if (D.command) document.getElementById('info').title = D.command;

  const buttons = document.getElementById('buttons');
  const button = (label, title, act) => buttons.append(el('button', { title, onclick: () => { act(); redraw(); } }, label));
  const mid = () => (view.t0 + view.t1) / 2;
  button('−', 'zoom out (-, wheel)', () => zoom(2, mid()));
  button('+', 'zoom in (+, wheel, double-click)', () => zoom(0.5, mid()));
  button('◀', 'pan left (←, drag)', () => pan(-(view.t1 - view.t0) * 0.25));
  button('▶', 'pan right (→, drag)', () => pan((view.t1 - view.t0) * 0.25));
  button('fit', 'show the whole run (0)', () => ([view.t0, view.t1] = fitWindow()));

  buildKindFilters();
  buildLaneFilters();
  buildLegend();
  buildViolations();
}

// One checkbox per message kind present, in its arrow colour.
function buildKindFilters() {
  const box = document.getElementById('kinds');
  box.replaceChildren(el('span', { class: 'heading' }, 'messages'));
  D.kinds.forEach((name, k) => {
    if (index.kindCounts[k] === 0) return;
    const input = el('input', { type: 'checkbox', 'data-kind': k });
    input.checked = view.kinds.has(k);
    input.addEventListener('change', () => {
      if (input.checked) view.kinds.add(k); else view.kinds.delete(k);
      redraw();
    });
    box.append(el('label', { class: 'kind' }, input,
      el('span', { class: 'swatch', style: `background:${KIND_COLORS[name] || KIND_COLORS.other}` }),
      `${name.replace(/_/g, ' ')} (${index.kindCounts[k]})`));
  });
  const setAll = on => () => {
    view.kinds = new Set(on ? D.kinds.map((_, i) => i) : []);
    syncControls();
    redraw();
  };
  box.append(el('button', { onclick: setAll(true) }, 'all'), el('button', { onclick: setAll(false) }, 'none'));
}

function buildLaneFilters() {
  const box = document.getElementById('lanes');
  box.replaceChildren(el('span', { class: 'heading' }, 'lanes'));
  D.lanes.forEach((node, lane) => {
    const input = el('input', { type: 'checkbox', 'data-lane': lane });
    input.checked = view.lanes.includes(lane);
    input.addEventListener('change', () => {
      const shown = new Set(view.lanes);
      if (input.checked) shown.add(lane); else if (shown.size > 1) shown.delete(lane);
      view.lanes = D.lanes.map((_, i) => i).filter(i => shown.has(i));
      syncControls();
      relayout();
    });
    box.append(el('label', { class: 'kind' }, input, `node ${node}`));
  });
}

// Make the checkboxes agree with the view (after "all"/"none" or a new fragment).
function syncControls() {
  for (const input of document.querySelectorAll('input[data-kind]')) input.checked = view.kinds.has(+input.dataset.kind);
  for (const input of document.querySelectorAll('input[data-lane]')) input.checked = view.lanes.includes(+input.dataset.lane);
}

function buildLegend() {
  const box = document.getElementById('legend');
  const item = (style, text) => box.append(el('span', { class: 'item' }, el('span', { class: 'swatch', style }), text));
  box.append(el('span', { class: 'heading' }, 'legend'));
  item(`background:${ballotColor(0, 62, 50)}`, 'leader (colour = ballot)');
  item(`background:repeating-linear-gradient(135deg,${ballotColor(0, 62, 50)} 0 2px,${ballotColor(0, 60, 84)} 2px 5px)`, 'candidate');
  item(`background:${ballotColor(0, 45, 76)};height:5px`, 'follower');
  item('background:repeating-linear-gradient(135deg,#8a8a8a 0 2px,#dcdcdc 2px 5px)', 'recovering');
  item('background:#4a4a4a', 'down');
  item('background:#d9a400;height:4px', 'lease');
  item(`background:${ballotColor(0, 55, 60)};height:2px`, 'lease grant');
  item('background:#222;width:2px', 'slot chosen');
  item('background:rgba(214,39,40,0.3)', 'partition');
  item('background:repeating-linear-gradient(135deg,rgba(120,90,0,.6) 0 2px,#fff 2px 5px)', 'stall');
  box.append(el('span', { class: 'item', style: 'color:#c62828;font-weight:bold' }, '✕ crash'));
  box.append(el('span', { class: 'item', style: 'color:#2e7d32;font-weight:bold' }, '▶ restart'));
  box.append(el('span', { class: 'item', style: 'color:#e65100;font-weight:bold' }, '■ disk fault'));
  box.append(el('span', { class: 'item' }, '✕ on an arrow: lost · ◦ dashed: duplicated'));
}

function buildViolations() {
  const box = document.getElementById('violations');
  box.hidden = D.violations.length === 0;
  for (const v of D.violations) {
    const where = [v.ops.length ? `ops ${v.ops.join(', ')}` : '', v.slot !== null ? `slot ${v.slot}` : ''].filter(Boolean);
    box.append(el('div', {},
      el('b', {}, `✗ ${v.checker}: `), v.message, where.length ? ` (${where.join(' · ')}) ` : ' ',
      el('button', { onclick: () => { showViolation(v); redraw(); } }, 'show')));
  }
}

// Zoom to the violation and the operations it names.
function showViolation(v) {
  let t0 = v.t, t1 = v.t;
  for (const o of D.ops) {
    if (!v.ops.includes(o.op)) continue;
    t0 = Math.min(t0, o.t0);
    t1 = Math.max(t1, o.t1 === null ? D.t_max : o.t1);
  }
  const pad = Math.max((t1 - t0) * 0.15, 200);
  [view.t0, view.t1] = [t0 - pad, t1 + pad];
}

// --- hover ---------------------------------------------------------------

// What is under the pointer: a mark, a slot, an operation, an arrow, or a
// lane's role/lease at that time. Returns {type, i, text}.
function hitTest(mx, my) {
  const t = tAt(mx);
  if (my >= L.opsTop - 4 && D.op_rows > 0) return hitOp(mx, my);
  for (let i = 0; i < D.marks.length; i++) {
    const m = D.marks[i];
    if (m.lane === null || !L.laneY.has(m.lane)) continue;
    if (Math.abs(x(m.t) - mx) <= 8 && Math.abs(L.laneY.get(m.lane) - my) <= 10) return { type: 'mark', i, text: markText(m) };
  }
  for (let i = 0; i < D.chosen.length; i++) {
    const c = D.chosen[i], y = L.laneY.get(c[C.LANE]);
    if (y !== undefined && Math.abs(x(c[C.T]) - mx) <= 3 && my >= y + 8 && my <= y + 30) return { type: 'chosen', i, text: chosenText(c) };
  }
  const arrow = nearestArrow(mx, my);
  if (arrow !== null) return { type: 'arrow', i: arrow, text: arrowText(D.arrows[arrow]) };
  if (my >= L.faultTop && my <= L.faultTop + 16) {
    const p = D.partitions.find(p => p.t0 <= t && t <= p.t1);
    if (p) return { type: 'partition', i: 0, text: `partition ${p.label}\n${fmtTime(p.t0)} – ${fmtTime(p.t1)}` };
  }
  for (const lane of view.lanes) {
    if (Math.abs(L.laneY.get(lane) - my) <= 14) return { type: 'lane', i: lane, text: laneText(lane, t) };
  }
  return null;
}

function hitOp(mx, my) {
  const row = Math.floor((my - L.opsTop) / L.opRowH);
  const [lo, hi] = visibleRange(D.ops, o => o.t0, index.opEnds, view.t0, view.t1);
  for (let i = lo; i < hi; i++) {
    const o = D.ops[i];
    if (o.row === row && mx >= x(o.t0) - 2 && mx <= x(o.t1 === null ? D.t_max : o.t1) + 2) {
      return { type: 'op', i, text: opText(o) };
    }
  }
  return null;
}

// The drawn arrow nearest the pointer, within 6 px.
function nearestArrow(mx, my) {
  if (arrowsDense) return null; // not drawn one by one
  let best = null, bestD = 6;
  for (const i of drawnArrows) {
    const [x0, y0, x1, y1] = arrowEnds(D.arrows[i]);
    const dx = x1 - x0, dy = y1 - y0;
    const f = Math.max(0, Math.min(1, ((mx - x0) * dx + (my - y0) * dy) / (dx * dx + dy * dy || 1)));
    const d = Math.hypot(mx - (x0 + f * dx), my - (y0 + f * dy));
    if (d < bestD) [best, bestD] = [i, d];
  }
  return best;
}

function arrowText(a) {
  const lines = [`${D.kinds[a[A.KIND]]}  node ${D.lanes[a[A.FROM]]} → node ${D.lanes[a[A.TO]]}  (id ${a[A.ID]})`];
  const facts = [`ballot ${ballotText(a[A.BALLOT])}`];
  if (a[A.SLOT] !== null) facts.push(a[A.SLOTS] > 1 ? `slots ${a[A.SLOT]}–${a[A.SLOT] + a[A.SLOTS] - 1}` : `slot ${a[A.SLOT]}`);
  if (a[A.COMMANDS]) facts.push(`batch ${a[A.COMMANDS]} commands`);
  if (a[A.BYTES]) facts.push(`${a[A.BYTES]} B payload`);
  lines.push(facts.join(' · '));
  if (a[A.DIGEST] !== null) lines.push(`digest ${a[A.DIGEST]}`);
  if (a[A.FATE] === FATE.DELIVERED) lines.push(`sent ${fmtTime(a[A.T0])}, delivered after ${fmtDuration(a[A.T1] - a[A.T0])}`);
  if (a[A.FATE] === FATE.DROPPED) lines.push(`sent ${fmtTime(a[A.T0])}, lost (${a[A.REASON]}) at ${fmtTime(a[A.T1])}`);
  if (a[A.FATE] === FATE.UNKNOWN) lines.push(`sent ${fmtTime(a[A.T0])}; the trace does not say what became of it`);
  if (a[A.DUP]) lines.push('duplicated: delivered more than once');
  return lines.join('\n');
}

function chosenText(c) {
  return `slot ${c[C.SLOT]} chosen at ${fmtTime(c[C.T])}\nballot ${ballotText(c[C.BALLOT])} · ${c[C.COMMANDS]} commands · digest ${c[C.DIGEST]}`;
}

function markText(m) {
  return `${m.text}\nnode ${D.lanes[m.lane]} at ${fmtTime(m.t)}`;
}

function opText(o) {
  const lines = [`op ${o.op} (client ${o.client}) → node ${D.lanes[o.lane]}`, o.command];
  const output = o.output === null ? '' : `: ${o.output}`;
  lines.push(o.t1 === null ? 'never completed' : `${o.outcome}${output} after ${fmtDuration(o.t1 - o.t0)}`);
  lines.push(`invoked ${fmtTime(o.t0)}`);
  for (const v of D.violations) if (v.ops.includes(o.op)) lines.push(`✗ ${v.checker}: ${v.message}`);
  return lines.join('\n');
}

// A lane at time t: its role, ballot, lease and commit index.
function laneText(lane, t) {
  const lines = [`node ${D.lanes[lane]} at ${fmtTime(t)}`];
  const role = D.roles.find(s => s.lane === lane && s.t0 <= t && t < s.t1);
  lines.push(role ? `${role.what.replace('_', '-')}, ballot ${ballotText(role.ballot)}` : 'role unknown');
  const lease = D.leases.find(s => s.lane === lane && s.t0 <= t && t < s.t1);
  if (lease) lines.push(`lease ${ballotText(lease.ballot)} until ${fmtTime(lease.t1)}`);
  const grant = D.grants.find(s => s.lane === lane && s.t0 <= t && t < s.t1);
  if (grant) lines.push(`granted lease to ${ballotText(grant.ballot)} until ${fmtTime(grant.t1)}`);
  const commits = index.commits[lane];
  const k = lowerBound(commits.length, i => commits[i][0] > t) - 1;
  if (k >= 0) lines.push(`commit index ${commits[k][2]}`);
  return lines.join('\n');
}

function showTip(hit, mx, my) {
  const changed = (view.hover && view.hover.type) !== (hit && hit.type) || (view.hover && view.hover.i) !== (hit && hit.i);
  view.hover = hit;
  if (!hit) {
    tip.hidden = true;
  } else {
    tip.textContent = hit.text;
    tip.hidden = false;
    const r = canvas.getBoundingClientRect();
    const left = Math.min(mx + 14, r.width - tip.offsetWidth - 4);
    const top = my + 16 + tip.offsetHeight > r.height ? my - tip.offsetHeight - 8 : my + 16;
    tip.style.left = `${Math.max(left, 0)}px`;
    tip.style.top = `${Math.max(top, 0)}px`;
  }
  if (changed) redraw();
}

// --- pointer and keys ----------------------------------------------------

let dragFrom = null;
canvas.addEventListener('mousedown', e => {
  dragFrom = { x: e.offsetX, t0: view.t0, t1: view.t1 };
  canvas.classList.add('dragging');
});
window.addEventListener('mouseup', () => {
  dragFrom = null;
  canvas.classList.remove('dragging');
});
canvas.addEventListener('mousemove', e => {
  if (dragFrom) {
    const dt = ((dragFrom.x - e.offsetX) / (L.right - L.left)) * (dragFrom.t1 - dragFrom.t0);
    [view.t0, view.t1] = [dragFrom.t0 + dt, dragFrom.t1 + dt];
    tip.hidden = true;
    redraw();
  } else {
    showTip(hitTest(e.offsetX, e.offsetY), e.offsetX, e.offsetY);
  }
});
canvas.addEventListener('mouseleave', () => showTip(null, 0, 0));
canvas.addEventListener('wheel', e => {
  e.preventDefault();
  if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
    pan(((e.deltaX || e.deltaY) / (L.right - L.left)) * (view.t1 - view.t0));
  } else {
    zoom(Math.exp(e.deltaY * 0.0015), tAt(e.offsetX));
  }
  redraw();
}, { passive: false });
canvas.addEventListener('dblclick', e => {
  zoom(0.5, tAt(e.offsetX));
  redraw();
});
window.addEventListener('keydown', e => {
  const span = view.t1 - view.t0, mid = (view.t0 + view.t1) / 2;
  const keys = {
    '+': () => zoom(0.5, mid), '=': () => zoom(0.5, mid), '-': () => zoom(2, mid),
    ArrowLeft: () => pan(-span * 0.25), ArrowRight: () => pan(span * 0.25), 0: () => ([view.t0, view.t1] = fitWindow()),
  };
  if (keys[e.key]) { keys[e.key](); redraw(); }
});
window.addEventListener('resize', relayout);
window.addEventListener('hashchange', () => {
  readFragment(location.hash);
  syncControls();
  layout();
  draw();
});

// Draw at once (not on the next frame): a headless screenshot is taken
// right after load.
readFragment(location.hash);
buildToolbar();
layout();
draw();
