//! The director's configuration as the control thread keeps it: virtual
//! services and their real servers, in ipvsadm's terms, and the snapshot
//! built from them for the workers.
//!
//! This is the one place that changes configuration. Every change is
//! checked first and applied whole (IPVS's `ip_vs_ctl` rules: a service is
//! identified by protocol, VIP and port or by fwmark; a real server by
//! address and port within its service), then [`Director::build`] makes a
//! new immutable [`Snapshot`] that the control thread publishes. A batch of
//! changes (`ipvsadm -R`) is applied to a clone and kept only if every
//! change succeeds.
//!
//! Destination slots ([`DestId`]) index the connection table's
//! [`DestTable`]: a deleted real server's slot is retired, stays in the
//! snapshot (its connections still forward, as in IPVS's destination trash)
//! and is reused only once no connection refers to it.
//!
//! Changes reach the live [`DestTable`] (weights, thresholds, retirement)
//! only in [`Director::build`]: a clone that a failed batch leaves behind has
//! touched nothing the workers read.

use std::sync::Arc;

use xvs_conntrack::{Addr, DestId, DestTable, Fwd};
use xvs_sched::{SchedError, SchedFlags};

use xvs_health::{Check, Feedback, ServicePolicy, Timing};

use crate::service::{Dest, Gateway, Iface, MarkRule, Persistence, Service, Snapshot, SvcAddr};

/// A virtual service's settings (`-A`/`-E`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConf {
    /// Scheduler name (`-s`).
    pub sched: String,
    /// Scheduler flags (`-b`).
    pub flags: SchedFlags,
    /// Persistence (`-p`, `-M`).
    pub persistence: Option<Persistence>,
}

/// A real server's settings (`-a`/`-e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestConf {
    /// Address.
    pub addr: Addr,
    /// Port (0: the client's destination port).
    pub port: u16,
    /// Forwarding method.
    pub fwd: Fwd,
    /// Weight, 0..=65535.
    pub weight: i32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub lower: u32,
}

/// Why a change was refused: the messages ipvsadm prints for the kernel's
/// errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectorError {
    /// `-A` of an existing service.
    #[error("Service already exists")]
    ServiceExists,
    /// A change to a service that does not exist.
    #[error("No such service")]
    NoService,
    /// `-a` of an existing real server.
    #[error("Destination already exists")]
    DestExists,
    /// A change to a real server that does not exist.
    #[error("No such destination")]
    NoDest,
    /// Unknown scheduler or flags.
    #[error("{0}")]
    Sched(#[from] SchedError),
    /// Every destination slot is in use.
    #[error("too many real servers (limit {0})")]
    TooManyDests(usize),
    /// A value out of range.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A change to the live destination table, applied by [`Director::build`].
#[derive(Clone, Copy, Debug)]
enum TableOp {
    Configure(DestId, DestConf),
    Retire(DestId),
}

#[derive(Clone, Debug)]
struct SvcEntry {
    index: u32,
    addr: SvcAddr,
    conf: ServiceConf,
    dests: Vec<(DestId, DestConf)>,
    /// `--health` (xvs): quorum, sorry server, inhibit.
    policy: Option<ServicePolicy>,
    /// `--check` of real servers, by address and port.
    checks: Vec<Probe>,
    /// What health checking did to real servers.
    marks: Vec<(DestId, HealthMark)>,
    /// The sorry server, while the service has no quorum.
    sorry: Option<(DestId, DestConf)>,
}

/// How a real server is watched: its health check and its load endpoint.
#[derive(Clone, Debug, Default)]
struct Probe {
    addr: Addr,
    port: u16,
    check: Option<(Check, Timing)>,
    feedback: Option<Feedback>,
}

/// What health checking did to a real server (keepalived's ways).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthMark {
    /// Kept with another weight than configured: 0 when it failed under
    /// `inhibit_on_failure` (or while the sorry server serves), or a
    /// dynamic weight (`misc_dynamic`, the feedback agent).
    Weight(i32),
    /// Failed: out of scheduling and listings; its connections go on (as
    /// a real server keepalived deleted) and it comes back with them.
    Removed,
}

