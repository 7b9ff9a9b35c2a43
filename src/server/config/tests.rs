//! Tests of `config.rs`.

use super::*;

#[test]
fn local_cluster_file_round_trips_through_toml() {
    let file = ClusterFile::local(3, 7000, 2, Path::new("/tmp/x")).unwrap();
    let text = file.to_toml();
    assert_eq!(ClusterFile::parse(&text).unwrap(), file);
    assert_eq!(file.node(2).unwrap().client_port, 7002);
}

#[test]
fn defaults_fill_a_minimal_file() {
    let text = r#"
        cluster_id = "c"
        data_dir = "/d"
        [[nodes]]
        id = 1
        host = "127.0.0.1"
        client_port = 7001
        peer_port = 8001
    "#;
    let file = ClusterFile::parse(text).unwrap();
    assert_eq!(file.shards, 1);
    assert_eq!(file.tuning, Tuning::default());
    assert_eq!(file.tuning.wal_writes, WalWrites::Async);
    let inline = ClusterFile::parse(&format!("{text}\n[tuning]\nwal_writes = \"inline\"")).unwrap();
    assert_eq!(inline.tuning.wal_writes, WalWrites::Inline);
    let bad = ClusterFile::parse(&format!("{text}\n[tuning]\nwal_writes = \"sometimes\"")).unwrap_err();
    assert!(bad.contains("unknown variant"), "{bad}");
    assert!(!file.tuning.transparent_huge_pages, "huge pages are off unless asked for");
    let thp = ClusterFile::parse(&format!("{text}\n[tuning]\ntransparent_huge_pages = true")).unwrap();
    assert!(thp.tuning.transparent_huge_pages);
    let bound =
        ClusterFile::parse(&format!("{text}\n[tuning]\nunsynced_bytes_max = 0\nsnapshot_copy_keys = 8")).unwrap();
    let node = bound.node_config(1);
    assert_eq!((node.unsynced_bytes_max, node.snapshot_copy_keys), (0, 8), "the [tuning] keys reach the node");
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    let base = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
    let mut twice = base.clone();
    twice.nodes[1].id = 1;
    assert!(twice.validate().unwrap_err().contains("appears twice"));
    let mut clash = base.clone();
    clash.nodes[1].client_port = clash.nodes[1].peer_port;
    assert!(clash.validate().unwrap_err().contains("used twice"));
    let mut window = base.clone();
    window.tuning.window_slots = 0;
    assert!(window.validate().is_err());
    // Settings a server would start with and then serve nothing (a hostile
    // operator's sweep): an OS-chosen port, no client allowed, no compaction.
    let mut port_zero = base.clone();
    port_zero.nodes[2].client_port = 0;
    assert!(port_zero.validate().unwrap_err().contains("node 3: client_port is 0"));
    let mut metrics_zero = base.clone();
    metrics_zero.nodes[0].metrics_port = Some(0);
    assert!(metrics_zero.validate().unwrap_err().contains("metrics_port is 0"));
    let mut no_clients = base.clone();
    no_clients.tuning.clients_max = 0;
    assert!(no_clients.validate().unwrap_err().contains("clients_max"));
    let mut no_forwarded_reads = base.clone();
    no_forwarded_reads.tuning.forward_read_window = 0;
    assert!(no_forwarded_reads.validate().unwrap_err().contains("forward_read_window"));
    let mut no_snapshot_copy = base.clone();
    no_snapshot_copy.tuning.snapshot_copy_keys = 0;
    assert!(no_snapshot_copy.validate().unwrap_err().contains("snapshot_copy_keys"));
    let mut never_compacts = base.clone();
    (never_compacts.tuning.snapshot_every_slots, never_compacts.tuning.snapshot_every_bytes) = (0, 0);
    assert!(never_compacts.validate().unwrap_err().contains("never be compacted"));
    never_compacts.tuning.snapshot_every_bytes = 1 << 20;
    assert!(never_compacts.validate().is_ok(), "one trigger is enough");
    assert!(ClusterFile::parse("cluster_id = 1").is_err());
    let unknown = base.to_toml().replace("window_slots", "windows_slots");
    assert!(ClusterFile::parse(&unknown).unwrap_err().contains("unknown field"));
}

