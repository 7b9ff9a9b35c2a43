// What the Node.js client checks share: PASS/FAIL reporting, assertions,
// polling under a deadline. Each check runs on its own; a failure is
// reported and the next check runs.

export const DEADLINE_MS = 20_000;
// The TTL of a lock that must still be held when checked: longer than any
// pause between two commands on a loaded machine.
export const LOCK_HELD_MS = 120_000;
export const SCAN_KEYS = 300;

const results = [];

export function expect(condition, what) {
  if (!condition) throw new Error(what);
}

// A check that has not finished by then fails (a client that retries a
// refused handshake forever must not hang the run).
export const CHECK_TIMEOUT_MS = DEADLINE_MS + 10_000;

export async function check(name, body) {
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    });
    await Promise.race([body(), timeout]);
    console.log(`PASS ${name}`);
    results.push(true);
  } catch (e) {
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n') : e}`);
    results.push(false);
  } finally {
    clearTimeout(timer);
  }
}

// Poll `probe` until it returns a truthy value, for at most DEADLINE_MS.
export async function pollUntil(what, probe, pauseMs = 50) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    // A probe the server answered "outcome is unknown" (its request timed
    // out, say in a long fsync stall of a loaded machine) is asked again:
    // every probe here may run twice.
    const value = await probe().catch((e) => {
      if (String(e && e.message).includes('outcome is unknown')) return undefined;
      throw e;
    });
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${DEADLINE_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

export function target() {
  const [host, port] = process.argv.slice(2);
  if (!host || !port) {
    console.error(`usage: node ${process.argv[1]} HOST PORT [PACKAGE]`);
    process.exit(2);
  }
  return { host, port: Number(port) };
}

// Print the summary and exit 1 if any check failed.
export function finish(client) {
  const failed = results.filter((ok) => !ok).length;
  console.log(`${client}: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

export function scanKeyNames(prefix) {
  return Array.from({ length: SCAN_KEYS }, (_, i) => `${prefix}${i}`);
}

export function sameSet(a, b) {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((x) => right.has(x));
}