/// Whether `id` is retired by a change not yet applied (its slot still
/// looks configured, or free, in the live table).
fn pending_retire(ops: &[TableOp], id: DestId) -> bool {
    ops.iter()
        .any(|op| matches!(op, TableOp::Retire(r) if *r == id))
}

/// Where a real server is reached, as neighbour resolution found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reach {
    /// Director interface (index into the snapshot's interfaces).
    pub iface: u8,
    /// MAC of the real server, or of the next hop toward it.
    pub mac: Option<[u8; 6]>,
}

/// The director's configuration.
#[derive(Clone, Debug)]
pub struct Director {
    dests: Arc<DestTable>,
    services: Vec<SvcEntry>,
    /// Deleted real servers whose slots connections may still use.
    retired: Vec<(DestId, u32, DestConf)>,
    next_index: u32,
    generation: u64,
    /// Destination table changes not yet applied.
    ops: Vec<TableOp>,
}

impl Director {
    /// An empty configuration over the connection table's destination
    /// arena.
    pub fn new(dests: Arc<DestTable>) -> Director {
        Director {
            dests,
            services: Vec::new(),
            retired: Vec::new(),
            next_index: 0,
            generation: 0,
            ops: Vec::new(),
        }
    }

    fn find(&self, addr: &SvcAddr) -> Option<usize> {
        self.services.iter().position(|s| s.addr == *addr)
    }

    fn check(conf: &ServiceConf) -> Result<(), DirectorError> {
        xvs_sched::by_name(&conf.sched, conf.flags)?;
        if let Some(p) = conf.persistence {
            if p.timeout_ms == 0 {
                return Err(DirectorError::Invalid(
                    "persistence timeout must be positive",
                ));
            }
        }
        Ok(())
    }

    fn check_dest(d: &DestConf) -> Result<(), DirectorError> {
        if !(0..=65535).contains(&d.weight) {
            return Err(DirectorError::Invalid("weight must be 0..=65535"));
        }
        if d.lower > d.upper && d.upper != 0 {
            return Err(DirectorError::Invalid(
                "lower threshold above the upper one",
            ));
        }
        Ok(())
    }

    /// `-A`: adds a service.
    pub fn add_service(&mut self, addr: SvcAddr, conf: ServiceConf) -> Result<(), DirectorError> {
        Self::check(&conf)?;
        if self.find(&addr).is_some() {
            return Err(DirectorError::ServiceExists);
        }
        let index = self.next_index;
        self.next_index += 1;
        self.services.push(SvcEntry {
            index,
            addr,
            conf,
            dests: Vec::new(),
            policy: None,
            checks: Vec::new(),
            marks: Vec::new(),
            sorry: None,
        });
        Ok(())
    }

    /// `-E`: changes a service's settings (connections are kept).
    pub fn edit_service(&mut self, addr: &SvcAddr, conf: ServiceConf) -> Result<(), DirectorError> {
        Self::check(&conf)?;
        let i = self.find(addr).ok_or(DirectorError::NoService)?;
        self.services[i].conf = conf;
        Ok(())
    }

    /// `-D`: deletes a service and retires its real servers.
    pub fn del_service(&mut self, addr: &SvcAddr) -> Result<(), DirectorError> {
        let i = self.find(addr).ok_or(DirectorError::NoService)?;
        let s = self.services.remove(i);
        for (id, d) in s.dests.into_iter().chain(s.sorry) {
            self.retire(id, s.index, d);
        }
        Ok(())
    }

    /// `-C`: deletes every service.
    pub fn clear(&mut self) {
        for s in std::mem::take(&mut self.services) {
            for (id, d) in s.dests.into_iter().chain(s.sorry) {
                self.retire(id, s.index, d);
            }
        }
    }

    fn retire(&mut self, id: DestId, svc: u32, d: DestConf) {
        self.ops.push(TableOp::Retire(id));
        self.retired.push((id, svc, d));
    }

