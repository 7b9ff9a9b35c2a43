// Drawing the diagram on the canvas: layout, then layers back to front
// (lanes, partitions, roles, leases, then the events of events.js: arrows,
// slots, marks, clients; the axis and lane names last, outside the clip).
// Every layer draws only what overlaps the time window.

const KIND_COLORS = {
  prepare: '#1f5fbf', promise: '#43a3e6', accept: '#16803a', accepted: '#7cb82c',
  pre_vote: '#7b46b8', pre_vote_reply: '#b18ad9', reject: '#d62728', hand_over: '#ffbf00',
  heartbeat: '#6f6f6f', heartbeat_reply: '#adadad',
  catch_up: '#e07b00', catch_up_reply: '#f2ac4b',
  snapshot_chunk: '#8c564b', fetch_snapshot: '#b98c7c',
  forward: '#d6479a', forward_reply: '#ec9cc8', other: '#222222',
};
const OUTCOME_COLORS = { ok: '#8bc98e', error: '#f0a35e', timeout: '#c4c4c4', indeterminate: '#c4c4c4', other: '#c4c4c4' };
// Lane tints for the groups of a partition (group 0 = the first lane's).
const GROUP_TINTS = ['rgba(255,150,40,0.13)', 'rgba(110,90,255,0.12)', 'rgba(0,170,170,0.12)', 'rgba(230,60,160,0.11)'];
const FONT = '11px "DejaVu Sans", Arial, sans-serif';
const FONT_BOLD = 'bold 11px "DejaVu Sans", Arial, sans-serif';
const FONT_SMALL = '9px "DejaVu Sans", Arial, sans-serif';

const canvas = document.getElementById('diagram');
const ctx = canvas.getContext('2d');

// A ballot's hue: golden-angle steps keep neighbouring ballots apart.
function ballotColor(i, sat, light) {
  if (i === null || i === undefined) return `hsl(0,0%,${light}%)`;
  return `hsl(${(i * 137.508 + 25) % 360},${sat}%,${light}%)`;
}

// Diagonal stripes over a colour: candidates and recovering replicas.
const stripeCache = new Map();
function stripes(color) {
  if (!stripeCache.has(color)) {
    const tile = document.createElement('canvas');
    tile.width = tile.height = 8;
    const t = tile.getContext('2d');
    t.strokeStyle = color;
    t.lineWidth = 2;
    t.beginPath();
    for (const o of [-8, 0, 8]) { t.moveTo(o, 8); t.lineTo(o + 8, 0); }
    t.stroke();
    stripeCache.set(color, ctx.createPattern(tile, 'repeat'));
  }
  return stripeCache.get(color);
}

// Where everything goes, recomputed on resize and on lane filtering.
const L = {};
function layout() {
  const rect = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  L.width = Math.max(rect.width, 300);
  L.height = Math.max(rect.height, 200);
  canvas.width = Math.round(L.width * dpr);
  canvas.height = Math.round(L.height * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  L.left = 84;
  L.right = L.width - 14;
  L.axisY = 22;            // time labels sit above this line
  L.faultTop = 26;         // the partition / violation strip
  L.lanesTop = 48;
  const opsWanted = D.op_rows > 0 ? Math.min(D.op_rows * 14 + 24, L.height * 0.3) : 0;
  const lanesAvail = L.height - L.lanesTop - opsWanted - 8;
  L.laneH = Math.max(44, Math.min(150, lanesAvail / Math.max(view.lanes.length, 1)));
  L.laneY = new Map(); // lane index -> y of its line
  view.lanes.forEach((lane, k) => L.laneY.set(lane, L.lanesTop + (k + 0.5) * L.laneH));
  L.lanesBottom = L.lanesTop + view.lanes.length * L.laneH;
  L.opsTop = L.lanesBottom + 22;
  L.opRowH = D.op_rows > 0 ? Math.max(3, Math.min(14, (L.height - L.opsTop - 6) / D.op_rows)) : 0;
}

function x(t) {
  return L.left + ((t - view.t0) / (view.t1 - view.t0)) * (L.right - L.left);
}

function tAt(px) {
  return view.t0 + ((px - L.left) / (L.right - L.left)) * (view.t1 - view.t0);
}

// Clip x to a little outside the plot, so huge zooms do not overflow canvas math.
function cx(t) {
  return Math.max(L.left - 50, Math.min(L.right + 50, x(t)));
}

function draw() {
  ctx.clearRect(0, 0, L.width, L.height);
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, L.width, L.height);
  ctx.save();
  ctx.beginPath();
  ctx.rect(L.left, 0, L.right - L.left, L.height);
  ctx.clip();
  drawLaneBackgrounds();
  drawPartitions();
  drawGrid();
  drawSpans();
  drawArrows();
  drawChosen();
  drawMarks();
  drawViolations();
  drawOps();
  ctx.restore();
  drawAxis();
  drawLaneLabels();
}

