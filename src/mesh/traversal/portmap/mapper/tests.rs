use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::*;

/// A scripted backend: each `map` pops the next result (`None` = fail).
#[derive(Clone)]
struct Fake {
    protocol: Protocol,
    script: Arc<Mutex<VecDeque<Option<SocketAddr>>>>,
    calls: Arc<Mutex<Vec<&'static str>>>,
    reboot: Arc<Mutex<bool>>,
}

impl Fake {
    fn new(protocol: Protocol, script: &[Option<&str>]) -> Self {
        Self {
            protocol,
            script: Arc::new(Mutex::new(
                script
                    .iter()
                    .map(|s| s.map(|a| a.parse().unwrap()))
                    .collect(),
            )),
            calls: Arc::new(Mutex::new(Vec::new())),
            reboot: Arc::new(Mutex::new(false)),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }
}

impl Backend for Fake {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn map(
        &mut self,
        internal_port: u16,
        previous: Option<&Lease>,
        lifetime: Duration,
    ) -> Result<Lease, PortMapError> {
        self.calls
            .lock()
            .unwrap()
            .push(if previous.is_some() { "renew" } else { "map" });
        match self.script.lock().unwrap().pop_front().flatten() {
            Some(external) => Ok(Lease {
                protocol: self.protocol,
                internal_port,
                external,
                lifetime,
            }),
            None => Err(PortMapError::NoGateway),
        }
    }

    fn unmap(&mut self, _lease: &Lease) -> Result<(), PortMapError> {
        self.calls.lock().unwrap().push("unmap");
        Ok(())
    }

    fn take_reboot(&mut self) -> bool {
        std::mem::take(&mut *self.reboot.lock().unwrap())
    }

    fn observe_epoch(&mut self, epoch: u32, _now: Instant) -> bool {
        epoch < 100
    }
}

fn config() -> MapperConfig {
    MapperConfig {
        enabled: true,
        renew_retry_delay: Duration::from_millis(1),
        ..MapperConfig::new(4000)
    }
}

#[test]
fn off_by_default_and_never_maps_port_zero() {
    let fake = Fake::new(Protocol::Pcp, &[Some("8.8.4.4:4000")]);
    let mut m = PortMapper::with_backends(MapperConfig::new(4000), vec![Box::new(fake.clone())]);
    assert!(matches!(
        m.start(Instant::now()),
        Err(PortMapError::Disabled)
    ));
    let mut m = PortMapper::with_backends(
        MapperConfig {
            internal_port: 0,
            ..config()
        },
        vec![Box::new(fake.clone())],
    );
    assert!(matches!(m.start(Instant::now()), Err(PortMapError::NoPort)));
    assert!(fake.calls().is_empty());
}

#[test]
fn probe_order_falls_through_to_the_first_that_works() {
    let pcp = Fake::new(Protocol::Pcp, &[None]);
    let pmp = Fake::new(Protocol::NatPmp, &[Some("8.8.4.4:4000")]);
    let upnp = Fake::new(Protocol::Upnp, &[Some("8.8.4.4:5000")]);
    let mut m = PortMapper::with_backends(
        config(),
        vec![
            Box::new(pcp.clone()),
            Box::new(pmp.clone()),
            Box::new(upnp.clone()),
        ],
    );
    let t0 = Instant::now();
    let ev = m.start(t0).unwrap();
    let MapperEvent::Installed(lease) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(lease.protocol, Protocol::NatPmp);
    assert_eq!(pcp.calls(), ["map"]);
    assert!(upnp.calls().is_empty());
    let s = m.stats();
    assert!(s.active);
    assert_eq!(s.external, Some("8.8.4.4:4000".parse().unwrap()));
    assert_eq!(s.renewals, 0);
    // Renew at min(30 min, 3600 s / 2).
    assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(1800)));
}