    fn alloc_id(&mut self) -> Result<DestId, DirectorError> {
        // Slots of retired servers come back once no connection uses them.
        self.retired
            .retain(|(id, _, _)| !self.dests.is_free(*id) || pending_retire(&self.ops, *id));
        let used = |id: DestId| {
            self.services.iter().any(|s| {
                s.dests.iter().any(|(d, _)| *d == id) || s.sorry.is_some_and(|(d, _)| d == id)
            }) || self.retired.iter().any(|(d, _, _)| *d == id)
        };
        // Slot 0 is never handed out, so a zeroed id is never a server.
        (1..self.dests.len() as DestId)
            .find(|id| !used(*id) && self.dests.is_free(*id))
            .ok_or(DirectorError::TooManyDests(self.dests.len() - 1))
    }

    /// `-a`: adds a real server to a service (reviving its deleted slot
    /// if connections still use it).
    pub fn add_dest(&mut self, svc: &SvcAddr, d: DestConf) -> Result<(), DirectorError> {
        Self::check_dest(&d)?;
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        if self.services[i]
            .dests
            .iter()
            .any(|(_, x)| x.addr == d.addr && x.port == d.port)
        {
            return Err(DirectorError::DestExists);
        }
        // As IPVS's destination trash: a deleted server of this service
        // whose slot still holds connections comes back with them (and its
        // counters) instead of taking a new slot.
        let index = self.services[i].index;
        let id = match self
            .retired
            .iter()
            .position(|(_, svc, x)| *svc == index && x.addr == d.addr && x.port == d.port)
        {
            Some(p) => self.retired.remove(p).0,
            None => self.alloc_id()?,
        };
        self.ops.push(TableOp::Configure(id, d));
        self.services[i].dests.push((id, d));
        Ok(())
    }

    /// `-e`: changes a real server's method, weight or thresholds.
    pub fn edit_dest(&mut self, svc: &SvcAddr, d: DestConf) -> Result<(), DirectorError> {
        Self::check_dest(&d)?;
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        let slot = self.services[i]
            .dests
            .iter_mut()
            .find(|(_, x)| x.addr == d.addr && x.port == d.port)
            .ok_or(DirectorError::NoDest)?;
        slot.1 = d;
        let id = slot.0;
        let live = Self::effective(&self.services[i], id, d);
        self.ops.push(TableOp::Configure(id, live));
        Ok(())
    }

    /// `-d`: deletes a real server; its connections go on until they end.
    pub fn del_dest(&mut self, svc: &SvcAddr, addr: &Addr, port: u16) -> Result<(), DirectorError> {
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        let s = &mut self.services[i];
        let at = s
            .dests
            .iter()
            .position(|(_, x)| x.addr == *addr && x.port == port)
            .ok_or(DirectorError::NoDest)?;
        let (id, d) = s.dests.remove(at);
        s.marks.retain(|(m, _)| *m != id);
        s.checks.retain(|x| !(x.addr == *addr && x.port == port));
        let index = s.index;
        self.retire(id, index, d);
        Ok(())
    }

    /// A real server's settings as the data plane uses them: weight 0 when
    /// health checking inhibited it.
    fn effective(s: &SvcEntry, id: DestId, d: DestConf) -> DestConf {
        match s.marks.iter().find(|(m, _)| *m == id) {
            Some((_, HealthMark::Weight(w))) => DestConf { weight: *w, ..d },
            Some((_, HealthMark::Removed)) => DestConf { weight: 0, ..d },
            None => d,
        }
    }

    /// Sets (or clears) a service's health policy (`--health`).
    pub fn set_policy(
        &mut self,
        svc: &SvcAddr,
        policy: Option<ServicePolicy>,
    ) -> Result<(), DirectorError> {
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        self.services[i].policy = policy;
        Ok(())
    }