#[test]
fn secrets_round_trip_and_never_show_in_debug() {
    let mut file = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
    file.peer_secret = Some(Secret::new("peer-hunter2"));
    file.requirepass = Some(Secret::new("client-hunter2"));
    let text = file.to_toml();
    assert!(text.contains("peer_secret = \"peer-hunter2\"") && text.contains("requirepass = \"client-hunter2\""));
    assert_eq!(ClusterFile::parse(&text).unwrap(), file);
    let debug = format!("{file:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert_eq!(file.peer_secret(), Ok(Some(b"peer-hunter2".to_vec())));
}

#[test]
fn bad_secrets_and_passwords_are_refused() {
    let base = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
    let mut both = base.clone();
    both.peer_secret = Some(Secret::new("s"));
    both.peer_secret_file = Some("peer.secret".into());
    assert!(both.validate().unwrap_err().contains("not both"));
    let mut empty = base.clone();
    empty.peer_secret = Some(Secret::new(""));
    assert!(empty.validate().unwrap_err().contains("peer_secret must be 1 to 4096 bytes"));
    let mut empty = base.clone();
    empty.requirepass = Some(Secret::new(""));
    assert!(empty.validate().unwrap_err().contains("requirepass is empty"));
    assert!(parse_password("").is_err());
    assert_eq!(parse_password("pw"), Ok(Secret::new("pw")));
}

#[test]
fn the_peer_secret_file_is_read_relative_to_the_cluster_file() {
    let dir = std::env::temp_dir().join(format!("paxoskv-config-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
    file.peer_secret_file = Some("peer.secret".into());
    std::fs::write(dir.join("cluster.toml"), file.to_toml()).unwrap();
    std::fs::write(dir.join("peer.secret"), "from-a-file\r\n").unwrap();
    let loaded = ClusterFile::load(&dir.join("cluster.toml")).unwrap();
    assert_eq!(loaded.peer_secret_file, Some(dir.join("peer.secret")));
    assert_eq!(loaded.peer_secret(), Ok(Some(b"from-a-file".to_vec())), "one trailing newline dropped");
    std::fs::write(dir.join("peer.secret"), "\n").unwrap();
    assert!(loaded.peer_secret().unwrap_err().contains("must hold 1 to 4096 bytes, not 0"));
    std::fs::remove_file(dir.join("peer.secret")).unwrap();
    assert!(loaded.peer_secret().unwrap_err().contains("reading peer_secret_file"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(file.peer_secret.as_ref().map(Secret::expose), None);
    assert_eq!(ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap().peer_secret(), Ok(None));
}

#[test]
fn only_a_loopback_cluster_counts_as_local() {
    let mut file = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
    assert!(file.all_nodes_on_loopback());
    file.nodes[1].host = "localhost".into();
    file.nodes[2].host = "::1".into();
    assert!(file.all_nodes_on_loopback());
    file.nodes[2].host = "10.0.0.3".into();
    assert!(!file.all_nodes_on_loopback());
}

#[test]
fn cli_flags_override_the_file() {
    let mut t = Tuning::default();
    let args = TuningArgs {
        window_slots: Some(1),
        lease_reads: Some(false),
        wal_writes: Some(WalWrites::Inline),
        transparent_huge_pages: Some(true),
        unsynced_bytes_max: Some(1 << 20),
        snapshot_copy_keys: Some(64),
        ..Default::default()
    };
    args.apply(&mut t);
    assert_eq!((t.unsynced_bytes_max, t.snapshot_copy_keys), (1 << 20, 64));
    assert_eq!((t.window_slots, t.lease_reads, t.batch_count_max), (1, false, 1024));
    assert_eq!(t.wal_writes, WalWrites::Inline);
    assert!(t.transparent_huge_pages);
}

#[test]
fn a_server_accepts_only_the_injected_bugs_meant_for_measurement() {
    assert_eq!(parse_server_injected_bug("stale-lease-reads"), Ok(InjectedBug::StaleLeaseReads));
    let sim_only = parse_server_injected_bug("ignore-promised-values").unwrap_err();
    assert!(sim_only.contains("for the simulator only") && sim_only.contains("stale-lease-reads"), "{sim_only}");
    assert!(parse_server_injected_bug("no-such-bug").unwrap_err().contains("is not an injected bug"));
    assert!(parse_server_injected_bug("none").unwrap_err().contains("leave it out"));

    let mut file = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
    assert!(!file.to_toml().contains("unsafe_inject_bug"), "absent unless asked for");
    assert_eq!(file.core_config().injected_bug, InjectedBug::None);
    let args = TuningArgs { unsafe_inject_bug: Some("stale-lease-reads".into()), ..Default::default() };
    args.apply(&mut file.tuning);
    // `paxoskv cluster` hands it to its servers through the file's [tuning].
    let text = file.to_toml();
    assert!(text.contains("unsafe_inject_bug = \"stale-lease-reads\""), "{text}");
    let parsed = ClusterFile::parse(&text).unwrap();
    assert_eq!(parsed, file);
    assert_eq!(parsed.core_config().injected_bug, InjectedBug::StaleLeaseReads);
    let sim_only = text.replace("stale-lease-reads", "reply-before-persist");
    assert!(ClusterFile::parse(&sim_only).unwrap_err().contains("tuning.unsafe_inject_bug: `reply-before-persist`"));
}

#[test]
fn an_injected_bug_needs_the_environment_variable_set_to_1() {
    let mut tuning = Tuning::default();
    for env in [None, Some("1"), Some("0")] {
        assert_eq!(check_injected_bug_allowed(&tuning, env), Ok(()), "nothing to allow without a bug");
    }
    tuning.unsafe_inject_bug = Some("stale-lease-reads".into());
    assert_eq!(check_injected_bug_allowed(&tuning, Some("1")), Ok(()));
    for env in [None, Some(""), Some("0"), Some("true"), Some("yes")] {
        let error = check_injected_bug_allowed(&tuning, env).unwrap_err();
        assert!(error.contains("stale-lease-reads") && error.contains("PAXOSKV_ALLOW_INJECTED_BUGS=1"), "{error}");
    }
}

#[test]
fn window_slots_is_cluster_wide_so_one_node_cannot_override_it() {
    let file = Tuning::default();
    let same = TuningArgs { window_slots: Some(file.window_slots), ..Default::default() };
    assert_eq!(same.check_cluster_wide(&file), Ok(()));
    assert_eq!(TuningArgs::default().check_cluster_wide(&file), Ok(()));
    let other = TuningArgs { window_slots: Some(file.window_slots + 1), ..Default::default() };
    let error = other.check_cluster_wide(&file).unwrap_err();
    assert!(error.contains("must be the same on every node"), "{error}");
    // A sweep found 0 answered "differs from the file", not why 0 is wrong.
    let zero = TuningArgs { window_slots: Some(0), ..Default::default() };
    assert_eq!(
        zero.check_cluster_wide(&file),
        Err("--window-slots must be at least 1 (1 turns pipelining off)".into())
    );
}
