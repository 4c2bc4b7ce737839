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
        self.deadline = Some(now + self.config.interval);
        vec![
            self.advertisement(self.config.priority),
            Action::TakeAddresses,
        ]
    }

    fn become_backup(&mut self, now: Duration) {
        self.state = State::Backup;
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
                    return Vec::new();
                }
                let waiting = now < self.started + self.config.preempt_delay;
                if !self.config.preempt || advert.priority >= self.config.priority || waiting {
                    self.master_interval = theirs;
                    self.deadline = Some(now + self.master_down_interval());
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
}