    /// A service's health policy.
    pub fn policy(&self, svc: &SvcAddr) -> Option<&ServicePolicy> {
        self.find(svc)
            .and_then(|i| self.services[i].policy.as_ref())
    }

    /// Sets (or clears) a real server's health check (`--check`).
    pub fn set_check(
        &mut self,
        svc: &SvcAddr,
        addr: &Addr,
        port: u16,
        check: Option<(Check, Timing)>,
    ) -> Result<(), DirectorError> {
        self.set_probe(svc, addr, port, |p| p.check = check)
    }

    /// Sets (or clears) a real server's load endpoint (`--feedback`).
    pub fn set_feedback(
        &mut self,
        svc: &SvcAddr,
        addr: &Addr,
        port: u16,
        feedback: Option<Feedback>,
    ) -> Result<(), DirectorError> {
        self.set_probe(svc, addr, port, |p| p.feedback = feedback)
    }

    fn set_probe(
        &mut self,
        svc: &SvcAddr,
        addr: &Addr,
        port: u16,
        f: impl FnOnce(&mut Probe),
    ) -> Result<(), DirectorError> {
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        let s = &mut self.services[i];
        if !s
            .dests
            .iter()
            .any(|(_, d)| d.addr == *addr && d.port == port)
        {
            return Err(DirectorError::NoDest);
        }
        let at = match s
            .checks
            .iter()
            .position(|x| x.addr == *addr && x.port == port)
        {
            Some(at) => at,
            None => {
                s.checks.push(Probe {
                    addr: *addr,
                    port,
                    ..Probe::default()
                });
                s.checks.len() - 1
            }
        };
        f(&mut s.checks[at]);
        if s.checks[at].check.is_none() && s.checks[at].feedback.is_none() {
            s.checks.remove(at);
        }
        Ok(())
    }

    fn probe_of(&self, svc: &SvcAddr, addr: &Addr, port: u16) -> Option<&Probe> {
        let s = &self.services[self.find(svc)?];
        s.checks.iter().find(|x| x.addr == *addr && x.port == port)
    }

    /// A real server's health check.
    pub fn check_of(&self, svc: &SvcAddr, addr: &Addr, port: u16) -> Option<(&Check, &Timing)> {
        self.probe_of(svc, addr, port)
            .and_then(|p| p.check.as_ref())
            .map(|(c, t)| (c, t))
    }

    /// A real server's load endpoint.
    pub fn feedback_of(&self, svc: &SvcAddr, addr: &Addr, port: u16) -> Option<&Feedback> {
        self.probe_of(svc, addr, port)
            .and_then(|p| p.feedback.as_ref())
    }

    /// Every health check: service, real server address and port, check,
    /// timing.
    pub fn checks(&self) -> impl Iterator<Item = (&SvcAddr, &Addr, u16, &Check, &Timing)> {
        self.services.iter().flat_map(|s| {
            s.checks.iter().filter_map(move |p| {
                p.check
                    .as_ref()
                    .map(|(c, t)| (&s.addr, &p.addr, p.port, c, t))
            })
        })
    }

    /// Every load endpoint: service, real server, its configured weight,
    /// the endpoint.
    pub fn feedbacks(&self) -> impl Iterator<Item = (&SvcAddr, &DestConf, &Feedback)> {
        self.services.iter().flat_map(|s| {
            s.checks.iter().filter_map(move |p| {
                let d = s
                    .dests
                    .iter()
                    .find(|(_, d)| d.addr == p.addr && d.port == p.port)?;
                Some((&s.addr, &d.1, p.feedback.as_ref()?))
            })
        })
    }

    /// Marks a real server as health checking left it (`None`: healthy).
    /// Returns whether anything changed.
    pub fn set_mark(
        &mut self,
        svc: &SvcAddr,
        addr: &Addr,
        port: u16,
        mark: Option<HealthMark>,
    ) -> Result<bool, DirectorError> {
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        let s = &mut self.services[i];
        let (id, d) = *s
            .dests
            .iter()
            .find(|(_, d)| d.addr == *addr && d.port == port)
            .ok_or(DirectorError::NoDest)?;
        let old = s.marks.iter().find(|(m, _)| *m == id).map(|(_, k)| *k);
        if old == mark {
            return Ok(false);
        }
        s.marks.retain(|(m, _)| *m != id);
        if let Some(k) = mark {
            s.marks.push((id, k));
        }
        let live = Self::effective(s, id, d);
        self.ops.push(TableOp::Configure(id, live));
        Ok(true)
    }

