#!/usr/bin/env python3
"""redis-py (sync and asyncio) with its default settings against a server.

usage: check_redis_py.py HOST PORT

Every check prints PASS or FAIL with the reason; the script exits 1 if any
failed. It empties the server's keyspace (FLUSHDB) as it goes. Keys used
together in one transaction share a hash tag ({tx}, {w}, ...) because
paxoskv, like Redis Cluster, refuses a transaction whose keys are in
different shards; non-transactional pipelines and SCAN use untagged keys
spread over every shard. Verified against redis-server 7.0 first: what
fails here against paxoskv is paxoskv's fault.
"""

import asyncio
import sys
import time
import traceback

import redis
import redis.asyncio

# Generous: a loaded 2-core machine; a lock of LOCK_TIMEOUT_S must be free
# again well within it.
DEADLINE_S = 20.0
LOCK_TIMEOUT_S = 0.5
# A lock that must still be held when checked: it must not expire between
# two commands, however slow a loaded machine makes them. A short-lived
# lock may already be gone when its holder's SET is acknowledged (its TTL
# runs from when the server applies it), so "held" is never checked on one.
LOCK_HELD_S = 120
SCAN_KEYS = 300

results = []


def report(name, error=None):
    if error is None:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name}: {error}", flush=True)
    results.append((name, error is None))


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def poll_until(what, probe):
    """probe() until it returns a truthy value, for at most DEADLINE_S; returns it."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            value = probe()
        except Exception as e:  # noqa: BLE001 - only "outcome unknown" is retried
            # The server answered "outcome is unknown" (its request timed
            # out, say in a long fsync stall): every probe here may run twice.
            if "outcome is unknown" not in str(e):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {DEADLINE_S} s waiting for {what}")
        time.sleep(0.05)


def run_check(name, body, *args):
    try:
        body(*args)
        report(name)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        report(name, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")


async def run_async_check(name, body, *args):
    try:
        await body(*args)
        report(name)
    except Exception as e:  # noqa: BLE001
        report(name, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")


# ---------------------------------------------------------------- sync ----


def check_connect(r):
    expect(r.ping() is True, "PING did not answer True")
    info = r.client_info()
    print(f"     (redis-py {redis.__version__} connected with RESP{info.get('resp')})")


def check_flushdb(r):
    r.set("flush:probe", "x")
    expect(r.flushdb() is True, "FLUSHDB did not answer True")
    expect(r.dbsize() == 0, f"DBSIZE after FLUSHDB is {r.dbsize()}")


def check_set_get(r):
    expect(r.set("str:a", "hello") is True, "SET did not answer True")
    expect(r.get("str:a") == b"hello", f"GET answered {r.get('str:a')!r}")
    expect(r.get("str:missing") is None, "GET of a missing key is not None")
    expect(r.set("str:a", "x", nx=True) is None, "SET NX on an existing key did not answer None")
    expect(r.set("str:a", "bye", get=True) == b"hello", "SET GET did not return the old value")
    expect(r.getdel("str:a") == b"bye", "GETDEL did not return the value")
    expect(r.exists("str:a") == 0, "GETDEL left the key")
    expect(r.append("str:b", "ab") == 2 and r.append("str:b", "cd") == 4, "APPEND lengths")
    expect(r.strlen("str:b") == 4 and r.getrange("str:b", 1, 2) == b"bc", "STRLEN / GETRANGE")


def check_pipeline_not_transactional(r):
    # Single-key commands on keys in any shard; the MGET's keys share a tag
    # (a multi-key command across shards gets -CROSSSLOT, as in Redis Cluster).
    pipe = r.pipeline(transaction=False)
    pipe.set("pipe:a", 1).incr("pipe:a").get("pipe:a").incrby("pipe:b", 5)
    pipe.set("{pipe}c", 3).mget("{pipe}c", "{pipe}d")
    results_ = pipe.execute()
    expect(results_ == [True, 2, b"2", 5, True, [b"3", None]], f"results {results_!r}")


def check_pipeline_transactional(r):
    pipe = r.pipeline()  # transaction=True by default: MULTI ... EXEC
    pipe.set("{tx}a", 1).incr("{tx}a").get("{tx}a").get("{tx}missing")
    results_ = pipe.execute()
    expect(results_ == [True, 2, b"2", None], f"results {results_!r}")
    # A runtime error inside EXEC: the other commands still run.
    r.set("{tx}text", "abc")
    pipe = r.pipeline()
    pipe.set("{tx}b", "x").incr("{tx}text").set("{tx}c", "y")
    results_ = pipe.execute(raise_on_error=False)
    expect(results_[0] is True and results_[2] is True, f"results {results_!r}")
    expect(isinstance(results_[1], redis.ResponseError), f"INCR of text gave {results_[1]!r}")
    expect(r.mget("{tx}b", "{tx}c") == [b"x", b"y"], "the commands around the error did not run")


def check_watch_conflict(r, host, port):
    other = redis.Redis(host=host, port=port)
    r.set("{w}counter", 0)
    calls = []

    def body(pipe):
        calls.append(1)
        value = int(pipe.get("{w}counter"))
        if len(calls) == 1:
            other.incr("{w}counter")  # a conflicting write between WATCH and EXEC
        pipe.multi()
        pipe.set("{w}counter", value + 10)

    r.transaction(body, "{w}counter")
    expect(len(calls) == 2, f"the transaction body ran {len(calls)} times, not 2 (one WatchError retry)")
    expect(r.get("{w}counter") == b"11", f"counter is {r.get('{w}counter')!r}, not 11")
    # And the raw form: WatchError from execute().
    with r.pipeline() as pipe:
        pipe.watch("{w}counter")
        other.set("{w}counter", 99)
        pipe.multi()
        pipe.set("{w}counter", 0)
        try:
            pipe.execute()
            raise AssertionError("EXEC after a conflicting write did not raise WatchError")
        except redis.WatchError:
            pass
    expect(r.get("{w}counter") == b"99", "the failed transaction wrote")
    other.close()


def check_lock_acquire(r):
    lock = r.lock("lock:acquire", timeout=LOCK_HELD_S)
    expect(lock.acquire(blocking=False), "a free lock was not acquired")
    second = r.lock("lock:acquire", timeout=LOCK_HELD_S)
    expect(not second.acquire(blocking=False), "a held lock was acquired twice")
    expect(lock.owned(), "the holder does not own its lock")
    # Releasing runs a Lua script (EVALSHA). redis-server has Lua and
    # releases; paxoskv has none and must refuse it cleanly: the
    # unknown-command error, the lock still held, the connection usable.
    try:
        lock.release()
        expect(r.exists("lock:acquire") == 0, "the released lock's key is still there")
        print("     (Lock.release() ran: a server with Lua)")
        return
    except redis.ResponseError as e:
        expect("unknown command 'evalsha'" in str(e).lower(), f"Lock.release() raised {e!r}")
        print(f"     (Lock.release() without Lua: {str(e)[:60]}...)")
    expect(r.exists("lock:acquire") == 1, "the failed release removed the lock's key")
    expect(not second.acquire(blocking=False), "the lock was acquirable after the failed release")
    expect(r.ping() is True, "the connection is unusable after the failed release")


def check_lock_expiry(r):
    lock = r.lock("lock:expiry", timeout=LOCK_TIMEOUT_S)
    expect(lock.acquire(blocking=False), "a free lock was not acquired")
    expect(r.pttl("lock:expiry") <= LOCK_TIMEOUT_S * 1000, "the lock's PTTL exceeds its timeout")
    second = r.lock("lock:expiry", timeout=LOCK_TIMEOUT_S)
    # blocking acquire polls (redis-py sleeps 0.1 s between tries) until the
    # first lock's TTL runs out.
    expect(second.acquire(blocking=True, blocking_timeout=DEADLINE_S),
           f"the expired lock was not acquirable within {DEADLINE_S} s")


def check_set_ex_ttl(r):
    expect(r.set("ttl:a", "v", ex=100) is True, "SET EX")
    ttl = r.ttl("ttl:a")
    expect(0 < ttl <= 100, f"TTL {ttl}")
    expect(0 < r.pttl("ttl:a") <= 100_000, "PTTL")
    expect(r.expire("ttl:a", 50, gt=True) is False, "EXPIRE GT with a smaller time set it")
    expect(r.persist("ttl:a") is True and r.ttl("ttl:a") == -1, "PERSIST")
    expect(r.ttl("ttl:missing") == -2, "TTL of a missing key")
    expect(r.execute_command("SETEX", "ttl:b", 100, "v") is True and 0 < r.ttl("ttl:b") <= 100, "SETEX")
    expect(r.getex("ttl:b", persist=True) == b"v" and r.ttl("ttl:b") == -1, "GETEX PERSIST")
    r.set("ttl:c", "v", px=200)
    poll_until("a key with PX 200 to expire", lambda: not r.exists("ttl:c"))


def check_incrbyfloat(r):
    expect(r.incrbyfloat("float:a", 1.5) == 1.5, "first INCRBYFLOAT")
    expect(r.incrbyfloat("float:a", 2.25) == 3.75, "second INCRBYFLOAT")
    expect(r.get("float:a") == b"3.75", f"value {r.get('float:a')!r}")


def fill_scan_keys(r):
    pipe = r.pipeline(transaction=False)
    expected = set()
    for i in range(SCAN_KEYS):
        key = f"scan:{i}".encode()
        pipe.set(key, i)
        expected.add(key)
    pipe.execute()
    return expected


def check_scan_iter(r):
    expected = fill_scan_keys(r)
    r.set("other:key", 1)
    seen = set(r.scan_iter(match="scan:*", count=50))
    expect(seen == expected, f"{len(seen)} keys seen, {len(expected)} expected")
    typed = set(r.scan_iter(match="scan:*", _type="STRING"))
    expect(typed == expected, f"TYPE STRING: {len(typed)} keys seen")
    everything = set(r.scan_iter())
    expect(everything >= expected | {b"other:key"}, "a plain SCAN missed keys")


def check_keys(r):
    expected = fill_scan_keys(r)
    found = set(r.keys("scan:*"))
    expect(found == expected, f"KEYS found {len(found)} of {len(expected)}")
    expect(r.keys("nomatch:*") == [], "KEYS of no match")


def check_flushdb_at_end(r):
    expect(r.dbsize() > 0, "nothing to flush")
    expect(r.flushdb() is True, "FLUSHDB")
    expect(r.dbsize() == 0, "DBSIZE after FLUSHDB")
    expect(r.keys("*") == [], "KEYS * after FLUSHDB")


def check_client_commands(r, name):
    client_id = r.client_id()
    expect(isinstance(client_id, int) and client_id > 0, f"CLIENT ID {client_id!r}")
    expect(r.client_setname(name) is True, "CLIENT SETNAME")
    got = r.client_getname()
    expect(got in (name, name.encode()), f"CLIENT GETNAME {got!r}")
    info = r.client_info()
    expect(str(info.get("id")) == str(client_id), f"CLIENT INFO id {info.get('id')!r}")
    expect(info.get("name") == name, f"CLIENT INFO name {info.get('name')!r}")
    # redis-py announces itself with CLIENT SETINFO (Redis 7.2+) and ignores
    # an error: the fields are there only if the server supports it.
    if "lib-name" in info:
        expect(info["lib-name"] == "redis-py", f"lib-name {info['lib-name']!r}")
    ids = [str(c.get("id")) for c in r.client_list()]
    expect(str(client_id) in ids, f"CLIENT LIST lacks our id {client_id}: {ids}")


def check_info(r):
    info = r.info()
    for field in ("redis_version", "role", "connected_clients", "used_memory"):
        expect(field in info, f"INFO lacks {field}: {sorted(info)[:20]}")
    expect(info["role"] == "master", f"role {info['role']!r}")
    r.set("info:a", 1)
    # INFO counts the keys this node has applied; a follower may lag the
    # write's acknowledgement a little (as a Redis replica does).
    poll_until("INFO keyspace to count a key", lambda: r.info("keyspace").get("db0", {}).get("keys", 0) >= 1)
    server = r.info("server")
    expect("redis_version" in server and "connected_clients" not in server, "INFO server is not one section")


def run_sync(host, port):
    r = redis.Redis(host=host, port=port)  # the defaults: RESP3 in redis-py 8
    run_check("sync: connect with defaults", check_connect, r)
    run_check("sync: FLUSHDB", check_flushdb, r)
    run_check("sync: SET/GET and string commands", check_set_get, r)
    run_check("sync: pipeline(transaction=False)", check_pipeline_not_transactional, r)
    run_check("sync: pipeline() (MULTI/EXEC)", check_pipeline_transactional, r)
    run_check("sync: WATCH conflict retried by transaction()", check_watch_conflict, r, host, port)
    run_check("sync: Lock acquire", check_lock_acquire, r)
    run_check("sync: Lock expiry", check_lock_expiry, r)
    run_check("sync: SET EX / TTL / expiry", check_set_ex_ttl, r)
    run_check("sync: INCRBYFLOAT", check_incrbyfloat, r)
    run_check("sync: INFO", check_info, r)
    run_check("sync: scan_iter", check_scan_iter, r)
    run_check("sync: KEYS", check_keys, r)
    run_check("sync: FLUSHDB empties", check_flushdb_at_end, r)
    run_check("sync: CLIENT ID/SETNAME/GETNAME/INFO/LIST", check_client_commands, r, "py-sync")
    r.close()


# --------------------------------------------------------------- async ----


async def acheck_connect(r):
    expect(await r.ping() is True, "PING did not answer True")


async def acheck_set_get(r):
    expect(await r.set("astr:a", "hello") is True, "SET")
    expect(await r.get("astr:a") == b"hello", "GET")


async def acheck_pipelines(r):
    pipe = r.pipeline(transaction=False)
    pipe.set("apipe:a", 1).incr("apipe:a").get("apipe:a")
    expect(await pipe.execute() == [True, 2, b"2"], "non-transactional pipeline")
    pipe = r.pipeline()
    pipe.set("{atx}a", 1).incr("{atx}a").get("{atx}a")
    expect(await pipe.execute() == [True, 2, b"2"], "transactional pipeline")


async def acheck_watch_conflict(r, host, port):
    other = redis.asyncio.Redis(host=host, port=port)
    await r.set("{aw}counter", 0)
    calls = []

    async def body(pipe):
        calls.append(1)
        value = int(await pipe.get("{aw}counter"))
        if len(calls) == 1:
            await other.incr("{aw}counter")
        pipe.multi()
        pipe.set("{aw}counter", value + 10)

    await r.transaction(body, "{aw}counter")
    expect(len(calls) == 2, f"the transaction body ran {len(calls)} times, not 2")
    expect(await r.get("{aw}counter") == b"11", "counter is not 11")
    await other.aclose()


async def acheck_lock(r):
    held = r.lock("alock:held", timeout=LOCK_HELD_S)
    expect(await held.acquire(blocking=False), "a free lock was not acquired")
    expect(not await r.lock("alock:held", timeout=LOCK_HELD_S).acquire(blocking=False),
           "a held lock was acquired twice")
    expect(await held.owned(), "the holder does not own its lock")
    # Expiry: blocking acquire polls (0.1 s apart) until the first TTL runs out.
    lock = r.lock("alock:expiry", timeout=LOCK_TIMEOUT_S)
    expect(await lock.acquire(blocking=False), "a free lock was not acquired")
    second = r.lock("alock:expiry", timeout=LOCK_TIMEOUT_S)
    expect(await second.acquire(blocking=True, blocking_timeout=DEADLINE_S),
           f"the expired lock was not acquirable within {DEADLINE_S} s")


async def acheck_ttl_and_float(r):
    await r.set("attl:a", "v", ex=100)
    ttl = await r.ttl("attl:a")
    expect(0 < ttl <= 100, f"TTL {ttl}")
    expect(await r.incrbyfloat("afloat:a", 0.5) == 0.5, "INCRBYFLOAT")


async def acheck_scan(r):
    pipe = r.pipeline(transaction=False)
    expected = set()
    for i in range(SCAN_KEYS):
        key = f"ascan:{i}".encode()
        pipe.set(key, i)
        expected.add(key)
    await pipe.execute()
    seen = {key async for key in r.scan_iter(match="ascan:*", count=50)}
    expect(seen == expected, f"{len(seen)} keys seen, {len(expected)} expected")
    expect(set(await r.keys("ascan:*")) == expected, "KEYS")


async def acheck_client(r):
    await r.client_setname("py-async")
    info = await r.client_info()
    expect(info.get("name") == "py-async", f"CLIENT INFO name {info.get('name')!r}")
    expect(isinstance(await r.client_id(), int), "CLIENT ID")


async def acheck_info(r):
    info = await r.info()
    expect("redis_version" in info and info.get("role") == "master", f"INFO {sorted(info)[:20]}")


async def acheck_flushdb(r):
    expect(await r.flushdb() is True, "FLUSHDB")
    expect(await r.dbsize() == 0, "DBSIZE after FLUSHDB")


async def run_async(host, port):
    r = redis.asyncio.Redis(host=host, port=port)
    await run_async_check("asyncio: connect with defaults", acheck_connect, r)
    await run_async_check("asyncio: SET/GET", acheck_set_get, r)
    await run_async_check("asyncio: pipelines (plain and MULTI/EXEC)", acheck_pipelines, r)
    await run_async_check("asyncio: WATCH conflict retried by transaction()", acheck_watch_conflict, r, host, port)
    await run_async_check("asyncio: Lock acquire and expiry", acheck_lock, r)
    await run_async_check("asyncio: SET EX / TTL / INCRBYFLOAT", acheck_ttl_and_float, r)
    await run_async_check("asyncio: scan_iter and KEYS", acheck_scan, r)
    await run_async_check("asyncio: CLIENT SETNAME/INFO/ID", acheck_client, r)
    await run_async_check("asyncio: INFO", acheck_info, r)
    await run_async_check("asyncio: FLUSHDB", acheck_flushdb, r)
    await r.aclose()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    host, port = sys.argv[1], int(sys.argv[2])
    run_sync(host, port)
    asyncio.run(run_async(host, port))
    failed = sum(1 for _, ok in results if not ok)
    print(f"redis-py: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