function drawLaneBackgrounds() {
  view.lanes.forEach((lane, k) => {
    ctx.fillStyle = k % 2 ? '#f7f8fa' : '#ffffff';
    ctx.fillRect(L.left, L.laneY.get(lane) - L.laneH / 2, L.right - L.left, L.laneH);
    ctx.strokeStyle = '#c9ced6';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(L.left, L.laneY.get(lane));
    ctx.lineTo(L.right, L.laneY.get(lane));
    ctx.stroke();
  });
}

// Cut links: a red bar with the cuts in the strip above the lanes, and the
// lanes cut off from the largest group tinted, one tint per group.
function drawPartitions() {
  D.partitions.forEach((p, k) => {
    if (p.t1 < view.t0 || p.t0 > view.t1) return;
    const x0 = cx(p.t0), x1 = cx(p.t1);
    const main = largestGroup(p.groups);
    for (const lane of view.lanes) {
      if (p.groups[lane] === main) continue;
      ctx.fillStyle = GROUP_TINTS[p.groups[lane] % GROUP_TINTS.length];
      ctx.fillRect(x0, L.laneY.get(lane) - L.laneH / 2, x1 - x0, L.laneH);
    }
    ctx.fillStyle = 'rgba(214,39,40,0.16)';
    ctx.fillRect(x0, L.faultTop, x1 - x0, 16);
    ctx.fillStyle = '#b71c1c';
    ctx.fillRect(x0, L.faultTop, 2, 16);
    // The label may run past a short partition, up to the next one.
    const next = D.partitions[k + 1];
    const room = (next ? cx(next.t0) : L.right) - Math.max(x0, L.left) - 8;
    ctx.font = FONT_BOLD;
    fitText(`partition ${p.label}`, Math.max(x0, L.left) + 5, L.faultTop + 12, room);
  });
}

function largestGroup(groups) {
  const sizes = new Map();
  for (const g of groups) sizes.set(g, (sizes.get(g) || 0) + 1);
  return [...sizes].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
}

// Tick step: 1, 2 or 5 times a power of ten, about 110 px apart.
function tickStep() {
  const raw = ((view.t1 - view.t0) / (L.right - L.left)) * 110;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map(m => m * p).find(s => s >= raw);
}

function ticks() {
  const step = tickStep(), base = timeBase();
  const out = [];
  for (let t = Math.ceil((view.t0 - base) / step) * step + base; t <= view.t1; t += step) out.push(t);
  return out;
}

function drawGrid() {
  ctx.strokeStyle = 'rgba(0,0,0,0.05)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const t of ticks()) {
    ctx.moveTo(Math.round(x(t)) + 0.5, L.faultTop);
    ctx.lineTo(Math.round(x(t)) + 0.5, L.lanesBottom);
  }
  ctx.stroke();
}

function drawAxis() {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, L.width, L.axisY + 1);
  ctx.strokeStyle = '#888';
  ctx.beginPath();
  ctx.moveTo(L.left, L.axisY + 0.5);
  ctx.lineTo(L.right, L.axisY + 0.5);
  ctx.stroke();
  ctx.font = FONT;
  ctx.fillStyle = '#333';
  ctx.textAlign = 'center';
  for (const t of ticks()) {
    const px = x(t);
    ctx.beginPath();
    ctx.moveTo(px, L.axisY - 4);
    ctx.lineTo(px, L.axisY);
    ctx.stroke();
    ctx.fillText(fmtTime(t), px, L.axisY - 7);
  }
  ctx.textAlign = 'left';
}