    /// What health checking did to a real server.
    pub fn mark_of(&self, svc: &SvcAddr, id: DestId) -> Option<HealthMark> {
        let s = &self.services[self.find(svc)?];
        s.marks.iter().find(|(m, _)| *m == id).map(|(_, k)| *k)
    }

    /// Puts the sorry server in (`Some`) or takes it out. Returns whether
    /// anything changed.
    pub fn set_sorry(
        &mut self,
        svc: &SvcAddr,
        sorry: Option<DestConf>,
    ) -> Result<bool, DirectorError> {
        let i = self.find(svc).ok_or(DirectorError::NoService)?;
        let cur = self.services[i].sorry;
        if cur.map(|(_, d)| d) == sorry {
            return Ok(false);
        }
        let index = self.services[i].index;
        if let Some((id, d)) = cur {
            self.services[i].sorry = None;
            self.retire(id, index, d);
        }
        if let Some(d) = sorry {
            Self::check_dest(&d)?;
            let id = match self
                .retired
                .iter()
                .position(|(_, s, x)| *s == index && x.addr == d.addr && x.port == d.port)
            {
                Some(p) => self.retired.remove(p).0,
                None => self.alloc_id()?,
            };
            self.ops.push(TableOp::Configure(id, d));
            self.services[i].sorry = Some((id, d));
        }
        Ok(true)
    }

    /// The sorry server while it serves.
    pub fn sorry_of(&self, svc: &SvcAddr) -> Option<(DestId, DestConf)> {
        self.services[self.find(svc)?].sorry
    }

    /// A service's real servers as the data plane uses them: removed ones
    /// left out, inhibited ones at weight 0, the sorry server in while it
    /// serves.
    fn live_dests(s: &SvcEntry) -> Vec<(DestId, DestConf)> {
        s.dests
            .iter()
            .filter(|(id, _)| {
                !s.marks
                    .iter()
                    .any(|(m, k)| m == id && *k == HealthMark::Removed)
            })
            .map(|(id, d)| (*id, Self::effective(s, *id, *d)))
            .chain(s.sorry)
            .collect()
    }

    /// Every service address with its settings and real servers, in the
    /// order they were added (listings, save).
    pub fn services(
        &self,
    ) -> impl Iterator<Item = (&SvcAddr, &ServiceConf, &[(DestId, DestConf)])> {
        self.services
            .iter()
            .map(|s| (&s.addr, &s.conf, s.dests.as_slice()))
    }

    /// The service index of `addr` (per-service counters).
    pub fn service_index(&self, addr: &SvcAddr) -> Option<u32> {
        self.find(addr).map(|i| self.services[i].index)
    }

    /// Addresses of every real server, retired ones included (the
    /// neighbour resolver's targets).
    pub fn real_servers(&self) -> Vec<Addr> {
        let mut v: Vec<Addr> = self
            .services
            .iter()
            .flat_map(|s| s.dests.iter().chain(&s.sorry).map(|(_, d)| d.addr))
            .chain(self.retired.iter().map(|(_, _, d)| d.addr))
            .collect();
        v.sort_by_key(|a| a.0);
        v.dedup();
        v
    }

