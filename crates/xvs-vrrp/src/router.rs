//! One virtual router's election (RFC 5798 §6; keepalived's deviations where they are its
//! defaults: shared/reference/vrrp.md §3). Time is an input (`now`, on any monotonic
//! clock of the caller's), so elections, failovers and preemption run in tests on a
//! virtual clock; the actions say what to send and when the VIPs move.

use std::{net::IpAddr, time::Duration};

use crate::wire::Advertisement;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub vrid: u8,
    /// 1–254; 255 = the address owner.
    pub priority: u8,
    pub interval: Duration,
    /// A higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: after starting, wait this long before preempting.
    pub preempt_delay: Duration,
    /// The virtual addresses.
    pub addresses: Vec<IpAddr>,
    /// 3, or 2 for keepalived's default.
    pub version: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initialize,
    Backup,
    Master,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement to the group.
    Send(Advertisement),
    /// Take the addresses (add them, announce them: gratuitous ARP, unsolicited NA).
    TakeAddresses,
    /// Give the addresses up.
    ReleaseAddresses,
}

/// What a member of a sync group (keepalived's `vrrp_sync_group`) tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Standing {
    /// A backup that hears no master (starting, or its master fell silent), or a member
    /// out of the election because another is in fault.
    Waiting = 0,
    /// A backup that hears a master it gives way to: it lost the election.
    HearsMaster = 1,
    Master = 2,
    /// Out of the election for a fault of its own.
    Fault = 3,
}