function drawLaneLabels() {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, L.axisY + 1, L.left - 1, L.height);
  ctx.font = 'bold 13px "DejaVu Sans", Arial, sans-serif';
  ctx.fillStyle = '#222';
  for (const lane of view.lanes) ctx.fillText(`node ${D.lanes[lane]}`, 10, L.laneY.get(lane) + 4);
  if (D.op_rows > 0) {
    ctx.font = FONT_BOLD;
    ctx.fillText('clients', 10, L.opsTop + 10);
    ctx.font = FONT_SMALL;
    ctx.fillStyle = '#666';
    ctx.fillText('invoke → reply', 10, L.opsTop + 22);
  }
}

// Roles as a band on the lane line, coloured by ballot; leases above it,
// acceptor grants below it, stalls hatched over it.
function drawSpans() {
  for (const s of D.roles) drawRole(s);
  for (const s of D.grants) drawBar(s, 8, 2, ballotColor(s.ballot, 55, 60));
  for (const s of D.leases) drawBar(s, -12, 4, '#d9a400');
  for (const s of D.stalls) {
    if (!L.laneY.has(s.lane) || s.t1 < view.t0 || s.t0 > view.t1) continue;
    const y = L.laneY.get(s.lane);
    ctx.fillStyle = stripes('rgba(120,90,0,0.55)');
    ctx.fillRect(cx(s.t0), y - 9, cx(s.t1) - cx(s.t0), 18);
    labelOnSpan(s, 'stalled', y + 20, '#6b5200');
  }
}

const ROLE_STYLE = {
  // [band half-height, fill(ballot), stripes(ballot) or null, label colour]
  leader: [7, b => ballotColor(b, 62, 50), null, '#fff'],
  candidate: [7, b => ballotColor(b, 60, 84), b => ballotColor(b, 62, 50), '#222'],
  pre_candidate: [5, b => ballotColor(b, 40, 90), b => ballotColor(b, 40, 70), '#222'],
  follower: [3, b => ballotColor(b, 45, 76), null, null],
  recovering: [6, () => '#dcdcdc', () => '#8a8a8a', '#222'],
  down: [7, () => '#4a4a4a', null, '#fff'],
  other: [4, () => '#cccccc', null, null],
};
const ROLE_LABEL = { leader: 'leader', candidate: 'candidate', pre_candidate: 'pre-candidate', recovering: 'recovering', down: 'down' };

function drawRole(s) {
  if (!L.laneY.has(s.lane) || s.t1 < view.t0 || s.t0 > view.t1) return;
  const [h, fill, stripe, labelColor] = ROLE_STYLE[s.what] || ROLE_STYLE.other;
  const y = L.laneY.get(s.lane), x0 = cx(s.t0), x1 = cx(s.t1);
  ctx.fillStyle = fill(s.ballot);
  ctx.fillRect(x0, y - h, x1 - x0, 2 * h);
  if (stripe) {
    ctx.fillStyle = stripes(stripe(s.ballot));
    ctx.fillRect(x0, y - h, x1 - x0, 2 * h);
  }
  if (labelColor) {
    const ballot = s.ballot === null ? '' : ` ${D.ballots[s.ballot]}`;
    ctx.font = FONT_BOLD;
    ctx.fillStyle = labelColor;
    const left = Math.max(x0, L.left) + 4;
    fitText(ROLE_LABEL[s.what] + ballot, left, y + 4, Math.min(x1, L.right) - left - 2);
  }
}

function drawBar(s, dy, h, color) {
  if (!L.laneY.has(s.lane) || s.t1 < view.t0 || s.t0 > view.t1) return;
  const y = L.laneY.get(s.lane) + dy;
  ctx.fillStyle = color;
  ctx.fillRect(cx(s.t0), y, Math.max(cx(s.t1) - cx(s.t0), 1), h);
}

function labelOnSpan(s, text, y, color) {
  ctx.font = FONT_SMALL;
  ctx.fillStyle = color;
  const left = Math.max(cx(s.t0), L.left) + 2;
  fitText(text, left, y, cx(s.t1) - left);
}

// Text only if it fits in `room` pixels.
function fitText(text, px, py, room) {
  if (ctx.measureText(text).width <= room) ctx.fillText(text, px, py);
}
