//! What `--target` names. Only RESP servers (paxoskv, Redis) for now.
//!
//! The seam for other protocols: add a variant here (an etcd one would sit
//! behind a cargo feature, since it needs an HTTP/2 + gRPC stack), parse its
//! scheme in [`Target::parse`], and give `engine::drive_connection` a driver
//! for it. Schedules, workloads, the in-flight queue (keyed instead of
//! ordered, for a protocol with out-of-order replies) and the recorder are
//! protocol-independent and shared.

use std::net::{SocketAddr, ToSocketAddrs};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `resp://host:port[,host:port...]`: connections go round-robin over
    /// the addresses.
    Resp { addresses: Vec<String> },
    /// `etcd://host:port[,host:port...]`: one gRPC client per connection,
    /// round-robin over the members (cargo feature `etcd`).
    Etcd { endpoints: Vec<String> },
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("target {text:?} has no scheme (resp://host:port)"))?;
        match scheme {
            "resp" | "redis" => {
                let addresses: Vec<String> = rest.split(',').map(|a| a.trim().to_string()).collect();
                if addresses.iter().any(|a| a.is_empty() || !a.contains(':')) {
                    return Err(format!("target {text:?}: every address must be host:port"));
                }
                Ok(Target::Resp { addresses })
            }
            "etcd" => {
                let endpoints: Vec<String> = rest.split(',').map(|a| a.trim().to_string()).collect();
                if endpoints.iter().any(|a| a.is_empty() || !a.contains(':')) {
                    return Err(format!("target {text:?}: every endpoint must be host:port"));
                }
                Ok(Target::Etcd { endpoints })
            }
            other => Err(format!("unknown target scheme {other:?} (expected resp:// or etcd://)")),
        }
    }

    /// Resolves every address (an unresolvable host is an unreachable target).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        match self {
            Target::Resp { addresses: list } | Target::Etcd { endpoints: list } => list
                .iter()
                .map(|address| {
                    address
                        .to_socket_addrs()
                        .map_err(|e| format!("cannot resolve {address}: {e}"))?
                        .next()
                        .ok_or_else(|| format!("cannot resolve {address}: no addresses"))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_targets_list_addresses() {
        assert_eq!(
            Target::parse("resp://127.0.0.1:6379,localhost:7000").unwrap(),
            Target::Resp { addresses: vec!["127.0.0.1:6379".into(), "localhost:7000".into()] }
        );
        assert!(Target::parse("127.0.0.1:6379").is_err());
        assert!(Target::parse("resp://127.0.0.1").is_err());
        assert_eq!(
            Target::parse("etcd://127.0.0.1:2379").unwrap(),
            Target::Etcd { endpoints: vec!["127.0.0.1:2379".into()] }
        );
        assert!(Target::parse("http://x:1").is_err());
    }
}
