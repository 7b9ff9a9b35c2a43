// Drawing the events over the lanes: message arrows (or their density when
// too many are in view), chosen slots, point marks, checker violations and
// client operations. Uses the layout and helpers of draw.js.

// Arrow geometry: a delivered message runs from its send to its delivery;
// a lost one stops halfway to its receiver at the loss, under a cross; one
// whose fate the trace does not know is a short dashed stub.
function arrowEnds(a) {
  const x0 = x(a[A.T0]), y0 = L.laneY.get(a[A.FROM]), yTo = L.laneY.get(a[A.TO]);
  if (a[A.FATE] === FATE.DELIVERED) return [x0, y0, x(a[A.T1]), yTo];
  if (a[A.FATE] === FATE.DROPPED) return [x0, y0, Math.max(x(a[A.T1]), x0 + 12), y0 + (yTo - y0) * 0.45];
  return [x0, y0, x0 + 14, y0 + (yTo - y0) * 0.25];
}

function arrowShown(a) {
  return view.kinds.has(a[A.KIND]) && L.laneY.has(a[A.FROM]) && L.laneY.has(a[A.TO]);
}

// One path per kind and style, stroked once: canvas is fast at long paths
// and slow at many small strokes. Arrowheads only when few are visible.
// With more arrows than the plot has room for they would paint one solid
// block over the roles and faults: then each lane shows how many messages
// it sent per pixel column instead, until the user zooms in.
const DENSE_ARROWS_PER_PX = 4;
let drawnArrows = [];
let arrowsDense = false;
function drawArrows() {
  const [lo, hi] = visibleRange(D.arrows, a => a[A.T0], index.arrowEnds, view.t0, view.t1);
  drawnArrows = [];
  for (let i = lo; i < hi; i++) {
    const a = D.arrows[i];
    if (Math.max(a[A.T0], a[A.T1]) >= view.t0 && arrowShown(a)) drawnArrows.push(i);
  }
  arrowsDense = drawnArrows.length > DENSE_ARROWS_PER_PX * (L.right - L.left);
  if (arrowsDense) {
    drawDensity();
    return;
  }
  const dense = drawnArrows.length > 5000;
  const heads = drawnArrows.length < 3000;
  const paths = new Map(); // "kind/style" -> Path2D
  const path = key => paths.get(key) || paths.set(key, new Path2D()).get(key);
  for (const i of drawnArrows) {
    const a = D.arrows[i];
    const [x0, y0, x1, y1] = arrowEnds(a);
    const style = a[A.FATE] === FATE.UNKNOWN || a[A.DUP] ? 'dash' : 'solid';
    const p = path(`${a[A.KIND]}/${style}`);
    p.moveTo(x0, y0);
    p.lineTo(x1, y1);
    if (a[A.FATE] === FATE.DROPPED) {
      const c = path(`${a[A.KIND]}/cross`);
      c.moveTo(x1 - 4, y1 - 4); c.lineTo(x1 + 4, y1 + 4);
      c.moveTo(x1 - 4, y1 + 4); c.lineTo(x1 + 4, y1 - 4);
    } else if (a[A.FATE] === FATE.DELIVERED && heads && Math.hypot(x1 - x0, y1 - y0) > 10) {
      arrowHead(path(`${a[A.KIND]}/head`), x0, y0, x1, y1);
    }
    if (a[A.DUP]) path(`${a[A.KIND]}/ring`).arc(x1, y1, 3.5, 0, 2 * Math.PI);
  }
  for (const [key, p] of paths) {
    const [kind, style] = key.split('/');
    ctx.strokeStyle = ctx.fillStyle = KIND_COLORS[D.kinds[kind]] || KIND_COLORS.other;
    ctx.globalAlpha = dense ? 0.45 : 0.9;
    ctx.lineWidth = style === 'cross' ? 2 : dense ? 0.6 : 1.3;
    ctx.setLineDash(style === 'dash' ? [4, 3] : []);
    if (style === 'head') ctx.fill(p);
    else if (style === 'ring') { ctx.fillStyle = '#fff'; ctx.fill(p); ctx.stroke(p); }
    else ctx.stroke(p);
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  if (view.hover && view.hover.type === 'arrow') {
    const [x0, y0, x1, y1] = arrowEnds(D.arrows[view.hover.i]);
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 3;
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
  }
}

// Messages sent per pixel column, per sending lane, as a grey histogram in
// the lower half of the lane (log scale: bursts and gaps both show).
function drawDensity() {
  const width = Math.ceil(L.right - L.left);
  const counts = new Map(view.lanes.map(lane => [lane, new Float32Array(width)]));
  let max = 1;
  for (const i of drawnArrows) {
    const a = D.arrows[i], col = Math.floor(x(a[A.T0]) - L.left);
    if (col < 0 || col >= width) continue;
    const c = ++counts.get(a[A.FROM])[col];
    if (c > max) max = c;
  }
  const hMax = Math.max(L.laneH / 2 - 24, 8), scale = hMax / Math.log1p(max);
  const bars = new Path2D();
  for (const [lane, cols] of counts) {
    const base = L.laneY.get(lane) + L.laneH / 2 - 3;
    cols.forEach((c, col) => {
      if (c > 0) bars.rect(L.left + col, base - Math.log1p(c) * scale, 1, Math.log1p(c) * scale);
    });
  }
  ctx.fillStyle = 'rgba(60,80,120,0.55)';
  ctx.fill(bars);
  ctx.font = FONT;
  ctx.fillStyle = '#555';
  const note = `${drawnArrows.length.toLocaleString('en')} messages in view: grey bars count messages sent ` +
    `per pixel (log scale, up to ${max} per pixel); zoom in for arrows`;
  ctx.fillText(note, L.left + 4, L.lanesBottom + 14);
}

function arrowHead(p, x0, y0, x1, y1) {
  const ang = Math.atan2(y1 - y0, x1 - x0), len = 7;
  p.moveTo(x1, y1);
  p.lineTo(x1 - len * Math.cos(ang - 0.4), y1 - len * Math.sin(ang - 0.4));
  p.lineTo(x1 - len * Math.cos(ang + 0.4), y1 - len * Math.sin(ang + 0.4));
  p.closePath();
}

// Each slot's moment of choice: a tick under the leader's band, numbered
// where there is room.
function drawChosen() {
  const lo = lowerBound(D.chosen.length, i => D.chosen[i][C.T] >= view.t0);
  const hi = lowerBound(D.chosen.length, i => D.chosen[i][C.T] > view.t1);
  const lastLabel = new Map();
  ctx.strokeStyle = '#222';
  ctx.lineWidth = 1.5;
  ctx.font = FONT_SMALL;
  ctx.fillStyle = '#222';
  ctx.beginPath();
  for (let i = lo; i < hi; i++) {
    const c = D.chosen[i];
    if (!L.laneY.has(c[C.LANE])) continue;
    const px = x(c[C.T]), y = L.laneY.get(c[C.LANE]);
    ctx.moveTo(px, y + 10);
    ctx.lineTo(px, y + 17);
    if (px - 4 > (lastLabel.get(c[C.LANE]) ?? -1e9) + 8) {
      const label = `s${c[C.SLOT]}`;
      ctx.fillText(label, px - 4, y + 27);
      lastLabel.set(c[C.LANE], px - 4 + ctx.measureText(label).width);
    }
  }
  ctx.stroke();
}

// [colour, symbol, label font]: link changes are minor, in small grey type.
const MARK_STYLE = {
  crash: ['#c62828', 'cross', FONT_BOLD], restart: ['#2e7d32', 'play', FONT_BOLD],
  election: ['#1a237e', 'flag', FONT_BOLD], step_down: ['#8d5a00', 'down', FONT_BOLD],
  disk_fault: ['#e65100', 'square', FONT_BOLD], recovery: ['#0277bd', 'dot', FONT_BOLD],
  peer_up: ['#78909c', 'dot', FONT_SMALL], peer_down: ['#78909c', 'ring', FONT_SMALL],
};

// Point events on a lane: a symbol on the lane line and a label above it,
// skipped where it would overlap the previous label on that lane.
function drawMarks() {
  const lo = lowerBound(D.marks.length, i => D.marks[i].t >= view.t0 - 1);
  const hi = lowerBound(D.marks.length, i => D.marks[i].t > view.t1 + 1);
  const labelEnd = new Map();
  for (let i = lo; i < hi; i++) {
    const m = D.marks[i];
    if (m.lane === null || !L.laneY.has(m.lane)) continue;
    const [color, shape, font] = MARK_STYLE[m.what] || ['#333', 'dot', FONT_BOLD];
    const px = x(m.t), y = L.laneY.get(m.lane);
    symbol(shape, px, y, color);
    ctx.font = font;
    const w = ctx.measureText(m.text).width;
    const lx = px + 10 + w > L.right ? px - 6 - w : px + 10, ly = y - 18; // flip at the right edge
    if (lx > (labelEnd.get(m.lane) ?? -1e9) + 4) {
      ctx.fillStyle = 'rgba(255,255,255,0.8)';
      ctx.fillRect(lx - 2, ly - 10, w + 4, 13);
      ctx.fillStyle = color;
      ctx.fillText(m.text, lx, ly);
      labelEnd.set(m.lane, lx + w);
    }
  }
}

function symbol(shape, px, y, color) {
  ctx.strokeStyle = ctx.fillStyle = color;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  if (shape === 'cross') {
    ctx.moveTo(px - 7, y - 7); ctx.lineTo(px + 7, y + 7);
    ctx.moveTo(px - 7, y + 7); ctx.lineTo(px + 7, y - 7);
    ctx.stroke();
  } else if (shape === 'play') {
    ctx.moveTo(px - 4, y - 7); ctx.lineTo(px + 7, y); ctx.lineTo(px - 4, y + 7); ctx.closePath(); ctx.fill();
  } else if (shape === 'flag') {
    // Above the band, so the role's label under it stays readable.
    ctx.lineWidth = 1.5;
    ctx.moveTo(px, y - 7); ctx.lineTo(px, y - 26); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(px, y - 26); ctx.lineTo(px + 8, y - 23); ctx.lineTo(px, y - 20); ctx.fill();
  } else if (shape === 'down') {
    ctx.moveTo(px - 6, y - 6); ctx.lineTo(px + 6, y - 6); ctx.lineTo(px, y + 5); ctx.closePath(); ctx.fill();
  } else if (shape === 'square') {
    ctx.fillRect(px - 5, y - 5, 10, 10);
  } else if (shape === 'ring') {
    ctx.lineWidth = 1.5; ctx.arc(px, y, 4, 0, 2 * Math.PI); ctx.stroke();
  } else {
    ctx.arc(px, y, 4, 0, 2 * Math.PI); ctx.fill();
  }
}

// A checker's violation: a red line through every lane at its time.
function drawViolations() {
  for (const v of D.violations) {
    if (v.t < view.t0 || v.t > view.t1) continue;
    const px = x(v.t);
    ctx.strokeStyle = '#d50000';
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.beginPath(); ctx.moveTo(px, L.faultTop); ctx.lineTo(px, L.height); ctx.stroke();
    ctx.setLineDash([]);
    ctx.font = FONT_BOLD;
    ctx.fillStyle = '#d50000';
    const text = `✗ ${v.checker}`, w = ctx.measureText(text).width;
    ctx.fillText(text, px + 4 + w > L.right ? px - 4 - w : px + 4, L.faultTop + 12); // flip at the right edge
  }
}

// Client operations: one bar per operation from invoke to reply, filled by
// outcome; the ones a checker named are red. Bars are batched into one path
// per colour, and only bars wide enough get a label (measuring text is the
// slow part when tens of thousands are on screen).
function drawOps() {
  if (D.op_rows === 0) return;
  ctx.fillStyle = '#eef0f3';
  ctx.fillRect(L.left, L.opsTop - 4, L.right - L.left, D.op_rows * L.opRowH + 8);
  const [lo, hi] = visibleRange(D.ops, o => o.t0, index.opEnds, view.t0, view.t1);
  const h = Math.max(L.opRowH - 2, 2);
  const fills = new Map(); // colour -> Path2D
  const outlined = [], labelled = [];
  for (let i = lo; i < hi; i++) {
    const o = D.ops[i];
    const end = o.t1 === null ? D.t_max : o.t1;
    if (end < view.t0) continue;
    const x0 = cx(o.t0), x1 = Math.max(cx(end), x0 + 2), y = L.opsTop + o.row * L.opRowH;
    const color = o.violation ? '#ff5252' : OUTCOME_COLORS[o.outcome] || '#e0e0e0';
    (fills.get(color) || fills.set(color, new Path2D()).get(color)).rect(x0, y, x1 - x0, h);
    const hovered = view.hover && view.hover.type === 'op' && view.hover.i === i;
    if (o.violation || o.t1 === null || hovered) outlined.push([o, x0, x1, y]);
    if (h >= 10 && x1 - x0 > 30) labelled.push([o, x0, x1, y]);
  }
  for (const [color, path] of fills) {
    ctx.fillStyle = color;
    ctx.fill(path);
  }
  for (const [o, x0, x1, y] of outlined) {
    ctx.strokeStyle = o.violation ? '#b71c1c' : '#555';
    ctx.lineWidth = o.violation ? 2 : 1;
    ctx.setLineDash(o.t1 === null ? [3, 2] : []);
    ctx.strokeRect(x0, y, x1 - x0, h);
  }
  ctx.setLineDash([]);
  ctx.font = FONT_SMALL;
  ctx.fillStyle = '#111';
  for (const [o, x0, x1, y] of labelled) {
    const text = o.output === null ? o.command : `${o.command} → ${o.output}`;
    const left = Math.max(x0, L.left) + 3;
    fitText(text, left, y + h - 2, x1 - left - 2);
  }
}