    /// Builds the snapshot the workers read: schedulers created and updated,
    /// each real server with the interface and MAC `reach` gives it (a real
    /// server `reach` does not know is kept out of scheduling).
    pub fn build(
        &mut self,
        ifaces: Vec<Iface>,
        gateways: [Option<Gateway>; 2],
        mark_rules: Vec<MarkRule>,
        reach: impl Fn(&Addr) -> Option<Reach>,
    ) -> Snapshot {
        self.generation += 1;
        for op in self.ops.drain(..) {
            match op {
                TableOp::Configure(id, d) => self.dests.configure(id, d.weight, d.upper, d.lower),
                TableOp::Retire(id) => self.dests.retire(id),
            }
        }
        self.retired.retain(|(id, _, _)| !self.dests.is_free(*id));
        let dest = |id: DestId, svc: u32, d: &DestConf| {
            let r = reach(&d.addr);
            Dest {
                id,
                addr: d.addr,
                port: d.port,
                fwd: d.fwd,
                weight: d.weight,
                mac: r.and_then(|r| r.mac),
                iface: r.map_or(0, |r| r.iface),
                svc,
            }
        };
        let services = self
            .services
            .iter()
            .map(|s| {
                let list = Self::live_dests(s)
                    .iter()
                    .map(|(id, d)| dest(*id, s.index, d))
                    .collect();
                // Checked when the service was added or edited.
                let sched = xvs_sched::by_name(&s.conf.sched, s.conf.flags).unwrap_or_else(|_| {
                    xvs_sched::by_name(xvs_sched::DEFAULT, SchedFlags::NONE)
                        .expect("default scheduler")
                });
                Arc::new(Service::new(
                    s.index,
                    s.addr,
                    s.conf.persistence,
                    list,
                    sched,
                ))
            })
            .collect();
        // Slots no service schedules but connections may still use: deleted
        // real servers, and those health checking removed.
        let removed = self.services.iter().flat_map(|s| {
            s.marks
                .iter()
                .filter(|(_, k)| *k == HealthMark::Removed)
                .filter_map(|(id, _)| s.dests.iter().find(|(d, _)| d == id))
                .map(|(id, d)| dest(*id, s.index, &DestConf { weight: 0, ..*d }))
        });
        let retired: Vec<Dest> = self
            .retired
            .iter()
            .map(|(id, svc, d)| dest(*id, *svc, d))
            .chain(removed)
            .collect();
        Snapshot::new(services, &retired, ifaces, self.generation)
            .with_gateways(gateways)
            .with_mark_rules(mark_rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_conntrack::Proto;

    fn vip() -> SvcAddr {
        SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: Addr::v4([192, 0, 2, 1]),
            vport: 80,
        }
    }

    fn conf(s: &str) -> ServiceConf {
        ServiceConf {
            sched: s.into(),
            flags: SchedFlags::NONE,
            persistence: None,
        }
    }

    fn rs(last: u8, w: i32) -> DestConf {
        DestConf {
            addr: Addr::v4([10, 0, 0, last]),
            port: 80,
            fwd: Fwd::Route,
            weight: w,
            upper: 0,
            lower: 0,
        }
    }

    #[test]
    fn ipvsadm_rules_for_services_and_servers() {
        let mut d = Director::new(Arc::new(DestTable::new(4)));
        assert!(matches!(
            d.add_service(vip(), conf("nope")),
            Err(DirectorError::Sched(_))
        ));
        d.add_service(vip(), conf("rr")).unwrap();
        assert_eq!(
            d.add_service(vip(), conf("wlc")),
            Err(DirectorError::ServiceExists)
        );
        d.add_dest(&vip(), rs(2, 1)).unwrap();
        assert_eq!(d.add_dest(&vip(), rs(2, 3)), Err(DirectorError::DestExists));
        assert_eq!(d.edit_dest(&vip(), rs(9, 1)), Err(DirectorError::NoDest));
        assert_eq!(
            d.add_dest(&vip(), rs(3, 70000)),
            Err(DirectorError::Invalid("weight must be 0..=65535"))
        );
        d.add_dest(&vip(), rs(3, 2)).unwrap();
        d.add_dest(&vip(), rs(4, 2)).unwrap();
        assert_eq!(
            d.add_dest(&vip(), rs(5, 2)),
            Err(DirectorError::TooManyDests(3))
        );
        d.edit_dest(&vip(), rs(3, 0)).unwrap();
        assert!(!d.dests.get(2).is_available(), "nothing live before build");
        let snap = d.build(vec![], [None; 2], vec![], |_| {
            Some(Reach {
                iface: 0,
                mac: Some([2; 6]),
            })
        });
        let svc = snap
            .find(Proto::Tcp, &Addr::v4([192, 0, 2, 1]), 80, 0)
            .unwrap();
        assert_eq!(svc.dests.len(), 3);
        assert_eq!(d.dests.get(2).weight(), 0, "build reaches the live table");
        assert_eq!(d.real_servers().len(), 3);

        // Deleting keeps the slot while connections use it.
        d.dests.set_counts(1, 1, 0);
        d.del_dest(&vip(), &Addr::v4([10, 0, 0, 2]), 80).unwrap();
        let snap = d.build(vec![], [None; 2], vec![], |_| None);
        assert!(snap.dest(1).is_some(), "retired server still forwards");
        assert_eq!(
            d.add_dest(&vip(), rs(5, 1)),
            Err(DirectorError::TooManyDests(3))
        );
        d.dests.set_counts(1, 0, 0);
        d.add_dest(&vip(), rs(5, 1)).unwrap();
        let ids: Vec<DestId> = d
            .services()
            .next()
            .unwrap()
            .2
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids, vec![2, 3, 1], "a free retired slot is reused");
        d.clear();
        assert_eq!(d.services().count(), 0);
        assert_eq!(d.del_service(&vip()), Err(DirectorError::NoService));
    }