#[test]
fn all_fail_lists_every_protocol() {
    let mut m = PortMapper::with_backends(
        config(),
        vec![
            Box::new(Fake::new(Protocol::Pcp, &[None])),
            Box::new(Fake::new(Protocol::NatPmp, &[None])),
        ],
    );
    match m.start(Instant::now()) {
        Err(PortMapError::Unavailable(list)) => {
            let protocols: Vec<Protocol> = list.iter().map(|(p, _)| *p).collect();
            assert_eq!(protocols, [Protocol::Pcp, Protocol::NatPmp]);
        }
        other => panic!("{other:?}"),
    }
    assert!(!m.stats().active);
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn renewals_retry_refresh_and_tear_down_after_three_failures() {
    let short = MapperConfig {
        lease: Duration::from_secs(120),
        ..config()
    };
    // install, renew ok (new external), renewal 2: fail+fail, renewal 3:
    // fail+ok, then three failed renewals (two tries each).
    let fake = Fake::new(
        Protocol::Pcp,
        &[
            Some("8.8.4.4:4000"),
            Some("8.8.4.5:4000"),
            None,
            None,
            None,
            Some("8.8.4.5:4000"),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
    );
    let mut m = PortMapper::with_backends(short, vec![Box::new(fake.clone())]);
    let t0 = Instant::now();
    m.start(t0).unwrap();
    let due = m.next_deadline().unwrap();
    assert_eq!(due, t0 + Duration::from_secs(60));
    assert_eq!(m.tick(due - Duration::from_millis(1)), None, "not yet");

    let ev = m.tick(due).unwrap();
    assert!(matches!(
        ev,
        MapperEvent::Renewed {
            external_changed: true,
            ..
        }
    ));
    assert_eq!(m.stats().renewals, 1);
    assert_eq!(m.stats().external, Some("8.8.4.5:4000".parse().unwrap()));

    let due = m.next_deadline().unwrap();
    assert_eq!(
        m.tick(due),
        Some(MapperEvent::RenewalFailed { consecutive: 1 })
    );
    // Retried after a quarter of the interval.
    assert_eq!(m.next_deadline(), Some(due + Duration::from_secs(15)));
    let due = m.next_deadline().unwrap();
    assert!(matches!(
        m.tick(due),
        Some(MapperEvent::Renewed {
            external_changed: false,
            ..
        })
    ));
    assert_eq!(m.stats().renewals, 2);

    for n in 1..=2 {
        let due = m.next_deadline().unwrap();
        assert_eq!(
            m.tick(due),
            Some(MapperEvent::RenewalFailed { consecutive: n })
        );
    }
    let due = m.next_deadline().unwrap();
    assert_eq!(
        m.tick(due),
        Some(MapperEvent::Removed {
            reason: RemovedReason::RenewalsFailed,
            deleted: true
        })
    );
    assert!(!m.stats().active);
    assert_eq!(m.stats().external, None);
    assert_eq!(m.next_deadline(), None);
    let calls = fake.calls();
    assert_eq!(calls.first(), Some(&"map"));
    assert_eq!(calls.last(), Some(&"unmap"));
    assert_eq!(calls.iter().filter(|c| **c == "renew").count(), 11);
}

#[test]
fn shutdown_unmaps_once_and_counts_reboots() {
    let fake = Fake::new(
        Protocol::NatPmp,
        &[Some("8.8.4.4:4000"), Some("8.8.4.4:4000")],
    );
    let mut m = PortMapper::with_backends(config(), vec![Box::new(fake.clone())]);
    assert_eq!(m.shutdown(), None, "nothing installed");
    let t0 = Instant::now();
    m.start(t0).unwrap();
    *fake.reboot.lock().unwrap() = true;
    m.tick(m.next_deadline().unwrap()).unwrap();
    assert_eq!(m.stats().gateway_reboots, 1);
    assert_eq!(
        m.shutdown(),
        Some(MapperEvent::Removed {
            reason: RemovedReason::Shutdown,
            deleted: true
        })
    );
    assert_eq!(m.shutdown(), None);
    assert_eq!(fake.calls(), ["map", "renew", "unmap"]);
}

#[test]
fn renew_interval_bounds() {
    assert_eq!(
        renew_interval(Duration::from_secs(3600)),
        Duration::from_secs(1800)
    );
    assert_eq!(
        renew_interval(Duration::from_secs(7200)),
        MAX_RENEW_INTERVAL
    );
    assert_eq!(
        renew_interval(Duration::from_secs(1)),
        Duration::from_secs(1)
    );
}

#[test]
fn gateway_announcements_trigger_an_immediate_renewal() {
    let fake = Fake::new(
        Protocol::NatPmp,
        &[Some("8.8.4.4:4000"), Some("8.8.4.4:4000")],
    );
    let mut m = PortMapper::with_backends(config(), vec![Box::new(fake.clone())]);
    let t0 = Instant::now();
    let announce = |epoch: u32, ip: [u8; 4]| {
        let mut b = vec![0, 128, 0, 0];
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&ip);
        b
    };
    // Nothing installed yet: ignored.
    assert!(!m.on_gateway_announcement(&announce(5, [8, 8, 4, 4]), t0));
    m.start(t0).unwrap();
    let scheduled = m.next_deadline();
    // Garbage and a normal announcement change nothing.
    assert!(!m.on_gateway_announcement(b"\x00\x80junk", t0));
    assert!(!m.on_gateway_announcement(&announce(5000, [8, 8, 4, 4]), t0));
    assert_eq!(m.next_deadline(), scheduled);
    // A reboot (epoch reset): renew now.
    let t1 = t0 + Duration::from_secs(3);
    assert!(m.on_gateway_announcement(&announce(5, [8, 8, 4, 4]), t1));
    assert_eq!(m.next_deadline(), Some(t1));
    assert_eq!(m.stats().gateway_reboots, 1);
    assert!(matches!(m.tick(t1), Some(MapperEvent::Renewed { .. })));
    // A new external address: renew now too.
    let t2 = t1 + Duration::from_secs(1);
    assert!(m.on_gateway_announcement(&announce(6000, [9, 9, 9, 9]), t2));
    assert_eq!(m.next_deadline(), Some(t2));
}

#[test]
fn nat_pmp_install_probes_briefly() {
    let c = MapperConfig::new(4000);
    assert_eq!(c.natpmp_schedule, Retransmit::NAT_PMP);
    assert!(c.natpmp_probe_schedule.total() < Duration::from_secs(4));
    assert!(c.pcp_schedule.total() < Duration::from_secs(2));
    assert!(!c.enabled);
    assert_eq!(c.lease, DEFAULT_LEASE);
}
