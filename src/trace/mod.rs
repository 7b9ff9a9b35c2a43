//! The trace schema `paxoskv-trace`, version 1: what the simulator and live
//! nodes record of a run, and what `paxoskv viz` draws.
//!
//! A trace file is JSON lines. The first line is the header:
//!
//! ```text
//! {"schema":"paxoskv-trace","version":1,"source":"sim","clock":"sim","nodes":[1,2,3],"seed":7,"command":"paxoskv sim --seed 7"}
//! ```
//!
//! - `schema`: always "paxoskv-trace"; `version`: 1 (see [`VERSION`]);
//! - `source`: "sim" (the simulator, one file per run) or "node" (a live
//!   node, one file per node and shard);
//! - `clock`: what `t_us` counts: "sim" = simulated µs since the run
//!   started, "wall" = µs since the Unix epoch by the writer's clock;
//! - `nodes`: every replica id of the group (their count is the replica count);
//! - optional: `node` (the live node that wrote the file), `shard`, `seed`
//!   (the simulator seed), `command` (the command line).
//!
//! Every later line is one event: `{"t_us":…,"event":"<name>",…fields}`.
//! Ballots are text "round.node". `node` is the replica where the event
//! happened. Optional fields (marked ?) are left out when absent.
//!
//! | event | fields |
//! | --- | --- |
//! | `send` | `id` message id, `from`, `to`, `kind`, `ballot`?, `slot`? first slot, `slots`? slot count, `commands`? batch size, `bytes`? payload bytes, `digest`? value digest |
//! | `deliver` | `id`, `from`, `to`: the message `(from, to, id)` arrived; a duplicate is a second `deliver` |
//! | `drop` | `id`, `from`, `to`, `reason`: loss, partition, link_down, receiver_down, queue_full |
//! | `role` | `node`, `role`: follower, pre_candidate, candidate, leader, recovering; `ballot`? |
//! | `election` | `node`, `ballot`: Phase 1 started |
//! | `step_down` | `node`, `ballot`, `reason` |
//! | `lease_grant` | `node` (acceptor), `holder` ballot, `until_us` |
//! | `lease_release` | `node` (acceptor), `holder` ballot: the grant ended early (its leader handed over) |
//! | `lease` | `node` (leader), `ballot`, `until_us`: held until then; a later one extends it |
//! | `lease_expired` | `node`, `ballot` |
//! | `chosen` | `node` (that learned it), `slot`, `ballot`, `commands`, `digest` |
//! | `commit` | `node`, `index`: every slot below `index` known chosen at `node` |
//! | `invoke` | `op` id, `client`, `node` it was sent to, `command` text, `key`? |
//! | `complete` | `op`, `outcome`: ok, error, timeout, indeterminate; `output`? reply text |
//! | `violation` | `checker`, `message`, `ops`? op ids, `slot`? |
//! | `crash`, `restart` | `node` |
//! | `partition` | `side_a`, `side_b` node lists, `one_way`? (cut only a→b); cuts add up |
//! | `heal` | (no fields) every cut link works again |
//! | `stall_start`, `stall_end` | `node` |
//! | `disk_fault` | `node`, `detail` |
//! | `peer_up`, `peer_down` | `node`, `peer` |
//! | `recovery` | `node`, `detail` |
//!
//! Message kinds: prepare, promise, accept, accepted, pre_vote,
//! pre_vote_reply, reject, hand_over, heartbeat, heartbeat_reply, catch_up,
//! catch_up_reply, snapshot_chunk, fetch_snapshot, forward, forward_reply.
//! A message is identified by `(from, to, id)`: ids are unique per link
//! within a run (a per-run or per-sender counter is fine too; a live node
//! may number each peer connection's frames). A `send` with neither
//! `deliver` nor `drop` is one whose fate the trace does not say (the run
//! ended, or a live node's sampling kept only one side).
//!
//! Emitters describe a core message with [`send_event`]: it says which
//! values a message carries and digests them with [`value_digest`], the
//! same way in the simulator and in live nodes.
//!
//! Readers skip unknown events and unknown fields, and read an unknown
//! enum value (kind, reason, role, outcome) as "other": adding an event or
//! a field keeps version 1. A line that is not JSON, or a known event with
//! a missing or ill-typed field, is an error naming its line.

mod emit;
mod kinds;
mod merge;
mod node;
mod reader;
mod schema;
mod writer;

pub use emit::{frame_id, frame_send, send_event, value_digest};
pub use kinds::{ballot_text, DropReason, MessageKind, Outcome, RoleName};
pub use merge::merge;
pub use node::{NodeTraceConfig, NodeTracer};
pub use reader::{parse_trace, read_trace, Trace, TraceError};
pub use schema::{Clock, Event, Header, MessageId, OpId, Record, Send, Source, SCHEMA, VERSION};
pub use writer::{RotatingTraceFile, TraceWriter};
