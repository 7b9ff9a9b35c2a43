#!/usr/bin/env python3
"""Where a replicated write's time goes between the nodes, from live traces.

    benches/trace_hops.py DIR

DIR holds the nodes' protocol traces of one run (`paxoskv cluster
--trace-dir DIR --trace-messages-every 1`; wall clock, one host). Every
traced message has a `send` event at its sender (when the node handed it to
the link) and a `deliver` event at its receiver (when the node had it),
with the same id. For each Accept of one slot the leader sent, this prints
the p50, p90 and mean of three hops:

  leader -> follower   the Accept handed to the link until the follower's node has it
  follower             the follower has it until its Accepted for that slot leaves
  follower -> leader   the Accepted leaves until the leader's node has it

Only single-slot Accepts count (a batch's slots would be matched twice).
"""
import glob
import json
import os
import statistics
import sys


def events(directory):
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(path) as f:
            for line in f:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a node that was killed mid-write


def summary(values):
    values = sorted(values)
    if not values:
        return "no samples"
    at = lambda q: values[min(len(values) - 1, int(len(values) * q))]
    return f"n={len(values)} p50={at(0.5)} us p90={at(0.9)} us mean={statistics.mean(values):.0f} us"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sends, delivers = [], {}
    for event in events(sys.argv[1]):
        if event.get("event") == "send":
            sends.append(event)
        elif event.get("event") == "deliver":
            delivers[(event["id"], event["to"])] = event["t_us"]
    # An Accept goes to every follower under one id: key deliveries by (id, receiver).
    accepts = {}  # (follower, slot) -> (sent, delivered)
    out, inside, back = [], [], []
    for send in sends:
        if send.get("kind") == "accept" and send.get("slots", 1) == 1:
            delivered = delivers.get((send["id"], send["to"]))
            if delivered is not None:
                out.append(delivered - send["t_us"])
                accepts[(send["to"], send["slot"])] = delivered
    for send in sends:
        if send.get("kind") == "accepted" and send.get("slots", 1) == 1:
            got = accepts.get((send["from"], send["slot"]))
            delivered = delivers.get((send["id"], send["to"]))
            if got is not None and delivered is not None and send["t_us"] >= got:
                inside.append(send["t_us"] - got)
                back.append(delivered - send["t_us"])
    print(f"leader -> follower  {summary(out)}")
    print(f"follower            {summary(inside)}")
    print(f"follower -> leader  {summary(back)}")


if __name__ == "__main__":
    main()
