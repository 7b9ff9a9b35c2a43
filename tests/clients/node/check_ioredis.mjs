// ioredis with its default settings against a server.
//
// usage: node check_ioredis.mjs HOST PORT
//
// Keys used together in one transaction share a hash tag ({tx}, {w}):
// paxoskv, like Redis Cluster, refuses a transaction across shards.

import Redis from 'ioredis';
import { LOCK_HELD_MS, check, expect, finish, pollUntil, sameSet, scanKeyNames, target } from './harness.mjs';

const { host, port } = target();
const version = (await import('ioredis/package.json', { with: { type: 'json' } })).default.version;
const label = `ioredis ${version}`;
const connect = () => new Redis({ host, port });
const redis = connect();

await check(`${label}: connect with defaults`, async () => {
  expect((await redis.ping()) === 'PONG', 'PING');
});

await check(`${label}: FLUSHDB`, async () => {
  expect((await redis.flushdb()) === 'OK', 'FLUSHDB');
  expect((await redis.dbsize()) === 0, 'DBSIZE');
});

await check(`${label}: SET/GET`, async () => {
  expect((await redis.set('str:a', 'hello')) === 'OK', 'SET');
  expect((await redis.get('str:a')) === 'hello', 'GET');
  expect((await redis.get('str:missing')) === null, 'GET of a missing key');
});

await check(`${label}: multi()/exec()`, async () => {
  const replies = await redis.multi().set('{tx}a', '1').incr('{tx}a').get('{tx}a').exec();
  expect(JSON.stringify(replies) === JSON.stringify([[null, 'OK'], [null, 2], [null, '2']]), `replies ${JSON.stringify(replies)}`);
});

await check(`${label}: pipeline()`, async () => {
  const replies = await redis.pipeline().set('pipe:a', '1').incr('pipe:a').get('pipe:b').exec();
  expect(JSON.stringify(replies) === JSON.stringify([[null, 'OK'], [null, 2], [null, null]]), `replies ${JSON.stringify(replies)}`);
});

await check(`${label}: WATCH conflict`, async () => {
  const watcher = connect();
  const other = connect();
  await watcher.set('{w}counter', '0');
  await watcher.watch('{w}counter');
  await other.set('{w}counter', '5');
  const replies = await watcher.multi().set('{w}counter', '10').exec();
  expect(replies === null, `EXEC after a conflicting write answered ${JSON.stringify(replies)}`);
  expect((await watcher.get('{w}counter')) === '5', 'the failed transaction wrote');
  watcher.disconnect();
  other.disconnect();
});

await check(`${label}: SET NX PX lock acquire and expiry`, async () => {
  // "Held" is checked on a lock that cannot expire between two commands on
  // a loaded machine; expiry on a short one (its TTL runs from when the
  // server applies the SET, so it may be gone by the time OK arrives).
  expect((await redis.set('lock:held', 'token1', 'PX', LOCK_HELD_MS, 'NX')) === 'OK', 'acquire');
  expect((await redis.set('lock:held', 'token2', 'PX', LOCK_HELD_MS, 'NX')) === null, 'second acquire');
  expect((await redis.set('lock:a', 'token1', 'PX', 500, 'NX')) === 'OK', 'acquire a short lock');
  await pollUntil('the lock to expire', async () => (await redis.set('lock:a', 'token2', 'PX', 500, 'NX')) === 'OK');
});

await check(`${label}: SET EX / TTL`, async () => {
  await redis.set('ttl:a', 'v', 'EX', 100);
  const ttl = await redis.ttl('ttl:a');
  expect(ttl > 0 && ttl <= 100, `TTL ${ttl}`);
});

await check(`${label}: INCRBYFLOAT`, async () => {
  expect(Number(await redis.incrbyfloat('float:a', 1.5)) === 1.5, 'first');
  expect(Number(await redis.incrbyfloat('float:a', 2.25)) === 3.75, 'second');
});

await check(`${label}: scanStream and KEYS`, async () => {
  const names = scanKeyNames('scan:');
  const pipe = redis.pipeline();
  for (const name of names) pipe.set(name, '1');
  await pipe.exec();
  const seen = [];
  await new Promise((resolve, reject) => {
    const stream = redis.scanStream({ match: 'scan:*', count: 50 });
    stream.on('data', (keys) => seen.push(...keys));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  expect(sameSet(seen, names), `SCAN saw ${new Set(seen).size} of ${names.length}`);
  expect(sameSet(await redis.keys('scan:*'), names), 'KEYS');
});

await check(`${label}: CLIENT ID/SETNAME/GETNAME/INFO/LIST`, async () => {
  const id = await redis.client('ID');
  expect(id > 0, `CLIENT ID ${id}`);
  expect((await redis.client('SETNAME', 'ioredis')) === 'OK', 'SETNAME');
  expect((await redis.client('GETNAME')) === 'ioredis', 'GETNAME');
  const info = await redis.client('INFO');
  expect(info.includes(`id=${id} `) && info.includes('name=ioredis '), `CLIENT INFO ${info}`);
  expect((await redis.client('LIST')).includes(`id=${id} `), 'CLIENT LIST lacks our id');
});

await check(`${label}: FLUSHDB empties`, async () => {
  expect((await redis.flushdb()) === 'OK', 'FLUSHDB');
  expect((await redis.dbsize()) === 0, 'DBSIZE');
});

redis.disconnect();
finish(label);