impl Standing {
    pub fn of(code: u8) -> Standing {
        match code {
            1 => Standing::HearsMaster,
            2 => Standing::Master,
            3 => Standing::Fault,
            _ => Standing::Waiting,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Router {
    config: Config,
    /// This router's primary address (the tie-break between equal priorities).
    own: IpAddr,
    state: State,
    /// Learned from the master's advertisements while backup.
    master_interval: Duration,
    /// When the master-down timer (backup) or the advertisement timer (master) fires.
    deadline: Option<Duration>,
    started: Duration,
    /// A backup that last restarted its master-down timer for a master's advertisement
    /// (not yet run out): it hears a master it gives way to.
    hears_master: bool,
}

impl Router {
    pub fn new(config: Config, own: IpAddr) -> Router {
        Router {
            master_interval: config.interval,
            config,
            own,
            state: State::Initialize,
            deadline: None,
            started: Duration::ZERO,
            hears_master: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Router::tick`] must be called next.
    pub fn timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// Skew_Time: lower priorities wait longer.
    fn skew(&self) -> Duration {
        self.master_interval * (256 - u32::from(self.config.priority)) / 256
    }

    /// Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        self.master_interval * 3 + self.skew()
    }

    fn advertisement(&self, priority: u8) -> Action {
        Action::Send(Advertisement {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval_cs: (self.config.interval.as_millis() / 10).clamp(1, 4095) as u16,
            addresses: self.config.addresses.clone(),
        })
    }

    fn become_master(&mut self, now: Duration) -> Vec<Action> {
        self.state = State::Master;
        self.hears_master = false;
        self.deadline = Some(now + self.config.interval);
        vec![
            self.advertisement(self.config.priority),
            Action::TakeAddresses,
        ]
    }

    fn become_backup(&mut self, now: Duration) {
        self.state = State::Backup;
        self.hears_master = false;
        self.deadline = Some(now + self.master_down_interval());
    }

    /// The router starts: the owner becomes master at once, any other waits as backup.
    pub fn start(&mut self, now: Duration) -> Vec<Action> {
        self.started = now;
        self.master_interval = self.config.interval;
        if self.config.priority == 255 {
            return self.become_master(now);
        }
        self.become_backup(now);
        Vec::new()
    }

    /// The router stops: a master says so with priority 0, so a backup takes over after
    /// its skew time instead of its whole down interval.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let was = self.state;
        self.state = State::Initialize;
        self.deadline = None;
        self.hears_master = false;
        match was {
            State::Master => vec![self.advertisement(0), Action::ReleaseAddresses],
            _ => Vec::new(),
        }
    }

    /// The router takes `config` (a reload) without leaving its state: a master says its
    /// new priority at once, so that a backup it no longer outranks (and that preempts)
    /// takes over, and advertises at its new interval from now; a backup that became the
    /// address owner takes over at once, and otherwise acts on the master's next
    /// advertisement (preempting a master it now outranks); a router out of the election
    /// uses it when it returns. The virtual router (its VRID) stays the same.
    pub fn reconfigure(&mut self, config: Config, now: Duration) -> Vec<Action> {
        debug_assert_eq!(config.vrid, self.config.vrid);
        self.config = config;
        match self.state {
            State::Master => {
                self.deadline = Some(now + self.config.interval);
                vec![self.advertisement(self.config.priority)]
            }
            State::Backup if self.config.priority == 255 => self.become_master(now),
            _ => Vec::new(),
        }
    }

    /// The time is `now`: a timer that ran out acts.
    pub fn tick(&mut self, now: Duration) -> Vec<Action> {
        match (self.state, self.deadline) {
            (State::Backup, Some(due)) if now >= due => self.become_master(now),
            (State::Master, Some(due)) if now >= due => {
                self.deadline = Some(now + self.config.interval);
                vec![self.advertisement(self.config.priority)]
            }
            _ => Vec::new(),
        }
    }

    /// A backup that hears a master it gives way to (its master-down timer restarted by
    /// the master's advertisements, and not run out since). In a sync group, such a member
    /// keeps the others from being master.
    pub fn hears_master(&self) -> bool {
        self.state == State::Backup && self.hears_master
    }

    /// Where this router stands, for the other members of its sync group (a fault is
    /// the caller's to tell).
    pub fn standing(&self) -> Standing {
        match self.state {
            State::Master => Standing::Master,
            State::Backup if self.hears_master => Standing::HearsMaster,
            _ => Standing::Waiting,
        }
    }

    /// A sync group's members move as one (keepalived's `vrrp_sync_group`), given where
    /// the others stand (`others`, this router left out): while one hears a master, the
    /// group's master is elsewhere, so a master here follows it to backup (giving its
    /// addresses up as if it had lost its own election), and a backup whose timer ran
    /// out stays one (its timer restarted; else it would take over, be followed back,
    /// and so on). Once one of them is master and none hears another, a backup that
    /// hears none either follows it at once instead of waiting out its own timer.
    /// Without this, a link on which a member misses the other director's
    /// advertisements leaves that member master on one director while its group's
    /// others are master on the other: a NAT director's VIP on one, its real servers'
    /// gateway address on the other.
    pub fn follow_group(&mut self, others: &[Standing], now: Duration) -> Vec<Action> {
        if others.contains(&Standing::HearsMaster) {
            match self.state {
                State::Master => {
                    self.become_backup(now);
                    vec![Action::ReleaseAddresses]
                }
                State::Backup => {
                    if self.deadline.is_some_and(|due| now >= due) {
                        self.hears_master = false;
                        self.deadline = Some(now + self.master_down_interval());
                    }
                    Vec::new()
                }
                State::Initialize => Vec::new(),
            }
        } else if others.contains(&Standing::Master)
            && self.state == State::Backup
            && !self.hears_master
        {
            self.become_master(now)
        } else {
            Vec::new()
        }
    }

    /// An advertisement from `from` arrived at `now`.
    pub fn receive(&mut self, now: Duration, advert: &Advertisement, from: IpAddr) -> Vec<Action> {
        if advert.vrid != self.config.vrid || from == self.own {
            return Vec::new();
        }
        let theirs = Duration::from_millis(u64::from(advert.interval_cs) * 10);
        match self.state {
            State::Initialize => Vec::new(),
            State::Backup => {
                if advert.priority == 0 {
                    self.deadline = Some(now + self.skew());
                    self.hears_master = false;
                    return Vec::new();
                }
                let waiting = now < self.started + self.config.preempt_delay;
                if !self.config.preempt || advert.priority >= self.config.priority || waiting {
                    self.master_interval = theirs;
                    self.deadline = Some(now + self.master_down_interval());
                    self.hears_master = true;
                }
                // Otherwise a lower-priority master is ignored, and this router's timer
                // runs out: it preempts.
                Vec::new()
            }
            State::Master => {
                let wins = advert.priority > self.config.priority
                    || (advert.priority == self.config.priority && from > self.own);
                if advert.priority != 0 && wins {
                    self.master_interval = theirs;
                    self.become_backup(now);
                    self.hears_master = true;
                    return vec![Action::ReleaseAddresses];
                }
                // A stopping master, or a lower one: advertise at once (keepalived's
                // default), so that the other side settles quickly.
                self.deadline = Some(now + self.config.interval);
                vec![self.advertisement(self.config.priority)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "10.0.0.1";
    const B: &str = "10.0.0.2";

    fn config(priority: u8) -> Config {
        Config {
            vrid: 51,
            priority,
            interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            addresses: vec!["1.1.1.254".parse().unwrap()],
            version: 3,
        }
    }

    /// Routers on one link, driven on a virtual clock; each is up or down.
    struct Link {
        routers: Vec<(Router, IpAddr, bool)>,
        now: Duration,
        /// (time, router index, state) at each change of state.
        changes: Vec<(Duration, usize, State)>,
    }

    impl Link {
        fn new(configs: Vec<(Config, &str)>) -> Link {
            let routers = configs
                .into_iter()
                .map(|(c, a)| {
                    let a: IpAddr = a.parse().unwrap();
                    (Router::new(c, a), a, false)
                })
                .collect();
            Link {
                routers,
                now: Duration::ZERO,
                changes: Vec::new(),
            }
        }

        fn start(&mut self, i: usize) {
            self.routers[i].2 = true;
            let actions = self.routers[i].0.start(self.now);
            self.deliver(i, actions);
        }

        /// The router vanishes without a word (a crash, a cable).
        fn kill(&mut self, i: usize) {
            self.routers[i].2 = false;
            self.routers[i].0 = Router::new(self.routers[i].0.config.clone(), self.routers[i].1);
        }

        fn stop(&mut self, i: usize) {
            let actions = self.routers[i].0.shutdown();
            self.deliver(i, actions);
            self.routers[i].2 = false;
        }

        fn reconfigure(&mut self, i: usize, config: Config) {
            let actions = self.routers[i].0.reconfigure(config, self.now);
            self.deliver(i, actions);
        }

        fn deliver(&mut self, from: usize, actions: Vec<Action>) {
            let source = self.routers[from].1;
            for action in actions {
                if let Action::Send(advert) = action {
                    for to in 0..self.routers.len() {
                        if to != from && self.routers[to].2 {
                            let replies = self.routers[to].0.receive(self.now, &advert, source);
                            self.deliver(to, replies);
                        }
                    }
                }
            }
            self.record();
        }

        fn record(&mut self) {
            for (i, (router, _, _)) in self.routers.iter().enumerate() {
                let last = self.changes.iter().rev().find(|c| c.1 == i).map(|c| c.2);
                if last != Some(router.state()) {
                    self.changes.push((self.now, i, router.state()));
                }
            }
        }

        /// Runs every timer due until `until`.
        fn run_until(&mut self, until: Duration) {
            loop {
                let next = self
                    .routers
                    .iter()
                    .filter(|r| r.2)
                    .filter_map(|r| r.0.timeout())
                    .min();
                match next {
                    Some(t) if t <= until => {
                        // Timers due at the same instant fire together, before anything
                        // they send arrives.
                        self.now = t;
                        let fired: Vec<(usize, Vec<Action>)> = self
                            .routers
                            .iter_mut()
                            .enumerate()
                            .filter(|(_, r)| r.2)
                            .map(|(i, r)| (i, r.0.tick(t)))
                            .collect();
                        for (i, actions) in fired {
                            self.deliver(i, actions);
                        }
                    }
                    _ => break,
                }
            }
            self.now = until;
        }

        fn masters(&self) -> Vec<usize> {
            (0..self.routers.len())
                .filter(|&i| self.routers[i].2 && self.routers[i].0.state() == State::Master)
                .collect()
        }

        fn became_master(&self, i: usize, after: Duration) -> Option<Duration> {
            self.changes
                .iter()
                .find(|c| c.1 == i && c.2 == State::Master && c.0 >= after)
                .map(|c| c.0)
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_higher_priority_wins_and_a_killed_master_is_replaced_within_the_down_interval() {
        let mut link = Link::new(vec![(config(200), A), (config(100), B)]);
        link.start(0);
        link.start(1);
        link.run_until(secs(10.0));
        assert_eq!(link.masters(), [0]);
        // A waited 3 + 56/256 s: the higher priority's shorter skew wins the race.
        assert_eq!(link.became_master(0, Duration::ZERO), Some(secs(3.21875)));

        // A's last advertisement left at 9.21875; B takes over 3 + 156/256 s later.
        link.kill(0);
        link.run_until(secs(20.0));
        assert_eq!(link.masters(), [1]);
        let took = link.became_master(1, secs(10.0)).unwrap();
        assert_eq!(took, secs(9.21875 + 3.609375));
    }

    #[test]
    fn a_returning_higher_priority_router_preempts_unless_told_not_to() {
        for preempt in [true, false] {
            let mut first = config(200);
            first.preempt = preempt;
            let mut link = Link::new(vec![(first, A), (config(100), B)]);
            link.start(1);
            link.run_until(secs(10.0));
            assert_eq!(link.masters(), [1]);
            link.start(0);
            link.run_until(secs(20.0));
            if preempt {
                assert_eq!(link.masters(), [0]);
                // It ignored B's lower priority and its own down timer ran out.
                assert_eq!(link.became_master(0, secs(10.0)), Some(secs(13.21875)));
                assert_eq!(link.routers[1].0.state(), State::Backup);
            } else {
                assert_eq!(link.masters(), [1], "no preemption");
            }
        }
    }

    #[test]
    fn preempt_delay_holds_the_takeover_back() {
        let mut first = config(200);
        first.preempt_delay = secs(5.0);
        let mut link = Link::new(vec![(first, A), (config(100), B)]);
        link.start(1);
        link.run_until(secs(10.0));
        link.start(0);
        link.run_until(secs(30.0));
        assert_eq!(link.masters(), [0]);
        let took = link.became_master(0, secs(10.0)).unwrap();
        assert!(took >= secs(15.0), "not before the delay: {took:?}");
        assert!(
            took <= secs(15.0) + secs(4.0),
            "within a down interval after it: {took:?}"
        );
    }

    #[test]
    fn a_stopping_master_hands_over_after_the_skew_time_and_ties_go_to_the_higher_address() {
        let mut link = Link::new(vec![(config(200), A), (config(100), B)]);
        link.start(0);
        link.start(1);
        link.run_until(secs(10.0));
        link.stop(0);
        link.run_until(secs(20.0));
        // Priority 0 at 10 s: B waits only its skew, 156/256 s.
        assert_eq!(link.became_master(1, secs(10.0)), Some(secs(10.609375)));

        let mut tie = Link::new(vec![(config(100), A), (config(100), B)]);
        tie.start(0);
        tie.start(1);
        tie.run_until(secs(10.0));
        // Both ran out at once and became master; the higher address stays.
        assert_eq!(tie.masters(), [1], "10.0.0.2 beats 10.0.0.1");
    }

    #[test]
    fn a_reload_that_changes_priorities_moves_the_master_without_a_restart() {
        let mut link = Link::new(vec![(config(200), A), (config(100), B)]);
        link.start(0);
        link.start(1);
        link.run_until(secs(10.0));
        assert_eq!(link.masters(), [0]);

        // A's priority falls below B's and A says so at once: B ignores it, so its down
        // timer, set by A's last advertisement at its old priority (9.21875 s), runs out
        // 3 + 156/256 s after that; A then hears B's higher priority and steps down.
        link.reconfigure(0, config(50));
        link.run_until(secs(20.0));
        assert_eq!(link.masters(), [1]);
        assert_eq!(link.became_master(1, secs(10.0)), Some(secs(12.828125)));
        assert_eq!(link.routers[0].0.state(), State::Backup);

        // A is raised again: as a preempting backup it takes over the same way.
        link.reconfigure(0, config(150));
        link.run_until(secs(30.0));
        assert_eq!(link.masters(), [0]);

        // Without preemption a raised backup waits for the master to go.
        let mut calm = config(250);
        calm.preempt = false;
        link.reconfigure(1, calm);
        link.run_until(secs(40.0));
        assert_eq!(link.masters(), [0]);

        // A backup made the address owner takes over at once.
        link.reconfigure(1, config(255));
        assert_eq!(link.masters(), [1]);
        assert_eq!(link.routers[0].0.state(), State::Backup);
    }

    #[test]
    fn a_reloaded_master_advertises_at_its_new_interval() {
        let mut link = Link::new(vec![(config(200), A)]);
        link.start(0);
        link.run_until(secs(10.0));
        let mut faster = config(200);
        faster.interval = secs(0.25);
        let actions = link.routers[0].0.reconfigure(faster, secs(10.0));
        assert!(
            matches!(&actions[..], [Action::Send(a)] if a.interval_cs == 25),
            "{actions:?}"
        );
        assert_eq!(link.routers[0].0.timeout(), Some(secs(10.25)));
    }

    #[test]
    fn the_owner_takes_over_at_once() {
        let mut link = Link::new(vec![(config(100), A), (config(255), B)]);
        link.start(0);
        link.run_until(secs(5.0));
        assert_eq!(link.masters(), [0]);
        link.start(1);
        assert_eq!(link.masters(), [1]);
        assert_eq!(link.routers[0].0.state(), State::Backup);
    }

    /// Two directors, each with a sync group of two instances, one per link: instance
    /// `i` of director `d` is `routers[d * 2 + i]`, on link `i`. Stepped every 10 ms on a
    /// virtual clock; `deaf` advertisements (from, to) are lost.
    struct Groups {
        routers: Vec<Router>,
        up: Vec<bool>,
        deaf: Vec<(usize, usize)>,
        now: Duration,
        grouped: bool,
    }

    impl Groups {
        fn new(priorities: [u8; 2], grouped: bool) -> Groups {
            let mut routers = Vec::new();
            for (d, priority) in priorities.into_iter().enumerate() {
                for link in 0..2u8 {
                    let mut c = config(priority);
                    c.vrid = 51 + link;
                    routers.push(Router::new(c, [A, B][d].parse().unwrap()));
                }
            }
            Groups {
                routers,
                up: vec![false; 4],
                deaf: Vec::new(),
                now: Duration::ZERO,
                grouped,
            }
        }

        fn start(&mut self, director: usize) {
            for r in [director * 2, director * 2 + 1] {
                self.start_instance(r);
            }
        }

        fn start_instance(&mut self, r: usize) {
            self.up[r] = true;
            let actions = self.routers[r].start(self.now);
            self.deliver(r, actions);
        }

        fn kill(&mut self, director: usize) {
            for r in [director * 2, director * 2 + 1] {
                self.up[r] = false;
                self.routers[r] = Router::new(self.routers[r].config.clone(), self.routers[r].own);
            }
        }

        fn deliver(&mut self, from: usize, actions: Vec<Action>) {
            for action in actions {
                let Action::Send(advert) = action else {
                    continue;
                };
                // The other director's instance on the same link.
                let to = (from + 2) % 4;
                if self.up[to] && !self.deaf.contains(&(from, to)) {
                    let source = self.routers[from].own;
                    let replies = self.routers[to].receive(self.now, &advert, source);
                    self.deliver(to, replies);
                }
            }
        }

        fn run_until(&mut self, until: Duration) {
            while self.now < until {
                self.now += Duration::from_millis(10);
                for r in 0..4 {
                    if !self.up[r] {
                        continue;
                    }
                    let actions = self.routers[r].tick(self.now);
                    self.deliver(r, actions);
                    if self.grouped {
                        let other = r ^ 1;
                        let others = [self.routers[other].standing()];
                        let actions = self.routers[r].follow_group(&others, self.now);
                        self.deliver(r, actions);
                    }
                }
            }
        }

        /// Which director is master of each link's instance (None: neither; both: 2).
        fn masters(&self) -> [usize; 2] {
            [0, 1].map(|link| {
                let on = |d: usize| {
                    self.up[d * 2 + link] && self.routers[d * 2 + link].state() == State::Master
                };
                match (on(0), on(1)) {
                    (true, true) => 2,
                    (true, false) => 0,
                    (false, true) => 1,
                    (false, false) => 3,
                }
            })
        }
    }

    /// A director (1) preempts one that is master of both instances (0), but on link 1
    /// its advertisements never reach director 0. Alone, instance 1 stays master on
    /// both directors; in a group, director 0's follows its instance 0 to backup and
    /// stays there, and both move back together when director 1 dies.
    #[test]
    fn a_sync_group_follows_a_member_that_lost_its_election() {
        for grouped in [false, true] {
            let mut groups = Groups::new([100, 200], grouped);
            groups.deaf.push((3, 1));
            groups.start(0);
            groups.run_until(secs(5.0));
            assert_eq!(groups.masters(), [0, 0]);
            groups.start(1);
            groups.run_until(secs(10.0));
            if !grouped {
                assert_eq!(groups.masters(), [1, 2], "split without the group");
                continue;
            }
            assert_eq!(groups.masters(), [1, 1]);
            // Held there: director 0's instance 1 never takes over again.
            for t in 0..100 {
                groups.run_until(secs(10.0 + t as f64 * 0.1));
                assert_eq!(groups.masters(), [1, 1], "at {:?}", groups.now);
            }
            groups.kill(1);
            groups.run_until(secs(25.0));
            assert_eq!(groups.masters(), [0, 0]);
        }
    }

    /// In a group, the second member becomes master with the first, not when its own
    /// timer runs out (the other director's instances advertised half a second apart).
    #[test]
    fn a_sync_group_s_backups_take_over_together() {
        for grouped in [false, true] {
            let mut groups = Groups::new([200, 100], grouped);
            groups.start_instance(0);
            groups.run_until(secs(0.5));
            groups.start_instance(1);
            groups.start(1);
            groups.run_until(secs(5.0));
            assert_eq!(groups.masters(), [0, 0]);
            groups.kill(0);
            let mut first = None;
            while groups.now < secs(10.0) && groups.masters() != [1, 1] {
                groups.run_until(groups.now + Duration::from_millis(10));
                if groups.masters().contains(&1) && first.is_none() {
                    first = Some(groups.now);
                }
            }
            assert_eq!(groups.masters(), [1, 1]);
            let apart = groups.now - first.unwrap();
            if grouped {
                assert!(apart <= Duration::from_millis(10), "{apart:?}");
            } else {
                assert!(apart >= Duration::from_millis(400), "{apart:?}");
            }
        }
    }
}
