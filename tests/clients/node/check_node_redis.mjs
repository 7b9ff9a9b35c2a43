// node-redis with its default settings against a server (node-redis 6
// opens with HELLO 3; 5 speaks RESP2).
//
// usage: node check_node_redis.mjs HOST PORT [PACKAGE]   PACKAGE: redis (default) or redis5
//
// Keys used together in one transaction share a hash tag ({tx}, {w}):
// paxoskv, like Redis Cluster, refuses a transaction across shards.

import { LOCK_HELD_MS, check, expect, finish, pollUntil, sameSet, scanKeyNames, target } from './harness.mjs';

const { host, port } = target();
const packageName = process.argv[4] ?? 'redis';
const { createClient } = await import(packageName);
const version = (await import(`${packageName}/package.json`, { with: { type: 'json' } })).default.version;

async function connect() {
  const client = createClient({ url: `redis://${host}:${port}` });
  client.on('error', (e) => console.log(`     (client error event: ${e.message})`));
  await client.connect();
  return client;
}

async function close(client) {
  if (typeof client.close === 'function') await client.close();
  else await client.quit();
}

const label = `node-redis ${version}`;
let client;

await check(`${label}: connect with defaults`, async () => {
  client = await connect();
  expect((await client.ping()) === 'PONG', 'PING');
  const info = await client.sendCommand(['CLIENT', 'INFO']);
  const resp = String(info).match(/resp=(\d)/);
  console.log(`     (connected with RESP${resp ? resp[1] : '?'})`);
});
if (!client) finish(label);

await check(`${label}: FLUSHDB`, async () => {
  expect((await client.flushDb()) === 'OK', 'FLUSHDB');
  expect((await client.dbSize()) === 0, 'DBSIZE');
});

await check(`${label}: SET/GET`, async () => {
  expect((await client.set('str:a', 'hello')) === 'OK', 'SET');
  expect((await client.get('str:a')) === 'hello', 'GET');
  expect((await client.get('str:missing')) === null, 'GET of a missing key');
});

await check(`${label}: MULTI/EXEC`, async () => {
  const replies = await client.multi().set('{tx}a', '1').incr('{tx}a').get('{tx}a').exec();
  expect(JSON.stringify(replies) === JSON.stringify(['OK', 2, '2']), `replies ${JSON.stringify(replies)}`);
});

await check(`${label}: pipeline (execAsPipeline)`, async () => {
  const replies = await client.multi().set('pipe:a', '1').incr('pipe:a').get('pipe:b').execAsPipeline();
  expect(JSON.stringify(replies) === JSON.stringify(['OK', 2, null]), `replies ${JSON.stringify(replies)}`);
});

await check(`${label}: WATCH conflict`, async () => {
  const watcher = await connect();
  const other = await connect();
  await watcher.set('{w}counter', '0');
  await watcher.watch('{w}counter');
  await other.set('{w}counter', '5');
  let failed = false;
  try {
    await watcher.multi().set('{w}counter', '10').exec();
  } catch (e) {
    failed = e.constructor.name === 'WatchError' || /watch/i.test(String(e.message));
    if (!failed) throw e;
  }
  expect(failed, 'EXEC after a conflicting write did not fail with WatchError');
  expect((await watcher.get('{w}counter')) === '5', 'the failed transaction wrote');
  await close(watcher);
  await close(other);
});

await check(`${label}: SET NX PX lock acquire and expiry`, async () => {
  // "Held" is checked on a lock that cannot expire between two commands on
  // a loaded machine; expiry on a short one (its TTL runs from when the
  // server applies the SET, so it may be gone by the time OK arrives).
  expect((await client.set('lock:held', 'token1', { NX: true, PX: LOCK_HELD_MS })) === 'OK', 'acquire');
  expect((await client.set('lock:held', 'token2', { NX: true, PX: LOCK_HELD_MS })) === null, 'second acquire');
  expect((await client.set('lock:a', 'token1', { NX: true, PX: 500 })) === 'OK', 'acquire a short lock');
  await pollUntil('the lock to expire', async () => (await client.set('lock:a', 'token2', { NX: true, PX: 500 })) === 'OK');
});

await check(`${label}: SET EX / TTL`, async () => {
  await client.set('ttl:a', 'v', { EX: 100 });
  const ttl = await client.ttl('ttl:a');
  expect(ttl > 0 && ttl <= 100, `TTL ${ttl}`);
  expect((await client.ttl('ttl:missing')) === -2, 'TTL of a missing key');
});

await check(`${label}: INCRBYFLOAT`, async () => {
  expect(Number(await client.incrByFloat('float:a', 1.5)) === 1.5, 'first');
  expect(Number(await client.incrByFloat('float:a', 2.25)) === 3.75, 'second');
});

await check(`${label}: SCAN iterator and KEYS`, async () => {
  const names = scanKeyNames('scan:');
  const pipe = client.multi();
  for (const name of names) pipe.set(name, '1');
  await pipe.execAsPipeline();
  const seen = [];
  for await (const page of client.scanIterator({ MATCH: 'scan:*', COUNT: 50 })) {
    if (Array.isArray(page)) seen.push(...page);
    else seen.push(page);
  }
  expect(sameSet(seen, names), `SCAN saw ${new Set(seen).size} of ${names.length}`);
  expect(sameSet(await client.keys('scan:*'), names), 'KEYS');
});

await check(`${label}: CLIENT ID/SETNAME/GETNAME/INFO/LIST`, async () => {
  const id = await client.clientId();
  expect(Number(id) > 0, `CLIENT ID ${id}`);
  expect((await client.clientSetName('node-redis')) === 'OK', 'SETNAME');
  expect((await client.clientGetName()) === 'node-redis', 'GETNAME');
  const info = await client.clientInfo();
  expect(info.name === 'node-redis' && Number(info.id) === Number(id), `CLIENT INFO ${JSON.stringify(info)}`);
  const list = await client.clientList();
  expect(list.some((c) => Number(c.id) === Number(id)), 'CLIENT LIST lacks our id');
});

await check(`${label}: FLUSHDB empties`, async () => {
  expect((await client.flushDb()) === 'OK', 'FLUSHDB');
  expect((await client.dbSize()) === 0, 'DBSIZE');
});

await close(client);
finish(label);