    #[test]
    fn a_failed_batch_on_a_clone_touches_nothing_live() {
        let mut live = Director::new(Arc::new(DestTable::new(8)));
        live.add_service(vip(), conf("rr")).unwrap();
        live.add_dest(&vip(), rs(2, 1)).unwrap();
        live.build(vec![], [None; 2], vec![], |_| None);
        assert_eq!(live.dests.get(1).weight(), 1);

        let mut batch = live.clone();
        batch.edit_dest(&vip(), rs(2, 7)).unwrap();
        batch.add_dest(&vip(), rs(3, 1)).unwrap();
        batch
            .del_dest(&vip(), &Addr::v4([10, 0, 0, 2]), 80)
            .unwrap();
        assert_eq!(
            batch.add_dest(&vip(), rs(3, 1)),
            Err(DirectorError::DestExists)
        );
        drop(batch);
        assert_eq!(live.dests.get(1).weight(), 1, "edit not applied");
        assert!(live.dests.get(1).is_available(), "delete not applied");
        assert!(!live.dests.get(2).is_available(), "add not applied");

        // The same batch committed: the table follows at build.
        let mut batch = live.clone();
        batch.edit_dest(&vip(), rs(2, 7)).unwrap();
        batch.add_dest(&vip(), rs(3, 1)).unwrap();
        live = batch;
        live.build(vec![], [None; 2], vec![], |_| None);
        assert_eq!(live.dests.get(1).weight(), 7);
        assert!(live.dests.get(2).is_available());
    }

    #[test]
    fn a_deleted_server_added_back_gets_its_slot_and_connections_back() {
        let mut d = Director::new(Arc::new(DestTable::new(8)));
        d.add_service(vip(), conf("rr")).unwrap();
        d.add_dest(&vip(), rs(2, 1)).unwrap();
        d.add_dest(&vip(), rs(3, 1)).unwrap();
        d.build(vec![], [None; 2], vec![], |_| None);
        d.dests.set_counts(2, 1, 0);
        d.del_dest(&vip(), &Addr::v4([10, 0, 0, 3]), 80).unwrap();
        d.build(vec![], [None; 2], vec![], |_| None);
        assert!(!d.dests.get(2).is_available());
        d.add_dest(&vip(), rs(3, 5)).unwrap();
        d.build(vec![], [None; 2], vec![], |_| None);
        let ids: Vec<DestId> = d
            .services()
            .next()
            .unwrap()
            .2
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids, vec![1, 2], "same slot as before the delete");
        assert!(d.dests.get(2).is_available());
        assert_eq!(d.dests.get(2).weight(), 5);
        assert_eq!(
            d.dests.get(2).active(),
            1,
            "its connection is still counted"
        );
    }

    #[test]
    fn health_marks_and_the_sorry_server_shape_the_snapshot() {
        let mut d = Director::new(Arc::new(DestTable::new(8)));
        d.add_service(vip(), conf("rr")).unwrap();
        for n in [1, 2, 3] {
            d.add_dest(&vip(), rs(n, 5)).unwrap();
        }
        let reach = |_: &Addr| {
            Some(Reach {
                iface: 0,
                mac: Some([2, 0, 0, 0, 0, 9]),
            })
        };
        let snap = d.build(Vec::new(), [None, None], Vec::new(), reach);
        let ids: Vec<DestId> = snap
            .services()
            .next()
            .unwrap()
            .dests
            .iter()
            .map(|x| x.id)
            .collect();
        assert!(
            d.set_mark(&vip(), &rs(1, 0).addr, 80, Some(HealthMark::Removed))
                .unwrap()
        );
        assert!(
            !d.set_mark(&vip(), &rs(1, 0).addr, 80, Some(HealthMark::Removed))
                .unwrap()
        );
        assert!(
            d.set_mark(&vip(), &rs(2, 0).addr, 80, Some(HealthMark::Weight(0)))
                .unwrap()
        );
        let sorry = rs(9, 1);
        assert!(d.set_sorry(&vip(), Some(sorry)).unwrap());
        let snap = d.build(Vec::new(), [None, None], Vec::new(), reach);
        let svc = snap.services().next().unwrap();
        let listed: Vec<(Addr, i32)> = svc.dests.iter().map(|x| (x.addr, x.weight)).collect();
        assert_eq!(
            listed,
            [(rs(2, 0).addr, 0), (rs(3, 0).addr, 5), (sorry.addr, 1)],
            "removed left out, inhibited at 0, the sorry server in"
        );
        // The removed server's slot still forwards its connections.
        assert_eq!(snap.dest(ids[0]).map(|x| x.addr), Some(rs(1, 0).addr));
        assert_eq!(d.dests.get(ids[0]).weight(), 0);
        assert_eq!(d.dests.get(ids[1]).weight(), 0);
        // The configuration is unchanged; clearing the marks restores it.
        let configured: Vec<i32> = d
            .services()
            .next()
            .unwrap()
            .2
            .iter()
            .map(|x| x.1.weight)
            .collect();
        assert_eq!(configured, [5, 5, 5]);
        d.set_mark(&vip(), &rs(1, 0).addr, 80, None).unwrap();
        d.set_mark(&vip(), &rs(2, 0).addr, 80, None).unwrap();
        d.set_sorry(&vip(), None).unwrap();
        let snap = d.build(Vec::new(), [None, None], Vec::new(), reach);
        let svc = snap.services().next().unwrap();
        assert_eq!(
            svc.dests.iter().map(|x| x.weight).collect::<Vec<_>>(),
            [5, 5, 5]
        );
        assert_eq!(d.dests.get(ids[0]).weight(), 5);
        // Deleting a real server forgets its mark and its check.
        d.set_check(
            &vip(),
            &rs(3, 0).addr,
            80,
            Some((Check::Tcp { port: None }, Timing::default())),
        )
        .unwrap();
        d.set_mark(&vip(), &rs(3, 0).addr, 80, Some(HealthMark::Removed))
            .unwrap();
        d.del_dest(&vip(), &rs(3, 0).addr, 80).unwrap();
        assert_eq!(d.checks().count(), 0);
        d.add_dest(&vip(), rs(3, 5)).unwrap();
        let snap = d.build(Vec::new(), [None, None], Vec::new(), reach);
        assert_eq!(snap.services().next().unwrap().dests.len(), 3);
    }
}
